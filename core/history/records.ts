/**
 * The backup history (audit log): one DynamoDB item per backup, restore or restore test, written by
 * the pipeline and read by the CLI, the dashboard and the freshness check. This module is the record
 * type and the key-building helpers only (pure: no AWS SDK), so the writers, the readers and the
 * table definition in lib/ agree on one shape. A test checks that the table's indexes in lib/ match
 * {@link HISTORY_INDEXES}.
 */
import type { RetentionKind } from '../policy/retention';

/** What a history record is about. */
export const HISTORY_KINDS = [
  'full',
  'tenant',
  'files',
  'files-restore-test',
  'config',
  'snapshot',
  'snapshot-copy',
  'pitr',
  'restore-test',
  'restore',
] as const;
export type HistoryKind = (typeof HISTORY_KINDS)[number];

/**
 * Where a run is. `verifying`: written, being checked against its manifest. `skipped`: not started,
 * because the same job for the same database was still running (no overlap, like a CronJob `Forbid`).
 */
export const HISTORY_STATUSES = ['running', 'verifying', 'succeeded', 'failed', 'skipped'] as const;
export type HistoryStatus = (typeof HISTORY_STATUSES)[number];

/** One backup, restore or restore test, as the pipeline records it. */
export interface HistoryRecord {
  /** Backup (or run) id, unique; the table's partition key. */
  readonly id: string;
  readonly kind: HistoryKind;
  /** Id of the database (`databases[].id`) or application bucket concerned; absent for configuration snapshots. */
  readonly database?: string;
  /** Tenant id, for per-tenant exports and single-tenant restores. */
  readonly tenant?: string;
  /** Retention kind the backup was written with (`cofre:tier` tag); absent for restores. */
  readonly tier?: RetentionKind;
  readonly status: HistoryStatus;
  /** ISO-8601 UTC timestamp (`2024-02-29T02:00:00.000Z`): sorts as text, so it is the indexes' sort key. */
  readonly startedAt: string;
  /** ISO-8601 UTC timestamp, once the run is over. */
  readonly finishedAt?: string;
  /** Bytes written (backups) or read (restores). */
  readonly bytes?: number;
  /** Hex SHA-256 of the manifest (or of the single artifact). */
  readonly sha256?: string;
  /** Where the backup is: `s3://bucket/full/<databaseId>/<backupId>/` or a `file://` URL. */
  readonly location?: string;
  /** Human-readable outcome: the error of a failed run, the comparison of a restore test. */
  readonly message?: string;
  /** Who started the run: `schedule`, an IAM principal ARN, or a local user name. */
  readonly requestedBy: string;
  /**
   * Restore tests: `snapshot` for an AWS Backup restore test of an RDS snapshot (absent: a logical
   * restore of a Cofre backup); files restore tests: `aws-backup` for the AWS Backup restore test of
   * an AWS S3 bucket (absent: the files task's test of an S3-compatible source).
   */
  readonly method?: 'snapshot' | 'aws-backup';
  /**
   * Console restores: the Step Functions execution that runs it, so a stopped or timed-out execution
   * (no Catch runs then) can find its `running` record (core/aws/restore-stopped.ts).
   */
  readonly executionArn?: string;
}

/** The key attributes derived from a record (never written by hand: see {@link historyItem}). */
export interface HistoryKeys {
  /** `<database>#<kind>`: partition key of {@link HISTORY_INDEXES.byDatabaseKind}. */
  readonly databaseKind: string;
  /** `<database>#<kind>#<status>`: partition key of {@link HISTORY_INDEXES.byDatabaseKindStatus}. */
  readonly databaseKindStatus: string;
  /** `<database>#<tenant>`, only on tenant records: partition key of the sparse {@link HISTORY_INDEXES.byTenant}. */
  readonly databaseTenant?: string;
}

/** The item as stored: the record plus its derived keys. */
export type HistoryItem = HistoryRecord & HistoryKeys;

/** Table partition key. */
export const HISTORY_PARTITION_KEY = 'id';

/**
 * Global secondary indexes of the history table. All sort by `startedAt`; query one partition with
 * `ScanIndexForward: false, Limit: 1` for the latest.
 */
export const HISTORY_INDEXES = {
  /** Latest runs of one kind for one database: `cofre list`, the dashboard. */
  byDatabaseKind: { indexName: 'byDatabaseKind', partitionKey: 'databaseKind', sortKey: 'startedAt' },
  /** Latest run of one kind and status, e.g. the last good full backup (freshness alarm). */
  byDatabaseKindStatus: {
    indexName: 'byDatabaseKindStatus',
    partitionKey: 'databaseKindStatus',
    sortKey: 'startedAt',
  },
  /** Exports and restores of one tenant (restore one tenant: which export to use). */
  byTenant: { indexName: 'byTenant', partitionKey: 'databaseTenant', sortKey: 'startedAt' },
} as const;

/** Stands for "no database" in keys (configuration snapshots); not a valid database id or bucket name. */
export const NO_DATABASE = '-';

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** An ISO-8601 UTC timestamp that names a real instant (no 30 February, no 25:00). */
function isIsoUtc(value: string): boolean {
  if (!ISO_UTC.test(value)) return false;
  const time = Date.parse(value);
  return !Number.isNaN(time) && new Date(time).toISOString().slice(0, 19) === value.slice(0, 19);
}

/** `<database>#<kind>`. */
export function databaseKindKey(database: string | undefined, kind: HistoryKind): string {
  return `${database ?? NO_DATABASE}#${kind}`;
}

/** `<database>#<kind>#<status>`. */
export function databaseKindStatusKey(
  database: string | undefined,
  kind: HistoryKind,
  status: HistoryStatus,
): string {
  return `${databaseKindKey(database, kind)}#${status}`;
}

/** `<database>#<tenant>`. */
export function databaseTenantKey(database: string | undefined, tenant: string): string {
  return `${database ?? NO_DATABASE}#${tenant}`;
}

/**
 * The DynamoDB item for a record: the record with its index keys. Rejects a record whose timestamps
 * are not ISO-8601 UTC (they would sort wrongly) or whose kind or status is unknown.
 */
export function historyItem(record: HistoryRecord): HistoryItem {
  if (!(HISTORY_KINDS as readonly string[]).includes(record.kind))
    throw new RangeError(
      `history record ${record.id}: unknown kind "${record.kind}", expected one of ${HISTORY_KINDS.join(', ')}`,
    );
  if (!(HISTORY_STATUSES as readonly string[]).includes(record.status))
    throw new RangeError(
      `history record ${record.id}: unknown status "${record.status}", expected one of ${HISTORY_STATUSES.join(', ')}`,
    );
  for (const field of ['startedAt', 'finishedAt'] as const) {
    const value = record[field];
    if (value !== undefined && !isIsoUtc(value))
      throw new RangeError(
        `history record ${record.id}: ${field} must be an ISO-8601 UTC timestamp like 2024-02-29T02:00:00.000Z, got "${value}"`,
      );
  }
  const keys: HistoryKeys = {
    databaseKind: databaseKindKey(record.database, record.kind),
    databaseKindStatus: databaseKindStatusKey(record.database, record.kind, record.status),
    ...(record.tenant !== undefined
      ? { databaseTenant: databaseTenantKey(record.database, record.tenant) }
      : {}),
  };
  return { ...record, ...keys };
}
