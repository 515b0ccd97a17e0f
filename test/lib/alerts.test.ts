import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Cluster } from 'aws-cdk-lib/aws-ecs';
import { Pass, StateMachine, DefinitionBody } from 'aws-cdk-lib/aws-stepfunctions';
import { Queue } from 'aws-cdk-lib/aws-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  alertsPropsFromConfig,
  CofreAlerts,
  EMAIL_FILTER_POLICY,
  PAGERDUTY_FILTER_POLICY,
  type CofreAlertsProps,
} from '../../lib/constructs/alerts';
import { BackupHistory } from '../../lib/constructs/backup-history';
import { BackupVault } from '../../lib/constructs/backup-vault';
import { parseConfig, type CofreConfigInput } from '../../lib/config';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildCofreApp } from '../../lib/app';
import { cdkJsonContext, exampleConfig, testAppProps } from '../helpers/cdk';
import { arnOf, logicalIdOf, resourceOf, statementsOf } from '../helpers/template';

/** App props without Lambda bundling (esbuild): these tests read templates, not function code. */
const fastProps = () => ({
  ...testAppProps(),
  context: { ...cdkJsonContext(), 'aws:cdk:bundling-stacks': [] },
});
const buildTestApp = (change?: (c: CofreConfigInput) => CofreConfigInput) =>
  buildCofreApp(parseConfig(exampleConfig(change)), fastProps());

let primary: CofrePrimaryStack;
let template: Template;
let alerts: CofreAlerts;
beforeAll(() => {
  ({ primary } = buildTestApp());
  alerts = primary.alerts;
  template = Template.fromStack(primary);
});

const ref = (construct: Parameters<typeof logicalIdOf>[0]) => ({ Ref: logicalIdOf(construct) });

describe('alert topics', () => {
  it('are encrypted with the alerts key (rotated, retained, alias/cofre-alerts)', () => {
    for (const topic of [alerts.topic, alerts.warningTopic])
      expect(resourceOf(template, topic).Properties.KmsMasterKeyId).toEqual(arnOf(alerts.key));
    const key = resourceOf(template, alerts.key);
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.DeletionPolicy).toBe('Retain');
    template.hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/cofre-alerts',
      TargetKeyId: arnOf(alerts.key),
    });
  });

  it('let CloudWatch alarms and SNS deliveries of this account use the key, and the account only through SNS, Lambda and SQS', () => {
    const statements = statementsOf(resourceOf(template, alerts.key).Properties.KeyPolicy);
    expect(statements.find((s) => s.Sid === 'AlarmsAndDeliveriesOfThisAccount')).toMatchObject({
      Principal: {
        Service: ['cloudwatch.amazonaws.com', 'events.amazonaws.com', 'sns.amazonaws.com'],
      },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Condition: { StringEquals: { 'aws:SourceAccount': '111111111111' } },
    });
    expect(
      statements.find((s) => s.Sid === 'AccountUsesTheKeyOnlyThroughSnsLambdaAndSqs')?.Condition,
    ).toEqual({
      StringEquals: {
        'kms:ViaService': [
          'sns.sa-east-1.amazonaws.com',
          'lambda.sa-east-1.amazonaws.com',
          'sqs.sa-east-1.amazonaws.com',
        ],
        'kms:CallerAccount': '111111111111',
      },
    });
  });

  it.each(['topic', 'warningTopic'] as const)(
    '%s policy: TLS only, no principal of another account, CloudWatch alarms of this account may publish',
    (which) => {
      const topic = alerts[which];
      const policy = template.findResources('AWS::SNS::TopicPolicy', {
        Properties: { Topics: [ref(topic)] },
      });
      const statements = statementsOf(
        (Object.values(policy)[0] as { Properties: { PolicyDocument: unknown } }).Properties.PolicyDocument,
      );
      const topicArn = ref(topic);
      expect(statements).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            Effect: 'Deny',
            Action: 'sns:Publish',
            Principal: '*',
            Resource: ref(topic),
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
          {
            Sid: 'CloudWatchAlarmsOfThisAccountPublish',
            Effect: 'Allow',
            Action: 'sns:Publish',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Resource: topicArn,
            Condition: {
              StringEquals: { 'aws:SourceAccount': '111111111111' },
              ArnLike: { 'aws:SourceArn': 'arn:aws:cloudwatch:sa-east-1:111111111111:alarm:*' },
            },
          },
          {
            Sid: 'DenyPublishingFromOtherAccounts',
            Effect: 'Deny',
            Action: 'sns:Publish',
            Principal: { AWS: '*' },
            Resource: topicArn,
            Condition: {
              StringNotEquals: { 'aws:PrincipalAccount': '111111111111' },
              Bool: { 'aws:PrincipalIsAWSService': 'false' },
            },
          },
          {
            Sid: 'DenyServicesActingForOtherAccounts',
            Effect: 'Deny',
            Action: 'sns:Publish',
            Principal: { AWS: '*' },
            Resource: topicArn,
            Condition: {
              StringNotEquals: { 'aws:SourceAccount': '111111111111' },
              Bool: { 'aws:PrincipalIsAWSService': 'true' },
            },
          },
        ]),
      );
      // nobody else is allowed anything
      expect(statements.filter((s) => s.Effect === 'Allow')).toHaveLength(1);
    },
  );

  it('only the notify, monthly-report, AWS Backup events, restore validation (RDS and S3) and restore-stopped Lambdas get sns:Publish, on the alerts topic only', () => {
    const publishers = Object.values(
      template.findResources('AWS::IAM::Policy', {
        Properties: {
          PolicyDocument: {
            Statement: Match.arrayWith([Match.objectLike({ Action: 'sns:Publish' })]),
          },
        },
      }),
    ) as { Properties: { Roles: unknown[]; PolicyDocument: unknown } }[];
    const key = (roles: unknown) => JSON.stringify(roles);
    expect(publishers.map((p) => key(p.Properties.Roles)).sort()).toEqual(
      [
        [ref(alerts.notifyFunction.function.role!)],
        [ref(alerts.monthlyReportFunction.function.role!)],
        [ref(alerts.backupEventsFunction!.function.role!)],
        [ref(primary.snapshotRestoreTests!.validationFunction.function.role!)],
        [ref(primary.bucketRestoreTests!.validationFunction.function.role!)],
        [ref(primary.restoreStopped!.function.function.role!)],
      ]
        .map(key)
        .sort(),
    );
    for (const p of publishers)
      expect(
        statementsOf(p.Properties.PolicyDocument).find((s) => s.Action === 'sns:Publish')?.Resource,
      ).toEqual(ref(alerts.topic));
  });
});

