import { Duration } from 'aws-cdk-lib';
import { MathExpression, Metric, TreatMissingData, type IMetric } from 'aws-cdk-lib/aws-cloudwatch';
import type { MetricName } from '../../../core/policy/metrics';
import { DEFAULT_SYNCED_FILES_LIMITS } from '../../../core/policy/files-freshness';
import type { AlertSeverity, CofreAlertsProps } from './index';
import { pascal, REPLICATION_RULE_ID } from './index';
import { cofreMetric } from './metrics';

/** One alarm to create: its construct id, route, text, metric and threshold (greater than alarms). */
export interface AlarmSpec {
  readonly id: string;
  readonly severity: AlertSeverity;
  readonly description: string;
  readonly metric: IMetric;
  readonly threshold: number;
  readonly evaluationPeriods?: number;
  readonly treatMissingData?: TreatMissingData;
}

/** The thresholds the alarms compare with (validated by the construct). */
export interface AlarmLimits {
  readonly maxDurationMinutes: number;
  readonly sizeAnomalyPercent: number;
  readonly maxSizeGiB: number;
  readonly restoreTestMaxAgeDays: number;
  readonly rpoMinutes: number;
  readonly snapshotMaxAgeHours: number;
}

/**
 * Per database: freshness of full backups, tenant exports and restore tests (missing data is
 * breaching), size anomaly, size and duration; for AWS Backup databases, snapshot age and
 * point-in-time lag.
 */
export function databaseAlarms(props: CofreAlertsProps, limits: AlarmLimits): AlarmSpec[] {
  const {
    maxDurationMinutes,
    sizeAnomalyPercent,
    maxSizeGiB,
    restoreTestMaxAgeDays,
    rpoMinutes,
    snapshotMaxAgeHours,
  } = limits;
  const specs: AlarmSpec[] = [];
  // Per database: freshness (missing data = breaching), size and duration.
  const graceHours = 24 + maxDurationMinutes / 60;
  for (const db of props.databases) {
    const key = pascal(db.id);
    const fresh = (metricName: MetricName, dims: Record<string, string>) =>
      cofreMetric(metricName, dims, 'Maximum', Duration.hours(1));
    specs.push({
      id: `${key}FullBackupStale`,
      severity: 'critical',
      description: `${db.id}: no good full backup for more than ${graceHours} h (or the freshness check stopped)`,
      metric: fresh('HoursSinceLastGoodBackup', { Database: db.id, Kind: 'full' }),
      threshold: graceHours,
      evaluationPeriods: 2,
      treatMissingData: TreatMissingData.BREACHING,
    });
    if (db.tenants)
      specs.push({
        id: `${key}TenantExportStale`,
        severity: 'warning',
        description: `${db.id}: no verified tenant export for more than ${graceHours} h (the full backup still holds every tenant)`,
        metric: fresh('HoursSinceLastVerifiedTenantExport', { Database: db.id }),
        threshold: graceHours,
        evaluationPeriods: 2,
        treatMissingData: TreatMissingData.BREACHING,
      });
    specs.push({
      id: `${key}RestoreTestStale`,
      severity: 'high',
      description: `${db.id}: no good restore test for more than ${restoreTestMaxAgeDays} days`,
      metric: fresh('DaysSinceLastGoodRestoreTest', { Database: db.id }),
      threshold: restoreTestMaxAgeDays,
      evaluationPeriods: 2,
      treatMissingData: TreatMissingData.BREACHING,
    });
    specs.push({
      id: `${key}SizeAnomaly`,
      severity: 'warning',
      description: `${db.id}: backup size differs from the trailing average by more than ${sizeAnomalyPercent} %`,
      metric: new MathExpression({
        expression: 'ABS(deviation)',
        usingMetrics: {
          deviation: cofreMetric(
            'BackupSizeDeviationPercent',
            { Database: db.id },
            'Maximum',
            Duration.hours(1),
          ),
        },
        period: Duration.hours(1),
        label: 'size deviation from the trailing average (%)',
      }),
      threshold: sizeAnomalyPercent,
    });
    specs.push({
      id: `${key}BackupTooLarge`,
      severity: 'warning',
      description: `${db.id}: a backup is larger than ${maxSizeGiB} GiB`,
      metric: cofreMetric('BackupSizeBytes', { Database: db.id }, 'Maximum', Duration.hours(1)),
      threshold: maxSizeGiB * 1024 ** 3,
    });
    specs.push({
      id: `${key}BackupTooSlow`,
      severity: 'warning',
      description: `${db.id}: a backup took longer than ${maxDurationMinutes} min`,
      metric: cofreMetric('BackupDurationSeconds', { Database: db.id }, 'Maximum', Duration.hours(1)),
      threshold: maxDurationMinutes * 60,
    });
  }

  const rdsDatabases = props.databases.filter((d) => d.rds !== undefined);
  // AWS Backup databases: snapshot age and point-in-time lag (missing data = breaching).
  for (const db of rdsDatabases) {
    const key = pascal(db.id);
    specs.push({
      id: `${key}SnapshotStale`,
      severity: 'critical',
      description: `${db.id}: no completed AWS Backup snapshot for more than ${snapshotMaxAgeHours} h (or the freshness check stopped)`,
      metric: cofreMetric('HoursSinceLastGoodSnapshot', { Database: db.id }, 'Maximum', Duration.hours(1)),
      threshold: snapshotMaxAgeHours,
      evaluationPeriods: 2,
      treatMissingData: TreatMissingData.BREACHING,
    });
    specs.push({
      id: `${key}RecoveryPointLag`,
      severity: 'critical',
      description: `${db.id}: the latest restorable time is more than ${rpoMinutes} min old (RPO), or RDS reports none`,
      metric: cofreMetric('RecoveryPointLagMinutes', { Database: db.id }, 'Maximum', Duration.hours(1)),
      threshold: rpoMinutes,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.BREACHING,
    });
  }
  // Application buckets under AWS Backup: age of the last completed periodic recovery point, and of
  // the last good weekly AWS Backup restore test (lib/constructs/bucket-restore-tests.ts).
  for (const bucket of props.backupBuckets ?? []) {
    specs.push({
      id: `${pascal(bucket.bucketName)}FilesRestoreTestStale`,
      severity: 'critical',
      description: `${bucket.bucketName}: no good weekly AWS Backup restore test of the bucket for more than ${DEFAULT_SYNCED_FILES_LIMITS.restoreTestDays} days (or the freshness check stopped)`,
      metric: cofreMetric(
        'DaysSinceLastGoodFilesRestoreTest',
        { Bucket: bucket.bucketName },
        'Maximum',
        Duration.hours(1),
      ),
      threshold: DEFAULT_SYNCED_FILES_LIMITS.restoreTestDays,
      evaluationPeriods: 2,
      treatMissingData: TreatMissingData.BREACHING,
    });
    specs.push({
      id: `${pascal(bucket.bucketName)}FilesBackupStale`,
      severity: 'critical',
      description: `${bucket.bucketName}: no completed AWS Backup recovery point of the bucket for more than ${snapshotMaxAgeHours} h (or the freshness check stopped)`,
      metric: cofreMetric(
        'HoursSinceLastGoodFilesBackup',
        { Bucket: bucket.bucketName },
        'Maximum',
        Duration.hours(1),
      ),
      threshold: snapshotMaxAgeHours,
      evaluationPeriods: 2,
      treatMissingData: TreatMissingData.BREACHING,
    });
  }
  // S3-compatible buckets synced by the files task: the last good sync and the last good restore test.
  for (const bucket of props.syncedBuckets ?? []) {
    const { syncHours, restoreTestDays } = DEFAULT_SYNCED_FILES_LIMITS;
    specs.push({
      id: `${pascal(bucket)}FilesSyncStale`,
      severity: 'critical',
      description: `${bucket}: no good files sync of the S3-compatible bucket for more than ${syncHours} h (or the freshness check stopped)`,
      metric: cofreMetric('HoursSinceLastGoodFilesBackup', { Bucket: bucket }, 'Maximum', Duration.hours(1)),
      threshold: syncHours,
      evaluationPeriods: 2,
      treatMissingData: TreatMissingData.BREACHING,
    });
    specs.push({
      id: `${pascal(bucket)}FilesRestoreTestStale`,
      severity: 'critical',
      description: `${bucket}: no good weekly files restore test for more than ${restoreTestDays} days (or the freshness check stopped)`,
      metric: cofreMetric(
        'DaysSinceLastGoodFilesRestoreTest',
        { Bucket: bucket },
        'Maximum',
        Duration.hours(1),
      ),
      threshold: restoreTestDays,
      evaluationPeriods: 2,
      treatMissingData: TreatMissingData.BREACHING,
    });
  }
  return specs;
}

