import { CfnElement, Stack } from 'aws-cdk-lib';
import type { Role } from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import { acknowledge } from '../../nag';
import type { BackupHistory } from '../backup-history';
import type { CofreFunction } from '../cofre-function';
import type { CofreAlerts } from './index';

/** The cdk-nag acknowledgements of the alert Lambdas, queues and schedule role, each with its reason. */
export function acknowledgeAlertsNagFindings(
  alerts: CofreAlerts,
  scheduleRole: Role,
  history: BackupHistory,
): void {
  const logicalId = (c: Construct) =>
    Stack.of(alerts).resolve((c.node.defaultChild as CfnElement).logicalId) as string;
  const historyIndex = {
    id: `AwsSolutions-IAM5[Resource::<${logicalId(history.table)}.Arn>/index/*]`,
    reason:
      'Reading the history means querying its global secondary indexes (latest good run by database, kind and status); index/* names only the indexes of the one history table.',
  };
  const functions: [CofreFunction | undefined, string, boolean][] = [
    [alerts.notifyFunction, 'notify (publishes to the alerts topic)', false],
    [alerts.pagerDutyFunction, 'PagerDuty relay (reads its secret, calls PagerDuty over HTTPS)', false],
    [alerts.freshnessFunction, 'freshness check (queries the history, emits EMF metrics)', true],
    [alerts.monthlyReportFunction, 'monthly report (reads history and CloudWatch, publishes)', true],
    [alerts.backupEventsFunction, 'AWS Backup events (writes job records, publishes alerts)', true],
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
    alerts.notifyFunction.function,
    { id: 'HIPAA.Security-LambdaDLQ', reason: syncNotify },
    { id: 'Serverless-LambdaDLQ', reason: syncNotify },
  );
  for (const [queue, what] of [
    [alerts.scheduleDeadLetterQueue, 'the freshness and monthly-report schedules'],
    [alerts.undeliveredQueue, 'the alert topics subscriptions (e-mail and PagerDuty)'],
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
    ...[alerts.freshnessFunction, alerts.monthlyReportFunction].map((fn) => ({
      id: `AwsSolutions-IAM5[Resource::<${logicalId(fn.function)}.Arn>:*]`,
      reason:
        'lambda:InvokeFunction on the function and its versions (<arn>:*), as the scheduler target grant writes it; no other function.',
    })),
  );
}
