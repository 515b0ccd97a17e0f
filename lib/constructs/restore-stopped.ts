import path from 'node:path';
import { CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';
import type { CofreAlerts } from './alerts';
import type { BackupHistory } from './backup-history';
import { LAMBDAS_DIR } from './backup-pipeline';
import { CofreFunction } from './cofre-function';

/** The execution statuses that skip the state machine's Catch (core/aws/restore-stopped.ts). */
export const STOPPED_EXECUTION_STATUSES = ['ABORTED', 'TIMED_OUT'] as const;

/** Properties of {@link RestoreStoppedEvents}. */
export interface RestoreStoppedEventsProps {
  /** The console `restore` state machine whose stopped executions are recorded. */
  readonly stateMachine: IStateMachine;
  readonly history: BackupHistory;
  /** Where the failure is published (its topic) and alarmed. */
  readonly alerts: CofreAlerts;
}

/**
 * A stopped (ABORTED) or timed-out console restore runs no Catch, so its `running` history record would
 * stay `running`: an EventBridge rule on the restore state machine's execution status changes sends
 * those two statuses to the `restore-stopped` Lambda, which marks the record failed with the reason and
 * publishes the failure (lambdas/restore-stopped). The Lambda may query and write the history and
 * publish to the alerts topic, nothing else.
 */
export class RestoreStoppedEvents extends Construct {
  public readonly function: CofreFunction;
  public readonly rule: Rule;

  constructor(scope: Construct, id: string, props: RestoreStoppedEventsProps) {
    super(scope, id);
    const { alerts, history } = props;
    this.function = new CofreFunction(this, 'Fn', {
      entry: path.join(LAMBDAS_DIR, 'restore-stopped', 'index.ts'),
      description: 'Cofre: marks a stopped or timed-out console restore failed in the history and notifies',
      encryptionKey: alerts.key,
      asyncInvocation: true,
      timeout: Duration.minutes(1),
      environment: {
        COFRE_HISTORY_TABLE: history.table.tableName,
        COFRE_TOPIC_ARN: alerts.topic.topicArn,
      },
    });
    const fn = this.function.function;
    history.grantRecord(fn);
    // Finding the execution's running record: a query of the database/kind/status index.
    history.table.grant(fn, 'dynamodb:Query');
    alerts.topic.grantPublish(fn);
    this.rule = new Rule(this, 'Rule', {
      description: 'Cofre: console restore executions stopped or timed out (their Catch does not run)',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: {
          status: [...STOPPED_EXECUTION_STATUSES],
          stateMachineArn: [props.stateMachine.stateMachineArn],
        },
      },
      targets: [
        new LambdaFunction(fn, {
          deadLetterQueue: this.function.deadLetterQueue,
          retryAttempts: 4,
          maxEventAge: Duration.hours(6),
        }),
      ],
    });
    alerts.alarmOnFunction(fn, 'RestoreStopped', 'critical');
    alerts.alarmOnQueue(this.function.deadLetterQueue!, 'RestoreStoppedDeadLetters', 'critical');

    const logicalId = (c: Construct) =>
      Stack.of(this).resolve((c.node.defaultChild as CfnElement).logicalId) as string;
    const what = 'restore-stopped (queries and writes restore records, publishes alerts)';
    const role = fn.role!;
    acknowledge(role, {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: `CDK attaches AWSLambdaBasicExecutionRole so the ${what} Lambda can write its logs: only creating log streams and putting log events, into its explicit KMS-encrypted log group.`,
    });
    acknowledge(
      role.node.findChild('DefaultPolicy'),
      {
        id: 'HIPAA.Security-IAMNoInlinePolicy',
        reason: `This policy belongs to the ${what} Lambda role alone and is generated from grants on named resources; a managed policy would only make it attachable to other principals.`,
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: `X-Ray tracing actions (xray:PutTraceSegments, xray:PutTelemetryRecords) take no resource; every data action of the ${what} Lambda names its topic, table or key.`,
      },
      {
        id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
        reason: `Publishing to the KMS-encrypted alerts topic needs GenerateDataKey* on the alerts key only, and the key policy allows it only through SNS, Lambda and SQS.`,
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${logicalId(history.table)}.Arn>/index/*]`,
        reason:
          "Finding the execution's running record queries the history's database/kind/status index; index/* names only the indexes of the one history table.",
      },
    );
    acknowledge(fn, {
      id: 'HIPAA.Security-LambdaInsideVPC',
      reason: `The ${what} Lambda calls only AWS APIs (DynamoDB, SNS) over TLS with IAM authorization and never a database; a VPC would need NAT or endpoints without narrowing what it can reach.`,
    });
    const isDlq = `This queue is itself the dead-letter queue of the ${what} Lambda (kept 14 days, alarmed on depth); a queue behind it would only move the events again.`;
    acknowledge(this.function.deadLetterQueue!, { id: 'Serverless-SQSRedrivePolicy', reason: isDlq });
  }
}
