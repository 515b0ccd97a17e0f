/**
 * `cofre rds status`: for each RDS instance or Aurora cluster AWS Backup protects, what a person on
 * call needs to know in one look, read from the services themselves: the latest restorable time and
 * the point-in-time lag (RDS), the newest snapshot recovery point and its copy in the DR region (AWS
 * Backup, both regions), and the last snapshot restore test with its measured restore time (history).
 *
 * Fail closed: an AWS call that fails leaves that part unknown and is reported as an error (the CLI
 * exits 1), never read as "fine".
 */
import { ListRecoveryPointsByResourceCommand, type BackupClient } from '@aws-sdk/client-backup';
import { DescribeDBClustersCommand, DescribeDBInstancesCommand, type RDSClient } from '@aws-sdk/client-rds';
import { isContinuousRecoveryPoint } from '../alerts/backup-events';
import { DEFAULT_FRESHNESS_LIMITS } from '../alerts/freshness';
import { messageOf } from '../util/errors';
import type { HistoryRecord } from '../history/records';
import type { HistoryStore } from '../history/store';

/** A protected database (from the configuration). */
export interface RdsStatusTarget {
  /** `databases[].id`. */
  readonly database: string;
  readonly rdsInstanceId?: string | undefined;
  readonly rdsClusterId?: string | undefined;
  /** ARN AWS Backup knows the database by. */
  readonly resourceArn: string;
}

export interface RdsStatusLimits {
  /** Recovery point objective: a larger point-in-time lag is a problem (`snapshots.rpoMinutes`). */
  readonly rpoMinutes: number;
  /** A newest snapshot older than this is a problem (default 26: daily plus the job). */
  readonly snapshotHours?: number;
  /** A last good restore test older than this is a problem (default 36). */
  readonly restoreTestDays?: number;
}

export interface RdsStatusDeps {
  /** RDS in the databases' (primary) region. */
  readonly rds: RDSClient;
  /** AWS Backup in the primary region and in the DR region. */
  readonly backup: BackupClient;
  readonly drBackup: BackupClient;
  readonly history: Pick<HistoryStore, 'latest'>;
  readonly now: Date;
  readonly limits: RdsStatusLimits;
}

export interface RecoveryPointSummary {
  readonly recoveryPointArn: string;
  readonly createdAt: string;
  readonly ageHours: number;
  readonly vault?: string;
}

export interface RestoreTestSummary {
  readonly id: string;
  readonly status: string;
  readonly method: 'snapshot' | 'logical';
  readonly startedAt: string;
  readonly finishedAt?: string;
  /** Restore time (startedAt → finishedAt): the measured RTO. */
  readonly rtoSeconds?: number;
  readonly message?: string;
}

export interface RdsDatabaseStatus {
  readonly database: string;
  readonly resourceArn: string;
  readonly latestRestorableTime?: string;
  /** now − latestRestorableTime, minutes. */
  readonly lagMinutes?: number;
  /** The newest completed snapshot recovery point in the primary region. */
  readonly snapshot?: RecoveryPointSummary;
  /** The newest completed snapshot recovery point in the DR region. */
  readonly drCopy?: RecoveryPointSummary;
  /** The newest snapshot restore test (any outcome) and the newest good one. */
  readonly lastRestoreTest?: RestoreTestSummary;
  readonly lastGoodRestoreTest?: RestoreTestSummary;
  /** What is wrong (stale, missing, beyond the RPO). */
  readonly problems: readonly string[];
  /** AWS calls that failed: that part is unknown. */
  readonly errors: readonly string[];
}

export interface RdsStatus {
  readonly checkedAt: string;
  readonly limits: Required<RdsStatusLimits>;
  readonly databases: readonly RdsDatabaseStatus[];
  /** No problem and no error anywhere. */
  readonly ok: boolean;
}

const HOUR = 3_600_000;
const round1 = (n: number) => Math.round(n * 10) / 10;