/** The S3 replication metrics of the vault's rule to the DR bucket. */
export interface ReplicationMetrics {
  readonly latency: Metric;
  readonly failed: Metric;
}

/**
 * Replication of the vault to the DR region (S3 Replication Time Control: 15 minutes): its metrics
 * and alarms, when there is a replica.
 */
export function replicationAlarms(
  props: CofreAlertsProps,
): { metrics: ReplicationMetrics; alarms: AlarmSpec[] } | undefined {
  const specs: AlarmSpec[] = [];
  if (!props.replicaBucketName) return undefined;
  const dims = {
    SourceBucket: props.vault.bucket.bucketName,
    DestinationBucket: props.replicaBucketName,
    RuleId: REPLICATION_RULE_ID,
  };
  const replication: ReplicationMetrics = {
    latency: new Metric({
      namespace: 'AWS/S3',
      metricName: 'ReplicationLatency',
      dimensionsMap: dims,
      statistic: 'Maximum',
      period: Duration.minutes(5),
    }),
    failed: new Metric({
      namespace: 'AWS/S3',
      metricName: 'OperationsFailedReplication',
      dimensionsMap: dims,
      statistic: 'Sum',
      period: Duration.minutes(5),
    }),
  };
  specs.push({
    id: 'ReplicationLate',
    severity: 'warning',
    description: 'Vault replication to the DR region is later than its 15-minute Replication Time Control',
    metric: replication.latency,
    threshold: 900,
    evaluationPeriods: 3,
  });
  specs.push({
    id: 'ReplicationFailed',
    severity: 'warning',
    description: 'Objects of the vault failed to replicate to the DR region',
    metric: replication.failed,
    threshold: 0,
  });
  return { metrics: replication, alarms: specs };
}
