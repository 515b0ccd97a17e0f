import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { HISTORY_INDEXES, HISTORY_PARTITION_KEY } from '../../core/history/records';
import { BackupHistory, HISTORY_TABLE_SCHEMA } from '../../lib/constructs/backup-history';
import { KEY_ADMIN_ACTIONS } from '../../lib/constructs/key-policy';
import { buildTestApp, testAppProps } from '../helpers/cdk';
import {
  actionsOf,
  arnOf,
  logicalIdOf,
  resourceOf,
  statementsOf,
  statementWithSid,
} from '../helpers/template';

let template: Template;
let history: BackupHistory;
beforeAll(() => {
  const { primary } = buildTestApp();
  history = primary.history;
  template = Template.fromStack(primary);
});

describe('the backup history table (primary stack)', () => {
  it('is on-demand, with 35-day point-in-time recovery, deletion protection, and retained', () => {
    const table = resourceOf(template, history.table);
    expect(table.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true, RecoveryPeriodInDays: 35 },
      DeletionProtectionEnabled: true,
    });
    expect(table.Properties.TableName).toBeUndefined();
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });

  it('is encrypted with its own customer-managed key', () => {
    expect(resourceOf(template, history.table).Properties.SSESpecification).toEqual({
      SSEEnabled: true,
      SSEType: 'KMS',
      KMSMasterKeyId: arnOf(history.key),
    });
    expect(logicalIdOf(history.key)).not.toBe(
      logicalIdOf(Stack.of(history).node.findChild('Vault').node.findChild('Key')),
    );
  });

  it('is keyed by id, with indexes for the latest runs by database and kind, by status, and by tenant', () => {
    const table = resourceOf(template, history.table).Properties;
    expect(table.KeySchema).toEqual([{ AttributeName: 'id', KeyType: 'HASH' }]);
    expect(table.GlobalSecondaryIndexes).toEqual([
      {
        IndexName: 'byDatabaseKind',
        KeySchema: [
          { AttributeName: 'databaseKind', KeyType: 'HASH' },
          { AttributeName: 'startedAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: 'byDatabaseKindStatus',
        KeySchema: [
          { AttributeName: 'databaseKindStatus', KeyType: 'HASH' },
          { AttributeName: 'startedAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: 'byTenant',
        KeySchema: [
          { AttributeName: 'databaseTenant', KeyType: 'HASH' },
          { AttributeName: 'startedAt', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
    ]);
  });

  it('has the keys and indexes that the runtime (core/history/records.ts) writes and queries', () => {
    expect(HISTORY_TABLE_SCHEMA.partitionKey).toBe(HISTORY_PARTITION_KEY);
    expect(HISTORY_TABLE_SCHEMA.indexes).toEqual(Object.values(HISTORY_INDEXES));
  });

  it('has a rotated, retained key aliased alias/cofre-history that the account can use only through DynamoDB', () => {
    const key = resourceOf(template, history.key);
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.DeletionPolicy).toBe('Retain');
    template.hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/cofre-history',
      TargetKeyId: arnOf(history.key),
    });
    const policy = key.Properties.KeyPolicy;
    expect(
      [...actionsOf(statementWithSid(policy, 'AccountAdministersButCannotUseOrDeleteTheKey'))].sort(),
    ).toEqual([...KEY_ADMIN_ACTIONS].sort());
    expect(statementWithSid(policy, 'AccountUsesTheKeyOnlyThroughDynamoDb')).toMatchObject({
      Principal: { AWS: 'arn:aws:iam::111111111111:root' },
      Condition: {
        StringEquals: {
          'kms:ViaService': 'dynamodb.sa-east-1.amazonaws.com',
          'kms:CallerAccount': '111111111111',
        },
      },
    });
    expect(statementsOf(policy)).toHaveLength(3);
  });

  it('exports its name', () => {
    template.hasOutput('HistoryTableName', { Value: { Ref: logicalIdOf(history.table) } });
  });
});

function standalone(props: ConstructorParameters<typeof BackupHistory>[2] = {}) {
  const stack = new Stack(new App(testAppProps()), 'Test', {
    env: { account: '111111111111', region: 'sa-east-1' },
  });
  return { stack, history: new BackupHistory(stack, 'History', props) };
}

describe('BackupHistory', () => {
  it('grantRecord lets a role put, update and read records, never delete them', () => {
    const { stack, history } = standalone();
    const role = new Role(stack, 'Recorder', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    history.grantRecord(role);
    const actions = statementsOf(
      resourceOf(Template.fromStack(stack), role.node.findChild('DefaultPolicy')).Properties.PolicyDocument,
    ).flatMap(actionsOf);
    expect(actions).toEqual(
      expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:UpdateItem', 'kms:Encrypt']),
    );
    expect(actions.filter((a) => /Delete|BatchWrite|PartiQL/.test(a))).toEqual([]);
  });

  it('grantReadHistory lets a role get and query, not write', () => {
    const { stack, history } = standalone();
    const role = new Role(stack, 'Reader', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    history.grantReadHistory(role);
    const actions = statementsOf(
      resourceOf(Template.fromStack(stack), role.node.findChild('DefaultPolicy')).Properties.PolicyDocument,
    ).flatMap(actionsOf);
    expect(actions).toEqual(expect.arrayContaining(['dynamodb:Query', 'dynamodb:GetItem', 'kms:Decrypt']));
    expect(actions.filter((a) => /Put|Update|Delete|Write/.test(a))).toEqual([]);
  });

  it.each([
    [
      { pointInTimeRecoveryDays: 36 },
      /pointInTimeRecoveryDays must be a whole number between 1 and 35, got 36/,
    ],
    [
      { keyAlias: 'alias/aws/dynamodb' },
      /keyAlias must look like "alias\/<name>".*got "alias\/aws\/dynamodb"/,
    ],
  ])('rejects %o, naming the prop', (props, message) => {
    expect(() => standalone(props)).toThrow(message);
  });
});
