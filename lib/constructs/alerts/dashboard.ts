import { Duration } from 'aws-cdk-lib';
import {
  AlarmStatusWidget,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
  TextWidget,
  type Alarm,
  type IWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { Construct } from 'constructs';
import type { MetricName } from '../../../core/policy/metrics';
import type { ReplicationMetrics } from './alarms';
import type { CofreAlertsProps } from './index';
import { cofreMetric } from './metrics';

/** S3 storage types of `AWS/S3 BucketSizeBytes` shown on the dashboard (the vault's lifecycle uses these). */
const STORAGE_TYPES = [
  'StandardStorage',
  'StandardIAStorage',
  'GlacierInstantRetrievalStorage',
  'GlacierStorage',
  'DeepArchiveStorage',
];

/**
 * The CloudWatch dashboard: schedules and every alarm's state, per database its freshness, restore
 * tests and 30-day success rate, sizes, durations, compression, the vault by storage class, its
 * replication, and (for AWS Backup databases) point-in-time lag and snapshot age.
 */
export function createAlertsDashboard(
  scope: Construct,
  props: CofreAlertsProps,
  /** The construct's live alarm list: the widget reads it at synth, so alarms added later appear too. */
  alarms: Alarm[],
  replication: ReplicationMetrics | undefined,
  limits: { readonly rpoMinutes: number; readonly snapshotMaxAgeHours: number },
): Dashboard {
  const dashboard = new Dashboard(scope, 'Dashboard', {
    defaultInterval: Duration.days(30),
  });
  const day = Duration.days(1);
  const perDb = (metricName: MetricName, statistic: string, period = day) =>
    props.databases.map((db) =>
      cofreMetric(metricName, { Database: db.id }, statistic, period).with({ label: db.id }),
    );
  const schedules = Object.entries(props.scheduleSummary ?? {})
    .map(([job, expression]) => `| ${job} | \`${expression}\` |`)
    .join('\n');
  const widgets: IWidget[][] = [
    [
      new TextWidget({
        markdown: [
          '# Cofre backups',
          `Alarms: critical → e-mail + PagerDuty, warning → e-mail. Schedules (${props.timeZone ?? 'America/Sao_Paulo'}):`,
          '',
          '| job | schedule |',
          '|---|---|',
          schedules || '| (none given) | |',
        ].join('\n'),
        width: 8,
        height: 6,
      }),
      new AlarmStatusWidget({
        title: 'Alarms',
        alarms,
        width: 16,
        height: 6,
      }),
    ],
    ...props.databases.map((db) => [
      new SingleValueWidget({
        title: `${db.id}: status`,
        metrics: [
          cofreMetric(
            'HoursSinceLastGoodBackup',
            { Database: db.id, Kind: 'full' },
            'Maximum',
            Duration.hours(1),
          ).with({
            label: 'hours since last good full backup',
          }),
          ...(db.tenants
            ? [
                cofreMetric(
                  'HoursSinceLastVerifiedTenantExport',
                  { Database: db.id },
                  'Maximum',
                  Duration.hours(1),
                ).with({
                  label: 'hours since last tenant export',
                }),
              ]
            : []),
          cofreMetric('DaysSinceLastGoodRestoreTest', { Database: db.id }, 'Maximum', Duration.hours(1)).with(
            {
              label: 'days since last good restore test',
            },
          ),
          cofreMetric('LastRestoreTestPassed', { Database: db.id }, 'Minimum', Duration.hours(1)).with({
            label: 'last restore test passed (1 = yes)',
          }),
          cofreMetric(
            'LastRestoreTestDurationSeconds',
            { Database: db.id },
            'Maximum',
            Duration.hours(1),
          ).with({
            label: 'last restore test RTO (s)',
          }),
        ],
        width: 16,
        height: 4,
      }),
      new SingleValueWidget({
        title: `${db.id}: success rate, 30 days (%)`,
        metrics: [
          new MathExpression({
            expression: '100 * ok / (ok + FILL(failed, 0))',
            usingMetrics: {
              ok: cofreMetric('BackupSucceeded', { Database: db.id }, 'Sum', Duration.days(30)),
              failed: cofreMetric('BackupFailed', { Database: db.id }, 'Sum', Duration.days(30)),
            },
            period: Duration.days(30),
            label: 'success rate (%)',
          }),
        ],
        setPeriodToTimeRange: true,
        width: 8,
        height: 4,
      }),
    ]),
    [
      new GraphWidget({
        title: 'Backup size (bytes stored)',
        left: perDb('BackupSizeBytes', 'Maximum'),
        width: 8,
      }),
      new GraphWidget({
        title: 'Backup duration (s)',
        left: perDb('BackupDurationSeconds', 'Maximum'),
        width: 8,
      }),
      new GraphWidget({ title: 'Compression ratio', left: perDb('CompressionRatio', 'Average'), width: 8 }),
    ],
    [
      new GraphWidget({
        title: 'Vault size by storage class',
        left: STORAGE_TYPES.map(
          (type) =>
            new Metric({
              namespace: 'AWS/S3',
              metricName: 'BucketSizeBytes',
              dimensionsMap: { BucketName: props.vault.bucket.bucketName, StorageType: type },
              statistic: 'Average',
              period: day,
              label: type,
            }),
        ),
        stacked: true,
        width: 12,
      }),
      new GraphWidget({
        title: 'Replication to the DR vault',
        left: replication ? [replication.latency.with({ label: 'latency (s)' })] : [],
        right: replication ? [replication.failed.with({ label: 'failed operations' })] : [],
        width: 12,
      }),
    ],
  ];
  for (const row of widgets) dashboard.addWidgets(...row);
  const rdsDatabases = props.databases.filter((db) => db.rds !== undefined);
  if (rdsDatabases.length)
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Point-in-time lag (min, now - LatestRestorableTime)',
        left: rdsDatabases.map((db) =>
          cofreMetric('RecoveryPointLagMinutes', { Database: db.id }, 'Maximum', Duration.hours(1)).with({
            label: db.id,
          }),
        ),
        leftAnnotations: [{ value: limits.rpoMinutes, label: `RPO ${limits.rpoMinutes} min` }],
        width: 12,
      }),
      new GraphWidget({
        title: 'Hours since the last AWS Backup snapshot',
        left: rdsDatabases.map((db) =>
          cofreMetric('HoursSinceLastGoodSnapshot', { Database: db.id }, 'Maximum', Duration.hours(1)).with({
            label: db.id,
          }),
        ),
        leftAnnotations: [
          { value: limits.snapshotMaxAgeHours, label: `alarm at ${limits.snapshotMaxAgeHours} h` },
        ],
        width: 12,
      }),
    );
  return dashboard;
}
