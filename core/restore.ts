import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, pipeline as pipeStages, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import type { RowDataPacket } from 'mysql2/promise';
import { checkedCopy } from './artifact';
import { findBackup } from './catalog';
import { quoteIdentifier, type Connection } from './connection';
import { decryptStream, type Keys } from './crypto';
import { checkKeyFits } from './decrypt';
import {
  CancelledError,
  CofreError,
  IntegrityError,
  OperationalError,
  UsageError,
  messageOf,
} from './errors';
import { writableDirProblem } from './fs-problems';
import type { Artifact, Manifest } from './manifest';
import { byteMeter, type OnProgress } from './progress';
import { connectMysql, spawnMysqlClient } from './sources/mysql';
import { DefinerRewriter } from './sources/mysql-definers';
import { MysqldumpTableSelector } from './sources/mysqldump-select';
import { connectPostgres, countRows, postgresEnv } from './sources/postgres';
import {
  describeEntry,
  missingDependencies,
  missingOwners,
  readToc,
  tableClosure,
} from './sources/postgres-toc';
import { spawnTool, type ToolProcess } from './sources/process';
import type { TableCount } from './sources/types';
import { currentRun, detached, withCancellableRun } from './run-context';
import type { Vault } from './vault';

export interface RestoreOptions {
  readonly vault: Vault;
  readonly backupId: string;
  /** Look for the backup under these key prefixes only (default: the whole vault). */
  readonly prefixes?: readonly string[] | undefined;
  /** Keys that can open the backup (local AES key, KMS key or escrow private key). */
  readonly keys: Keys;
  /** The target server and database (the URL's database name). */
  readonly target: Connection;
  /** Restore one table (`schema.name` or `name`) instead of the whole database. */
  readonly table?: string | undefined;
  /** With `table`: load its rows into this new table (created like the original) instead. */
  readonly intoTable?: string | undefined;
  /** Replace a non-empty target database (or a non-empty table). */
  readonly force?: boolean | undefined;
  /** PostgreSQL: parallel pg_restore jobs (spills the dump to a local file). `auto` decides by size. */
  readonly jobs?: number | 'auto' | undefined;
  /** PostgreSQL: pg_restore --no-owner / --no-acl (a server without the source's roles). */
  readonly noOwner?: boolean | undefined;
  readonly noAcl?: boolean | undefined;
  /** MySQL: keep the dump's `DEFINER=` accounts instead of making the restoring user the definer. */
  readonly keepDefiners?: boolean | undefined;
  /** Where a spilled dump goes. Default: the OS temp directory. */
  readonly spillDir?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly log?: ((line: string) => void) | undefined;
  /** Bytes of the stored artifact read so far, of its total (see core/progress.ts). */
  readonly onProgress?: OnProgress | undefined;
  readonly now?: (() => Date) | undefined;
}

export interface RestoreReport {
  readonly backupId: string;
  readonly mode: 'database' | 'table';
  readonly target: {
    readonly host: string;
    readonly port: number;
    readonly database: string;
    readonly table?: string;
  };
  readonly tables: readonly TableCount[];
  readonly rows: number;
  readonly startedAt: string;
  readonly durationMs: number;
  /** PostgreSQL: how pg_restore read the dump. */
  readonly method?: 'stream' | 'spill';
  readonly jobs?: number;
  /** The non-empty target that `--force` dropped. */
  readonly replaced?: boolean;
}

/** Above this plaintext size, `jobs: 'auto'` spills to a local file and runs pg_restore in parallel (see README). */
export const SPILL_THRESHOLD_BYTES = 2 * 1024 * 1024 * 1024;

/**
 * Restores a backup into `target`: the whole database, or one table.
 *
 * Whole database — PostgreSQL: into a new temporary database, streamed (or spilled for parallel
 * `pg_restore -j`), hashes and row counts checked, then renamed to the target (a non-empty target
 * is dropped only with `force`, and only after the new copy is complete). MySQL: into the created
 * target with a `__cofre_restore_in_progress` marker table that is removed last; on failure the
 * target is dropped. Either way a failed or interrupted restore leaves nothing that looks restored.
 */
