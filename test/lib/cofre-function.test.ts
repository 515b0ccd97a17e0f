import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { CfnRole } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { describe, expect, it } from 'vitest';
import { CofreFunction } from '../../lib/constructs/cofre-function';
import { testAppProps } from '../helpers/cdk';

const entry = path.join(__dirname, '..', 'fixtures', 'hello-handler.ts');

function stackWith(props: Partial<ConstructorParameters<typeof CofreFunction>[2]> = {}) {
  const stack = new Stack(new App(testAppProps()), 'Test', {
    env: { account: '111111111111', region: 'sa-east-1' },
  });
  const key = new Key(stack, 'Key', { enableKeyRotation: true });
  const fn = new CofreFunction(stack, 'Fn', {
    entry,
    description: 'test function',
    encryptionKey: key,
    ...props,
  });
  return { stack, fn, key, template: Template.fromStack(stack) };
}

describe('CofreFunction', () => {
  it('runs Node.js 24 on ARM64 with active tracing, source maps and reserved concurrency', () => {
    const { template } = stackWith();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      TracingConfig: { Mode: 'Active' },
      ReservedConcurrentExecutions: 5,
      KmsKeyArn: Match.anyValue(),
      Environment: { Variables: Match.objectLike({ NODE_OPTIONS: '--enable-source-maps' }) },
      LoggingConfig: { LogGroup: Match.anyValue() },
    });
  });

  it('writes to an explicit, KMS-encrypted log group kept a year and retained', () => {
    const { template } = stackWith();
    template.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 365, KmsKeyId: Match.anyValue() },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('gets an encrypted dead-letter queue only when invoked asynchronously', () => {
    expect(stackWith().fn.deadLetterQueue).toBeUndefined();
    const { template } = stackWith({ asyncInvocation: true });
    template.hasResourceProperties('AWS::SQS::Queue', { KmsMasterKeyId: Match.anyValue() });
    template.hasResourceProperties('AWS::Lambda::Function', {
      DeadLetterConfig: { TargetArn: Match.anyValue() },
    });
  });

  it('lets its role deliver a failed event to the encrypted dead-letter queue (send, and a data key under its key)', () => {
    const { stack, fn, key, template } = stackWith({ asyncInvocation: true });
    const role = stack.resolve((fn.function.role!.node.defaultChild as CfnRole).logicalId) as string;
    const statements = Object.values(
      template.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: role }] } }),
    ).flatMap(
      (p) =>
        (p as { Properties: { PolicyDocument: { Statement: unknown[] } } }).Properties.PolicyDocument
          .Statement,
    );
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Resource: stack.resolve(key.keyArn) as unknown,
    });
    expect(statements).toContainEqual({
      Effect: 'Allow',
      Action: 'sqs:SendMessage',
      Resource: stack.resolve(fn.deadLetterQueue!.queueArn) as unknown,
    });
  });

  it('rejects a memory size outside what Lambda allows, naming the prop', () => {
    expect(() => stackWith({ memorySize: 64 })).toThrow(
      /memorySize must be a whole number of MiB between 128 and 10240, got 64/,
    );
  });
});
