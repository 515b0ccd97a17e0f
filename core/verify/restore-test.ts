/**
 * The monthly restore test (task command `restore-test`, state machine `restore-test`): for each
 * database of a job, the newest full backup in the vault is restored with {@link restoreBackup} into
 * a scratch database on the SAME server (`<db>_cofre_rt_<8 hex>`), which checks every table's row
 * count against the manifest (an {@link IntegrityError} on a mismatch); the scratch database is then
 * dropped, whatever happened (also on failure and on SIGTERM). The report gives, per database, the
 * backup, its age, the tables and rows restored and the restore time: the measured RTO.
 */
import { randomBytes } from 'node:crypto';
import { readCatalog, type CatalogEntry } from '../catalog/catalog';
import { fullSourcePrefix, GLOBALS_SEGMENT, sourcePrefixes } from '../catalog/keys';
import type { Connection } from '../sources/connection';
import type { Keys } from '../vault/crypto';
import { CancelledError, IntegrityError, UsageError, messageOf } from '../util/errors';
import { createProgressReporter, probeProgress } from '../util/progress';
import { requireValidManifest } from '../catalog/artifact-reader';
import { restoreBackup } from '../restore/restore';
import { dropDatabaseIfExists, withAdmin } from '../sources/admin';
import { checkTenantRestore, latestTenantBackups, type TenantRestoreCheck } from '../tenants/restore-check';
import type { Vault } from '../vault';
import { NamedError, TASK_ERRORS } from '../aws/task-errors';
import type { ContainerJob } from '../aws/job';

/** What marks a scratch database of a restore test: `<db>_cofre_rt_<8 hex>`. */
export const SCRATCH_MARKER = '_cofre_rt_';
/** PostgreSQL's identifier limit in bytes (MySQL's is 64 characters). */
const MAX_NAME_BYTES = 63;

/** The scratch database name for `database`: `<db>_cofre_rt_<8 hex>`, the name cut so the whole fits 63 bytes. */
export function scratchDatabaseName(database: string, hex = randomBytes(4).toString('hex')): string {
  if (!/^[0-9a-f]{8}$/.test(hex))
    throw new Error(`scratch database suffix: expected 8 hex digits, got "${hex}"`);
  return `${scratchBase(database)}${SCRATCH_MARKER}${hex}`;
}

function scratchBase(database: string): string {
  const room = MAX_NAME_BYTES - SCRATCH_MARKER.length - 8;
  // Whole characters (grapheme clusters) only, so a cut never splits one.
  let base = '';
  for (const { segment } of new Intl.Segmenter('en', { granularity: 'grapheme' }).segment(database)) {
    if (Buffer.byteLength(base + segment, 'utf8') > room) break;
    base += segment;
  }
  return base;
}

/** Whether `name` is a scratch database of a restore test of `database`. */
export function isScratchOf(database: string, name: string): boolean {
  const prefix = `${scratchBase(database)}${SCRATCH_MARKER}`;
  return name.startsWith(prefix) && /^[0-9a-f]{8}$/.test(name.slice(prefix.length));
}

/** One database's restore test, as the task reports it. */
export interface RestoreTestResult {
  /** The source database (the name inside the server). */
  readonly database: string;
  readonly backupId: string;
  /** When the backup was started (manifest). */
  readonly backupStartedAt: string;
  /** Age of the backup when the test started, in seconds. */
  readonly backupAgeSeconds: number;
  /** Where it was restored (dropped again). */
  readonly scratchDatabase: string;
  readonly tables: number;
  readonly rows: number;
  /** Bytes read from the vault (the stored artifact). */
  readonly storedBytes: number;
  /** The restore, from the first byte read to the checked copy: the measured RTO. */
  readonly durationMs: number;
  /** Whether the scratch database was dropped (a leftover is dropped by the next test). */
  readonly dropped: boolean;
  readonly dropError?: string;
}

