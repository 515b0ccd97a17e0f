import path from 'node:path';
import { ArnFormat, CfnElement, CfnOutput, Duration, RemovalPolicy, Stack, TimeZone } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  MathExpression,
  Metric,
  SingleValueWidget,
  TextWidget,
  TreatMissingData,
  AlarmStatusWidget,
  type IMetric,
  type IWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction, SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { AnyPrincipal, Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Schedule, ScheduleExpression, TimeWindow } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { CfnSubscription, Subscription, SubscriptionProtocol, Topic } from 'aws-cdk-lib/aws-sns';
import { Queue, QueueEncryption, type IQueue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { BACKUP_EVENT_TYPES } from '../../core/alerts/backup-events';
import type { CofreConfig } from '../config';
import { acknowledge } from '../nag';
import type { BackupHistory } from './backup-history';
import type { BackupVault } from './backup-vault';
import { CofreFunction } from './cofre-function';
import { administeredKeyPolicy, logsEncryptionStatement, usableOnlyThroughServices } from './key-policy';

const LAMBDAS = path.join(__dirname, '..', '..', 'lambdas');

/** Where an alarm goes: `critical` → e-mail + PagerDuty; `high` → the same, PagerDuty severity `error`; `warning` → e-mail. */
export type AlertSeverity = 'critical' | 'high' | 'warning';

/** The namespace of Cofre's own metrics. */
export const COFRE_NAMESPACE = 'Cofre';

/** Id of the vault's replication rule (`BackupVault`), a dimension of the S3 replication metrics. */
export const REPLICATION_RULE_ID = 'cofre-replicate-to-dr';

/**
 * Subscription filter of the e-mail subscriptions on the alerts topic: every message for people, and
 * CloudWatch alarm messages (which carry no attributes); not the successes that only resolve a
 * PagerDuty incident (`audience: pagerduty`, sent when `notifyOnSuccess` is off).
 */
export const EMAIL_FILTER_POLICY = { $or: [{ audience: ['people'] }, { audience: [{ exists: false }] }] };

/**
 * Subscription filter of the PagerDuty Lambda: critical pipeline messages (trigger), successes
 * (resolve), and CloudWatch alarm messages (no attributes: trigger on ALARM, resolve on OK).
 * `severity: critical` alone would drop the successes and alarms that resolve incidents.
 */
export const PAGERDUTY_FILTER_POLICY = {
  $or: [{ severity: ['critical'] }, { outcome: ['succeeded'] }, { severity: [{ exists: false }] }],
};

/** S3 storage types of `AWS/S3 BucketSizeBytes` shown on the dashboard (the vault's lifecycle uses these). */
const STORAGE_TYPES = [
  'StandardStorage',
  'StandardIAStorage',
  'GlacierInstantRetrievalStorage',
  'GlacierStorage',
  'DeepArchiveStorage',
];

/** A database the alerts watch. */
export interface AlertedDatabase {
  /** `databases[].id`: the `Database` dimension of the metrics. */
  readonly id: string;
  /** Per-tenant exports are configured, so their freshness is alarmed. */
  readonly tenants: boolean;
  /**
   * The RDS instance or Aurora cluster AWS Backup protects: its job events are recorded and its
   * snapshot age and point-in-time lag alarmed.
   * @default - not protected by AWS Backup
   */
  readonly rds?: {
    readonly rdsInstanceId?: string;
    readonly rdsClusterId?: string;
    /** ARN AWS Backup reports as the job's `resourceArn`. */
    readonly resourceArn: string;
  };
}

/** Per-GB-month storage prices for the monthly report (the config's `prices`). */
export interface AlertPrices {
  readonly currency: string;
  readonly storageGbMonth: Readonly<Record<string, number>>;
}

/** Properties of {@link CofreAlerts}. */
export interface CofreAlertsProps {
  /** Addresses subscribed to both routes (each confirms the subscription e-mail once per topic). */
  readonly emails: readonly string[];
  /**
   * Secret holding the PagerDuty Events API v2 routing key; without it nothing pages.
   * @default - no PagerDuty
   */
  readonly pagerDutyRoutingKeySecretArn?: string;
  /**
   * E-mail every successful backup too (a success is always sent to PagerDuty, to resolve).
   * @default false
   */
  readonly notifyOnSuccess?: boolean;
  /** The databases to watch. */
  readonly databases: readonly AlertedDatabase[];
  /**
   * Application buckets AWS Backup protects: their job events are recorded (database `s3:<bucket>`) and alert.
   * @default - none
   */
  readonly backupBuckets?: readonly { readonly bucketName: string; readonly resourceArn: string }[];
  /** The vault: size by storage class, replication metrics, runbook lines. */
  readonly vault: BackupVault;
  /**
   * Name of the DR vault bucket (the replication metrics' `DestinationBucket`).
   * @default - no replication alarms
   */
  readonly replicaBucketName?: string;
  /** The backup history, read by the freshness check and the monthly report. */
  readonly history: BackupHistory;
  /**
   * A backup longer than this alarms; also the grace a running backup gets before freshness alarms.
   * @default 30
   */
  readonly maxDurationMinutes?: number;
  /**
   * A backup whose size differs from the trailing average by more than this many percent alarms.
   * @default 30
   */
  readonly sizeAnomalyPercent?: number;
  /**
   * A backup larger than this alarms.
   * @default 50
   */
  readonly maxSizeGiB?: number;
  /**
   * Days without a good restore test before the `[high]` alarm: the default schedule (first Sunday of
   * the month) runs them up to 35 days apart, so 30 would fire every few months for nothing.
   * @default 36
   */
  readonly restoreTestMaxAgeDays?: number;
  /** Storage prices for the monthly report. */
  readonly prices: AlertPrices;
  /**
   * Recovery point objective of the AWS Backup databases in minutes: the RecoveryPointLagMinutes alarm.
   * @default 60
   */
  readonly rpoMinutes?: number;
  /**
   * Hours without a completed AWS Backup snapshot before the alarm: daily plus 2 h for the job.
   * @default 26
   */
  readonly snapshotMaxAgeHours?: number;
  /**
   * Time zone of the monthly report schedule.
   * @default 'America/Sao_Paulo'
   */
  readonly timeZone?: string;
  /**
   * When the monthly report is sent (EventBridge Scheduler expression in `timeZone`).
   * @default 'cron(0 8 1 * ? *)' (08:00 on the 1st)
   */
  readonly monthlyReportSchedule?: string;
  /**
   * Schedules shown on the dashboard (e.g. the config's `schedules`).
   * @default {}
   */
  readonly scheduleSummary?: Readonly<Record<string, string>>;
}

/**
 * Alerts that cannot stay silent. Two SNS topics encrypted with the alerts key (rotated, `RETAIN`):
 * the **alerts topic** (critical route: e-mail and PagerDuty; the pipeline's notify messages and
 * critical alarms) and the **warning topic** (e-mail only). Their policies refuse non-TLS publishing
 * and principals outside this account, and let CloudWatch alarms of this account publish. The notify,
 * PagerDuty, freshness (hourly) and monthly-report Lambdas; freshness alarms (missing data =
 * breaching), size, duration and replication alarms, each with OK actions; a dashboard. Methods add
 * alarms for the pipeline's own functions, queues, state machines and ECS tasks.
 */
export class CofreAlerts extends Construct {
  /** Key of the topics, the alert Lambdas' logs and environments, and the alert queues. */
  public readonly key: Key;
  /** Critical route: e-mail + PagerDuty. Pipeline messages (`COFRE_TOPIC_ARN`) go here. */
  public readonly topic: Topic;
  /** Warning route: e-mail only. */
  public readonly warningTopic: Topic;
  /** The notify Lambda: the state machines' `${NotifyFunctionArn}`. */
  public readonly notifyFunction: CofreFunction;
  /** The hourly freshness check. */
  public readonly freshnessFunction: CofreFunction;
  /** The monthly report. */
  public readonly monthlyReportFunction: CofreFunction;
  /** The PagerDuty relay, when a routing key secret is configured. */
  public readonly pagerDutyFunction?: CofreFunction;
  /** Records and reports AWS Backup job events, when a database is protected by AWS Backup. */
  public readonly backupEventsFunction?: CofreFunction;
  /** The EventBridge rule that sends AWS Backup job events to {@link backupEventsFunction}. */
  public readonly backupEventsRule?: Rule;
  /** Messages SNS could not deliver to a subscription (e-mail, PagerDuty Lambda). */
  public readonly undeliveredQueue: Queue;
  /** Where schedule invocations that failed after their retries go. */
  public readonly scheduleDeadLetterQueue: Queue;
  /** Every alarm, by construct id. */
  public readonly alarms: Map<string, Alarm> = new Map();
  /** The CloudWatch dashboard. */
  public readonly dashboard: Dashboard;

  /** Every alarm, in order; the dashboard's alarm widget reads this list at synth, so later alarms appear too. */
  private readonly alarmList: Alarm[] = [];
  private readonly criticalAction: SnsAction;
  private readonly warningAction: SnsAction;

  constructor(scope: Construct, id: string, props: CofreAlertsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const maxDurationMinutes = props.maxDurationMinutes ?? 30;
    const sizeAnomalyPercent = props.sizeAnomalyPercent ?? 30;
    const maxSizeGiB = props.maxSizeGiB ?? 50;
    const restoreTestMaxAgeDays = props.restoreTestMaxAgeDays ?? 36;
    const check = (name: string, value: number, min: number, max: number) => {
      if (!Number.isFinite(value) || value < min || value > max)
        throw new Error(
          `CofreAlerts ${this.node.path}: ${name} must be between ${min} and ${max}, got ${value}`,
        );
    };
    check('maxDurationMinutes', maxDurationMinutes, 1, 1440);
    check('sizeAnomalyPercent', sizeAnomalyPercent, 1, 1000);
    check('maxSizeGiB', maxSizeGiB, 0.001, 1_000_000);
    check('restoreTestMaxAgeDays', restoreTestMaxAgeDays, 1, 366);
    const rpoMinutes = props.rpoMinutes ?? 60;
    const snapshotMaxAgeHours = props.snapshotMaxAgeHours ?? 26;
    check('rpoMinutes', rpoMinutes, 1, 1440);
    check('snapshotMaxAgeHours', snapshotMaxAgeHours, 1, 24 * 400);
    const rdsDatabases = props.databases.filter((d) => d.rds !== undefined);
    if (props.emails.length === 0)
      throw new Error(
        `CofreAlerts ${this.node.path}: emails must hold at least one address, so that failures reach a person`,
      );

    this.key = this.createKey();

    const topicProps = { masterKey: this.key, enforceSSL: true };
    this.topic = new Topic(this, 'Topic', { ...topicProps, displayName: 'Cofre alerts (critical)' });
    this.warningTopic = new Topic(this, 'WarningTopic', {
      ...topicProps,
      displayName: 'Cofre alerts (warning)',
    });
    for (const topic of [this.topic, this.warningTopic]) this.restrictPublishing(topic);
    this.criticalAction = new SnsAction(this.topic);
    this.warningAction = new SnsAction(this.warningTopic);
    // Messages SNS could not deliver to a subscriber (e-mail or the PagerDuty Lambda) land here.
    this.undeliveredQueue = this.queue('UndeliveredQueue');

    props.emails.forEach((email, i) => {
      const critical = new Subscription(this, `Email${i}`, {
        topic: this.topic,
        endpoint: email,
        protocol: SubscriptionProtocol.EMAIL,
        deadLetterQueue: this.undeliveredQueue,
      });
      (critical.node.defaultChild as CfnSubscription).filterPolicy = EMAIL_FILTER_POLICY;
      new Subscription(this, `WarningEmail${i}`, {
        topic: this.warningTopic,
        endpoint: email,
        protocol: SubscriptionProtocol.EMAIL,
        deadLetterQueue: this.undeliveredQueue,
      });
    });

    // Notify: invoked synchronously by the state machines.
    this.notifyFunction = new CofreFunction(this, 'Notify', {
      entry: path.join(LAMBDAS, 'notify', 'index.ts'),
      description: 'Cofre: formats a job outcome and publishes it to the alerts topic',
      encryptionKey: this.key,
      environment: {
        COFRE_TOPIC_ARN: this.topic.topicArn,
        COFRE_NOTIFY_ON_SUCCESS: String(props.notifyOnSuccess ?? false),
        COFRE_VAULT_URL: `s3://${props.vault.bucket.bucketName}`,
      },
    });
    this.topic.grantPublish(this.notifyFunction.function);

    if (props.pagerDutyRoutingKeySecretArn) {
      const secret = Secret.fromSecretCompleteArn(
        this,
        'PagerDutySecret',
        props.pagerDutyRoutingKeySecretArn,
      );
      const pd = new CofreFunction(this, 'PagerDuty', {
        entry: path.join(LAMBDAS, 'pagerduty', 'index.ts'),
        description: 'Cofre: sends critical alerts to PagerDuty (Events API v2 trigger / resolve)',
        encryptionKey: this.key,
        asyncInvocation: true,
        environment: { COFRE_PAGERDUTY_SECRET_ARN: secret.secretArn },
      });
      secret.grantRead(pd.function);
      const subscription = new Subscription(this, 'PagerDutySubscription', {
        topic: this.topic,
        endpoint: pd.function.functionArn,
        protocol: SubscriptionProtocol.LAMBDA,
        deadLetterQueue: this.undeliveredQueue,
      });
      (subscription.node.defaultChild as CfnSubscription).filterPolicy = PAGERDUTY_FILTER_POLICY;
      pd.function.addPermission('InvokedByTheAlertsTopic', {
        principal: new ServicePrincipal('sns.amazonaws.com'),
        sourceArn: this.topic.topicArn,
      });
      this.pagerDutyFunction = pd;
      // If PagerDuty cannot be reached, e-mail says so (paging about PagerDuty would go nowhere).
      this.alarmOnFunction(pd.function, 'PagerDuty', 'warning');
      this.alarmOnQueue(pd.deadLetterQueue!, 'PagerDutyDeadLetters', 'warning');
    }

    // Freshness: hourly.
    this.freshnessFunction = new CofreFunction(this, 'Freshness', {
      entry: path.join(LAMBDAS, 'freshness', 'index.ts'),
      description: 'Cofre: hourly freshness of backups, tenant exports and restore tests (metrics)',
      encryptionKey: this.key,
      asyncInvocation: true,
      timeout: Duration.minutes(2),
      environment: {
        COFRE_HISTORY_TABLE: props.history.table.tableName,
        COFRE_DATABASES: JSON.stringify(
          props.databases.map((d) => ({
            database: d.id,
            tenants: d.tenants,
            ...(d.rds
              ? {
                  rds:
                    d.rds.rdsClusterId !== undefined
                      ? { rdsClusterId: d.rds.rdsClusterId }
                      : { rdsInstanceId: d.rds.rdsInstanceId },
                }
              : {}),
          })),
        ),
        COFRE_MAX_DURATION_MINUTES: String(maxDurationMinutes),
        COFRE_RESTORE_TEST_MAX_AGE_DAYS: String(restoreTestMaxAgeDays),
        ...(rdsDatabases.length
          ? {
              COFRE_RPO_MINUTES: String(rpoMinutes),
              COFRE_SNAPSHOT_MAX_AGE_HOURS: String(snapshotMaxAgeHours),
            }
          : {}),
        ...(props.backupBuckets?.length
          ? {
              COFRE_FILES_BUCKETS: JSON.stringify(props.backupBuckets.map((b) => b.bucketName)),
              COFRE_FILES_MAX_AGE_HOURS: String(snapshotMaxAgeHours),
            }
          : {}),
      },
    });
    props.history.grantReadHistory(this.freshnessFunction.function);
    if (rdsDatabases.length) {
      // LatestRestorableTime of exactly the protected instances and clusters.
      this.freshnessFunction.function.addToRolePolicy(
        new PolicyStatement({
          actions: ['rds:DescribeDBInstances', 'rds:DescribeDBClusters'],
          resources: rdsDatabases.map((d) => d.rds!.resourceArn),
        }),
      );
    }
    const awsBackupResources = [
      ...rdsDatabases.map((d) => ({ database: d.id, resourceArn: d.rds!.resourceArn })),
      ...(props.backupBuckets ?? []).map((b) => ({
        database: `s3:${b.bucketName}`,
        resourceArn: b.resourceArn,
      })),
    ];
    if (awsBackupResources.length) {
      // AWS Backup job events (backup, copy to the DR vault, restore) of RDS, Aurora and S3 → record + notify.
      const fn = new CofreFunction(this, 'BackupEvents', {
        entry: path.join(LAMBDAS, 'backup-events', 'index.ts'),
        description:
          'Cofre: records AWS Backup job events of the RDS/Aurora databases and application buckets and reports ended jobs',
        encryptionKey: this.key,
        asyncInvocation: true,
        environment: {
          COFRE_HISTORY_TABLE: props.history.table.tableName,
          COFRE_TOPIC_ARN: this.topic.topicArn,
          COFRE_NOTIFY_ON_SUCCESS: String(props.notifyOnSuccess ?? false),
          COFRE_SNAPSHOT_DATABASES: JSON.stringify(awsBackupResources),
        },
      });
      props.history.grantRecord(fn.function);
      this.topic.grantPublish(fn.function);
      this.backupEventsFunction = fn;
      this.backupEventsRule = new Rule(this, 'BackupEventsRule', {
        description: 'Cofre: AWS Backup job state changes of RDS, Aurora and S3 (backup, copy, restore)',
        eventPattern: {
          source: ['aws.backup'],
          detailType: [...BACKUP_EVENT_TYPES],
          detail: {
            resourceType: [
              ...(rdsDatabases.length ? ['RDS', 'Aurora'] : []),
              ...(props.backupBuckets?.length ? ['S3'] : []),
            ],
          },
        },
        targets: [
          new LambdaFunction(fn.function, {
            deadLetterQueue: fn.deadLetterQueue,
            retryAttempts: 4,
            maxEventAge: Duration.hours(6),
          }),
        ],
      });
      this.alarmOnFunction(fn.function, 'BackupEvents', 'critical');
      this.alarmOnQueue(fn.deadLetterQueue!, 'BackupEventsDeadLetters', 'critical');
    }

    // Monthly report.
    this.monthlyReportFunction = new CofreFunction(this, 'MonthlyReport', {
      entry: path.join(LAMBDAS, 'monthly-report', 'index.ts'),
      description: "Cofre: e-mails the previous month's report (runs, success rate, restore tests, cost)",
      encryptionKey: this.key,
      asyncInvocation: true,
      timeout: Duration.minutes(5),
      memorySize: 512,
      environment: {
        COFRE_HISTORY_TABLE: props.history.table.tableName,
        COFRE_TOPIC_ARN: this.topic.topicArn,
        COFRE_VAULT_BUCKET: props.vault.bucket.bucketName,
        COFRE_PRICES: JSON.stringify(props.prices),
        COFRE_ALARM_PREFIX: `${stack.stackName}-`,
      },
    });
    props.history.grantReadHistory(this.monthlyReportFunction.function);
    // The report reads a whole month of records: a scan of the table (never of other tables).
    props.history.table.grant(this.monthlyReportFunction.function, 'dynamodb:Scan');
    this.topic.grantPublish(this.monthlyReportFunction.function);
    this.monthlyReportFunction.function.addToRolePolicy(
      new PolicyStatement({
        actions: ['cloudwatch:GetMetricData', 'cloudwatch:DescribeAlarmHistory'],
        resources: ['*'],
      }),
    );
    acknowledge(this.monthlyReportFunction.function.role!.node.findChild('DefaultPolicy'), {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'cloudwatch:GetMetricData and cloudwatch:DescribeAlarmHistory support no resource-level permissions; the report only reads the vault size and the alarm history.',
    });

    // Schedules (EventBridge Scheduler invokes Lambda asynchronously).
    this.scheduleDeadLetterQueue = this.queue('ScheduleDeadLetterQueue');
    const scheduleRole = new Role(this, 'ScheduleRole', {
      description: 'EventBridge Scheduler invokes the Cofre freshness and monthly-report Lambdas',
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    });
    const target = (fn: IFunction) =>
      new LambdaInvoke(fn, {
        role: scheduleRole,
        deadLetterQueue: this.scheduleDeadLetterQueue,
        retryAttempts: 2,
        maxEventAge: Duration.minutes(30),
      });
    new Schedule(this, 'FreshnessSchedule', {
      description: 'Cofre: hourly freshness check',
      schedule: ScheduleExpression.expression('cron(10 * * * ? *)'),
      target: target(this.freshnessFunction.function),
      timeWindow: TimeWindow.off(),
    });
    new Schedule(this, 'MonthlyReportSchedule', {
      description: 'Cofre: monthly report, on the 1st',
      schedule: ScheduleExpression.expression(
        props.monthlyReportSchedule ?? 'cron(0 8 1 * ? *)',
        TimeZone.of(props.timeZone ?? 'America/Sao_Paulo'),
      ),
      target: target(this.monthlyReportFunction.function),
      timeWindow: TimeWindow.off(),
    });

    // Alarms on the alert machinery itself.
    this.alarmOnFunction(this.freshnessFunction.function, 'FreshnessCheck', 'critical');
    this.alarmOnQueue(this.freshnessFunction.deadLetterQueue!, 'FreshnessDeadLetters', 'critical');
    this.alarmOnFunction(this.notifyFunction.function, 'Notify', 'warning');
    this.alarmOnFunction(this.monthlyReportFunction.function, 'MonthlyReport', 'warning');
    this.alarmOnQueue(this.monthlyReportFunction.deadLetterQueue!, 'MonthlyReportDeadLetters', 'warning');
    this.alarmOnQueue(this.scheduleDeadLetterQueue, 'ScheduleDeadLetters', 'warning');
    // Undelivered e-mail may be the warning route itself failing: this one pages.
    this.alarmOnQueue(this.undeliveredQueue, 'UndeliveredAlerts', 'critical');

    // Per database: freshness (missing data = breaching), size and duration.
    const graceHours = 24 + maxDurationMinutes / 60;
    for (const db of props.databases) {
      const key = pascal(db.id);
      const fresh = (metricName: string, dims: Record<string, string>) =>
        cofreMetric(metricName, dims, 'Maximum', Duration.hours(1));
      this.addAlarm(`${key}FullBackupStale`, {
        severity: 'critical',
        description: `${db.id}: no good full backup for more than ${graceHours} h (or the freshness check stopped)`,
        metric: fresh('HoursSinceLastGoodBackup', { Database: db.id, Kind: 'full' }),
        threshold: graceHours,
        evaluationPeriods: 2,
        treatMissingData: TreatMissingData.BREACHING,
      });
      if (db.tenants)
        this.addAlarm(`${key}TenantExportStale`, {
          severity: 'warning',
          description: `${db.id}: no verified tenant export for more than ${graceHours} h (the full backup still holds every tenant)`,
          metric: fresh('HoursSinceLastVerifiedTenantExport', { Database: db.id }),
          threshold: graceHours,
          evaluationPeriods: 2,
          treatMissingData: TreatMissingData.BREACHING,
        });
      this.addAlarm(`${key}RestoreTestStale`, {
        severity: 'high',
        description: `${db.id}: no good restore test for more than ${restoreTestMaxAgeDays} days`,
        metric: fresh('DaysSinceLastGoodRestoreTest', { Database: db.id }),
        threshold: restoreTestMaxAgeDays,
        evaluationPeriods: 2,
        treatMissingData: TreatMissingData.BREACHING,
      });
      this.addAlarm(`${key}SizeAnomaly`, {
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
      this.addAlarm(`${key}BackupTooLarge`, {
        severity: 'warning',
        description: `${db.id}: a backup is larger than ${maxSizeGiB} GiB`,
        metric: cofreMetric('BackupSizeBytes', { Database: db.id }, 'Maximum', Duration.hours(1)),
        threshold: maxSizeGiB * 1024 ** 3,
      });
      this.addAlarm(`${key}BackupTooSlow`, {
        severity: 'warning',
        description: `${db.id}: a backup took longer than ${maxDurationMinutes} min`,
        metric: cofreMetric('BackupDurationSeconds', { Database: db.id }, 'Maximum', Duration.hours(1)),
        threshold: maxDurationMinutes * 60,
      });
    }

    // AWS Backup databases: snapshot age and point-in-time lag (missing data = breaching).
    for (const db of rdsDatabases) {
      const key = pascal(db.id);
      this.addAlarm(`${key}SnapshotStale`, {
        severity: 'critical',
        description: `${db.id}: no completed AWS Backup snapshot for more than ${snapshotMaxAgeHours} h (or the freshness check stopped)`,
        metric: cofreMetric('HoursSinceLastGoodSnapshot', { Database: db.id }, 'Maximum', Duration.hours(1)),
        threshold: snapshotMaxAgeHours,
        evaluationPeriods: 2,
        treatMissingData: TreatMissingData.BREACHING,
      });
      this.addAlarm(`${key}RecoveryPointLag`, {
        severity: 'critical',
        description: `${db.id}: the latest restorable time is more than ${rpoMinutes} min old (RPO), or RDS reports none`,
        metric: cofreMetric('RecoveryPointLagMinutes', { Database: db.id }, 'Maximum', Duration.hours(1)),
        threshold: rpoMinutes,
        evaluationPeriods: 1,
        treatMissingData: TreatMissingData.BREACHING,
      });
    }

    // Application buckets under AWS Backup: age of the last completed periodic recovery point.
    for (const bucket of props.backupBuckets ?? [])
      this.addAlarm(`${pascal(bucket.bucketName)}FilesBackupStale`, {
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

    // Replication of the vault to the DR region (S3 Replication Time Control: 15 minutes).
    let replication: { latency: Metric; failed: Metric } | undefined;
    if (props.replicaBucketName) {
      const dims = {
        SourceBucket: props.vault.bucket.bucketName,
        DestinationBucket: props.replicaBucketName,
        RuleId: REPLICATION_RULE_ID,
      };
      replication = {
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
      this.addAlarm('ReplicationLate', {
        severity: 'warning',
        description:
          'Vault replication to the DR region is later than its 15-minute Replication Time Control',
        metric: replication.latency,
        threshold: 900,
        evaluationPeriods: 3,
      });
      this.addAlarm('ReplicationFailed', {
        severity: 'warning',
        description: 'Objects of the vault failed to replicate to the DR region',
        metric: replication.failed,
        threshold: 0,
      });
    }

    this.dashboard = this.createDashboard(props, replication);
    if (rdsDatabases.length)
      this.dashboard.addWidgets(
        new GraphWidget({
          title: 'Point-in-time lag (min, now - LatestRestorableTime)',
          left: rdsDatabases.map((db) =>
            cofreMetric('RecoveryPointLagMinutes', { Database: db.id }, 'Maximum', Duration.hours(1)).with({
              label: db.id,
            }),
          ),
          leftAnnotations: [{ value: rpoMinutes, label: `RPO ${rpoMinutes} min` }],
          width: 12,
        }),
        new GraphWidget({
          title: 'Hours since the last AWS Backup snapshot',
          left: rdsDatabases.map((db) =>
            cofreMetric('HoursSinceLastGoodSnapshot', { Database: db.id }, 'Maximum', Duration.hours(1)).with(
              {
                label: db.id,
              },
            ),
          ),
          leftAnnotations: [{ value: snapshotMaxAgeHours, label: `alarm at ${snapshotMaxAgeHours} h` }],
          width: 12,
        }),
      );
    this.acknowledgeNagFindings(scheduleRole, props.history);

    new CfnOutput(this, 'AlertsTopicArn', {
      description: 'Critical alerts (e-mail + PagerDuty); publish here to test the wiring',
      value: this.topic.topicArn,
    });
    new CfnOutput(this, 'WarningTopicArn', {
      description: 'Warning alerts (e-mail)',
      value: this.warningTopic.topicArn,
    });
  }

  /**
   * Configuration snapshots are deployed: the freshness check publishes HoursSinceLastGoodConfigSnapshot
   * (history kind `config`) and this alarm fires when it exceeds `maxAgeHours`, or when no datapoint
   * arrives (no good weekly snapshot, or the check stopped): missing data is breaching.
   */
  public alarmOnConfigSnapshotAge(maxAgeHours: number): Alarm {
    if (!Number.isFinite(maxAgeHours) || maxAgeHours < 1)
      throw new Error(`CofreAlerts ${this.node.path}: maxAgeHours must be at least 1, got ${maxAgeHours}`);
    this.freshnessFunction.function.addEnvironment(
      'COFRE_CONFIG_SNAPSHOT_MAX_AGE_HOURS',
      String(maxAgeHours),
    );
    return this.addAlarm('ConfigSnapshotStale', {
      severity: 'critical',
      description: `no good weekly configuration snapshot for more than ${maxAgeHours} h (or the freshness check stopped)`,
      metric: cofreMetric('HoursSinceLastGoodConfigSnapshot', {}, 'Maximum', Duration.hours(1)),
      threshold: maxAgeHours,
      evaluationPeriods: 2,
      treatMissingData: TreatMissingData.BREACHING,
    });
  }

  /** Alarms when `fn` reports an error (Errors ≥ 1 in 5 minutes). */
  public alarmOnFunction(fn: IFunction, name: string, severity: AlertSeverity = 'warning'): Alarm {
    return this.addAlarm(`${name}Errors`, {
      severity,
      description: `Lambda ${name} failed`,
      metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 0,
    });
  }

  /** Alarms when a (dead-letter) queue holds a message. */
  public alarmOnQueue(queue: IQueue, name: string, severity: AlertSeverity = 'warning'): Alarm {
    return this.addAlarm(`${name}Depth`, {
      severity,
      description: `Queue ${name} holds messages that could not be delivered`,
      metric: queue.metricApproximateNumberOfMessagesVisible({
        period: Duration.minutes(5),
        statistic: 'Maximum',
      }),
      threshold: 0,
    });
  }

  /**
   * Alarms on a state machine. Timed out or aborted executions never reach their notify step, so they
   * page (critical). Failed executions have already paged through notify (dedup key per job and
   * database); their alarm is a warning, so a failure whose notification itself failed is still seen.
   */
  public alarmOnStateMachine(stateMachine: IStateMachine, name: string): Alarm[] {
    const period = Duration.minutes(5);
    return [
      this.addAlarm(`${name}TimedOutOrAborted`, {
        severity: 'critical',
        description: `State machine ${name}: an execution timed out or was aborted (no notification was sent)`,
        metric: new MathExpression({
          expression: 'FILL(timedOut, 0) + FILL(aborted, 0)',
          usingMetrics: {
            timedOut: stateMachine.metricTimedOut({ period, statistic: 'Sum' }),
            aborted: stateMachine.metricAborted({ period, statistic: 'Sum' }),
          },
          period,
          label: 'executions timed out or aborted',
        }),
        threshold: 0,
      }),
      this.addAlarm(`${name}Failed`, {
        severity: 'warning',
        description: `State machine ${name}: an execution failed (its notify message has the details)`,
        metric: stateMachine.metricFailed({ period, statistic: 'Sum' }),
        threshold: 0,
      }),
    ];
  }

  /**
   * Alarms when a task of the ECS cluster `clusterArn` stops with a container exit code other than 0 or fails to start.
   * The stopped-task events are kept in a queue (14 days) for investigation.
   */
  public alarmOnTaskFailures(clusterArn: string, name = 'DumpTasks'): Alarm {
    const events = this.queue(`${name}FailureEvents`);
    const rule = new Rule(this, `${name}FailureRule`, {
      description: `Cofre: ECS tasks of ${name} that failed`,
      eventPattern: {
        source: ['aws.ecs'],
        detailType: ['ECS Task State Change'],
        detail: {
          clusterArn: [clusterArn],
          lastStatus: ['STOPPED'],
          $or: [{ stopCode: ['TaskFailedToStart'] }, { containers: { exitCode: [{ 'anything-but': 0 }] } }],
        },
      },
      targets: [new SqsQueue(events, { deadLetterQueue: this.undeliveredQueue, retryAttempts: 10 })],
    });
    const keptForInvestigation = `This queue only keeps the stopped-task events of ${name} for 14 days, for whoever investigates the alarm; nothing consumes it, so a dead-letter queue behind it would never receive anything.`;
    acknowledge(
      events,
      { id: 'AwsSolutions-SQS3', reason: keptForInvestigation },
      { id: 'Serverless-SQSRedrivePolicy', reason: keptForInvestigation },
    );
    return this.addAlarm(`${name}TaskFailures`, {
      severity: 'warning',
      description: `ECS tasks of ${name} stopped with an error (events in the ${name}FailureEvents queue)`,
      metric: new Metric({
        namespace: 'AWS/Events',
        metricName: 'MatchedEvents',
        dimensionsMap: { RuleName: rule.ruleName },
        statistic: 'Sum',
        period: Duration.minutes(5),
      }),
      threshold: 0,
    });
  }

  private acknowledgeNagFindings(scheduleRole: Role, history: BackupHistory): void {
    const logicalId = (c: Construct) =>
      Stack.of(this).resolve((c.node.defaultChild as CfnElement).logicalId) as string;
    const historyIndex = {
      id: `AwsSolutions-IAM5[Resource::<${logicalId(history.table)}.Arn>/index/*]`,
      reason:
        'Reading the history means querying its global secondary indexes (latest good run by database, kind and status); index/* names only the indexes of the one history table.',
    };
    const functions: [CofreFunction | undefined, string, boolean][] = [
      [this.notifyFunction, 'notify (publishes to the alerts topic)', false],
      [this.pagerDutyFunction, 'PagerDuty relay (reads its secret, calls PagerDuty over HTTPS)', false],
      [this.freshnessFunction, 'freshness check (queries the history, emits EMF metrics)', true],
      [this.monthlyReportFunction, 'monthly report (reads history and CloudWatch, publishes)', true],
      [this.backupEventsFunction, 'AWS Backup events (writes job records, publishes alerts)', true],
    ];
    for (const [fn, what, readsHistory] of functions) {
      if (!fn) continue;
      const role = fn.function.role!;
      acknowledge(role, {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: `CDK attaches AWSLambdaBasicExecutionRole so the ${what} Lambda can write its logs: only creating log streams and putting log events, into its explicit KMS-encrypted log group.`,
      });
      const policy = role.node.findChild('DefaultPolicy');
      acknowledge(
        policy,
        {
          id: 'HIPAA.Security-IAMNoInlinePolicy',
          reason: `This policy belongs to the ${what} Lambda role alone and is generated from grants on named resources; a managed policy would only make it attachable to other principals.`,
        },
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: `X-Ray tracing actions (xray:PutTraceSegments, xray:PutTelemetryRecords) take no resource; every data action of the ${what} Lambda names its topic, table, secret or key.`,
        },
        {
          id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
          reason: `Publishing to the KMS-encrypted alerts topic needs GenerateDataKey* on the alerts key only (the ${what} Lambda), and the key policy allows it only through SNS, Lambda and SQS.`,
        },
        ...(readsHistory ? [historyIndex] : []),
      );
      acknowledge(fn.function, {
        id: 'HIPAA.Security-LambdaInsideVPC',
        reason: `The ${what} Lambda calls only AWS APIs (and PagerDuty) over TLS with IAM authorization and never a database; a VPC would need NAT to reach them without narrowing what it can reach.`,
      });
      if (fn.deadLetterQueue) {
        const isDlq = `This queue is itself the dead-letter queue of the ${what} Lambda (kept 14 days, alarmed on depth); a queue behind it would only move the events again.`;
        acknowledge(fn.deadLetterQueue, { id: 'Serverless-SQSRedrivePolicy', reason: isDlq });
      }
    }
    const syncNotify = `The state machines invoke the notify Lambda synchronously (lambda:invoke waits and retries), so a failure becomes a state error and the execution fails (alarmed); a DLQ only receives asynchronous events.`;
    acknowledge(
      this.notifyFunction.function,
      { id: 'HIPAA.Security-LambdaDLQ', reason: syncNotify },
      { id: 'Serverless-LambdaDLQ', reason: syncNotify },
    );
    for (const [queue, what] of [
      [this.scheduleDeadLetterQueue, 'the freshness and monthly-report schedules'],
      [this.undeliveredQueue, 'the alert topics subscriptions (e-mail and PagerDuty)'],
    ] as const) {
      const isDlq = `This queue is itself the dead-letter queue of ${what}, kept 14 days and alarmed on depth; a queue behind it would only move the messages again.`;
      acknowledge(
        queue,
        { id: 'AwsSolutions-SQS3', reason: isDlq },
        { id: 'Serverless-SQSRedrivePolicy', reason: isDlq },
      );
    }
    const schedulePolicy = scheduleRole.node.findChild('DefaultPolicy');
    acknowledge(
      schedulePolicy,
      {
        id: 'HIPAA.Security-IAMNoInlinePolicy',
        reason:
          'This policy belongs to the alerts schedule role alone (invoke two named Lambdas, send to their dead-letter queue); a managed policy would only make it attachable elsewhere.',
      },
      ...[this.freshnessFunction, this.monthlyReportFunction].map((fn) => ({
        id: `AwsSolutions-IAM5[Resource::<${logicalId(fn.function)}.Arn>:*]`,
        reason:
          'lambda:InvokeFunction on the function and its versions (<arn>:*), as the scheduler target grant writes it; no other function.',
      })),
    );
  }

  private addAlarm(
    id: string,
    o: {
      severity: AlertSeverity;
      description: string;
      metric: IMetric;
      threshold: number;
      evaluationPeriods?: number;
      treatMissingData?: TreatMissingData;
    },
  ): Alarm {
    if (this.alarms.has(id)) throw new Error(`CofreAlerts ${this.node.path}: alarm ${id} exists already`);
    const alarm = new Alarm(this, id, {
      alarmDescription: `[${o.severity}] ${o.description}`,
      metric: o.metric,
      threshold: o.threshold,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: o.evaluationPeriods ?? 1,
      datapointsToAlarm: o.evaluationPeriods ?? 1,
      treatMissingData: o.treatMissingData ?? TreatMissingData.NOT_BREACHING,
    });
    const action = o.severity === 'warning' ? this.warningAction : this.criticalAction;
    alarm.addAlarmAction(action);
    alarm.addOkAction(action);
    this.alarms.set(id, alarm);
    this.alarmList.push(alarm);
    return alarm;
  }

  /** An SQS queue encrypted with the alerts key, TLS only, kept 14 days. */
  private queue(id: string): Queue {
    return new Queue(this, id, {
      encryption: QueueEncryption.KMS,
      encryptionMasterKey: this.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
  }

  private createKey(): Key {
    const stack = Stack.of(this);
    const policy = administeredKeyPolicy();
    const sourceAccount = { StringEquals: { 'aws:SourceAccount': stack.account } };
    policy.addStatements(
      logsEncryptionStatement(this),
      usableOnlyThroughServices(this, 'AccountUsesTheKeyOnlyThroughSnsLambdaAndSqs', [
        'sns',
        'lambda',
        'sqs',
      ]),
      // CloudWatch alarms publish to the encrypted topics; SNS and EventBridge write to the encrypted queues.
      new PolicyStatement({
        sid: 'AlarmsAndDeliveriesOfThisAccount',
        principals: [
          new ServicePrincipal('cloudwatch.amazonaws.com'),
          new ServicePrincipal('sns.amazonaws.com'),
          new ServicePrincipal('events.amazonaws.com'),
        ],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: sourceAccount,
      }),
    );
    const key = new Key(this, 'Key', {
      description: `Cofre alerts key (${stack.region}): topics, alert Lambdas' logs, environments and queues`,
      enableKeyRotation: true,
      policy,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    key.addAlias('alias/cofre-alerts');
    return key;
  }

  /** TLS only (enforceSSL), nobody outside this account, and CloudWatch alarms of this account. */
  private restrictPublishing(topic: Topic): void {
    const stack = Stack.of(this);
    topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccountPublish',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: {
            'aws:SourceArn': stack.formatArn({
              service: 'cloudwatch',
              resource: 'alarm',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'DenyPublishingFromOtherAccounts',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          StringNotEquals: { 'aws:PrincipalAccount': stack.account },
          Bool: { 'aws:PrincipalIsAWSService': 'false' },
        },
      }),
    );
    topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'DenyServicesActingForOtherAccounts',
        effect: Effect.DENY,
        principals: [new AnyPrincipal()],
        actions: ['sns:Publish'],
        resources: [topic.topicArn],
        conditions: {
          StringNotEquals: { 'aws:SourceAccount': stack.account },
          Bool: { 'aws:PrincipalIsAWSService': 'true' },
        },
      }),
    );
  }

  private createDashboard(
    props: CofreAlertsProps,
    replication: { latency: Metric; failed: Metric } | undefined,
  ): Dashboard {
    const dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(30),
    });
    const day = Duration.days(1);
    const perDb = (metricName: string, statistic: string, period = day) =>
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
          alarms: this.alarmList,
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
            cofreMetric(
              'DaysSinceLastGoodRestoreTest',
              { Database: db.id },
              'Maximum',
              Duration.hours(1),
            ).with({
              label: 'days since last good restore test',
            }),
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
    return dashboard;
  }
}

/** A metric of namespace `Cofre`. */
function cofreMetric(
  metricName: string,
  dimensionsMap: Record<string, string>,
  statistic: string,
  period: Duration,
): Metric {
  return new Metric({ namespace: COFRE_NAMESPACE, metricName, dimensionsMap, statistic, period });
}

/** `app-prod` → `AppProd` (construct ids). */
export function pascal(id: string): string {
  return id
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join('');
}

/** {@link CofreAlertsProps} from the validated configuration. */
export function alertsPropsFromConfig(
  config: CofreConfig,
  resources: {
    vault: BackupVault;
    history: BackupHistory;
    replicaBucketName?: string;
    /** ARN of each database AWS Backup protects (`DatabaseSnapshots.resourceArns`), by database id. */
    snapshotResourceArns?: ReadonlyMap<string, string>;
    /** ARN of each application bucket AWS Backup protects (`BucketBackups.bucketArns`), by name. */
    bucketArns?: ReadonlyMap<string, string>;
  },
): CofreAlertsProps {
  const { snapshotResourceArns: _arns, bucketArns, ...constructs } = resources;
  return {
    emails: config.alerts.emails,
    pagerDutyRoutingKeySecretArn: config.alerts.pagerDutyRoutingKeySecretArn,
    notifyOnSuccess: config.alerts.notifyOnSuccess,
    databases: config.databases.map((db) => ({
      id: db.id,
      tenants: db.tenants !== undefined,
      ...(resources.snapshotResourceArns?.has(db.id)
        ? {
            rds: {
              ...(db.rdsInstanceId !== undefined ? { rdsInstanceId: db.rdsInstanceId } : {}),
              ...(db.rdsClusterId !== undefined ? { rdsClusterId: db.rdsClusterId } : {}),
              resourceArn: resources.snapshotResourceArns.get(db.id)!,
            },
          }
        : {}),
    })),
    ...(bucketArns?.size
      ? { backupBuckets: [...bucketArns].map(([bucketName, resourceArn]) => ({ bucketName, resourceArn })) }
      : {}),
    rpoMinutes: config.snapshots.rpoMinutes,
    ...constructs,
    maxDurationMinutes: config.thresholds.maxDurationMinutes,
    sizeAnomalyPercent: config.thresholds.sizeAnomalyPercent,
    maxSizeGiB: config.thresholds.maxSizeGiB,
    prices: config.prices,
    timeZone: config.timeZone,
    scheduleSummary: {
      'full backup': config.schedules.fullBackup,
      'tenant export': config.schedules.tenantExport,
      'integrity verification': config.schedules.integrityVerification,
      'restore test': config.schedules.restoreTest,
    },
  };
}