/** The newest COMPLETED snapshot (not continuous) recovery point of a resource in one region. */
export async function newestSnapshotRecoveryPoint(
  backup: BackupClient,
  resourceArn: string,
  now: Date,
): Promise<RecoveryPointSummary | undefined> {
  let newest: { arn: string; at: Date; vault?: string } | undefined;
  let token: string | undefined;
  do {
    const out = await backup.send(
      new ListRecoveryPointsByResourceCommand({ ResourceArn: resourceArn, NextToken: token }),
    );
    for (const rp of out.RecoveryPoints ?? []) {
      if (!rp.RecoveryPointArn || !rp.CreationDate || rp.Status !== 'COMPLETED') continue;
      if (isContinuousRecoveryPoint(rp.RecoveryPointArn)) continue;
      if (!newest || rp.CreationDate > newest.at)
        newest = {
          arn: rp.RecoveryPointArn,
          at: rp.CreationDate,
          ...(rp.BackupVaultName ? { vault: rp.BackupVaultName } : {}),
        };
    }
    token = out.NextToken;
  } while (token);
  if (!newest) return undefined;
  return {
    recoveryPointArn: newest.arn,
    createdAt: newest.at.toISOString(),
    ageHours: round1(Math.max(0, now.getTime() - newest.at.getTime()) / HOUR),
    ...(newest.vault ? { vault: newest.vault } : {}),
  };
}

/** LatestRestorableTime of the instance or cluster; throws naming it when RDS does not know it. */
export async function latestRestorableTimeOf(
  rds: RDSClient,
  target: RdsStatusTarget,
): Promise<Date | undefined> {
  if (target.rdsClusterId !== undefined) {
    const out = await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: target.rdsClusterId }));
    const cluster = out.DBClusters?.[0];
    if (!cluster) throw new Error(`RDS knows no DB cluster ${target.rdsClusterId}`);
    return cluster.LatestRestorableTime;
  }
  const out = await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: target.rdsInstanceId }));
  const instance = out.DBInstances?.[0];
  if (!instance) throw new Error(`RDS knows no DB instance ${target.rdsInstanceId}`);
  return instance.LatestRestorableTime;
}

function restoreTestSummary(r: HistoryRecord): RestoreTestSummary {
  const rto =
    r.finishedAt !== undefined
      ? Math.round((Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000)
      : undefined;
  return {
    id: r.id,
    status: r.status,
    // Only restore tests (kind restore-test) reach here: `snapshot` or a logical restore.
    method: r.method === 'snapshot' ? 'snapshot' : 'logical',
    startedAt: r.startedAt,
    ...(r.finishedAt !== undefined ? { finishedAt: r.finishedAt } : {}),
    ...(rto !== undefined && rto >= 0 ? { rtoSeconds: rto } : {}),
    ...(r.message !== undefined ? { message: r.message } : {}),
  };
}

/** The newest restore test of a database (any method), optionally of one status. */
async function latestRestoreTest(
  history: Pick<HistoryStore, 'latest'>,
  database: string,
  status?: 'succeeded',
): Promise<HistoryRecord | undefined> {
  return history.latest(database, 'restore-test', status);
}

/** Reads everything for every target; never throws for one database's AWS error (it is reported). */
export async function rdsStatus(
  targets: readonly RdsStatusTarget[],
  deps: RdsStatusDeps,
): Promise<RdsStatus> {
  const limits: Required<RdsStatusLimits> = {
    rpoMinutes: deps.limits.rpoMinutes,
    snapshotHours: deps.limits.snapshotHours ?? DEFAULT_FRESHNESS_LIMITS.snapshotHours,
    restoreTestDays: deps.limits.restoreTestDays ?? DEFAULT_FRESHNESS_LIMITS.restoreTestDays,
  };
  const now = deps.now;
  const databases: RdsDatabaseStatus[] = [];
  for (const target of targets) {
    const problems: string[] = [];
    const errors: string[] = [];
    const attempt = async <T>(what: string, fn: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await fn();
      } catch (error) {
        errors.push(`${what}: ${messageOf(error)}`);
        return undefined;
      }
    };
    const which = target.rdsClusterId !== undefined ? 'DescribeDBClusters' : 'DescribeDBInstances';
    const read = await attempt(`RDS ${which}`, async () => ({
      time: await latestRestorableTimeOf(deps.rds, target),
    }));
    const restorable = read?.time;
    const lagMinutes =
      restorable !== undefined
        ? round1(Math.max(0, now.getTime() - restorable.getTime()) / 60_000)
        : undefined;
    if (read && restorable === undefined)
      problems.push('RDS reports no LatestRestorableTime: point-in-time recovery is not available');
    if (lagMinutes !== undefined && lagMinutes > limits.rpoMinutes)
      problems.push(`point-in-time lag ${lagMinutes} min is beyond the RPO of ${limits.rpoMinutes} min`);

    const snapshot = await attempt('AWS Backup ListRecoveryPointsByResource (primary region)', () =>
      newestSnapshotRecoveryPoint(deps.backup, target.resourceArn, now),
    );
    const primaryRead = !errors.some((e) => e.includes('(primary region)'));
    if (primaryRead && !snapshot) problems.push('no completed snapshot recovery point in the primary region');
    if (snapshot && snapshot.ageHours > limits.snapshotHours)
      problems.push(`the newest snapshot is ${snapshot.ageHours} h old (limit ${limits.snapshotHours} h)`);

    const drCopy = await attempt('AWS Backup ListRecoveryPointsByResource (DR region)', () =>
      newestSnapshotRecoveryPoint(deps.drBackup, target.resourceArn, now),
    );
    const drRead = !errors.some((e) => e.includes('(DR region)'));
    if (drRead && !drCopy) problems.push('no completed snapshot copy in the DR region');
    if (drCopy && snapshot && Date.parse(drCopy.createdAt) < Date.parse(snapshot.createdAt))
      problems.push(
        `the newest snapshot (${snapshot.createdAt}) has no DR copy yet: the newest copy is of ${drCopy.createdAt}`,
      );

    const last = await attempt('history (restore tests)', () =>
      latestRestoreTest(deps.history, target.database),
    );
    const good = await attempt('history (restore tests)', () =>
      latestRestoreTest(deps.history, target.database, 'succeeded'),
    );
    const historyRead = !errors.some((e) => e.startsWith('history'));
    if (historyRead) {
      if (!good) problems.push('no restore test has passed');
      else {
        const days = (now.getTime() - Date.parse(good.finishedAt ?? good.startedAt)) / (24 * HOUR);
        if (days > limits.restoreTestDays)
          problems.push(
            `the last good restore test is ${round1(days)} days old (limit ${limits.restoreTestDays} days)`,
          );
      }
      if (last && last.status === 'failed')
        problems.push(`the last restore test failed: ${last.message ?? last.id}`);
    }
    databases.push({
      database: target.database,
      resourceArn: target.resourceArn,
      ...(restorable !== undefined ? { latestRestorableTime: restorable.toISOString() } : {}),
      ...(lagMinutes !== undefined ? { lagMinutes } : {}),
      ...(snapshot ? { snapshot } : {}),
      ...(drCopy ? { drCopy } : {}),
      ...(last ? { lastRestoreTest: restoreTestSummary(last) } : {}),
      ...(good ? { lastGoodRestoreTest: restoreTestSummary(good) } : {}),
      problems,
      errors,
    });
  }
  return {
    checkedAt: now.toISOString(),
    limits,
    databases,
    ok: databases.every((d) => d.problems.length === 0 && d.errors.length === 0),
  };
}