describe('subscriptions', () => {
  it('every address gets both routes; the critical route filters out resolve-only successes', () => {
    const email = template.findResources('AWS::SNS::Subscription', { Properties: { Protocol: 'email' } });
    const byTopic = Object.values(email).map(
      (s) => (s as { Properties: Record<string, unknown> }).Properties,
    );
    expect(byTopic).toEqual([
      {
        Protocol: 'email',
        Endpoint: 'ops@example.com',
        TopicArn: ref(alerts.topic),
        FilterPolicy: EMAIL_FILTER_POLICY,
        RedrivePolicy: { deadLetterTargetArn: arnOf(alerts.undeliveredQueue) },
      },
      {
        Protocol: 'email',
        Endpoint: 'ops@example.com',
        TopicArn: ref(alerts.warningTopic),
        RedrivePolicy: { deadLetterTargetArn: arnOf(alerts.undeliveredQueue) },
      },
    ]);
    expect(EMAIL_FILTER_POLICY).toEqual({
      $or: [{ audience: ['people'] }, { audience: [{ exists: false }] }],
    });
  });

  it('PagerDuty Lambda: subscribed to the critical route only, for critical messages, successes and alarms', () => {
    template.resourcePropertiesCountIs('AWS::SNS::Subscription', { Protocol: 'lambda' }, 1);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'lambda',
      Endpoint: arnOf(alerts.pagerDutyFunction!.function),
      TopicArn: ref(alerts.topic),
      FilterPolicy: PAGERDUTY_FILTER_POLICY,
      RedrivePolicy: { deadLetterTargetArn: arnOf(alerts.undeliveredQueue) },
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      Action: 'lambda:InvokeFunction',
      FunctionName: arnOf(alerts.pagerDutyFunction!.function),
      Principal: 'sns.amazonaws.com',
      SourceArn: ref(alerts.topic),
    });
    // async: its own encrypted dead-letter queue
    expect(resourceOf(template, alerts.pagerDutyFunction!.function).Properties.DeadLetterConfig).toEqual({
      TargetArn: arnOf(alerts.pagerDutyFunction!.deadLetterQueue!),
    });
  });

  it('the PagerDuty Lambda reads only its routing-key secret', () => {
    const env = resourceOf(template, alerts.pagerDutyFunction!.function).Properties.Environment as {
      Variables: Record<string, unknown>;
    };
    const arn = 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/pagerduty-AbCdEf';
    expect(env.Variables.COFRE_PAGERDUTY_SECRET_ARN).toBe(arn);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref(alerts.pagerDutyFunction!.function.role!)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
            Resource: arn,
          }),
        ]),
      },
    });
  });

  it('without a PagerDuty secret there is no PagerDuty Lambda', () => {
    const { primary: p } = buildTestApp((c) => ({
      ...c,
      alerts: { emails: ['a@example.com', 'b@example.com'] },
    }));
    expect(p.alerts.pagerDutyFunction).toBeUndefined();
    const t = Template.fromStack(p);
    t.resourcePropertiesCountIs('AWS::SNS::Subscription', { Protocol: 'lambda' }, 0);
    t.resourcePropertiesCountIs('AWS::SNS::Subscription', { Protocol: 'email' }, 4);
  });
});

