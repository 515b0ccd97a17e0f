/**
 * The monthly AWS Backup restore test of an RDS instance, validated: AWS Backup's restore testing
 * plan restores the latest snapshot into a temporary instance (in the source's DB subnet group and
 * security groups); when that restore job completes, this module connects to the temporary instance
 * with the source's credentials, counts every table's rows and compares them with the latest Cofre
 * manifest written before the snapshot (equal or greater passes: the snapshot is later than the dump),
 * records the result and the measured restore time (the RTO) in the history as a `restore-test` with
 * `method: snapshot`, reports it to AWS Backup (`PutRestoreValidationResult`, after which AWS Backup
 * deletes the temporary instance) and alerts on failure through the notify path.
 *
 * An unreachable instance, a missing table, a table short of rows, a missing manifest: each is a
 * FAILED validation with its reason, never a crash that leaves the job unvalidated.
 */
import { DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import {
  recordRestoreTestOutcome,
  restoreJobIdOf,
  restoreTestIdOf,
  triageRestoreTestJob,
  type RestoreJobFacts,
  type RestoreTestOutcomeDeps,
} from '../aws/restore-jobs';
import { readCatalog } from '../catalog/catalog';
import { fullSourcePrefix, GLOBALS_SEGMENT } from '../catalog/keys';
import { quoteIdentifier, resolveCredentials, type Connection, type Engine } from '../sources/connection';
import { messageOf } from '../util/errors';
import type { HistoryRecord } from '../history/records';
import type { Manifest } from '../catalog/manifest';
import { connectMysql } from '../sources/mysql';
import { connectPostgres } from '../sources/postgres';
import type { Vault } from '../vault';
import type { NotifyEvent } from '../alerts/message';

/** A database the restore testing plan restores (an RDS instance of the configuration). */
export interface RestoreTestedDatabase {
  /** `databases[].id`. */
  readonly database: string;
  readonly engine: Engine;
  /** ARN of the source instance (AWS Backup's `SourceResourceArn`). */
  readonly resourceArn: string;
  /** The source's credentials secret (RDS JSON format); the restored copy has the same users. */
  readonly credentialsSecretArn: string;
  /** `databases[].databases`: `all` or the names the dumps cover. */
  readonly databases: 'all' | readonly string[];
  readonly excludeDatabases: readonly string[];
}

/** What AWS Backup says about the restore job (DescribeRestoreJob): core/aws/restore-jobs.ts, shared with the S3 restore test. */
export type { RestoreJobFacts };

/** One table of a manifest against the restored copy. */
export interface TableCheck {
  readonly database: string;
  readonly table: string;
  readonly expected: number;
  /** Rows in the restored copy; undefined when the table could not be counted. */
  readonly restored?: number;
  readonly problem?: string;
}

export interface SnapshotRestoreValidation {
  readonly passed: boolean;
  /** One line for AWS Backup, the history and the alert. */
  readonly message: string;
  readonly tables: readonly TableCheck[];
  /** The manifests compared with, by database name. */
  readonly backups: Readonly<Record<string, string>>;
  /** Restore time measured by AWS Backup (creation → completion of the restore job), seconds. */
  readonly restoreSeconds?: number;
}

export interface RestoreValidationDeps extends RestoreTestOutcomeDeps {
  /** ARN of Cofre's restore testing plan: restore jobs of any other plan (or by hand) are ignored. */
  readonly restoreTestingPlanArn: string;
  readonly databases: readonly RestoreTestedDatabase[];
  describeRestoreJob(restoreJobId: string): Promise<RestoreJobFacts>;
  /** Host and port of the restored instance. */
  endpointOf(createdResourceArn: string): Promise<{ host: string; port: number }>;
  /** User and password from the source's secret. */
  credentialsOf(secretArn: string, engine: Engine): Promise<{ user: string; password: string | undefined }>;
  /** The vault holding the Cofre backups (manifests under `full/<id>/`). */
  readonly vault: Vault;
  notify(event: NotifyEvent): Promise<unknown>;
  /**
   * PostgreSQL `sslMode` for the restored instance (RDS for PostgreSQL 15+ forces TLS by default):
   * `require` in AWS; a local stand-in without TLS leaves it out.
   */
  readonly postgresSslMode?: string | undefined;
  readonly log?: (line: string) => void;
  readonly now?: () => Date;
}

/** The history id of a snapshot restore test (one per restore job): that of every AWS Backup restore test. */
export { restoreTestIdOf as snapshotRestoreTestId } from '../aws/restore-jobs';

/**
 * Databases whose newest backup before the snapshot is this much older than the newest backup of the
 * source are not compared: they were not in the latest backup run (dropped since, or taken out of
 * `databases`), so the restored server need not have them. A database whose backups stopped is
 * alarmed by HoursSinceLastGoodBackup, not here.
 */
export const LATEST_RUN_HOURS = 36;

/**
 * The newest valid full backup of each of `db`'s databases that had finished by `before` (the
 * recovery point's creation), server globals left out, limited to `databases` / `excludeDatabases`.
 */
export async function manifestsBefore(
  vault: Vault,
  db: Pick<RestoreTestedDatabase, 'database' | 'databases' | 'excludeDatabases'>,
  before: Date,
): Promise<Map<string, Manifest>> {
  const prefix = fullSourcePrefix(db.database);
  const out = new Map<string, Manifest>();
  for (const entry of await readCatalog(vault, prefix)) {
    const segment = entry.folder.slice(prefix.length).split('/')[0] ?? '';
    if (segment === GLOBALS_SEGMENT || segment === '') continue;
    const m = entry.manifest;
    if (!m || m.kind !== 'full' || m.backupId !== entry.backupId) continue;
    const name = m.source.database ?? decodeURIComponent(segment);
    if (db.databases !== 'all' && !db.databases.includes(name)) continue;
    if (db.excludeDatabases.includes(name)) continue;
    if (Date.parse(m.finishedAt) > before.getTime()) continue;
    const known = out.get(name);
    if (!known || Date.parse(known.finishedAt) <= Date.parse(m.finishedAt)) out.set(name, m);
  }
  return new Map([...out.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * Counts each manifest table's rows in the restored copy and compares (restored ≥ manifest passes).
 * A connection that fails makes every table of that database a problem; nothing throws.
 */
export async function compareWithManifests(
  target: Omit<Connection, 'database'>,
  manifests: ReadonlyMap<string, Manifest>,
): Promise<TableCheck[]> {
  const checks: TableCheck[] = [];
  for (const [database, manifest] of manifests) {
    const tables = manifest.artifacts.flatMap((a) => a.tables);
    let session: {
      count: (t: { schema: string; name: string }) => Promise<number>;
      close: () => Promise<void>;
    };
    try {
      session = await openCounter(target, database);
    } catch (error) {
      const problem = `cannot connect: ${messageOf(error)}`;
      for (const t of tables)
        checks.push({ database, table: tableName(target.engine, t), expected: t.rows, problem });
      if (tables.length === 0) checks.push({ database, table: '(database)', expected: 0, problem });
      continue;
    }
    const { count, close } = session;
    try {
      for (const t of tables) {
        const table = tableName(target.engine, t);
        try {
          const restored = await count(t);
          checks.push({
            database,
            table,
            expected: t.rows,
            restored,
            ...(restored < t.rows
              ? { problem: `${restored} rows, fewer than the ${t.rows} of backup ${manifest.backupId}` }
              : {}),
          });
        } catch (error) {
          checks.push({ database, table, expected: t.rows, problem: `cannot count: ${messageOf(error)}` });
        }
      }
    } finally {
      await close();
    }
  }
  return checks;
}

/** A session on one database of the restored copy that counts a table's rows exactly. */
async function openCounter(
  target: Omit<Connection, 'database'>,
  database: string,
): Promise<{
  count: (t: { schema: string; name: string }) => Promise<number>;
  close: () => Promise<void>;
}> {
  if (target.engine === 'postgres') {
    const client = await connectPostgres({ ...target, database }, database);
    return {
      count: async (t) =>
        Number(
          (
            await client.query<{ n: string }>(
              `SELECT count(*) AS n FROM ONLY ${quoteIdentifier('postgres', t.schema)}.${quoteIdentifier('postgres', t.name)}`,
            )
          ).rows[0]!.n,
        ),
      close: () => client.end().catch(() => undefined),
    };
  }
  const conn = await connectMysql({ ...target, database }, database);
  return {
    count: async (t) => {
      const [rows] = await conn.query(
        `SELECT count(*) AS n FROM ${quoteIdentifier('mysql', database)}.${quoteIdentifier('mysql', t.name)}`,
      );
      return Number((rows as { n: unknown }[])[0]!.n);
    },
    close: () => conn.end().catch(() => undefined),
  };
}

function tableName(engine: Engine, t: { schema: string; name: string }): string {
  return engine === 'postgres' ? `${t.schema}.${t.name}` : t.name;
}

/** Validates one restore job's temporary instance (no AWS Backup or history side effects). */
export async function validateRestoredInstance(
  job: RestoreJobFacts,
  db: RestoreTestedDatabase,
  deps: Pick<RestoreValidationDeps, 'endpointOf' | 'credentialsOf' | 'vault' | 'postgresSslMode'>,
): Promise<SnapshotRestoreValidation> {
  const restoreSeconds =
    job.completionDate !== undefined
      ? Math.max(0, Math.round((job.completionDate.getTime() - job.creationDate.getTime()) / 1000))
      : undefined;
  const rto = restoreSeconds !== undefined ? `restored in ${formatSeconds(restoreSeconds)}` : 'restored';
  const fail = (why: string): SnapshotRestoreValidation => ({
    passed: false,
    message: `${db.database}: ${why}`,
    tables: [],
    backups: {},
    ...(restoreSeconds !== undefined ? { restoreSeconds } : {}),
  });
  if (!job.createdResourceArn) return fail('the restore job names no restored instance (CreatedResourceArn)');
  const before = job.recoveryPointCreationDate ?? job.creationDate;
  let found: Map<string, Manifest>;
  try {
    found = await manifestsBefore(deps.vault, db, before);
  } catch (error) {
    return fail(`cannot read the Cofre manifests in ${deps.vault.url}: ${messageOf(error)}`);
  }
  const newest = Math.max(...[...found.values()].map((m) => Date.parse(m.finishedAt)));
  const manifests = new Map(
    [...found].filter(([, m]) => newest - Date.parse(m.finishedAt) <= LATEST_RUN_HOURS * 3_600_000),
  );
  const notCompared = [...found].filter(([name]) => !manifests.has(name));
  const skipped = notCompared.length
    ? `; not compared (not in the latest backup run): ${notCompared.map(([name, m]) => `${name} (last backup ${m.finishedAt})`).join(', ')}`
    : '';
  if (manifests.size === 0)
    return fail(
      `no Cofre full backup finished before the snapshot (${before.toISOString()}) in ${deps.vault.url}/${fullSourcePrefix(db.database)} to compare the restored copy with`,
    );
  let target: Omit<Connection, 'database'>;
  try {
    const endpoint = await deps.endpointOf(job.createdResourceArn);
    const credentials = await deps.credentialsOf(db.credentialsSecretArn, db.engine);
    target = {
      engine: db.engine,
      ...endpoint,
      ...credentials,
      sslMode: db.engine === 'postgres' ? deps.postgresSslMode : undefined,
    };
  } catch (error) {
    return fail(`cannot reach the restored instance ${job.createdResourceArn}: ${messageOf(error)}`);
  }
  const tables = await compareWithManifests(target, manifests);
  const bad = tables.filter((t) => t.problem !== undefined);
  const rows = tables.reduce((n, t) => n + (t.restored ?? 0), 0);
  const backups = Object.fromEntries([...manifests].map(([name, m]) => [name, m.backupId]));
  const against = [...manifests].map(([name, m]) => `${name} ${m.backupId}`).join(', ');
  const base = { tables, backups, ...(restoreSeconds !== undefined ? { restoreSeconds } : {}) };
  if (bad.length)
    return {
      ...base,
      passed: false,
      message: `${db.database}: snapshot ${rto}; ${bad.length} of ${tables.length} table(s) failed against the manifests (${against}): ${bad
        .map((t) => `${t.database}.${t.table}: ${t.problem!}`)
        .join('; ')}${skipped}`,
    };
  return {
    ...base,
    passed: true,
    message: `${db.database}: snapshot ${rto}; ${tables.length} table(s), ${rows} rows, each at least the count of the manifests (${against})${skipped}`,
  };
}

/**
 * Handles one `Restore Job State Change` event: ignores restore jobs of other plans, jobs not
 * completed and jobs already validated; otherwise validates, records, reports and alerts.
 */
export async function handleRestoreTestEvent(
  input: unknown,
  deps: RestoreValidationDeps,
): Promise<
  | { readonly ignored: true; readonly reason: string }
  | {
      readonly ignored: false;
      readonly record: HistoryRecord;
      readonly validation: SnapshotRestoreValidation;
    }
> {
  const restoreJobId = restoreJobIdOf(input);
  const log = deps.log ?? (() => undefined);
  const job = await deps.describeRestoreJob(restoreJobId);
  const triage = triageRestoreTestJob(job, deps.restoreTestingPlanArn, 'Cofre restore testing plan');
  if (triage.ignored) return triage;
  const { restoreFailed } = triage;
  const db = deps.databases.find((d) => d.resourceArn === job.sourceResourceArn);
  const validation: SnapshotRestoreValidation = restoreFailed
    ? {
        // Nothing was restored: a failed restore test (there is nothing to validate or report).
        passed: false,
        message: `${db?.database ?? job.sourceResourceArn ?? 'the source'}: the restore of the snapshot ended ${job.status}${job.statusMessage ? `: ${job.statusMessage}` : ''}`,
        tables: [],
        backups: {},
      }
    : db
      ? await validateRestoredInstance(job, db, deps)
      : {
          passed: false,
          message: `the restored source ${job.sourceResourceArn ?? '(none named)'} is not an RDS instance of the Cofre configuration`,
          tables: [],
          backups: {},
        };
  log(`restore test ${validation.passed ? 'passed' : 'FAILED'}: ${validation.message}`);
  const finished = job.completionDate ?? (deps.now ?? (() => new Date()))();
  const record: HistoryRecord = {
    id: restoreTestIdOf(job.restoreJobId),
    kind: 'restore-test',
    method: 'snapshot',
    database: db?.database ?? '-',
    status: validation.passed ? 'succeeded' : 'failed',
    // From the restore's start to the restored instance: the measured RTO (LastRestoreTestDurationSeconds).
    startedAt: job.creationDate.toISOString(),
    finishedAt: finished.toISOString(),
    ...(job.recoveryPointArn ? { location: job.recoveryPointArn } : {}),
    message: validation.message,
    requestedBy: 'aws-backup',
  };
  await recordRestoreTestOutcome(deps, job.restoreJobId, record, {
    passed: validation.passed,
    message: validation.message,
    restoreFailed,
  });
  if (!validation.passed)
    await deps.notify({
      outcome: 'failed',
      job: 'restore-test',
      database: record.database!,
      kind: 'restore-test',
      record,
      error: 'Cofre.SnapshotRestoreTestFailed',
      cause: validation.message,
    });
  return { ignored: false, record, validation };
}

function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 120 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

// ---------------------------------------------------------------------------------------------
// The AWS side, over SDK clients passed in.

/** {@link RestoreValidationDeps.describeRestoreJob} and {@link RestoreValidationDeps.putValidationResult} over AWS Backup (core/aws/restore-jobs.ts). */
export { describeRestoreJobWith, putValidationResultWith, RESTORE_FAILED_STATES } from '../aws/restore-jobs';

/** {@link RestoreValidationDeps.endpointOf} for a restored RDS DB instance (DescribeDBInstances). */
export function instanceEndpointWith(rds: RDSClient): RestoreValidationDeps['endpointOf'] {
  return async (arn) => {
    const id = /^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:db:([A-Za-z][A-Za-z0-9-]*)$/.exec(arn)?.[1];
    if (!id) throw new Error(`not the ARN of an RDS DB instance: ${arn}`);
    const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }));
    const endpoint = out.DBInstances?.[0]?.Endpoint;
    if (!endpoint?.Address || !endpoint.Port)
      throw new Error(`RDS reports no endpoint for ${arn} (is it available?)`);
    return { host: endpoint.Address, port: endpoint.Port };
  };
}

/** {@link RestoreValidationDeps.credentialsOf} from a Secrets Manager secret in the RDS JSON format. */
export function secretCredentialsWith(secrets: SecretsManagerClient): RestoreValidationDeps['credentialsOf'] {
  return async (secretArn, engine) => {
    const c = await resolveCredentials(
      {
        engine,
        host: 'restored',
        port: 0,
        user: '',
        password: undefined,
        database: undefined,
        sslMode: undefined,
      },
      { secretArn, secrets },
    );
    return { user: c.user, password: c.password };
  };
}
