/** MySQL / MariaDB restores: a whole database (with an in-progress marker removed last) and one table. */

import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { RowDataPacket } from 'mysql2/promise';
import { quoteIdentifier, type Connection } from '../sources/connection';
import { OperationalError, UsageError, messageOf } from '../util/errors';
import type { Artifact } from '../catalog/manifest';
import { connectMysql, spawnMysqlClient } from '../sources/mysql';
import { DefinerRewriter } from '../sources/mysql-definers';
import { MysqldumpTableSelector } from '../sources/mysqldump-select';
import type { TableCount } from '../sources/types';
import { currentRun, detached } from '../util/run-context';
import type { RestoreReport } from './restore';
import { verifiedPlaintext } from '../catalog/artifact-reader';
import { type Input, compareCounts, feedTool, findManifestTable } from './common';

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

function quoteMysql(name: string): string {
  return quoteIdentifier('mysql', name);
}

const IN_PROGRESS = '__cofre_restore_in_progress';

/** The DEFINER rewriter for this restore, unless `--keep-definers`. */
function definerRewriter(input: Input): DefinerRewriter | undefined {
  return input.keepDefiners ? undefined : new DefinerRewriter();
}

function reportDefiners(input: Input, rewriter: DefinerRewriter | undefined): void {
  if (rewriter?.rewritten)
    input.log?.(
      `made the restoring user the DEFINER of ${rewriter.rewritten} views, triggers, routines or events (--keep-definers keeps the dump's accounts)`,
    );
}