export function restoreBackup(options: RestoreOptions): Promise<RestoreReport> {
  // One cancellation path: every tool and session of this restore stops with `options.signal`.
  return withCancellableRun({ signal: options.signal }, () => restoreBackupInRun(options));
}

async function restoreBackupInRun(options: RestoreOptions): Promise<RestoreReport> {
  const startedAt = (options.now ?? (() => new Date()))();
  if (options.spillDir !== undefined) {
    const unwritable = await writableDirProblem(options.spillDir);
    if (unwritable) throw new UsageError(`--spill-dir: ${unwritable}; nothing was changed`);
  }
  const entry = await findBackup(options.vault, options.backupId, options.prefixes);
  if (!entry.manifest)
    throw new IntegrityError(
      `backup ${options.backupId} has an invalid manifest: ${(entry.problems ?? []).join('; ')}`,
    );
  const manifest = entry.manifest;
  const artifact = manifest.artifacts[0]!;
  if (!options.target.database)
    throw new UsageError('--target-url: expected a database name in the URL path');
  if (manifest.kind === 'globals')
    throw new UsageError(
      `--backup: ${manifest.backupId} holds server globals (roles, tablespaces); apply them with "cofre decrypt" and psql`,
    );
  if (manifest.engine !== options.target.engine)
    throw new UsageError(
      `--target-url: backup ${manifest.backupId} is a ${manifest.engine} backup, the target is ${options.target.engine}`,
    );
  if (options.intoTable && !options.table) throw new UsageError('--into-table: needs --table');
  // The cheap half of the check before anything is touched: the key is one the backup was
  // encrypted for, and the artifact is there, whole, unchanged.
  checkKeyFits(options.keys, artifact, `backup ${manifest.backupId}`);
  await checkStored(options.vault, `${entry.folder}/${artifact.name}`, artifact, options.onProgress);
  const input = { ...options, manifest, artifact, key: `${entry.folder}/${artifact.name}` };
  let result: Omit<RestoreReport, 'backupId' | 'startedAt' | 'durationMs'>;
  if (options.table) {
    result =
      manifest.engine === 'postgres' ? await restorePostgresTable(input) : await restoreMysqlTable(input);
  } else {
    result =
      manifest.engine === 'postgres'
        ? await restorePostgresDatabase(input)
        : await restoreMysqlDatabase(input);
  }
  const finished = (options.now ?? (() => new Date()))();
  return {
    backupId: manifest.backupId,
    startedAt: startedAt.toISOString(),
    durationMs: finished.getTime() - startedAt.getTime(),
    ...result,
  };
}

interface Input extends RestoreOptions {
  readonly manifest: Manifest;
  readonly artifact: Artifact;
  readonly key: string;
}

/**
 * The artifact is in the vault with the size and checksum its manifest records, checked before
 * anything is touched: on S3 from the stored SHA-256 checksum and ETag (no download); in a file
 * vault by hashing the file once. The restore's own stream checks every byte again.
 */
export async function checkStored(
  vault: Vault,
  key: string,
  artifact: Artifact,
  onProgress?: OnProgress,
): Promise<void> {
  const stat = await vault.stat(key);
  if (!stat) throw new IntegrityError(`artifact ${key} is missing; nothing was restored`);
  if (stat.bytes !== artifact.bytes.stored)
    throw new IntegrityError(
      `artifact ${key} has ${stat.bytes} bytes, the manifest records ${artifact.bytes.stored}; nothing was restored`,
    );
  if (vault.kind === 'file') {
    // A local file has no stored checksum: read it once and hash it (local disk reads at several
    // hundred MB/s, a small part of a restore), so a corrupted artifact fails here, before the
    // target or a temporary database exists.
    const hash = createHash('sha256');
    const meter = byteMeter(onProgress, artifact.bytes.stored, 'checked');
    for await (const chunk of await vault.read(key)) {
      hash.update(chunk as Buffer);
      meter?.(chunk as Buffer);
    }
    const digest = hash.digest('hex');
    if (digest !== artifact.sha256.stored)
      throw new IntegrityError(
        `artifact ${key} has SHA-256 ${digest}, the manifest records ${artifact.sha256.stored}; nothing was restored`,
      );
    return;
  }
  const s3 = artifact.s3;
  if (s3?.checksumSha256 && stat.checksumSha256 && s3.checksumSha256 !== stat.checksumSha256)
    throw new IntegrityError(
      `artifact ${key}: its S3 SHA-256 checksum differs from the manifest's; nothing was restored`,
    );
  if (s3?.etag && stat.etag && s3.etag !== stat.etag)
    throw new IntegrityError(
      `artifact ${key}: its S3 ETag differs from the manifest's; nothing was restored`,
    );
}