function duration(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  const minutes = Math.round(seconds / 60);
  return minutes < 120 ? `${minutes} min` : `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The status for a person: one block per database. */
export function formatRdsStatus(status: RdsStatus): string {
  const lines: string[] = [`RDS/Aurora status at ${status.checkedAt} (RPO ${status.limits.rpoMinutes} min)`];
  for (const d of status.databases) {
    lines.push(
      '',
      `${d.database}  ${d.problems.length || d.errors.length ? 'NOT OK' : 'OK'}  (${d.resourceArn})`,
    );
    lines.push(
      `  point in time   ${d.latestRestorableTime ? `restorable to ${d.latestRestorableTime}, lag ${d.lagMinutes} min` : 'unknown'}`,
    );
    lines.push(
      `  newest snapshot ${d.snapshot ? `${d.snapshot.createdAt} (${d.snapshot.ageHours} h ago) ${d.snapshot.recoveryPointArn}` : 'none'}`,
    );
    lines.push(
      `  DR copy         ${d.drCopy ? `${d.drCopy.createdAt} (${d.drCopy.ageHours} h ago) ${d.drCopy.recoveryPointArn}` : 'none'}`,
    );
    const t = d.lastRestoreTest;
    lines.push(
      `  restore test    ${t ? `${t.status} ${t.finishedAt ?? t.startedAt} (${t.method}${t.rtoSeconds !== undefined ? `, restored in ${duration(t.rtoSeconds)}` : ''})` : 'none'}`,
    );
    const g = d.lastGoodRestoreTest;
    if (g && g.id !== t?.id)
      lines.push(
        `  last good test  ${g.finishedAt ?? g.startedAt} (${g.method}${g.rtoSeconds !== undefined ? `, restored in ${duration(g.rtoSeconds)}` : ''})`,
      );
    for (const e of d.errors) lines.push(`  ERROR   ${e}`);
    for (const p of d.problems) lines.push(`  PROBLEM ${p}`);
  }
  return `${lines.join('\n')}\n`;
}
