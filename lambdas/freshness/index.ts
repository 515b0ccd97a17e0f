/**
 * Freshness: runs hourly (EventBridge Scheduler). Reads the history table and publishes, per
 * database, HoursSinceLastGoodBackup (Kind=full), HoursSinceLastVerifiedTenantExport and
 * DaysSinceLastGoodRestoreTest as EMF (core/alerts/freshness.ts). A database without a good run gets
 * no datapoint, so its alarm (missing data = breaching) fires; so does a checker that stopped.
 *
 * For RDS/Aurora databases protected by AWS Backup it also publishes HoursSinceLastGoodSnapshot and
 * RecoveryPointLagMinutes (now − LatestRestorableTime).
 *
 * Env: COFRE_HISTORY_TABLE, COFRE_DATABASES (JSON [{"database","tenants","rds"?}]), COFRE_MAX_DURATION_MINUTES,
 * COFRE_FILES_BUCKETS (JSON [bucket names under AWS Backup]) and COFRE_FILES_MAX_AGE_HOURS (optional),
 * COFRE_FILES_SYNCED_BUCKETS (JSON [S3-compatible bucket names]: HoursSinceLastGoodFilesBackup of their
 * sync runs and DaysSinceLastGoodFilesRestoreTest, core/alerts/freshness.ts checkSyncedFilesFreshness),
 * COFRE_RESTORE_TEST_MAX_AGE_DAYS; optional COFRE_SNAPSHOT_MAX_AGE_HOURS, COFRE_RPO_MINUTES,
 * COFRE_CONFIG_SNAPSHOT_MAX_AGE_HOURS (configuration snapshots are deployed: publish
 * HoursSinceLastGoodConfigSnapshot).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { numberEnv, optionalEnv, requiredEnv, schemaEnv } from '../../core/aws/env';
import { RDSClient } from '@aws-sdk/client-rds';
import {
  checkConfigFreshness,
  checkFilesFreshness,
  checkSyncedFilesFreshness,
  checkFreshness,
  rdsLatestRestorableTime,
  type FreshnessTarget,
  type LatestRestorableTime,
} from '../../core/alerts/freshness';
import { DynamoHistoryStore, type HistoryStore } from '../../core/history/store';
import { lambdaHandler, powertools } from '../../core/aws/powertools';

const targetsSchema = z.array(
  z.strictObject({
    database: z.string().min(1),
    tenants: z.boolean(),
    rds: z
      .union([
        z.strictObject({ rdsInstanceId: z.string().min(1) }),
        z.strictObject({ rdsClusterId: z.string().min(1) }),
      ])
      .optional(),
  }),
);

/** `COFRE_FILES_BUCKETS`: the application buckets under AWS Backup. */
const filesBucketsSchema = z.array(z.string().min(3));

export interface FreshnessHandlerDeps {
  readonly store: Pick<HistoryStore, 'latest'>;
  /** Reads LatestRestorableTime (RDS API); needed when a target has `rds`. */
  readonly latestRestorableTime?: LatestRestorableTime;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly now?: () => Date;
}

export function freshnessSettings() {
  const targets = schemaEnv('COFRE_DATABASES', targetsSchema);
  const graceHours = numberEnv('COFRE_MAX_DURATION_MINUTES') / 60;
  return {
    targets: targets as FreshnessTarget[],
    limits: {
      fullBackupHours: 24 + graceHours,
      tenantExportHours: 24 + graceHours,
      restoreTestDays: numberEnv('COFRE_RESTORE_TEST_MAX_AGE_DAYS'),
      ...(optionalEnv('COFRE_SNAPSHOT_MAX_AGE_HOURS') !== undefined
        ? { snapshotHours: numberEnv('COFRE_SNAPSHOT_MAX_AGE_HOURS') }
        : {}),
      ...(optionalEnv('COFRE_RPO_MINUTES') !== undefined
        ? { rpoMinutes: numberEnv('COFRE_RPO_MINUTES') }
        : {}),
    },
    filesBuckets: optionalEnv('COFRE_FILES_BUCKETS')
      ? schemaEnv('COFRE_FILES_BUCKETS', filesBucketsSchema)
      : [],
    filesHours: optionalEnv('COFRE_FILES_MAX_AGE_HOURS') ? numberEnv('COFRE_FILES_MAX_AGE_HOURS') : undefined,
    syncedBuckets: optionalEnv('COFRE_FILES_SYNCED_BUCKETS')
      ? schemaEnv('COFRE_FILES_SYNCED_BUCKETS', filesBucketsSchema)
      : [],
    configHours: optionalEnv('COFRE_CONFIG_SNAPSHOT_MAX_AGE_HOURS')
      ? numberEnv('COFRE_CONFIG_SNAPSHOT_MAX_AGE_HOURS')
      : undefined,
  };
}

export function createFreshnessHandler(deps: FreshnessHandlerDeps) {
  const { targets, limits, configHours, filesBuckets, filesHours, syncedBuckets } = freshnessSettings();
  // Only our own dimensions: the alarms select exactly {Database, Kind} or {Database}.
  deps.metrics.clearDefaultDimensions();
  return async () => {
    const now = (deps.now ?? (() => new Date()))();
    const { findings, metrics } = await checkFreshness(
      deps.store,
      targets,
      now,
      limits,
      deps.latestRestorableTime,
    );
    if (filesBuckets.length) {
      const files = await checkFilesFreshness(deps.store, filesBuckets, now, filesHours);
      findings.push(...files.findings);
      metrics.push(...files.metrics);
    }
    if (syncedBuckets.length) {
      const synced = await checkSyncedFilesFreshness(deps.store, syncedBuckets, now);
      findings.push(...synced.findings);
      metrics.push(...synced.metrics);
    }
    if (configHours !== undefined) {
      const config = await checkConfigFreshness(deps.store, now, configHours);
      findings.push(config.finding);
      if (config.metric) metrics.push(config.metric);
    }
    for (const f of findings) {
      const line = { ...f };
      if (f.state === 'fresh') deps.logger.info(`${f.database} ${f.check}: fresh`, line);
      else deps.logger.warn(`${f.database} ${f.check}: ${f.state}`, line);
    }
    for (const m of metrics) {
      deps.metrics.addDimensions({ ...m.dimensions });
      deps.metrics.addMetric(m.name, m.unit, m.value);
      deps.metrics.publishStoredMetrics();
    }
    return {
      findings: findings.length,
      datapoints: metrics.length,
      stale: findings.filter((f) => f.state !== 'fresh').length,
    };
  };
}

const pt = powertools('cofre-freshness');

export const handler = lambdaHandler(pt, 'freshness', () =>
  createFreshnessHandler({
    store: new DynamoHistoryStore(
      DynamoDBDocumentClient.from(pt.traced(new DynamoDBClient({}))),
      requiredEnv('COFRE_HISTORY_TABLE'),
    ),
    latestRestorableTime: rdsLatestRestorableTime(pt.traced(new RDSClient({}))),
    logger: pt.logger,
    metrics: pt.metrics,
  }),
);
