import { COFRE_VERSION } from '../util/version';
import { priorBackupsOf, withChainLock } from '../catalog/catalog';
import { backupFolder, backupIdTime, chainPrefix } from '../catalog/keys';
import type { Connection, Engine } from '../sources/connection';
import { describeConnection } from '../sources/connection';
import { FieldError, UsageError, messageOf } from '../util/errors';
import { newBackupId, sha256, type Manifest } from '../catalog/manifest';
import { DEFAULT_ZSTD_LEVEL, type Progress } from './stream-encoder';
import { writeBackup, type BackupRunSettings } from './write';
import {
  CLASS_TAG,
  DEFAULT_RETENTION,
  GENERAL_CLASS,
  retentionFor,
  TIER_TAG,
  type Tier,
} from '../policy/retention';
import { listMysqlDatabases, mysqlInfo, startMysqlDump } from '../sources/mysql';
import {
  listPostgresDatabases,
  postgresInfo,
  startPostgresDump,
  startPostgresGlobalsDump,
} from '../sources/postgres';
import type { RunningDump, SourceInfo } from '../sources/types';
import { decideTier } from '../policy/tiers';
import { withRun } from '../util/run-context';
import type { HeldChainLock } from '../catalog/chain-lock';

export const DEFAULT_TIME_ZONE = 'America/Sao_Paulo';

export interface BackupOptions extends BackupRunSettings {
  readonly connection: Connection;
  /** Databases to dump: names, or "all" (system databases and `excludeDatabases` left out). Default: the URL's database. */
  readonly databases?: readonly string[] | 'all' | undefined;
  readonly excludeDatabases?: readonly string[] | undefined;
  /** Also back up PostgreSQL roles and tablespaces (`pg_dumpall --globals-only`). Default: when `databases` is "all". */
  readonly globals?: boolean | undefined;
  /**
   * Id of the protected source in keys and metrics. Default: the name of the database being backed
   * up (whatever database the URL names), so one database always has one hash chain; the server
   * globals default to the host.
   */
  readonly sourceId?: string | undefined;
  /** Tier of every backup of this run, decided beforehand (the orchestrated prepare step). Default: from the vault's earlier backups. */
  readonly tier?: Tier | undefined;
  readonly onProgress?: ((database: string, progress: Progress) => void) | undefined;
}

export type BackupOutcome =
  | {
      readonly ok: true;
      readonly database: string | null;
      readonly folder: string;
      readonly manifest: Manifest;
    }
  | {
      readonly ok: false;
      readonly database: string | null;
      readonly error: string;
      readonly exitCode: number;
    };

/** Checks the options that need no connection (exit 2 before anything starts). */
export function checkBackupOptions(options: BackupOptions): void {
  const settings = options.retention ?? DEFAULT_RETENTION;
  const dataClass = options.dataClass ?? GENERAL_CLASS;
  try {
    retentionFor('daily', dataClass, settings);
  } catch (error) {
    throw new FieldError('dataClass', messageOf(error));
  }
  const level = options.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
  if (!Number.isInteger(level) || level < 1 || level > 19)
    throw new FieldError('zstdLevel', `expected a whole number from 1 to 19, got ${String(level)}`);
  if (options.sourceId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(options.sourceId))
    throw new FieldError(
      'sourceId',
      `expected letters, digits, ".", "_" or "-" (at most 63), got "${options.sourceId}"`,
    );
  const tz = options.timeZone ?? DEFAULT_TIME_ZONE;
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz });
  } catch {
    throw new FieldError('timeZone', `expected an IANA time zone such as "America/Sao_Paulo", got "${tz}"`);
  }
  if (options.databases === undefined && !options.connection.database)
    throw new UsageError(
      '--url: expected a database name in the URL path, or --databases NAME,… / --databases all',
    );
}

/**
 * Backs up each requested database as its own backup (one artifact and a manifest), one after the
 * other. A database that fails is reported and does not stop the others; nothing of it is kept.
 */
export function runBackup(options: BackupOptions): Promise<BackupOutcome[]> {
  // One cancellation path: every tool and session of this run stops with `options.signal`.
  return withRun({ signal: options.signal }, () => runBackupInRun(options));
}

