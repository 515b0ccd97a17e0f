import path from 'node:path';
import { Duration, Stack, TimeZone } from 'aws-cdk-lib';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Schedule, ScheduleExpression, TimeWindow } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { CfnSubscription, Subscription, SubscriptionProtocol } from 'aws-cdk-lib/aws-sns';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { BACKUP_EVENT_TYPES } from '../../../core/alerts/backup-events';
import { acknowledge } from '../../nag';
import { CofreFunction } from '../cofre-function';
import type { AlarmLimits } from './alarms';
import type { CofreAlerts, CofreAlertsProps } from './index';
import { alertQueue, PAGERDUTY_FILTER_POLICY } from './routing';
import { grantSecretKeyDecrypt } from '../secret-key-grant';

const LAMBDAS = path.join(__dirname, '..', '..', '..', 'lambdas');

/** The alert Lambdas, the role that schedules them, and the schedules' dead-letter queue. */
export interface AlertFunctions {
  readonly notify: CofreFunction;
  readonly pagerDuty?: CofreFunction;
  readonly freshness: CofreFunction;
  readonly backupEvents?: CofreFunction;
  readonly backupEventsRule?: Rule;
  readonly monthlyReport: CofreFunction;
  readonly scheduleDeadLetterQueue: Queue;
  readonly scheduleRole: Role;
}

/**
 * The alert Lambdas and their schedules: notify (invoked by the state machines), the PagerDuty relay
 * (when a routing key is configured), the hourly freshness check, AWS Backup job events (when a
 * database is protected by AWS Backup) and the monthly report. Created in `alerts`, whose routes
 * (key, topics, undelivered queue) exist already; the relays' own failures are alarmed here.
 */
