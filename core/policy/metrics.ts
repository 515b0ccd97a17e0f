/**
 * CloudWatch metrics of the pipeline (namespace `Cofre`, dimension `Database`): their names, and the
 * pure computation of one backup's metrics. The Lambdas emit them as EMF with Powertools Metrics; the
 * local runner prints them. Alarms (lib/) are built on the same names.
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
  // The freshness metrics (lambdas/freshness) (names listed here so alarms and emitters share one list).
  HoursSinceLastGoodBackup: { name: 'HoursSinceLastGoodBackup', unit: 'None' },
  DaysSinceLastGoodRestoreTest: { name: 'DaysSinceLastGoodRestoreTest', unit: 'None' },
  HoursSinceLastVerifiedTenantExport: { name: 'HoursSinceLastVerifiedTenantExport', unit: 'None' },
} as const;
export type MetricName = keyof typeof METRICS;
export type MetricUnit = (typeof METRICS)[MetricName]['unit'];

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
    { ...METRICS.BackupSucceeded, name: 'BackupSucceeded', value: 1 },
    { ...METRICS.BackupSizeBytes, name: 'BackupSizeBytes', value: m.storedBytes },
    { ...METRICS.BackupDurationSeconds, name: 'BackupDurationSeconds', value: round(m.durationSeconds) },
  ];
  if (m.storedBytes > 0)
    metrics.push({
      ...METRICS.CompressionRatio,
      name: 'CompressionRatio',
      value: round(m.rawBytes / m.storedBytes),
    });
  const anomalies: string[] = [];
  const previous = m.previousStoredBytes.slice(0, TRAILING_BACKUPS).filter((b) => b > 0);
  let sizeDeviationPercent: number | undefined;
  if (previous.length > 0) {
    const average = previous.reduce((a, b) => a + b, 0) / previous.length;
    sizeDeviationPercent = round(((m.storedBytes - average) / average) * 100);
    metrics.push({
      ...METRICS.BackupSizeDeviationPercent,
      name: 'BackupSizeDeviationPercent',
      value: sizeDeviationPercent,
    });
    if (Math.abs(sizeDeviationPercent) > m.sizeAnomalyPercent)
      anomalies.push(
        `size ${m.storedBytes} bytes is ${sizeDeviationPercent > 0 ? '+' : ''}${sizeDeviationPercent} % from the average of the last ${previous.length} good backups (${Math.round(average)} bytes); threshold ±${m.sizeAnomalyPercent} %`,
      );
  }
  const durationOverThreshold = m.durationSeconds > m.maxDurationMinutes * 60;
  metrics.push({
    ...METRICS.BackupDurationOverThreshold,
    name: 'BackupDurationOverThreshold',
    value: durationOverThreshold ? 1 : 0,
  });
  if (durationOverThreshold)
    anomalies.push(
      `took ${Math.round(m.durationSeconds)} s, more than the threshold of ${m.maxDurationMinutes} minutes`,
    );
  return { metrics, sizeDeviationPercent, durationOverThreshold, anomalies };
}

/** The metric of a failed run. */
export function failureMetrics(): MetricDatum[] {
  return [{ ...METRICS.BackupFailed, name: 'BackupFailed', value: 1 }];
}

/** Where metrics go: Powertools Metrics in a Lambda, the console locally, an array in tests. */
export interface MetricsSink {
  emit(database: string, metrics: readonly MetricDatum[]): void | Promise<void>;
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