async function runBackupInRun(options: BackupOptions): Promise<BackupOutcome[]> {
  checkBackupOptions(options);
  const c = options.connection;
  const engine: Engine = c.engine;
  const log = options.log ?? (() => undefined);
  const info = engine === 'postgres' ? await postgresInfo(c) : await mysqlInfo(c);
  let databases: readonly string[];
  if (options.databases === 'all') {
    databases =
      engine === 'postgres'
        ? await listPostgresDatabases(c, options.excludeDatabases)
        : await listMysqlDatabases(c, options.excludeDatabases);
    if (databases.length === 0)
      throw new UsageError(`--databases all: ${describeConnection(c)} has no database to back up`);
  } else {
    databases = options.databases ?? [c.database!];
  }
  const outcomes: BackupOutcome[] = [];
  const withGlobals = options.globals ?? (options.databases === 'all' && engine === 'postgres');
  if (withGlobals && engine !== 'postgres')
    throw new FieldError('globals', 'only PostgreSQL has server-wide globals');
  const jobs: (string | null)[] = [...databases, ...(withGlobals ? [null] : [])];
  for (const database of jobs) {
    if (options.signal?.aborted) {
      outcomes.push({ ok: false, database, error: 'not started: the run was cancelled', exitCode: 1 });
      continue;
    }
    log(`backing up ${database === null ? 'server globals' : `"${database}"`} of ${describeConnection(c)}`);
    try {
      const sourceId = options.sourceId ?? defaultSourceId(c, database);
      // One backup of a chain at a time: a second run fails here, before writing anything.
      const outcome = await withChainLock(
        options.vault,
        chainPrefix(sourceId, database),
        (lock) => backupOne(options, info, sourceId, database, lock),
        log,
        { staleAfterMs: options.chainLockStaleAfterMs },
      );
      outcomes.push(outcome);
    } catch (error) {
      const exitCode = error instanceof UsageError ? 2 : 1;
      const message = messageOf(error);
      log(`FAILED ${database ?? 'globals'}: ${message}`);
      outcomes.push({ ok: false, database, error: message, exitCode });
    }
  }
  return outcomes;
}

/** The source id when `--id` is not given: the database's own name (globals: the host), as an id. */
export function defaultSourceId(c: Connection, database: string | null): string {
  const id = (database ?? c.host).replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[._-]+/, '');
  return (id || 'source').slice(0, 63);
}

async function backupOne(
  options: BackupOptions,
  info: SourceInfo,
  sourceId: string,
  database: string | null,
  lock: HeldChainLock,
): Promise<BackupOutcome> {
  const now = options.now ?? (() => new Date());
  const c = options.connection;
  const settings = options.retention ?? DEFAULT_RETENTION;
  const dataClass = options.dataClass ?? GENERAL_CLASS;
  const timeZone = options.timeZone ?? DEFAULT_TIME_ZONE;
  const zstdLevel = options.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
  const startedAt = now();
  const backupId = newBackupId(startedAt);
  const prior = await priorBackupsOf(options.vault, sourceId, database, options.log);
  const tier = options.tier ?? decideTier(startedAt, prior.backupIds.map(backupIdTime), timeZone);
  const retention = retentionFor(tier, dataClass, settings);
  const folder = backupFolder(sourceId, database, backupId);
  const tags = { [TIER_TAG]: tier, [CLASS_TAG]: dataClass };
  const encryptionContext = {
    'cofre:backup-id': backupId,
    'cofre:source': sourceId,
    'cofre:database': database ?? '=globals',
    'cofre:tier': tier,
  };

  if (prior.backupIds.length === 0) {
    const lock = retention.lockUntil(now()).toISOString().slice(0, 10);
    options.log?.(
      `warning: first backup of ${database === null ? 'the server globals' : `"${database}"`} under source "${sourceId}" in ${options.vault.url}: it starts a new hash chain and is a ${tier} backup, ${
        options.vault.objectLockMode === 'none'
          ? `kept until ${lock}`
          : `locked until ${lock} (Object Lock ${options.vault.objectLockMode}${options.vault.objectLockMode === 'COMPLIANCE' ? ': nobody can delete it or shorten that before then' : ''})`
      }. To continue an existing source instead, stop now and give --id`,
    );
  }

  let dump: RunningDump;
  if (database === null) dump = startPostgresGlobalsDump(c);
  else if (c.engine === 'postgres') dump = await startPostgresDump(c, database);
  else dump = await startMysqlDump(c, database, info.serverVersion);

  const { manifest, manifestBytes, result } = await writeBackup({
    vault: options.vault,
    keys: options.keys,
    folder,
    artifactName: `${database === null ? 'globals' : encodeURIComponent(database)}.${dump.extension}.zst.enc`,
    dump,
    tags,
    retention,
    encryptionContext,
    zstdLevel,
    latest: prior.latest,
    startedAt,
    now,
    signal: options.signal,
    onProgress: (p) => options.onProgress?.(database ?? 'globals', p),
    // The commit point: only while this run still holds its chain's lock.
    beforeManifest: () => lock.confirm(),
    body: () => ({
      backupId,
      kind: database === null ? 'globals' : 'full',
      engine: c.engine,
      serverVersion: info.serverVersion,
      toolVersions: { ...info.toolVersions, cofre: COFRE_VERSION, node: process.versions.node },
      sourceId,
      source: { host: c.host, port: c.port, user: c.user, database },
      tier,
      dataClass,
      timeZone,
    }),
  });
  options.log?.(
    `backup ${backupId} (${tier}) of ${database ?? 'globals'}: ${result.tables.length} tables, ${result.rawBytes} bytes dumped, ${result.storedBytes} stored, sha256 ${sha256(manifestBytes).slice(0, 12)}…`,
  );
  return { ok: true, database, folder, manifest };
}