/** The alarm's resolved properties, looked up through the construct. */
const alarm = (id: string) => {
  const a = alerts.alarms.get(id);
  if (!a) throw new Error(`no alarm ${id}; have ${[...alerts.alarms.keys()].join(', ')}`);
  return resourceOf(template, a).Properties;
};

describe('alarms', () => {
  const GiB = 1024 ** 3;
  const fresh = (metric: string, dims: { Name: string; Value: string }[]) => ({
    Namespace: 'Cofre',
    MetricName: metric,
    Dimensions: dims,
    Statistic: 'Maximum',
    Period: 3600,
  });
  const db = (id: string) => [{ Name: 'Database', Value: id }];
  const cases: [string, 'critical' | 'warning', () => Record<string, unknown>][] = [
    [
      'AppProdFullBackupStale',
      'critical',
      () => ({
        ...fresh('HoursSinceLastGoodBackup', [
          { Name: 'Database', Value: 'app-prod' },
          { Name: 'Kind', Value: 'full' },
        ]),
        Threshold: 24.5,
        EvaluationPeriods: 2,
        DatapointsToAlarm: 2,
        TreatMissingData: 'breaching',
        AlarmDescription: expect.stringMatching(
          /^\[critical\] app-prod: no good full backup for more than 24.5 h/,
        ),
      }),
    ],
    [
      'AppProdTenantExportStale',
      'warning',
      () => ({
        ...fresh('HoursSinceLastVerifiedTenantExport', db('app-prod')),
        Threshold: 24.5,
        EvaluationPeriods: 2,
        TreatMissingData: 'breaching',
      }),
    ],
    [
      'AppProdRestoreTestStale',
      'critical',
      () => ({
        ...fresh('DaysSinceLastGoodRestoreTest', db('app-prod')),
        Threshold: 36,
        EvaluationPeriods: 2,
        TreatMissingData: 'breaching',
        AlarmDescription: expect.stringMatching(
          /^\[high\] app-prod: no good restore test for more than 36 days/,
        ),
      }),
    ],
    [
      'AppProdBackupTooLarge',
      'warning',
      () => ({
        Namespace: 'Cofre',
        MetricName: 'BackupSizeBytes',
        Dimensions: db('app-prod'),
        Statistic: 'Maximum',
        Threshold: 50 * GiB,
        TreatMissingData: 'notBreaching',
      }),
    ],
    [
      'AppProdBackupTooSlow',
      'warning',
      () => ({
        Namespace: 'Cofre',
        MetricName: 'BackupDurationSeconds',
        Dimensions: db('app-prod'),
        Threshold: 1800,
        TreatMissingData: 'notBreaching',
      }),
    ],
    [
      'LedgerProdFullBackupStale',
      'critical',
      () => ({
        ...fresh('HoursSinceLastGoodBackup', [
          { Name: 'Database', Value: 'ledger-prod' },
          { Name: 'Kind', Value: 'full' },
        ]),
        TreatMissingData: 'breaching',
      }),
    ],
    [
      'ReplicationLate',
      'warning',
      () => ({
        Namespace: 'AWS/S3',
        MetricName: 'ReplicationLatency',
        Dimensions: [
          { Name: 'DestinationBucket', Value: expect.anything() as unknown },
          { Name: 'RuleId', Value: 'cofre-replicate-to-dr' },
          { Name: 'SourceBucket', Value: ref(primary.vault.bucket) },
        ],
        Statistic: 'Maximum',
        Period: 300,
        Threshold: 900,
        EvaluationPeriods: 3,
      }),
    ],
    [
      'ReplicationFailed',
      'warning',
      () => ({
        Namespace: 'AWS/S3',
        MetricName: 'OperationsFailedReplication',
        Statistic: 'Sum',
        Threshold: 0,
      }),
    ],
    [
      'FreshnessCheckErrors',
      'critical',
      () => ({
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: ref(alerts.freshnessFunction.function) }],
        Statistic: 'Sum',
        Period: 300,
        Threshold: 0,
      }),
    ],
    [
      'FreshnessDeadLettersDepth',
      'critical',
      () => ({ Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 0 }),
    ],
    ['NotifyErrors', 'warning', () => ({ MetricName: 'Errors' })],
    ['PagerDutyErrors', 'warning', () => ({ MetricName: 'Errors' })],
    ['PagerDutyDeadLettersDepth', 'warning', () => ({ MetricName: 'ApproximateNumberOfMessagesVisible' })],
    ['MonthlyReportErrors', 'warning', () => ({ MetricName: 'Errors' })],
    [
      'MonthlyReportDeadLettersDepth',
      'warning',
      () => ({ MetricName: 'ApproximateNumberOfMessagesVisible' }),
    ],
    ['ScheduleDeadLettersDepth', 'warning', () => ({ MetricName: 'ApproximateNumberOfMessagesVisible' })],
    [
      'UndeliveredAlertsDepth',
      'critical',
      () => ({
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Dimensions: [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalIdOf(alerts.undeliveredQueue), 'QueueName'] } },
        ],
      }),
    ],
  ];

  it.each(cases)(
    '%s: metric, threshold, missing data, %s route for ALARM and OK',
    (id, route, expectedOf) => {
      const expected = expectedOf();
      const props = alarm(id);
      expect(props).toMatchObject({ ComparisonOperator: 'GreaterThanThreshold', ...expected });
      if (expected.AlarmDescription === undefined)
        expect(props.AlarmDescription).toMatch(
          route === 'critical' ? /^\[(critical|high)\] / : /^\[warning\] /,
        );
      const topic = ref(route === 'critical' ? alerts.topic : alerts.warningTopic);
      expect(props.AlarmActions).toEqual([topic]);
      expect(props.OKActions).toEqual([topic]);
    },
  );

  it('size anomaly: |BackupSizeDeviationPercent| over the configured percentage, either direction', () => {
    const props = alarm('AppProdSizeAnomaly');
    expect(props).toMatchObject({
      Threshold: 30,
      TreatMissingData: 'notBreaching',
      AlarmActions: [ref(alerts.warningTopic)],
    });
    expect(props.Metrics).toEqual([
      {
        Id: 'expr_1',
        Expression: 'ABS(deviation)',
        Label: 'size deviation from the trailing average (%)',
        ReturnData: true,
      },
      {
        Id: 'deviation',
        MetricStat: {
          Metric: {
            Namespace: 'Cofre',
            MetricName: 'BackupSizeDeviationPercent',
            Dimensions: db('app-prod'),
          },
          Period: 3600,
          Stat: 'Maximum',
        },
        ReturnData: false,
      },
    ]);
  });

  it('thresholds follow the configuration', () => {
    const { primary: p } = buildTestApp((c) => ({
      ...c,
      thresholds: { maxDurationMinutes: 90, sizeAnomalyPercent: 15, maxSizeGiB: 2 },
    }));
    const t = Template.fromStack(p);
    const props = (id: string) => resourceOf(t, p.alerts.alarms.get(id)!).Properties;
    expect(props('AppProdFullBackupStale').Threshold).toBe(25.5);
    expect(props('AppProdBackupTooSlow').Threshold).toBe(5400);
    expect(props('AppProdSizeAnomaly').Threshold).toBe(15);
    expect(props('AppProdBackupTooLarge').Threshold).toBe(2 * GiB);
  });

  it('every alarm has OK actions to the same topic as its alarm actions', () => {
    expect(alerts.alarms.size).toBeGreaterThanOrEqual(cases.length + 1);
    for (const a of alerts.alarms.values()) {
      const props = resourceOf(template, a).Properties;
      expect(props.OKActions).toEqual(props.AlarmActions);
      expect((props.AlarmActions as unknown[]).length).toBe(1);
    }
  });
});