/**
 * The artifact's plaintext, checked as it streams: the SHA-256 and size of the stored bytes and of
 * the plaintext must match the manifest, or the stream fails at its end (before the consumer's
 * `end`), with an {@link IntegrityError}. Authentication failures (tampering, wrong key) fail it too.
 */
export async function verifiedPlaintext(
  input: Pick<Input, 'vault' | 'key' | 'artifact' | 'keys' | 'signal' | 'onProgress'>,
): Promise<Readable> {
  const { artifact } = input;
  const source = await input.vault.read(input.key, input.signal);
  const tapStored = checkedCopy(
    `artifact ${input.key} (stored bytes)`,
    { bytes: artifact.bytes.stored, sha256: artifact.sha256.stored },
    byteMeter(input.onProgress, artifact.bytes.stored),
  );
  const tapPlain = checkedCopy(`artifact ${input.key} (decrypted dump)`, {
    bytes: artifact.bytes.raw,
    sha256: artifact.sha256.plain,
  });
  // `out` is fed with .pipe(), outside the pipeline: a failing stage must not destroy it with the
  // raw error before it can be given the clear one below.
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  tapPlain.pipe(out, { end: false });
  // A consumer that stops early (a failed tool, a cancelled run) stops the read: otherwise the
  // pipeline stalls on back-pressure forever, holding the vault's file or connection open.
  out.once('close', () => {
    if (!source.destroyed && !source.readableEnded) source.destroy();
  });
  pipeline(
    source,
    tapStored,
    decryptStream(input.keys, artifact.encryption.encryptionContext),
    zlib.createZstdDecompress({ chunkSize: 1024 * 1024 }),
    tapPlain,
  ).then(
    () => {
      tapPlain.once('end', () => out.end());
      if (tapPlain.readableEnded) out.end();
    },
    (error: unknown) => {
      out.destroy(
        error instanceof CofreError
          ? error
          : new IntegrityError(
              // The key was checked to be one the artifact is encrypted for: this is damage.
              `artifact ${input.key} is damaged: it fails authentication while decrypting (${messageOf(error)}); nothing of it was kept`,
            ),
      );
    },
  );
  // A consumer that attaches after the stream has already failed (a tiny corrupt artifact fails
  // before the first read) still gets the error from its pipeline or iterator; without this
  // listener the 'error' event would crash the process first.
  out.on('error', () => undefined);
  return out;
}

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

function compareCounts(expected: readonly TableCount[], actual: readonly TableCount[], where: string): void {
  const wrong = expected.filter((t, i) => actual[i]?.rows !== t.rows);
  if (wrong.length)
    throw new IntegrityError(
      `row counts in ${where} differ from the manifest: ${wrong
        .map(
          (t) => `${t.schema}.${t.name} has ${actual[expected.indexOf(t)]?.rows ?? '?'}, expected ${t.rows}`,
        )
        .join('; ')}`,
    );
}

