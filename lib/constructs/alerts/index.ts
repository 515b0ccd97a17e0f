import { CfnOutput, Duration } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Metric,
  TreatMissingData,
  type Dashboard,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Rule } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import type { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { Topic } from 'aws-cdk-lib/aws-sns';
import type { IQueue, Queue } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { CofreConfig } from '../../config';
import { acknowledge } from '../../nag';
import type { BackupHistory } from '../backup-history';
import type { BackupVault } from '../backup-vault';
import type { CofreFunction } from '../cofre-function';
import { databaseAlarms, replicationAlarms, type AlarmSpec } from './alarms';
import { createAlertsDashboard } from './dashboard';
import { createAlertFunctions } from './functions';
import { cofreMetric } from './metrics';
import { acknowledgeAlertsNagFindings } from './nag';
import { alertQueue, createAlertRoutes } from './routing';

export { EMAIL_FILTER_POLICY, PAGERDUTY_FILTER_POLICY } from './routing';

/**
 * CofreAlerts: routes (routing.ts), the alert Lambdas and their schedules (functions.ts), the alarms
 * (alarms.ts, and the alarmOn* methods below for what other constructs create), the dashboard
 * (dashboard.ts) and the cdk-nag acknowledgements (nag.ts). Every Cofre metric comes from the metric
 * factory in core/policy/metrics.ts (metrics.ts).
 */

/** Where an alarm goes: `critical` → e-mail + PagerDuty; `high` → the same, PagerDuty severity `error`; `warning` → e-mail. */
export type AlertSeverity = 'critical' | 'high' | 'warning';

/** Id of the vault's replication rule (`BackupVault`), a dimension of the S3 replication metrics. */
export const REPLICATION_RULE_ID = 'cofre-replicate-to-dr';

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
  /**
   * S3-compatible buckets the files task syncs (`buckets[].source`): freshness of their sync runs and
   * of their weekly restore test.
   * @default - none
   */
  readonly syncedBuckets?: readonly string[];
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
    if (props.emails.length === 0)
      throw new Error(
        `CofreAlerts ${this.node.path}: emails must hold at least one address, so that failures reach a person`,
      );

    const routes = createAlertRoutes(this, props.emails);
    this.key = routes.key;
    this.topic = routes.topic;
    this.warningTopic = routes.warningTopic;
    this.undeliveredQueue = routes.undeliveredQueue;
    this.criticalAction = new SnsAction(this.topic);
    this.warningAction = new SnsAction(this.warningTopic);

    const limits = {
      maxDurationMinutes,
      sizeAnomalyPercent,
      maxSizeGiB,
      restoreTestMaxAgeDays,
      rpoMinutes,
      snapshotMaxAgeHours,
    };
    const functions = createAlertFunctions(this, props, limits);
    this.notifyFunction = functions.notify;
    this.pagerDutyFunction = functions.pagerDuty;
    this.freshnessFunction = functions.freshness;
    this.backupEventsFunction = functions.backupEvents;
    this.backupEventsRule = functions.backupEventsRule;
    this.monthlyReportFunction = functions.monthlyReport;
    this.scheduleDeadLetterQueue = functions.scheduleDeadLetterQueue;

    // Alarms on the alert machinery itself.
    this.alarmOnFunction(this.freshnessFunction.function, 'FreshnessCheck', 'critical');
    this.alarmOnQueue(this.freshnessFunction.deadLetterQueue!, 'FreshnessDeadLetters', 'critical');
    this.alarmOnFunction(this.notifyFunction.function, 'Notify', 'warning');
    this.alarmOnFunction(this.monthlyReportFunction.function, 'MonthlyReport', 'warning');
    this.alarmOnQueue(this.monthlyReportFunction.deadLetterQueue!, 'MonthlyReportDeadLetters', 'warning');
    this.alarmOnQueue(this.scheduleDeadLetterQueue, 'ScheduleDeadLetters', 'warning');
    // Undelivered e-mail may be the warning route itself failing: this one pages.
    this.alarmOnQueue(this.undeliveredQueue, 'UndeliveredAlerts', 'critical');

    for (const spec of databaseAlarms(props, limits)) this.addAlarm(spec);
    const replication = replicationAlarms(props);
    for (const spec of replication?.alarms ?? []) this.addAlarm(spec);

    this.dashboard = createAlertsDashboard(this, props, this.alarmList, replication?.metrics, limits);
    acknowledgeAlertsNagFindings(this, functions.scheduleRole, props.history);

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
    return this.addAlarm({
      id: 'ConfigSnapshotStale',
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
    return this.addAlarm({
      id: `${name}Errors`,
      severity,
      description: `Lambda ${name} failed`,
      metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 0,
    });
  }

  /** Alarms when a (dead-letter) queue holds a message. */
  public alarmOnQueue(queue: IQueue, name: string, severity: AlertSeverity = 'warning'): Alarm {
    return this.addAlarm({
      id: `${name}Depth`,
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
      this.addAlarm({
        id: `${name}TimedOutOrAborted`,
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
      this.addAlarm({
        id: `${name}Failed`,
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
    const events = alertQueue(this, this.key, `${name}FailureEvents`);
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
    return this.addAlarm({
      id: `${name}TaskFailures`,
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

  private addAlarm(o: AlarmSpec): Alarm {
    const id = o.id;
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
    ...(config.buckets.some((b) => b.source !== undefined)
      ? { syncedBuckets: config.buckets.filter((b) => b.source !== undefined).map((b) => b.bucketName) }
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
