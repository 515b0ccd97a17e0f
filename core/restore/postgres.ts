/** PostgreSQL restores: a whole database (into a temporary copy, renamed when complete) and one table. */

import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { quoteIdentifier, type Connection } from '../sources/connection';
import { UsageError } from '../util/errors';
import { connectPostgres, countRows, postgresEnv } from '../sources/postgres';
import {
  describeEntry,
  missingDependencies,
  missingOwners,
  readToc,
  tableClosure,
} from '../sources/postgres-toc';
import { spawnTool } from '../sources/process';
import type { TableCount } from '../sources/types';
import type { RestoreReport } from './restore';
import { type Input, compareCounts, feedTool, spillAndRun, findManifestTable } from './common';

/** Above this plaintext size, `jobs: 'auto'` spills to a local file and runs pg_restore in parallel (see README). */
export const SPILL_THRESHOLD_BYTES = 2 * 1024 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// PostgreSQL

function quoteIdent(name: string): string {
  return quoteIdentifier('postgres', name);
}

async function postgresDatabaseState(
  target: Connection,
  database: string,
): Promise<{ exists: boolean; objects: number }> {
  const admin = await connectPostgres(target, 'postgres');
  try {
    const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rows.length === 0) return { exists: false, objects: 0 };
  } finally {
    await admin.end().catch(() => undefined);
  }
  const client = await connectPostgres(target, database);
  try {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
         AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')`,
    );
    return { exists: true, objects: Number(rows[0]!.n) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function countPostgres(
  target: Connection,
  database: string,
  tables: readonly TableCount[],
): Promise<TableCount[]> {
  const client = await connectPostgres(target, database);
  try {
    return await countRows(client, tables);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function restorePostgresDatabase(
  input: Input,
): Promise<Omit<RestoreReport, 'backupId' | 'startedAt' | 'durationMs'>> {
  const { target, artifact, log = () => undefined } = input;
  const database = target.database!;
  const state = await postgresDatabaseState(target, database);
  if (state.exists && state.objects > 0 && !input.force)
    throw new UsageError(
      `--target-url: database "${database}" on ${target.host}:${target.port} is not empty (${state.objects} tables, views or sequences); nothing was changed. Restore into a new database name, or add --force to replace it`,
    );
  const temp = `${database.slice(0, 40)}_cofre_restoring_${randomBytes(4).toString('hex')}`;
  // Measured (README, Benchmarks): on 2 cores pg_restore -j 2 gains 3 %, less than spilling costs,
  // so `auto` streams unless the dump is large and there are cores for parallel index builds.
  const cores = os.availableParallelism();
  const jobs =
    input.jobs === 'auto' || input.jobs === undefined
      ? artifact.bytes.raw >= SPILL_THRESHOLD_BYTES && cores >= 4
        ? Math.min(8, cores)
        : 1
      : input.jobs;
  const method = jobs > 1 ? 'spill' : 'stream';
  const admin = await connectPostgres(target, 'postgres');
  let created = false;
  try {
    await dropAbandonedCopies(admin, database, log);
    await admin.query(`CREATE DATABASE ${quoteIdent(temp)} TEMPLATE template0`);
    created = true;
    log(
      `restoring ${input.manifest.backupId} into temporary database "${temp}" (${method}${jobs > 1 ? `, ${jobs} jobs` : ''})`,
    );
    const restoreArgs = ['--exit-on-error', '--no-password', `--dbname=${temp}`];
    if (input.noOwner) restoreArgs.push('--no-owner');
    if (input.noAcl) restoreArgs.push('--no-acl');
    if (method === 'stream') {
      const tool = spawnTool('pg_restore', restoreArgs, {
        env: postgresEnv(target, temp),
        stdin: true,
        largeStdin: true,
        secrets: [target.password],
      });
      await feedTool(input, tool);
    } else {
      await spillAndRun(input, (file) =>
        spawnTool('pg_restore', [...restoreArgs, `--jobs=${jobs}`, file], {
          env: postgresEnv(target, temp),
          secrets: [target.password],
        }),
      );
    }
    const counted = await countPostgres(target, temp, artifact.tables);
    compareCounts(artifact.tables, counted, `the restored copy of "${database}"`);
    // The copy is complete and checked: only now is the target touched.
    if (state.exists) {
      if (state.objects > 0)
        log(
          `--force: dropping database "${database}" (${state.objects} objects) and replacing it with the restored copy`,
        );
      await admin.query(`DROP DATABASE ${quoteIdent(database)} WITH (FORCE)`);
    }
    await admin.query(`ALTER DATABASE ${quoteIdent(temp)} RENAME TO ${quoteIdent(database)}`);
    created = false;
    return {
      mode: 'database',
      target: { host: target.host, port: target.port, database },
      tables: counted,
      rows: counted.reduce((n, t) => n + t.rows, 0),
      method,
      jobs,
      replaced: state.exists && state.objects > 0,
    };
  } finally {
    if (created)
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(temp)} WITH (FORCE)`).catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}

/**
 * Temporary databases of earlier restores into `database` that were killed (SIGKILL, a lost
 * machine) before they could drop them: named `<database>_cofre_restoring_<8 hex>`, with no
 * session connected (a running restore always has its pg_restore session) and, where the server
 * lets us read it, made more than {@link ABANDONED_AFTER_S} seconds ago (a restore connects within
 * milliseconds of creating it). Reported and dropped.
 */
export const ABANDONED_AFTER_S = 10;

async function dropAbandonedCopies(
  admin: import('pg').Client,
  database: string,
  log: (line: string) => void,
): Promise<void> {
  const { rows } = await admin.query<{ name: string }>(
    `SELECT d.datname AS name FROM pg_database d
      WHERE left(d.datname, length($1) + 17) = $1 || '_cofre_restoring_' AND d.datname ~ '_cofre_restoring_[0-9a-f]{8}$'
        AND length(d.datname) = length($1) + 25
        AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)`,
    [database.slice(0, 40)],
  );
  for (const { name } of rows) {
    const age = await admin
      .query<{ s: string }>(
        `SELECT extract(epoch FROM now() - (pg_stat_file('base/' || oid || '/PG_VERSION')).modification) AS s FROM pg_database WHERE datname = $1`,
        [name],
      )
      .then((r) => (r.rows[0] ? Number(r.rows[0].s) : Infinity))
      .catch(() => Infinity);
    if (age < ABANDONED_AFTER_S) continue;
    log(
      `dropping "${name}": the temporary database of an earlier restore of "${database}" that did not finish`,
    );
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  }
}

export async function restorePostgresTable(
  input: Input,
): Promise<Omit<RestoreReport, 'backupId' | 'startedAt' | 'durationMs'>> {
  const { target, log = () => undefined } = input;
  const database = target.database!;
  const table = findManifestTable(input, 'public');
  const qualified = `${quoteIdent(table.schema)}.${quoteIdent(table.name)}`;
  const destName = input.intoTable ?? table.name;
  const dest = `${quoteIdent(table.schema)}.${quoteIdent(destName)}`;
  const client = await connectPostgres(target, database);
  try {
    const exists = async (name: string) =>
      (
        await client.query(
          'SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2',
          [table.schema, name],
        )
      ).rows.length > 0;
    const originalExists = await exists(table.name);
    let truncate = false;
    if (input.intoTable) {
      if (!originalExists)
        throw new UsageError(
          `--into-table: "${table.schema}.${table.name}" is absent from the target, so there is nothing to copy its shape from; restore it under its own name`,
        );
      if (await exists(input.intoTable))
        throw new UsageError(
          `--into-table: "${table.schema}.${input.intoTable}" already exists; nothing was changed`,
        );
    } else if (originalExists) {
      const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${qualified}`);
      const present = Number(rows[0]!.n);
      if (present > 0 && !input.force)
        throw new UsageError(
          `--table: ${table.schema}.${table.name} in "${database}" still has ${present} rows; nothing was changed. Use --into-table NEW_NAME to compare first, or --force to replace its rows`,
        );
      truncate = present > 0;
      if (truncate) log(`--force: replacing the ${present} rows of ${table.schema}.${table.name}`);
    }
    if (!originalExists) {
      // The table and everything that depends on it, from the dump's table of contents, in one
      // transaction: the table ends whole, or the database is as it was.
      await spillAndRun(input, async (file) => {
        const toc = await readToc(file);
        const selected = tableClosure(toc, table.schema, table.name).filter(
          (e) => !(input.noAcl && e.type === 'ACL'),
        );
        const missing = await missingDependencies(client, toc, selected);
        if (missing.length)
          throw new UsageError(
            `--table: ${table.schema}.${table.name} cannot be restored whole: it needs ${missing
              .map(describeEntry)
              .join(
                ', ',
              )}, which "${database}" no longer has; nothing was changed. Restore the whole backup into a new database (cofre restore without --table) and copy what you need from there`,
          );
        if (!input.noOwner) {
          const roles = await missingOwners(client, selected);
          if (roles.length)
            throw new UsageError(
              `--table: ${table.schema}.${table.name} and its objects are owned by ${roles.map((r) => `"${r}"`).join(', ')}, which ${target.host}:${target.port} has no role for; nothing was changed. Create the role, or add --no-owner`,
            );
        }
        log(
          `${table.schema}.${table.name} is absent from "${database}": restoring its definition, rows and ${selected.length - 1} dependent objects in one transaction: ${selected
            .filter((e) => !(e.type === 'TABLE' && e.schema === table.schema && e.tag === table.name))
            .map(describeEntry)
            .join(', ')}`,
        );
        const list = path.join(path.dirname(file), 'list');
        await writeFile(list, `${selected.map((e) => e.line).join('\n')}\n`, { mode: 0o600 });
        return spawnTool(
          'pg_restore',
          [
            '--exit-on-error',
            '--single-transaction',
            '--no-password',
            `--use-list=${list}`,
            `--dbname=${database}`,
            ...(input.noOwner ? ['--no-owner'] : []),
            ...(input.noAcl ? ['--no-acl'] : []),
            file,
          ],
          { env: postgresEnv(target, database), secrets: [target.password] },
        );
      });
    } else {
      if (input.intoTable) {
        await client.query(`CREATE TABLE ${dest} (LIKE ${qualified} INCLUDING ALL)`);
        await ownSequences(client, table.schema, input.intoTable);
      }
      // pg_restore writes the table's COPY as SQL; psql loads it in one transaction (with the
      // TRUNCATE when forced), so the table ends fully restored or untouched.
      const sql = spawnTool(
        'pg_restore',
        ['--data-only', `--schema=${table.schema}`, `--table=${table.name}`, '--file=-'],
        { stdin: true, largeStdin: true },
      );
      const psql = spawnTool(
        'psql',
        ['--no-psqlrc', '--quiet', '--single-transaction', '-v', 'ON_ERROR_STOP=1', '--no-password'],
        {
          env: postgresEnv(target, database),
          stdin: true,
          secrets: [target.password],
        },
      );
      psql.stdout.resume();
      const prefix = truncate ? `TRUNCATE ONLY ${qualified};\n` : '';
      const rename = input.intoTable ? renameCopyTarget(dest) : new PassThrough();
      const into = (async () => {
        psql.stdin!.on('error', () => undefined);
        psql.stdin!.write(prefix);
        await pipeline(sql.stdout, rename, psql.stdin!);
      })();
      try {
        await Promise.all([feedTool(input, sql), into, psql.finished]);
      } catch (error) {
        // psql that stopped at an error (a lock timeout, a constraint) breaks the pipe into it
        // first: its own error says why, the pipe's EPIPE does not.
        const why = isPipeError(error)
          ? await Promise.race([
              psql.finished.then(
                () => undefined,
                (e: unknown) => e,
              ),
              new Promise<undefined>((r) =>
                setTimeout(() => {
                  r(undefined);
                }, 2000).unref(),
              ),
            ])
          : undefined;
        sql.kill();
        psql.kill();
        if (input.intoTable) await client.query(`DROP TABLE IF EXISTS ${dest}`).catch(() => undefined);
        throw why ?? error;
      }
    }
    const counted = await countPostgres(target, database, [{ ...table, name: destName }]);
    compareCounts([{ ...table, name: destName }], counted, `"${database}"`);
    if (input.intoTable) await advanceSequences(client, table.schema, input.intoTable);
    return {
      mode: 'table',
      target: { host: target.host, port: target.port, database, table: `${table.schema}.${destName}` },
      tables: counted,
      rows: counted[0]!.rows,
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A write into a pipe whose reader is gone (the tool at the other end stopped). */
function isPipeError(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ERR_STREAM_DESTROYED';
}

/**
 * `CREATE TABLE … (LIKE … INCLUDING ALL)` copies a serial column's `nextval('live_seq')` default:
 * the copy would draw ids from the live table's sequence. Each such column gets its own sequence,
 * owned by the copy (identity columns already get their own).
 */
async function ownSequences(client: import('pg').Client, schema: string, name: string): Promise<void> {
  const relation = `${quoteIdent(schema)}.${quoteIdent(name)}`;
  const { rows } = await client.query<{ column: string; type: string }>(
    `SELECT a.attname AS column, format_type(a.atttypid, NULL) AS type
     FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
     WHERE d.adrelid = $1::regclass AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'`,
    [relation],
  );
  for (const { column, type } of rows) {
    let seq = `${name}_${column}_seq`.slice(0, 55);
    const taken = async (n: string) =>
      (
        await client.query<{ r: string | null }>('SELECT to_regclass($1) AS r', [
          `${quoteIdent(schema)}.${quoteIdent(n)}`,
        ])
      ).rows[0]!.r !== null;
    if (await taken(seq)) seq = `${seq}_${randomBytes(3).toString('hex')}`;
    const qualifiedSeq = `${quoteIdent(schema)}.${quoteIdent(seq)}`;
    const as = ['smallint', 'integer', 'bigint'].includes(type) ? ` AS ${type}` : '';
    await client.query(`CREATE SEQUENCE ${qualifiedSeq}${as} OWNED BY ${relation}.${quoteIdent(column)}`);
    await client.query(
      `ALTER TABLE ${relation} ALTER COLUMN ${quoteIdent(column)} SET DEFAULT nextval(${quoteLiteral(qualifiedSeq)}::regclass)`,
    );
  }
}

/** The copy's own sequences continue after its rows. */
async function advanceSequences(client: import('pg').Client, schema: string, name: string): Promise<void> {
  const relation = `${quoteIdent(schema)}.${quoteIdent(name)}`;
  const { rows } = await client.query<{ column: string; seq: string }>(
    `SELECT a.attname AS column, pg_get_serial_sequence($1, a.attname) AS seq
     FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
    [relation],
  );
  for (const { column, seq } of rows)
    if (seq)
      await client.query(
        `SELECT setval($1, m, true) FROM (SELECT max(${quoteIdent(column)}) AS m FROM ${relation}) s WHERE m IS NOT NULL`,
        [seq],
      );
}

function quoteLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * Rewrites the one `COPY <table> (…) FROM stdin;` line of a data-only pg_restore script. Works on
 * bytes: only whole lines before the COPY line are looked at (and only that line is decoded), the
 * rows pass through untouched, so a multibyte character split across chunks stays whole.
 */
export function renameCopyTarget(dest: string): Transform {
  let carry: Buffer = Buffer.alloc(0);
  let done = false;
  const COPY = Buffer.from('COPY ');
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      if (done) {
        cb(null, chunk);
        return;
      }
      const data = carry.length ? Buffer.concat([carry, chunk]) : chunk;
      let start = 0;
      for (;;) {
        const nl = data.indexOf(0x0a, start);
        if (nl === -1) break;
        if (data.subarray(start, start + COPY.length).equals(COPY)) {
          const line = data.subarray(start, nl).toString('utf8');
          const m = /^COPY (.+?) \(/.exec(line);
          if (m) {
            done = true;
            carry = Buffer.alloc(0);
            cb(
              null,
              Buffer.concat([
                data.subarray(0, start),
                Buffer.from(`COPY ${dest} (${line.slice(m[0].length)}`),
                data.subarray(nl),
              ]),
            );
            return;
          }
        }
        start = nl + 1;
      }
      // Keep a partial last line for the next chunk.
      carry = Buffer.from(data.subarray(start));
      cb(null, data.subarray(0, start));
    },
    flush(cb) {
      cb(null, carry.length ? carry : undefined);
    },
  });
}