describe('alarm methods for the pipeline', () => {
  function standalone(change: Partial<CofreAlertsProps> = {}) {
    const app = new App(fastProps());
    const stack = new Stack(app, 'T', { env: { account: '111111111111', region: 'sa-east-1' } });
    const config = parseConfig(exampleConfig());
    const vault = new BackupVault(stack, 'Vault', {
      retention: config.retention,
      objectLock: config.objectLock,
    });
    const history = new BackupHistory(stack, 'History');
    const a = new CofreAlerts(stack, 'Alerts', {
      ...alertsPropsFromConfig(config, { vault, history }),
      ...change,
    });
    return { stack, alerts: a };
  }

  it('a state machine: timed out or aborted pages (critical), failed is a warning (notify already paged)', () => {
    const { stack, alerts: a } = standalone();
    const sm = new StateMachine(stack, 'Sm', {
      definitionBody: DefinitionBody.fromChainable(new Pass(stack, 'P')),
    });
    const [stuck, failed] = a.alarmOnStateMachine(sm, 'BackupDatabase');
    const t = Template.fromStack(stack);
    const stuckProps = resourceOf(t, stuck!).Properties;
    expect(stuckProps).toMatchObject({
      Threshold: 0,
      AlarmActions: [ref(a.topic)],
      OKActions: [ref(a.topic)],
    });
    expect((stuckProps.Metrics as { Expression?: string }[])[0]!.Expression).toBe(
      'FILL(timedOut, 0) + FILL(aborted, 0)',
    );
    expect(
      (stuckProps.Metrics as { MetricStat?: { Metric: { MetricName: string } } }[])
        .flatMap((m) => (m.MetricStat ? [m.MetricStat.Metric.MetricName] : []))
        .sort(),
    ).toEqual(['ExecutionsAborted', 'ExecutionsTimedOut']);
    expect(resourceOf(t, failed!).Properties).toMatchObject({
      MetricName: 'ExecutionsFailed',
      Namespace: 'AWS/States',
      Dimensions: [{ Name: 'StateMachineArn', Value: ref(sm) }],
      Threshold: 0,
      AlarmActions: [ref(a.warningTopic)],
      OKActions: [ref(a.warningTopic)],
    });
  });

  it('ECS tasks that fail: an EventBridge rule keeps the events in a queue, and an alarm counts its matches', () => {
    const { stack, alerts: a } = standalone();
    const cluster = new Cluster(stack, 'Cluster');
    const taskAlarm = a.alarmOnTaskFailures(cluster.clusterArn);
    const t = Template.fromStack(stack);
    t.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: {
          clusterArn: [arnOf(cluster)],
          lastStatus: ['STOPPED'],
          $or: [{ stopCode: ['TaskFailedToStart'] }, { containers: { exitCode: [{ 'anything-but': 0 }] } }],
        },
      },
    });
    expect(resourceOf(t, taskAlarm).Properties).toMatchObject({
      Namespace: 'AWS/Events',
      MetricName: 'MatchedEvents',
      Statistic: 'Sum',
      Threshold: 0,
      AlarmActions: [ref(a.warningTopic)],
    });
  });

  it('a queue, at the severity asked', () => {
    const { stack, alerts: a } = standalone();
    const q = a.alarmOnQueue(new Queue(stack, 'Q'), 'Pipeline', 'critical');
    expect(resourceOf(Template.fromStack(stack), q).Properties.AlarmActions).toEqual([ref(a.topic)]);
    expect(() => a.alarmOnQueue(new Queue(stack, 'Q2'), 'Pipeline')).toThrow(
      /alarm PipelineDepth exists already/,
    );
  });

  it('validates its props, naming them', () => {
    expect(() => standalone({ emails: [] })).toThrow(/emails must hold at least one address/);
    expect(() => standalone({ restoreTestMaxAgeDays: 0 })).toThrow(
      /restoreTestMaxAgeDays must be between 1 and 366, got 0/,
    );
    expect(() => standalone({ maxDurationMinutes: 5000 })).toThrow(
      /maxDurationMinutes must be between 1 and 1440, got 5000/,
    );
  });
});