export async function restoreMysqlDatabase(
  input: Input,
): Promise<Omit<RestoreReport, 'backupId' | 'startedAt' | 'durationMs'>> {
  const { target, artifact, log = () => undefined } = input;
  const database = target.database!;
  const conn = await connectMysql(target);
  let createdByUs = false;
  let releasePacket: () => Promise<void> = () => Promise.resolve();
  try {
    const [schemata] = await conn.query<RowDataPacket[]>(
      'SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
      [database],
    );
    let exists = schemata.length > 0;
    if (exists && (await abandonedMysqlRestore(conn, database))) {
      log(`dropping "${database}": an earlier restore into it did not finish (it still has ${IN_PROGRESS})`);
      await dropIncompleteMysql(conn, database);
      exists = false;
    }
    let objects = 0;
    if (exists) {
      const [rows] = await conn.query<RowDataPacket[]>(
        `SELECT (SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?) +
                (SELECT count(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?) AS n`,
        [database, database],
      );
      objects = Number(rows[0]!.n);
    }
    if (objects > 0 && !input.force)
      throw new UsageError(
        `--target-url: database "${database}" on ${target.host}:${target.port} is not empty (${objects} tables, views or routines); nothing was changed. Restore into a new database name, or add --force to replace it`,
      );
    releasePacket = await ensurePacket(conn, target, artifact, log);
    if (objects > 0) {
      // MySQL cannot rename a database: before dropping the target, prove the whole artifact.
      log(`--force: checking the whole artifact before dropping "${database}"`);
      await pipeline(await verifiedPlaintext(input), new PassThrough().resume());
      log(`--force: dropping database "${database}" (${objects} objects) and restoring into it`);
    }
    if (exists)
      await conn.query(`DROP DATABASE ${quoteMysql(database)}`).catch((error: unknown) => {
        throw new OperationalError(
          `--force: could not drop "${database}", nothing was changed: ${messageOf(error)}${/lock wait/i.test(messageOf(error)) ? ` (another session holds a lock on one of its tables; waited ${currentRun().lockTimeoutMs / 1000} s, --lock-timeout)` : ''}`,
          { cause: error },
        );
      });
    await conn.query(
      `CREATE DATABASE ${quoteMysql(database)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
    );
    createdByUs = true;
    await conn.query(
      `CREATE TABLE ${quoteMysql(database)}.${quoteMysql(IN_PROGRESS)} (started_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, backup_id VARCHAR(64))`,
    );
    await conn.query(
      `INSERT INTO ${quoteMysql(database)}.${quoteMysql(IN_PROGRESS)} (backup_id) VALUES (?)`,
      [input.manifest.backupId],
    );
    log(
      `restoring ${input.manifest.backupId} into "${database}" (marked by table ${IN_PROGRESS} until complete)`,
    );
    const tool = spawnMysqlClient(target, database);
    const definers = definerRewriter(input);
    await feedTool(input, tool, { transforms: definers ? [definers] : [] });
    reportDefiners(input, definers);
    const counted = await countMysql(conn, database, artifact.tables);
    compareCounts(artifact.tables, counted, `"${database}"`);
    await conn.query(`DROP TABLE ${quoteMysql(database)}.${quoteMysql(IN_PROGRESS)}`);
    createdByUs = false;
    return {
      mode: 'database',
      target: { host: target.host, port: target.port, database },
      tables: counted,
      rows: counted.reduce((n, t) => n + t.rows, 0),
      replaced: objects > 0,
    };
  } finally {
    if (createdByUs) {
      log(`restore failed: dropping the incomplete "${database}"`);
      await detached(() => dropIncompleteMysql(conn, database)).catch((error: unknown) => {
        log(`could not drop the incomplete "${database}": ${messageOf(error)} (drop it by hand)`);
      });
    }
    await conn.end().catch(() => undefined);
    await releasePacket();
  }
}

/** The database holds the marker of a restore that did not finish, and no session uses it. */
async function abandonedMysqlRestore(
  conn: import('mysql2/promise').Connection,
  database: string,
): Promise<boolean> {
  const [marker] = await conn.query<RowDataPacket[]>(
    'SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [database, IN_PROGRESS],
  );
  if (marker.length === 0) return false;
  const [sessions] = await conn.query<RowDataPacket[]>(
    'SELECT 1 FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()',
    [database],
  );
  return sessions.length === 0;
}

/**
 * Drops a database this restore created. A killed `mysql` client's server thread may still be
 * running its statement (and hold the tables' metadata locks): those sessions of the database
 * are ended first, so the DROP does not wait behind them.
 */
async function dropIncompleteMysql(
  conn: import('mysql2/promise').Connection,
  database: string,
): Promise<void> {
  const [threads] = await conn.query<RowDataPacket[]>(
    'SELECT ID AS id FROM information_schema.PROCESSLIST WHERE DB = ? AND ID <> CONNECTION_ID()',
    [database],
  );
  for (const t of threads) await conn.query(`KILL ${Number(t.id)}`).catch(() => undefined);
  await conn.query(`DROP DATABASE IF EXISTS ${quoteMysql(database)}`);
}

const MIB = 1024 * 1024;

/** The largest max_allowed_packet MySQL and MariaDB accept. */
const MAX_PACKET = 1024 * MIB;

/**
 * The MySQL target accepts the artifact's largest statement (`max_allowed_packet`, whose session
 * value every connection takes from the global when it connects). When the global is too small and
 * the restoring account may change it (SUPER or SYSTEM_VARIABLES_ADMIN), it is raised for this
 * restore, one log line says so, and the returned function puts it back (call it when the restore
 * ends, also on failure or cancel; open the restore's own connections before). It is put back only
 * if it still holds the value set here: another restore on the same server may have changed it
 * since. When the account may not (RDS, Aurora), exit 2 with nothing changed, naming the parameter
 * group setting.
 */
export async function ensurePacket(
  conn: import('mysql2/promise').Connection,
  target: Connection,
  artifact: Artifact,
  log: (line: string) => void = () => undefined,
): Promise<() => Promise<void>> {
  const needed = (artifact.largestStatementBytes ?? 0) + 1024;
  const [rows] = await conn.query<RowDataPacket[]>('SELECT @@global.max_allowed_packet AS p');
  const original = Number(rows[0]!.p);
  if (needed <= original) return () => Promise.resolve();
  const wanted = Math.min(MAX_PACKET, Math.ceil((needed + MIB) / MIB) * MIB);
  const where = `${target.host}:${target.port}`;
  const refuse = (why: string) =>
    new UsageError(
      `--target-url: the dump's largest statement is ${needed - 1024} bytes but the max_allowed_packet of ${where} is ${original}, ${why}; nothing was changed. Set max_allowed_packet = ${wanted} in the server's configuration (RDS, Aurora: in its DB parameter group) and retry`,
    );
  if (needed > MAX_PACKET) throw refuse(`more than the 1 GiB any server allows`);
  try {
    await conn.query(`SET GLOBAL max_allowed_packet = ${wanted}`);
  } catch (error) {
    throw refuse(
      `and ${target.user} may not raise it (that needs SUPER or SYSTEM_VARIABLES_ADMIN): ${messageOf(error)}`,
    );
  }
  log(
    `raised the global max_allowed_packet of ${where} from ${original} to ${wanted} bytes for this restore's connections (its largest statement is ${needed - 1024} bytes); it is put back when the restore ends`,
  );
  return async () => {
    let c: import('mysql2/promise').Connection | undefined;
    try {
      c = await connectMysql(target);
      const [now] = await c.query<RowDataPacket[]>('SELECT @@global.max_allowed_packet AS p');
      const current = Number(now[0]!.p);
      if (current === wanted) {
        await c.query(`SET GLOBAL max_allowed_packet = ${original}`);
        log(`put the global max_allowed_packet of ${where} back to ${original} bytes`);
      } else
        log(
          `left the global max_allowed_packet of ${where} at ${current} bytes: it was changed by someone else during the restore (it was ${original} before)`,
        );
    } catch (error) {
      log(
        `could not put the global max_allowed_packet of ${where} back to ${original} bytes: ${messageOf(error)}; run "SET GLOBAL max_allowed_packet = ${original}"`,
      );
    } finally {
      await c?.end().catch(() => undefined);
    }
  };
}

async function countMysql(
  conn: import('mysql2/promise').Connection,
  database: string,
  tables: readonly TableCount[],
): Promise<TableCount[]> {
  const out: TableCount[] = [];
  for (const t of tables) {
    const [rows] = await conn.query<RowDataPacket[]>(
      `SELECT count(*) AS n FROM ${quoteMysql(database)}.${quoteMysql(t.name)}`,
    );
    out.push({ schema: t.schema, name: t.name, rows: Number(rows[0]!.n) });
  }
  return out;
}

export async function restoreMysqlTable(
  input: Input,
): Promise<Omit<RestoreReport, 'backupId' | 'startedAt' | 'durationMs'>> {
  const { target, log = () => undefined } = input;
  const database = target.database!;
  const table = findManifestTable(input, input.artifact.tables[0]?.schema ?? '');
  const conn = await connectMysql(target, database);
  const destName = input.intoTable ?? table.name;
  let releasePacket: () => Promise<void> = () => Promise.resolve();
  try {
    const exists = async (name: string) =>
      (
        await conn.query<RowDataPacket[]>(
          'SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
          [database, name],
        )
      )[0].length > 0;
    const originalExists = await exists(table.name);
    let clear = false;
    if (input.intoTable) {
      if (!originalExists)
        throw new UsageError(
          `--into-table: "${table.name}" is absent from the target, so there is nothing to copy its shape from; restore it under its own name`,
        );
      if (await exists(input.intoTable))
        throw new UsageError(`--into-table: "${input.intoTable}" already exists; nothing was changed`);
    } else if (originalExists) {
      const [rows] = await conn.query<RowDataPacket[]>(`SELECT count(*) AS n FROM ${quoteMysql(table.name)}`);
      const present = Number(rows[0]!.n);
      if (present > 0 && !input.force)
        throw new UsageError(
          `--table: ${table.name} in "${database}" still has ${present} rows; nothing was changed. Use --into-table NEW_NAME to compare first, or --force to replace its rows`,
        );
      clear = present > 0;
      if (clear) log(`--force: replacing the ${present} rows of ${table.name}`);
    }
    releasePacket = await ensurePacket(conn, target, input.artifact, log);
    if (input.intoTable)
      await conn.query(`CREATE TABLE ${quoteMysql(input.intoTable)} LIKE ${quoteMysql(table.name)}`);
    const selector = new MysqldumpTableSelector({
      table: table.name,
      withDefinition: !originalExists,
      intoTable: input.intoTable,
    });
    const tool = spawnMysqlClient(target, database);
    // Rows go in one transaction (InnoDB): the table ends fully restored or as it was.
    const prefix = `SET autocommit = 0;\nSET FOREIGN_KEY_CHECKS = 0;\n${clear ? `DELETE FROM ${quoteMysql(table.name)};\n` : ''}`;
    try {
      const definers = definerRewriter(input);
      await feedTool(input, tool, {
        transforms: definers ? [selector, definers] : [selector],
        prefix,
        suffix: '\nCOMMIT;\n',
      });
      reportDefiners(input, definers);
    } catch (error) {
      if (input.intoTable || !originalExists)
        await conn.query(`DROP TABLE IF EXISTS ${quoteMysql(destName)}`).catch(() => undefined);
      throw error;
    }
    if (!selector.found) throw new OperationalError(`the dump has no data section for table ${table.name}`);
    const counted = await countMysql(conn, database, [{ ...table, name: destName }]);
    compareCounts([{ ...table, name: destName }], counted, `"${database}"`);
    return {
      mode: 'table',
      target: { host: target.host, port: target.port, database, table: destName },
      tables: counted,
      rows: counted[0]!.rows,
    };
  } finally {
    await conn.end().catch(() => undefined);
    await releasePacket();
  }
}
