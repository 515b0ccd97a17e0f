/**
 * Freshness, not just failure: how long ago each database last had a good full backup, a good restore
 * test and a verified tenant export. The hourly freshness Lambda publishes these as metrics; the alarms
 * on them treat missing data as breaching, so a database that never had a good run, and a checker that
 * stopped running, alarm too.
 *
 * Ages count from when the good run finished (its `finishedAt`, else `startedAt`): the next scheduled
 * run is then late only once it is also later than the previous one took.
 */
import { DescribeDBClustersCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import type { HistoryKind, HistoryRecord } from '../history/records';
import type { HistoryStore } from '../history/store';
import { METRICS, type MetricName, type MetricUnit } from '../policy/metrics';
import { DEFAULT_SYNCED_FILES_LIMITS } from '../policy/files-freshness';

/** The freshness check's metric names (defined, with their units, in core/policy/metrics.ts). */
export const FRESHNESS_METRICS = {
  hoursSinceLastGoodBackup: 'HoursSinceLastGoodBackup',
  daysSinceLastGoodRestoreTest: 'DaysSinceLastGoodRestoreTest',
  hoursSinceLastVerifiedTenantExport: 'HoursSinceLastVerifiedTenantExport',
  lastRestoreTestSeconds: 'LastRestoreTestDurationSeconds',
  lastRestoreTestPassed: 'LastRestoreTestPassed',
  hoursSinceLastGoodSnapshot: 'HoursSinceLastGoodSnapshot',
  recoveryPointLagMinutes: 'RecoveryPointLagMinutes',
  hoursSinceLastGoodFilesBackup: 'HoursSinceLastGoodFilesBackup',
  daysSinceLastGoodFilesRestoreTest: 'DaysSinceLastGoodFilesRestoreTest',
  hoursSinceLastGoodConfigSnapshot: 'HoursSinceLastGoodConfigSnapshot',
} as const satisfies Record<string, MetricName>;

/** One datapoint to publish. */
export interface FreshnessMetric {
  readonly name: MetricName;
  readonly dimensions: Readonly<Record<string, string>>;
  readonly value: number;
  readonly unit: MetricUnit;
}

/** A datapoint of `name` (its unit from the metric factory). */
function point(
  name: MetricName,
  dimensions: Readonly<Record<string, string>>,
  value: number,
): FreshnessMetric {
  return { name, dimensions, value, unit: METRICS[name].unit };
}

export type FreshnessState =
  /** A good run within the limit. */
  | 'fresh'
  /** The last good run is older than the limit. */
  | 'stale'
  /** Runs exist, none good: no datapoint, the alarm's missing data (breaching) fires. */
  | 'no-good-run'
  /** Nothing recorded at all: no datapoint either. */
  | 'no-history';

/** What the checker found for one database and check (logged, one line each). */
export interface FreshnessFinding {
  readonly database: string;
  readonly check:
    | 'full'
    | 'tenant'
    | 'restore-test'
    | 'snapshot'
    | 'recovery-point'
    | 'config'
    | 'files'
    | 'files-restore-test';
  readonly state: FreshnessState;
  /** Age in the metric's unit (hours, or days for restore tests), when there is a good run. */
  readonly age?: number;
  /** The limit the age was compared with (same unit). */
  readonly limit: number;
  readonly lastGood?: { readonly id: string; readonly at: string };
  readonly lastRun?: { readonly id: string; readonly status: string; readonly startedAt: string };
}

/** A database the checker looks at. */
export interface FreshnessTarget {
  readonly database: string;
  /** Per-tenant exports are configured (`databases[].tenants`). */
  readonly tenants: boolean;
  /** An RDS instance or Aurora cluster protected by AWS Backup: snapshot age and point-in-time lag are checked. */
  readonly rds?: RdsTarget;
}

/** The RDS DB instance or Aurora cluster of a database (exactly one). */
export interface RdsTarget {
  readonly rdsInstanceId?: string;
  readonly rdsClusterId?: string;
}

/** Limits (defaults: the alarms' thresholds). */
export interface FreshnessLimits {
  /** Hours after which the last good full backup is stale (default 24.5: daily, plus 30 min to finish). */
  readonly fullBackupHours: number;
  /** Hours after which the last verified tenant export is stale (default 24.5). */
  readonly tenantExportHours: number;
  /** Days after which the last good restore test is stale (default 36: monthly on the first Sunday, up to 35 days apart). */
  readonly restoreTestDays: number;
  /** Hours after which the last completed AWS Backup snapshot is stale (default 26: daily, plus 2 h for the job). */
  readonly snapshotHours?: number;
  /** Recovery point objective in minutes: a larger point-in-time lag is stale (default 60). */
  readonly rpoMinutes?: number;
}

export const DEFAULT_FRESHNESS_LIMITS: Required<FreshnessLimits> = {
  fullBackupHours: 24.5,
  tenantExportHours: 24.5,
  restoreTestDays: 36,
  snapshotHours: 26,
  rpoMinutes: 60,
};

/** Reads a database's LatestRestorableTime; `undefined` when RDS reports none (or the database is gone). */
export type LatestRestorableTime = (target: RdsTarget) => Promise<Date | undefined>;

/**
 * The point-in-time recovery lag (pure): now − LatestRestorableTime in minutes, against the RPO. No
 * LatestRestorableTime (backups off, database deleted, RDS not answering) gives no age: no datapoint,
 * so the alarm's missing data (breaching) fires.
 */
export function assessRecoveryPointLag(o: {
  readonly database: string;
  readonly latestRestorableTime: Date | undefined;
  readonly now: Date;
  readonly rpoMinutes: number;
}): FreshnessFinding {
  const base = { database: o.database, check: 'recovery-point' as const, limit: o.rpoMinutes };
  if (!o.latestRestorableTime) return { ...base, state: 'no-history' };
  const age = round(Math.max(0, o.now.getTime() - o.latestRestorableTime.getTime()) / MINUTE);
  return {
    ...base,
    state: age > o.rpoMinutes ? 'stale' : 'fresh',
    age,
    lastGood: { id: 'LatestRestorableTime', at: o.latestRestorableTime.toISOString() },
  };
}

const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** When a run ended (finishedAt, else startedAt), in ms. */
export function endOf(record: HistoryRecord): number {
  return Date.parse(record.finishedAt ?? record.startedAt);
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/**
 * The age of the last good run against a limit (pure). `lastGood` is the newest succeeded record,
 * `lastRun` the newest of any status (to tell "never ran" from "only failed").
 */
export function assessFreshness(o: {
  readonly database: string;
  readonly check: FreshnessFinding['check'];
  readonly lastGood: HistoryRecord | undefined;
  readonly lastRun: HistoryRecord | undefined;
  readonly now: Date;
  /** Milliseconds per unit of age: hours or days. */
  readonly unitMs: number;
  readonly limit: number;
}): FreshnessFinding {
  const lastRun = o.lastRun
    ? { id: o.lastRun.id, status: o.lastRun.status, startedAt: o.lastRun.startedAt }
    : undefined;
  const base = { database: o.database, check: o.check, limit: o.limit, ...(lastRun ? { lastRun } : {}) };
  if (!o.lastGood) return { ...base, state: lastRun ? 'no-good-run' : 'no-history' };
  const end = endOf(o.lastGood);
  // A clock a little behind the writer's must not make a negative age.
  const age = round(Math.max(0, o.now.getTime() - end) / o.unitMs);
  return {
    ...base,
    state: age > o.limit ? 'stale' : 'fresh',
    age,
    lastGood: { id: o.lastGood.id, at: new Date(end).toISOString() },
  };
}

/** The datapoint of a finding, if it has an age. */
function metricOf(finding: FreshnessFinding): FreshnessMetric | undefined {
  if (finding.age === undefined) return undefined;
  if (finding.check === 'full')
    return point(
      FRESHNESS_METRICS.hoursSinceLastGoodBackup,
      { Database: finding.database, Kind: 'full' },
      finding.age,
    );
  if (finding.check === 'snapshot')
    return point(FRESHNESS_METRICS.hoursSinceLastGoodSnapshot, { Database: finding.database }, finding.age);
  if (finding.check === 'recovery-point')
    return point(FRESHNESS_METRICS.recoveryPointLagMinutes, { Database: finding.database }, finding.age);
  if (finding.check === 'tenant')
    return point(
      FRESHNESS_METRICS.hoursSinceLastVerifiedTenantExport,
      { Database: finding.database },
      finding.age,
    );
  if (finding.check === 'files')
    return point(
      FRESHNESS_METRICS.hoursSinceLastGoodFilesBackup,
      { Bucket: finding.database.replace(/^s3:/, '') },
      finding.age,
    );
  if (finding.check === 'files-restore-test')
    return point(
      FRESHNESS_METRICS.daysSinceLastGoodFilesRestoreTest,
      { Bucket: finding.database.replace(/^s3:/, '') },
      finding.age,
    );
  if (finding.check === 'config')
    return point(FRESHNESS_METRICS.hoursSinceLastGoodConfigSnapshot, {}, finding.age);
  return point(FRESHNESS_METRICS.daysSinceLastGoodRestoreTest, { Database: finding.database }, finding.age);
}

/** Reads the history and computes every finding and datapoint for `targets` at `now`. */
export async function checkFreshness(
  store: Pick<HistoryStore, 'latest'>,
  targets: readonly FreshnessTarget[],
  now: Date,
  limits: FreshnessLimits = DEFAULT_FRESHNESS_LIMITS,
  latestRestorableTime?: LatestRestorableTime,
): Promise<{ findings: FreshnessFinding[]; metrics: FreshnessMetric[] }> {
  const findings: FreshnessFinding[] = [];
  const metrics: FreshnessMetric[] = [];
  const look = async (database: string, kind: HistoryKind) => ({
    lastGood: await store.latest(database, kind, 'succeeded'),
    lastRun: await store.latest(database, kind),
  });
  for (const target of targets) {
    const checks: { check: FreshnessFinding['check']; kind: HistoryKind; unitMs: number; limit: number }[] = [
      { check: 'full', kind: 'full', unitMs: HOUR, limit: limits.fullBackupHours },
      ...(target.tenants
        ? [
            {
              check: 'tenant' as const,
              kind: 'tenant' as const,
              unitMs: HOUR,
              limit: limits.tenantExportHours,
            },
          ]
        : []),
      { check: 'restore-test', kind: 'restore-test', unitMs: DAY, limit: limits.restoreTestDays },
      ...(target.rds
        ? [
            {
              check: 'snapshot' as const,
              kind: 'snapshot' as const,
              unitMs: HOUR,
              limit: limits.snapshotHours ?? DEFAULT_FRESHNESS_LIMITS.snapshotHours,
            },
          ]
        : []),
    ];
    for (const c of checks) {
      const { lastGood, lastRun } = await look(target.database, c.kind);
      const finding = assessFreshness({ database: target.database, ...c, lastGood, lastRun, now });
      findings.push(finding);
      const metric = metricOf(finding);
      if (metric) metrics.push(metric);
      if (c.check === 'restore-test') {
        if (lastGood?.finishedAt)
          metrics.push(
            point(
              FRESHNESS_METRICS.lastRestoreTestSeconds,
              { Database: target.database },
              round((endOf(lastGood) - Date.parse(lastGood.startedAt)) / 1000),
            ),
          );
        if (lastRun && (lastRun.status === 'succeeded' || lastRun.status === 'failed'))
          metrics.push(
            point(
              FRESHNESS_METRICS.lastRestoreTestPassed,
              { Database: target.database },
              lastRun.status === 'succeeded' ? 1 : 0,
            ),
          );
      }
    }
    if (target.rds) {
      if (!latestRestorableTime)
        throw new Error(`${target.database}: an RDS target needs a LatestRestorableTime reader`);
      const finding = assessRecoveryPointLag({
        database: target.database,
        latestRestorableTime: await latestRestorableTime(target.rds),
        now,
        rpoMinutes: limits.rpoMinutes ?? DEFAULT_FRESHNESS_LIMITS.rpoMinutes,
      });
      findings.push(finding);
      const metric = metricOf(finding);
      if (metric) metrics.push(metric);
    }
  }
  return { findings, metrics };
}

/**
 * A {@link LatestRestorableTime} over the RDS API (DescribeDBInstances / DescribeDBClusters). A
 * database RDS does not know gives `undefined` (no datapoint: the alarm fires); other errors throw.
 */
export function rdsLatestRestorableTime(rds: RDSClient): LatestRestorableTime {
  return async (target) => {
    try {
      if (target.rdsClusterId !== undefined) {
        const out = await rds.send(
          new DescribeDBClustersCommand({ DBClusterIdentifier: target.rdsClusterId }),
        );
        return out.DBClusters?.[0]?.LatestRestorableTime;
      }
      const out = await rds.send(
        new DescribeDBInstancesCommand({ DBInstanceIdentifier: target.rdsInstanceId }),
      );
      return out.DBInstances?.[0]?.LatestRestorableTime;
    } catch (error) {
      const name = (error as { name?: string }).name;
      if (name === 'DBInstanceNotFoundFault' || name === 'DBClusterNotFoundFault') return undefined;
      throw error;
    }
  };
}

/** Default limit of the configuration snapshot's age: weekly, plus an hour to finish. */
export const DEFAULT_CONFIG_SNAPSHOT_HOURS = 7 * 24 + 1;

/**
 * The age of the last good weekly configuration snapshot (history kind `config`, no database): a
 * finding and, when there is a good one, the `HoursSinceLastGoodConfigSnapshot` datapoint (no
 * dimensions). Event-driven snapshots do not count: only the weekly one proves every value was read.
 */
export async function checkConfigFreshness(
  store: Pick<HistoryStore, 'latest'>,
  now: Date,
  limitHours: number = DEFAULT_CONFIG_SNAPSHOT_HOURS,
): Promise<{ finding: FreshnessFinding; metric?: FreshnessMetric }> {
  const finding = assessFreshness({
    database: '-',
    check: 'config',
    lastGood: await store.latest(undefined, 'config', 'succeeded'),
    lastRun: await store.latest(undefined, 'config'),
    now,
    unitMs: HOUR,
    limit: limitHours,
  });
  const metric = metricOf(finding);
  return metric ? { finding, metric } : { finding };
}

/**
 * The age of the last completed AWS Backup periodic recovery point of each application bucket (history
 * kind `snapshot`, database `s3:<bucket>`, recorded from the job events): a finding each and, when
 * there is a good one, the `HoursSinceLastGoodFilesBackup` datapoint (dimension `Bucket`); and the age
 * of its last good weekly AWS Backup restore test (kind `files-restore-test`, recorded by the files
 * restore validation Lambda), the `DaysSinceLastGoodFilesRestoreTest` datapoint.
 */
export async function checkFilesFreshness(
  store: Pick<HistoryStore, 'latest'>,
  buckets: readonly string[],
  now: Date,
  limitHours: number = DEFAULT_FRESHNESS_LIMITS.snapshotHours,
  restoreTestDays: number = DEFAULT_SYNCED_FILES_LIMITS.restoreTestDays,
): Promise<{ findings: FreshnessFinding[]; metrics: FreshnessMetric[] }> {
  return bucketsFreshness(store, buckets, now, 'snapshot', limitHours, restoreTestDays);
}

/**
 * The S3-compatible buckets synced by the files task (`buckets[].source`): the age of the last good
 * sync run (history kind `files`, database `s3:<bucket>`, the `HoursSinceLastGoodFilesBackup`
 * datapoint, dimension `Bucket`) and of the last good weekly restore test (kind
 * `files-restore-test`, `DaysSinceLastGoodFilesRestoreTest`). No good run: no datapoint, the alarm's
 * missing data (breaching) fires.
 */
export async function checkSyncedFilesFreshness(
  store: Pick<HistoryStore, 'latest'>,
  buckets: readonly string[],
  now: Date,
  limits: { readonly syncHours: number; readonly restoreTestDays: number } = DEFAULT_SYNCED_FILES_LIMITS,
): Promise<{ findings: FreshnessFinding[]; metrics: FreshnessMetric[] }> {
  return bucketsFreshness(store, buckets, now, 'files', limits.syncHours, limits.restoreTestDays);
}

/**
 * Per bucket (database `s3:<bucket>`): the age of its last good backup, of history kind `backupKind`
 * (`snapshot`: an AWS Backup recovery point; `files`: a files task run), in hours, and of its last
 * good restore test (kind `files-restore-test`), in days; a finding each, a datapoint when good.
 */
async function bucketsFreshness(
  store: Pick<HistoryStore, 'latest'>,
  buckets: readonly string[],
  now: Date,
  backupKind: 'snapshot' | 'files',
  backupHours: number,
  restoreTestDays: number,
): Promise<{ findings: FreshnessFinding[]; metrics: FreshnessMetric[] }> {
  const findings: FreshnessFinding[] = [];
  const metrics: FreshnessMetric[] = [];
  for (const bucket of buckets) {
    const database = `s3:${bucket}`;
    for (const c of [
      { check: 'files' as const, kind: backupKind, unitMs: HOUR, limit: backupHours },
      {
        check: 'files-restore-test' as const,
        kind: 'files-restore-test' as const,
        unitMs: DAY,
        limit: restoreTestDays,
      },
    ]) {
      const finding = assessFreshness({
        database,
        check: c.check,
        lastGood: await store.latest(database, c.kind, 'succeeded'),
        lastRun: await store.latest(database, c.kind),
        now,
        unitMs: c.unitMs,
        limit: c.limit,
      });
      findings.push(finding);
      const metric = metricOf(finding);
      if (metric) metrics.push(metric);
    }
  }
  return { findings, metrics };
}
