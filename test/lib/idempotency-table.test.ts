import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Key } from 'aws-cdk-lib/aws-kms';
import { beforeAll, describe, expect, it } from 'vitest';
import { IDEMPOTENCY_TABLE_SCHEMA, IdempotencyTable } from '../../lib/constructs/idempotency-table';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp } from '../helpers/cdk';
import { actionsOf, arnOf, logicalIdOf, resourceOf, statementsOf } from '../helpers/template';

let template: Template;
let primary: CofrePrimaryStack;
beforeAll(() => {
  primary = buildTestApp().primary;
  template = Template.fromStack(primary);
});

describe('the idempotency table of prepare (primary stack)', () => {
  it('is keyed by id, expires items by TTL on expiration, on-demand with point-in-time recovery', () => {
    const table = resourceOf(template, primary.pipeline.idempotency.table);
    expect(table.Properties).toMatchObject({
      KeySchema: [{ AttributeName: IDEMPOTENCY_TABLE_SCHEMA.partitionKey, KeyType: 'HASH' }],
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true, RecoveryPeriodInDays: 7 },
    });
    expect(table.Properties.TableName).toBeUndefined();
  });

  it('is encrypted with the history table key (usable only through DynamoDB)', () => {
    expect(resourceOf(template, primary.pipeline.idempotency.table).Properties.SSESpecification).toEqual({
      SSEEnabled: true,
      SSEType: 'KMS',
      KMSMasterKeyId: arnOf(primary.history.key),
    });
  });

  it('is named to prepare only, which may get, put, update and delete its items', () => {
    const prepare = primary.pipeline.functions.prepare.function;
    const fn = resourceOf(template, prepare).Properties as {
      Environment: { Variables: Record<string, unknown> };
    };
    expect(fn.Environment.Variables.COFRE_IDEMPOTENCY_TABLE).toEqual({
      Ref: logicalIdOf(primary.pipeline.idempotency.table),
    });
    const statements = statementsOf(
      resourceOf(template, prepare.role!.node.findChild('DefaultPolicy')).Properties.PolicyDocument,
    );
    const onTable = statements.filter((st) => actionsOf(st).includes('dynamodb:DeleteItem'));
    expect(onTable).toHaveLength(1);
    expect(actionsOf(onTable[0]!).sort()).toEqual([
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ]);
    expect(onTable[0]!.Resource).toEqual(arnOf(primary.pipeline.idempotency.table));
    for (const name of ['verify', 'record', 'list-tenants', 'list-backups'] as const) {
      const other = resourceOf(template, primary.pipeline.functions[name].function).Properties as {
        Environment: { Variables: Record<string, unknown> };
      };
      expect(other.Environment.Variables.COFRE_IDEMPOTENCY_TABLE).toBeUndefined();
    }
  });

  it('refuses a point-in-time recovery period DynamoDB does not allow, naming the prop', () => {
    const stack = new Stack(new App(), 'S');
    const encryptionKey = new Key(stack, 'K');
    expect(() => new IdempotencyTable(stack, 'T', { encryptionKey, pointInTimeRecoveryDays: 36 })).toThrow(
      /pointInTimeRecoveryDays must be a whole number between 1 and 35, got 36/,
    );
  });
});
