/**
 * The metric factory: the one source of Cofre's CloudWatch namespace, every metric name and its
 * unit. The runtime publishers (the pipeline Lambdas' EMF, the freshness check, the local runner) and
 * the alarms and dashboard of lib/constructs/alerts build their metrics from here, so a misspelled
 * name is a type error instead of an alarm that never fires. Pure: lib/ imports it.
 */

export const METRICS_NAMESPACE = 'Cofre';
export const DATABASE_DIMENSION = 'Database';

/** Metric names and units (CloudWatch unit names, as Powertools spells them). */
export const METRICS = {
  BackupSucceeded: { name: 'BackupSucceeded', unit: 'Count' },
  BackupFailed: { name: 'BackupFailed', unit: 'Count' },
  BackupSizeBytes: { name: 'BackupSizeBytes', unit: 'Bytes' },
  BackupDurationSeconds: { name: 'BackupDurationSeconds', unit: 'Seconds' },
  CompressionRatio: { name: 'CompressionRatio', unit: 'None' },
  /** Signed: +40 means 40 % larger than the trailing average of previous good backups. */
  BackupSizeDeviationPercent: { name: 'BackupSizeDeviationPercent', unit: 'Percent' },
  /** 1 when the backup ran longer than `thresholds.maxDurationMinutes`, else 0. */
  BackupDurationOverThreshold: { name: 'BackupDurationOverThreshold', unit: 'Count' },
  // The freshness check's metrics (core/alerts/freshness.ts, published by lambdas/freshness).
  HoursSinceLastGoodBackup: { name: 'HoursSinceLastGoodBackup', unit: 'None' },
  DaysSinceLastGoodRestoreTest: { name: 'DaysSinceLastGoodRestoreTest', unit: 'None' },
  HoursSinceLastVerifiedTenantExport: { name: 'HoursSinceLastVerifiedTenantExport', unit: 'None' },
  /** Duration of the latest good restore test: the measured RTO. */
  LastRestoreTestDurationSeconds: { name: 'LastRestoreTestDurationSeconds', unit: 'Seconds' },
  /** 1 when the latest restore test succeeded, 0 when it failed. */
  LastRestoreTestPassed: { name: 'LastRestoreTestPassed', unit: 'Count' },
  /** Hours since the last completed AWS Backup snapshot of an RDS/Aurora database. */
  HoursSinceLastGoodSnapshot: { name: 'HoursSinceLastGoodSnapshot', unit: 'None' },
  /** Minutes between now and the database's LatestRestorableTime: the point-in-time recovery lag. */
  RecoveryPointLagMinutes: { name: 'RecoveryPointLagMinutes', unit: 'None' },
  /** Hours since the last completed AWS Backup periodic recovery point of an application bucket. */
  HoursSinceLastGoodFilesBackup: { name: 'HoursSinceLastGoodFilesBackup', unit: 'None' },
  /** Days since the last good weekly restore test of an S3-compatible bucket (kind `files-restore-test`). */
  DaysSinceLastGoodFilesRestoreTest: { name: 'DaysSinceLastGoodFilesRestoreTest', unit: 'None' },
  /** Hours since the last weekly configuration snapshot that wrote every configured value. */
  HoursSinceLastGoodConfigSnapshot: { name: 'HoursSinceLastGoodConfigSnapshot', unit: 'None' },
} as const satisfies Record<string, { name: string; unit: string }>;
export type MetricName = keyof typeof METRICS;
export type MetricUnit = (typeof METRICS)[MetricName]['unit'];

/** One of Cofre's metrics as CloudWatch names it (what a CDK `Metric` and an alarm need). */
export interface MetricIdentity {
  readonly namespace: typeof METRICS_NAMESPACE;
  readonly metricName: MetricName;
  readonly dimensionsMap: Readonly<Record<string, string>>;
}

/** The metric `name` with these dimensions, in Cofre's namespace. */
export function metricIdentity(
  name: MetricName,
  dimensions: Readonly<Record<string, string>> = {},
): MetricIdentity {
  return { namespace: METRICS_NAMESPACE, metricName: METRICS[name].name, dimensionsMap: { ...dimensions } };
}

/** One value of the metric `name`, with its unit. */
export function datum(name: MetricName, value: number): MetricDatum {
  return { name, unit: METRICS[name].unit, value };
}

/** One value to emit. */
export interface MetricDatum {
  readonly name: MetricName;
  readonly unit: MetricUnit;
  readonly value: number;
}

export interface BackupMeasurement {
  /** Bytes stored in the vault (all artifacts of the run). */
  readonly storedBytes: number;
  /** Plaintext bytes dumped. */
  readonly rawBytes: number;
  readonly durationSeconds: number;
  /** Stored bytes of previous good backups of the same database (newest first), for the trailing average. */
  readonly previousStoredBytes: readonly number[];
  readonly maxDurationMinutes: number;
  readonly sizeAnomalyPercent: number;
}

/** Previous good backups in the trailing average. */
export const TRAILING_BACKUPS = 7;

export interface BackupMetrics {
  readonly metrics: readonly MetricDatum[];
  /** Signed deviation from the trailing average; undefined for the first backup. */
  readonly sizeDeviationPercent: number | undefined;
  readonly durationOverThreshold: boolean;
  /** Human-readable anomalies (size beyond ±N %, duration over the threshold). */
  readonly anomalies: readonly string[];
}

/** The metrics of one successful backup, and its anomalies. */
export function backupMetrics(m: BackupMeasurement): BackupMetrics {
  const metrics: MetricDatum[] = [
    datum('BackupSucceeded', 1),
    datum('BackupSizeBytes', m.storedBytes),
    datum('BackupDurationSeconds', round(m.durationSeconds)),
  ];
  if (m.storedBytes > 0) metrics.push(datum('CompressionRatio', round(m.rawBytes / m.storedBytes)));
  const anomalies: string[] = [];
  const previous = m.previousStoredBytes.slice(0, TRAILING_BACKUPS).filter((b) => b > 0);
  let sizeDeviationPercent: number | undefined;
  if (previous.length > 0) {
    const average = previous.reduce((a, b) => a + b, 0) / previous.length;
    sizeDeviationPercent = round(((m.storedBytes - average) / average) * 100);
    metrics.push(datum('BackupSizeDeviationPercent', sizeDeviationPercent));
    if (Math.abs(sizeDeviationPercent) > m.sizeAnomalyPercent)
      anomalies.push(
        `size ${m.storedBytes} bytes is ${sizeDeviationPercent > 0 ? '+' : ''}${sizeDeviationPercent} % from the average of the last ${previous.length} good backups (${Math.round(average)} bytes); threshold ±${m.sizeAnomalyPercent} %`,
      );
  }
  const durationOverThreshold = m.durationSeconds > m.maxDurationMinutes * 60;
  metrics.push(datum('BackupDurationOverThreshold', durationOverThreshold ? 1 : 0));
  if (durationOverThreshold)
    anomalies.push(
      `took ${Math.round(m.durationSeconds)} s, more than the threshold of ${m.maxDurationMinutes} minutes`,
    );
  return { metrics, sizeDeviationPercent, durationOverThreshold, anomalies };
}

/** The metric of a failed run. */
export function failureMetrics(): MetricDatum[] {
  return [datum('BackupFailed', 1)];
}

/** Where metrics go: Powertools Metrics in a Lambda, the console locally, an array in tests. */
export interface MetricsSink {
  emit(database: string, metrics: readonly MetricDatum[]): void | Promise<void>;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
