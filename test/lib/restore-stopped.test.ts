/**
 * CDK assertions for lib/constructs/restore-stopped.ts: the EventBridge rule that sends the console
 * restore's ABORTED / TIMED_OUT executions to the restore-stopped Lambda, and what that Lambda may do.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp } from '../helpers/cdk';
import { actionsOf, logicalIdOf, resourceOf, statementsOf } from '../helpers/template';

let stack: CofrePrimaryStack;
let template: Template;

beforeAll(() => {
  stack = buildTestApp().primary;
  template = Template.fromStack(stack);
});

describe('stopped console restores', () => {
  it('a rule sends only ABORTED and TIMED_OUT executions of the restore state machine to the Lambda', () => {
    const events = stack.restoreStopped!;
    const rule = resourceOf(template, events.rule);
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: {
        status: ['ABORTED', 'TIMED_OUT'],
        stateMachineArn: [{ Ref: logicalIdOf(stack.consoleRestore!.stateMachine.stateMachine) }],
      },
    });
    const targets = rule.Properties.Targets as {
      Arn: unknown;
      DeadLetterConfig?: unknown;
      RetryPolicy?: unknown;
    }[];
    expect(targets).toHaveLength(1);
    expect(targets[0]!.Arn).toEqual({
      'Fn::GetAtt': [logicalIdOf(events.function.function), 'Arn'],
    });
    expect(targets[0]!.DeadLetterConfig).toBeDefined();
    expect(targets[0]!.RetryPolicy).toMatchObject({ MaximumRetryAttempts: 4 });
  });

  it('the Lambda knows the history table and the alerts topic, and may query/put records and publish, nothing else', () => {
    const fn = resourceOf(template, stack.restoreStopped!.function.function);
    const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env.COFRE_HISTORY_TABLE).toEqual({ Ref: logicalIdOf(stack.history.table) });
    expect(env.COFRE_TOPIC_ARN).toEqual({ Ref: logicalIdOf(stack.alerts.topic) });
    const roleId = logicalIdOf(stack.restoreStopped!.function.function.role!);
    const resources = (
      template.toJSON() as {
        Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
      }
    ).Resources;
    const actions = Object.values(resources)
      .filter(
        (r) =>
          r.Type === 'AWS::IAM::Policy' &&
          (r.Properties.Roles as { Ref?: string }[]).some((x) => x.Ref === roleId),
      )
      .flatMap((r) => statementsOf(r.Properties.PolicyDocument))
      .flatMap(actionsOf);
    expect(actions).toEqual(expect.arrayContaining(['dynamodb:Query', 'dynamodb:PutItem', 'sns:Publish']));
    for (const denied of ['dynamodb:DeleteItem', 'dynamodb:Scan', 'states:StopExecution', 's3:GetObject'])
      expect(actions).not.toContain(denied);
    expect(actions.filter((a) => !/^(dynamodb|kms|sns|xray|sqs):/.test(a))).toEqual([]);
  });
});