async function restorePostgresDatabase(
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

/** Streams the verified plaintext into a tool's stdin; the tool and the stream must both succeed. */
async function feedTool(
  input: Input,
  tool: ToolProcess,
  options: { transforms?: Transform[]; prefix?: string; suffix?: string } = {},
): Promise<void> {
  const plaintext = await verifiedPlaintext(input);
  const stages: (Readable | Transform)[] = [plaintext];
  stages.push(...(options.transforms ?? []));
  let first: unknown;
  const stopped = new EventEmitter();
  const isStopped = () => first !== undefined;
  const stop = (error: unknown) => {
    first ??= error;
    tool.kill();
    plaintext.destroy();
    stopped.emit('stop');
  };
  const onAbort = () => {
    stop(new CancelledError(String(input.signal?.reason ?? 'signal')));
  };
  if (input.signal?.aborted) onAbort();
  input.signal?.addEventListener('abort', onAbort, { once: true });
  tool.finished.catch(stop);
  try {
    const stdin = tool.stdin!;
    stdin.on('error', () => undefined);
    if (options.prefix) stdin.write(options.prefix);
    for await (const chunk of chainTransforms(stages)) {
      if (first !== undefined) break;
      // A tool that stopped reading (it failed, its backend was killed) has a closed stdin: waiting
      // for 'drain' or 'close' then would wait forever, so the stop is awaited too.
      if (!stdin.write(chunk as Buffer) && !stdin.destroyed)
        await new Promise<void>((resolve) => {
          const done = () => {
            stdin.off('drain', done);
            stdin.off('close', done);
            stopped.off('stop', done);
            resolve();
          };
          stdin.on('drain', done);
          stdin.on('close', done);
          stopped.on('stop', done);
          if (isStopped() || stdin.destroyed) done();
        });
      if (isStopped()) break;
    }
    if (first === undefined) {
      if (options.suffix) stdin.write(options.suffix);
      stdin.end();
    }
  } catch (error) {
    stop(error);
  } finally {
    input.signal?.removeEventListener('abort', onAbort);
  }
  try {
    await tool.finished;
  } catch (error) {
    first ??= error;
  }
  if (first !== undefined) throw first instanceof Error ? first : new OperationalError(messageOf(first));
}

/** The stages joined so that a failure anywhere fails the last one (plain .pipe() would hang). */
function chainTransforms(stages: (Readable | Transform)[]): Readable {
  if (stages.length === 1) return stages[0] as Readable;
  return pipeStages(stages as unknown as [Readable, Transform], () => undefined) as unknown as Readable;
}

/** Writes the verified plaintext to a private local file, runs the tool on it, removes the file. */
async function spillAndRun(
  input: Input,
  run: (file: string) => ToolProcess | Promise<ToolProcess>,
): Promise<void> {
  const dir = await mkdtemp(path.join(input.spillDir ?? os.tmpdir(), 'cofre-restore-'));
  try {
    const file = path.join(dir, 'dump');
    await pipeline(await verifiedPlaintext(input), createWriteStream(file, { mode: 0o600 }), {
      signal: input.signal,
    });
    const tool = await run(file);
    const onAbort = () => {
      tool.kill();
    };
    input.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await tool.finished;
    } finally {
      input.signal?.removeEventListener('abort', onAbort);
    }
    if (input.signal?.aborted) throw new CancelledError(String(input.signal.reason));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function splitTable(table: string, defaultSchema: string): { schema: string; name: string } {
  const dot = table.indexOf('.');
  return dot === -1
    ? { schema: defaultSchema, name: table }
    : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

function findManifestTable(input: Input, defaultSchema: string): TableCount {
  const wanted = splitTable(input.table!, defaultSchema);
  const match = input.artifact.tables.find((t) => t.schema === wanted.schema && t.name === wanted.name);
  if (!match)
    throw new UsageError(
      `--table: backup ${input.manifest.backupId} has no table "${input.table!}" (it has ${input.artifact.tables
        .slice(0, 12)
        .map((t) => (input.manifest.engine === 'postgres' ? `${t.schema}.${t.name}` : t.name))
        .join(', ')}${input.artifact.tables.length > 12 ? ', …' : ''})`,
    );
  return match;
}

async function restorePostgresTable(
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
        { stdin: true },
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

async function restoreMysqlDatabase(
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

async function restoreMysqlTable(
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