export interface RestoreTestTaskOutput {
  readonly restores: readonly RestoreTestResult[];
  /**
   * Databases with a tenant model: one tenant (in turn, by month) restored from its latest tenant
   * backup into a scratch copy and compared with the content digests recorded at backup time.
   */
  readonly tenantRestore?: TenantRestoreCheck;
  /** Wall time of the whole task. */
  readonly durationMs: number;
}

export interface RestoreTestDeps {
  readonly connection: Connection;
  readonly vault: Vault;
  /** Keys that can open the backups (decrypt). */
  readonly keys: Keys;
  readonly signal?: AbortSignal | undefined;
  readonly log?: ((line: string) => void) | undefined;
  readonly now?: (() => Date) | undefined;
  /**
   * Called while the server is still working on the restore after the last byte was read (index
   * builds, constraint checks): progress that reads no bytes, so the task keeps heartbeating.
   */
  readonly onProgress?: (() => void) | undefined;
  /** How often the server is asked whether it is working on the restore (default 60 s). */
  readonly probeIntervalMs?: number | undefined;
}

/**
 * Whether the server has a session running a statement in `scratch` or its temporary restore copy
 * (`<scratch[0:40]>_cofre_restoring_…`): pg_restore / mysql still at work.
 */
export async function serverIsRestoring(c: Connection, scratch: string): Promise<boolean> {
  const prefix = scratch.slice(0, 40);
  return withAdmin(c, async (query) => {
    const rows =
      c.engine === 'postgres'
        ? await query(
            `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND (datname = ${literal(c.engine, scratch)} OR left(datname, ${prefix.length}) = ${literal(c.engine, prefix)} AND datname LIKE '%\\_cofre\\_restoring\\_%')`,
          )
        : await query(
            `SELECT count(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ${literal(c.engine, scratch)} AND COMMAND = 'Query'`,
          );
    return Number(rows[0]?.n ?? 0) > 0;
  });
}

/** Asks the server every `intervalMs` whether it works on the restore into `scratch`, and reports it as
 * progress (an idle-looking restore is not a dead one). Returns the function that stops asking. */
export function probeRestoring(
  c: Connection,
  scratch: string,
  onProgress: () => void,
  intervalMs: number,
): () => void {
  return probeProgress(() => serverIsRestoring(c, scratch), onProgress, intervalMs);
}

/** A SQL string literal: quotes doubled, and for MySQL (backslash escapes) backslashes too. */
function literal(engine: Connection['engine'], text: string): string {
  const escaped = engine === 'mysql' ? text.replace(/\\/g, '\\\\') : text;
  return `'${escaped.replace(/'/g, "''")}'`;
}

/**
 * The newest full backup of each database of the job in the vault (`full/<id>/<db>/<backup id>/`),
 * server globals left out, limited to the job's `databases` list and without `excludeDatabases`.
 */