export function createAlertFunctions(
  alerts: CofreAlerts,
  props: CofreAlertsProps,
  limits: AlarmLimits,
): AlertFunctions {
  const stack = Stack.of(alerts);
  const { maxDurationMinutes, restoreTestMaxAgeDays, rpoMinutes, snapshotMaxAgeHours } = limits;
  const rdsDatabases = props.databases.filter((d) => d.rds !== undefined);
  let pagerDuty: CofreFunction | undefined;
  let backupEvents: CofreFunction | undefined;
  let backupEventsRule: Rule | undefined;
  // Notify: invoked synchronously by the state machines.
  const notify = new CofreFunction(alerts, 'Notify', {
    entry: path.join(LAMBDAS, 'notify', 'index.ts'),
    description: 'Cofre: formats a job outcome and publishes it to the alerts topic',
    encryptionKey: alerts.key,
    environment: {
      COFRE_TOPIC_ARN: alerts.topic.topicArn,
      COFRE_NOTIFY_ON_SUCCESS: String(props.notifyOnSuccess ?? false),
      COFRE_VAULT_URL: `s3://${props.vault.bucket.bucketName}`,
    },
  });
  alerts.topic.grantPublish(notify.function);

  if (props.pagerDutyRoutingKeySecretArn) {
    const secret = Secret.fromSecretCompleteArn(
      alerts,
      'PagerDutySecret',
      props.pagerDutyRoutingKeySecretArn,
    );
    const pd = new CofreFunction(alerts, 'PagerDuty', {
      entry: path.join(LAMBDAS, 'pagerduty', 'index.ts'),
      description: 'Cofre: sends critical alerts to PagerDuty (Events API v2 trigger / resolve)',
      encryptionKey: alerts.key,
      asyncInvocation: true,
      environment: { COFRE_PAGERDUTY_SECRET_ARN: secret.secretArn },
    });
    secret.grantRead(pd.function);
    grantSecretKeyDecrypt(pd.function, [secret.secretArn]);
    const subscription = new Subscription(alerts, 'PagerDutySubscription', {
      topic: alerts.topic,
      endpoint: pd.function.functionArn,
      protocol: SubscriptionProtocol.LAMBDA,
      deadLetterQueue: alerts.undeliveredQueue,
    });
    (subscription.node.defaultChild as CfnSubscription).filterPolicy = PAGERDUTY_FILTER_POLICY;
    pd.function.addPermission('InvokedByTheAlertsTopic', {
      principal: new ServicePrincipal('sns.amazonaws.com'),
      sourceArn: alerts.topic.topicArn,
    });
    pagerDuty = pd;
    // If PagerDuty cannot be reached, e-mail says so (paging about PagerDuty would go nowhere).
    alerts.alarmOnFunction(pd.function, 'PagerDuty', 'warning');
    alerts.alarmOnQueue(pd.deadLetterQueue!, 'PagerDutyDeadLetters', 'warning');
  }

  // Freshness: hourly.
  const freshness = new CofreFunction(alerts, 'Freshness', {
    entry: path.join(LAMBDAS, 'freshness', 'index.ts'),
    description: 'Cofre: hourly freshness of backups, tenant exports and restore tests (metrics)',
    encryptionKey: alerts.key,
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
      ...(props.syncedBuckets?.length
        ? { COFRE_FILES_SYNCED_BUCKETS: JSON.stringify(props.syncedBuckets) }
        : {}),
    },
  });
  props.history.grantReadHistory(freshness.function);
  if (rdsDatabases.length) {
    // LatestRestorableTime of exactly the protected instances and clusters.
    freshness.function.addToRolePolicy(
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
    const fn = new CofreFunction(alerts, 'BackupEvents', {
      entry: path.join(LAMBDAS, 'backup-events', 'index.ts'),
      description:
        'Cofre: records AWS Backup job events of the RDS/Aurora databases and application buckets and reports ended jobs',
      encryptionKey: alerts.key,
      asyncInvocation: true,
      environment: {
        COFRE_HISTORY_TABLE: props.history.table.tableName,
        COFRE_TOPIC_ARN: alerts.topic.topicArn,
        COFRE_NOTIFY_ON_SUCCESS: String(props.notifyOnSuccess ?? false),
        COFRE_SNAPSHOT_DATABASES: JSON.stringify(awsBackupResources),
      },
    });
    props.history.grantRecord(fn.function);
    alerts.topic.grantPublish(fn.function);
    backupEvents = fn;
    backupEventsRule = new Rule(alerts, 'BackupEventsRule', {
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
    alerts.alarmOnFunction(fn.function, 'BackupEvents', 'critical');
    alerts.alarmOnQueue(fn.deadLetterQueue!, 'BackupEventsDeadLetters', 'critical');
  }

  // Monthly report.
  const monthlyReport = new CofreFunction(alerts, 'MonthlyReport', {
    entry: path.join(LAMBDAS, 'monthly-report', 'index.ts'),
    description: "Cofre: e-mails the previous month's report (runs, success rate, restore tests, cost)",
    encryptionKey: alerts.key,
    asyncInvocation: true,
    timeout: Duration.minutes(5),
    memorySize: 512,
    environment: {
      COFRE_HISTORY_TABLE: props.history.table.tableName,
      COFRE_TOPIC_ARN: alerts.topic.topicArn,
      COFRE_VAULT_BUCKET: props.vault.bucket.bucketName,
      COFRE_PRICES: JSON.stringify(props.prices),
      COFRE_ALARM_PREFIX: `${stack.stackName}-`,
    },
  });
  props.history.grantReadHistory(monthlyReport.function);
  // The report reads a whole month of records: a scan of the table (never of other tables).
  props.history.table.grant(monthlyReport.function, 'dynamodb:Scan');
  alerts.topic.grantPublish(monthlyReport.function);
  monthlyReport.function.addToRolePolicy(
    new PolicyStatement({
      actions: ['cloudwatch:GetMetricData', 'cloudwatch:DescribeAlarmHistory'],
      resources: ['*'],
    }),
  );
  acknowledge(monthlyReport.function.role!.node.findChild('DefaultPolicy'), {
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'cloudwatch:GetMetricData and cloudwatch:DescribeAlarmHistory support no resource-level permissions; the report only reads the vault size and the alarm history.',
  });

  // Schedules (EventBridge Scheduler invokes Lambda asynchronously).
  const scheduleDeadLetterQueue = alertQueue(alerts, alerts.key, 'ScheduleDeadLetterQueue');
  const scheduleRole = new Role(alerts, 'ScheduleRole', {
    description: 'EventBridge Scheduler invokes the Cofre freshness and monthly-report Lambdas',
    assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
      conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
    }),
  });
  const target = (fn: IFunction) =>
    new LambdaInvoke(fn, {
      role: scheduleRole,
      deadLetterQueue: scheduleDeadLetterQueue,
      retryAttempts: 2,
      maxEventAge: Duration.minutes(30),
    });
  new Schedule(alerts, 'FreshnessSchedule', {
    description: 'Cofre: hourly freshness check',
    schedule: ScheduleExpression.expression('cron(10 * * * ? *)'),
    target: target(freshness.function),
    timeWindow: TimeWindow.off(),
  });
  new Schedule(alerts, 'MonthlyReportSchedule', {
    description: 'Cofre: monthly report, on the 1st',
    schedule: ScheduleExpression.expression(
      props.monthlyReportSchedule ?? 'cron(0 8 1 * ? *)',
      TimeZone.of(props.timeZone ?? 'America/Sao_Paulo'),
    ),
    target: target(monthlyReport.function),
    timeWindow: TimeWindow.off(),
  });
  return {
    notify,
    ...(pagerDuty ? { pagerDuty } : {}),
    freshness,
    ...(backupEvents ? { backupEvents } : {}),
    ...(backupEventsRule ? { backupEventsRule } : {}),
    monthlyReport,
    scheduleDeadLetterQueue,
    scheduleRole,
  };
}