describe('Lambdas and schedules', () => {
  it('notify gets the topic, the success setting and the vault for its runbook lines', () => {
    const env = (
      resourceOf(template, alerts.notifyFunction.function).Properties.Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;
    expect(env).toMatchObject({
      COFRE_TOPIC_ARN: ref(alerts.topic),
      COFRE_NOTIFY_ON_SUCCESS: 'false',
      COFRE_VAULT_URL: { 'Fn::Join': ['', ['s3://', ref(primary.vault.bucket)]] },
    });
  });

  it('freshness knows the databases (tenants or not) and the limits; it reads the history', () => {
    const env = (
      resourceOf(template, alerts.freshnessFunction.function).Properties.Environment as {
        Variables: Record<string, string>;
      }
    ).Variables;
    expect(JSON.parse(env.COFRE_DATABASES!)).toEqual([
      { database: 'app-prod', tenants: true, rds: { rdsInstanceId: 'app-prod' } },
      { database: 'ledger-prod', tenants: true },
    ]);
    expect(env).toMatchObject({
      COFRE_MAX_DURATION_MINUTES: '30',
      COFRE_RESTORE_TEST_MAX_AGE_DAYS: '36',
      COFRE_RPO_MINUTES: '60',
      COFRE_SNAPSHOT_MAX_AGE_HOURS: '26',
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref(alerts.freshnessFunction.function.role!)],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Action: Match.arrayWith(['dynamodb:Query']),
            Resource: Match.arrayWith([arnOf(primary.history.table)]),
          }),
        ]),
      },
    });
  });

  it('the monthly report gets the prices and may scan the history table', () => {
    const env = (
      resourceOf(template, alerts.monthlyReportFunction.function).Properties.Environment as {
        Variables: Record<string, string>;
      }
    ).Variables;
    expect(JSON.parse(env.COFRE_PRICES!)).toEqual({
      currency: 'USD',
      storageGbMonth: {
        STANDARD: 0.0405,
        STANDARD_IA: 0.0221,
        GLACIER_IR: 0.008,
        GLACIER: 0.0072,
        DEEP_ARCHIVE: 0.0032,
      },
    });
    expect(env.COFRE_ALARM_PREFIX).toBe('CofrePrimary-');
    const policy = resourceOf(
      template,
      alerts.monthlyReportFunction.function.role!.node.findChild('DefaultPolicy'),
    ).Properties.PolicyDocument;
    expect(statementsOf(policy)).toContainEqual({
      Action: 'dynamodb:Scan',
      Effect: 'Allow',
      Resource: [
        arnOf(primary.history.table),
        { 'Fn::Join': ['', [arnOf(primary.history.table), '/index/*']] },
      ],
    });
  });

  it('schedules: freshness hourly, the monthly report on the 1st at 08:00 São Paulo; no flexible window, retries and a DLQ', () => {
    const schedules = Object.values(template.findResources('AWS::Scheduler::Schedule')).map(
      (s) => (s as { Properties: Record<string, unknown> }).Properties,
    );
    const byTarget = (fn: Parameters<typeof arnOf>[0]) =>
      schedules.find((s) => JSON.stringify((s.Target as { Arn: unknown }).Arn) === JSON.stringify(arnOf(fn)));
    expect(byTarget(alerts.freshnessFunction.function)).toMatchObject({
      ScheduleExpression: 'cron(10 * * * ? *)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 1800 },
        DeadLetterConfig: { Arn: arnOf(alerts.scheduleDeadLetterQueue) },
      },
    });
    expect(byTarget(alerts.monthlyReportFunction.function)).toMatchObject({
      ScheduleExpression: 'cron(0 8 1 * ? *)',
      ScheduleExpressionTimezone: 'America/Sao_Paulo',
      FlexibleTimeWindow: { Mode: 'OFF' },
    });
  });
});

describe('dashboard', () => {
  it('has per-database status, 30-day success rate, size/duration/compression trends, vault by storage class, replication, alarms', () => {
    const body = JSON.stringify(resourceOf(template, alerts.dashboard).Properties.DashboardBody);
    for (const title of [
      'app-prod: status',
      'ledger-prod: status',
      'app-prod: success rate, 30 days (%)',
      'Backup size (bytes stored)',
      'Backup duration (s)',
      'Compression ratio',
      'Vault size by storage class',
      'Replication to the DR vault',
      'Alarms',
    ])
      expect(body).toContain(`\\"title\\":\\"${title}\\"`);
    for (const text of [
      'HoursSinceLastGoodBackup',
      'DaysSinceLastGoodRestoreTest',
      'LastRestoreTestDurationSeconds',
      '100 * ok / (ok + FILL(failed, 0))',
      'GlacierInstantRetrievalStorage',
      'DeepArchiveStorage',
      'ReplicationLatency',
      'cron(0 2 * * ? *)',
    ])
      expect(body).toContain(text);
  });
});