export async function latestFullBackups(
  vault: Vault,
  job: Pick<ContainerJob, 'database'>,
): Promise<Map<string, CatalogEntry>> {
  const db = job.database;
  const prefix = fullSourcePrefix(db.id);
  const latest = new Map<string, CatalogEntry>();
  // Oldest first: a later entry of the same database replaces an earlier one.
  for (const entry of await readCatalog(vault, prefix)) {
    const segment = entry.folder.slice(prefix.length).split('/')[0] ?? '';
    if (segment === GLOBALS_SEGMENT || segment === '') continue;
    const name = decodeURIComponent(segment);
    if (Array.isArray(db.databases) && !db.databases.includes(name)) continue;
    if (db.excludeDatabases.includes(name)) continue;
    latest.set(name, entry);
  }
  return new Map([...latest.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

/** The task error a failed restore test reports (Step Functions branches and retries on it). */
function failureName(error: unknown, signal: AbortSignal | undefined): string {
  if (error instanceof IntegrityError) return TASK_ERRORS.integrity;
  if (error instanceof CancelledError || signal?.aborted) return TASK_ERRORS.cancelled;
  if (error instanceof UsageError) return TASK_ERRORS.badInput;
  return TASK_ERRORS.restore;
}

/**
 * Runs the restore test of every database of the job. Throws a {@link NamedError} naming every
 * database that failed (`Cofre.NothingToRestore` when the vault has no full backup,
 * `Cofre.IntegrityFailed` when a restored copy does not match its manifest, `Cofre.Cancelled`,
 * `Cofre.RestoreFailed` otherwise); scratch databases are dropped either way.
 */
export async function runRestoreTest(
  job: ContainerJob,
  deps: RestoreTestDeps,
): Promise<RestoreTestTaskOutput> {
  const started = Date.now();
  const now = deps.now ?? (() => new Date());
  const log = deps.log ?? (() => undefined);
  const db = job.database;
  const backups = await latestFullBackups(deps.vault, job);
  const missing = Array.isArray(db.databases) ? db.databases.filter((d) => !backups.has(d)) : [];
  if (backups.size === 0)
    throw new NamedError(
      TASK_ERRORS.nothingToRestore,
      `restore-test of ${db.id}: no full backup${Array.isArray(db.databases) ? ` of ${db.databases.join(', ')}` : ''} in ${deps.vault.url}/${fullSourcePrefix(db.id)} to restore (has backup-database run?)`,
    );
  await dropLeftovers(deps.connection, [...backups.keys()], log);

  const restores: RestoreTestResult[] = [];
  const failures: { database: string; name: string; message: string }[] = missing.map((d) => ({
    database: d,
    name: TASK_ERRORS.nothingToRestore,
    message: 'no full backup in the vault',
  }));
  for (const [database, entry] of backups) {
    if (deps.signal?.aborted) {
      failures.push({
        database,
        name: TASK_ERRORS.cancelled,
        message: 'the task was stopped before its turn',
      });
      continue;
    }
    const scratch = scratchDatabaseName(database);
    const testStarted = now();
    log(`restore test of ${database}: backup ${entry.backupId} into the scratch database ${scratch}`);
    const stopProbe = deps.onProgress
      ? probeRestoring(deps.connection, scratch, deps.onProgress, deps.probeIntervalMs ?? 60_000)
      : () => undefined;
    try {
      const manifest = requireValidManifest(entry);
      const progress = createProgressReporter({
        write: (t) => {
          log(t.trimEnd());
        },
        tty: false,
      });
      const report = await restoreBackup({
        vault: deps.vault,
        backupId: entry.backupId,
        // The task role may list only this database's prefixes.
        prefixes: sourcePrefixes(job.database.id),
        keys: deps.keys,
        target: { ...deps.connection, database: scratch },
        noOwner: true,
        noAcl: true,
        jobs: 'auto',
        signal: deps.signal,
        log,
        onProgress: (s) => {
          progress.update(`restore test of ${database}`, s);
        },
        now,
      });
      progress.done();
      stopProbe();
      const dropError = await dropDatabase(deps.connection, scratch);
      if (dropError) log(`could not drop the scratch database ${scratch}: ${dropError}`);
      restores.push({
        database,
        backupId: entry.backupId,
        backupStartedAt: manifest.startedAt,
        backupAgeSeconds: Math.max(
          0,
          Math.round((testStarted.getTime() - Date.parse(manifest.startedAt)) / 1000),
        ),
        scratchDatabase: scratch,
        tables: report.tables.length,
        rows: report.rows,
        storedBytes: manifest.artifacts.reduce((n, a) => n + a.bytes.stored, 0),
        durationMs: report.durationMs,
        dropped: !dropError,
        ...(dropError ? { dropError } : {}),
      });
      log(
        `restore test of ${database} passed: ${report.tables.length} tables, ${report.rows} rows equal to the manifest, restored in ${report.durationMs} ms`,
      );
    } catch (error) {
      stopProbe();
      const dropError = await dropDatabase(deps.connection, scratch);
      if (dropError) log(`could not drop the scratch database ${scratch}: ${dropError}`);
      const name = error instanceof NamedError ? error.name : failureName(error, deps.signal);
      failures.push({ database, name, message: `backup ${entry.backupId}: ${messageOf(error)}` });
      log(`restore test of ${database} FAILED: ${name}: ${messageOf(error)}`);
    }
  }
  let tenantRestore: TenantRestoreCheck | undefined;
  let tenantTests = 0;
  const tenantDatabase = deps.connection.database;
  if (db.tenants && tenantDatabase && !deps.signal?.aborted) {
    const latest = await latestTenantBackups(deps.vault, db.id, tenantDatabase);
    if (latest.size === 0)
      log(`tenant restore test of ${tenantDatabase} skipped: no tenant backup with content digests yet`);
    else {
      tenantTests = 1;
      const scratch = scratchDatabaseName(tenantDatabase);
      const month = now();
      try {
        tenantRestore = await checkTenantRestore({
          vault: deps.vault,
          keys: deps.keys,
          connection: deps.connection,
          sourceId: db.id,
          turn: month.getUTCFullYear() * 12 + month.getUTCMonth(),
          scratchDatabase: scratch,
          latest,
          log,
        });
        log(
          `tenant restore test of ${tenantDatabase} passed: tenant ${tenantRestore.tenant}, ${tenantRestore.rows} rows equal to their digests at backup time`,
        );
      } catch (error) {
        const name = failureName(error, deps.signal);
        failures.push({
          database: tenantDatabase,
          name,
          message: `tenant restore test: ${messageOf(error)}`,
        });
        log(`tenant restore test of ${tenantDatabase} FAILED: ${name}: ${messageOf(error)}`);
      }
    }
  }
  if (failures.length) {
    const names = new Set(failures.map((f) => f.name));
    const name = [
      TASK_ERRORS.cancelled,
      TASK_ERRORS.integrity,
      TASK_ERRORS.nothingToRestore,
      TASK_ERRORS.restore,
      TASK_ERRORS.badInput,
    ].find((n) => names.has(n))!;
    const total = backups.size + missing.length + tenantTests;
    throw new NamedError(
      name,
      `${failures.length} of ${total} restore test(s) of ${db.id} failed: ${failures.map((f) => `${f.database}: ${f.name}: ${f.message}`).join('; ')}${restores.length ? `; passed: ${restores.map((r) => r.database).join(', ')}` : ''}`,
    );
  }
  return { restores, ...(tenantRestore ? { tenantRestore } : {}), durationMs: Date.now() - started };
}

/** Drops a database if it exists (never throws): the error text when it could not. */
async function dropDatabase(c: Connection, name: string): Promise<string | undefined> {
  try {
    await dropDatabaseIfExists(c, name);
    return undefined;
  } catch (error) {
    return messageOf(error);
  }
}

/**
 * Scratch databases an earlier test could not drop (its task was killed): the job lock means no
 * other restore test of this server runs now, so every `<db>_cofre_rt_<8 hex>` is a leftover.
 */
async function dropLeftovers(c: Connection, databases: readonly string[], log: (line: string) => void) {
  let names: string[];
  try {
    names = await withAdmin(c, async (query) =>
      c.engine === 'postgres'
        ? (await query('SELECT datname AS name FROM pg_database')).map((r) => String(r.name))
        : (await query('SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA')).map((r) =>
            String(r.name),
          ),
    );
  } catch (error) {
    log(`could not list the databases to find leftover scratch databases: ${messageOf(error)}`);
    return;
  }
  for (const name of names.filter((n) => databases.some((d) => isScratchOf(d, n)))) {
    const dropError = await dropDatabase(c, name);
    log(
      dropError
        ? `could not drop the leftover scratch database ${name}: ${dropError}`
        : `dropped the leftover scratch database ${name}`,
    );
  }
}
