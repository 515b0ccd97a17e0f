import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AttributeType, BillingMode, ProjectionType, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Grant, PolicyStatement, ServicePrincipal, type IGrantable } from 'aws-cdk-lib/aws-iam';
import { Key, type Alias } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';
import { administeredKeyPolicy, usableOnlyThroughServices } from './key-policy';
import { requireWholeNumber } from './prop-checks';

/**
 * Key schema of the history table. The runtime's record type and key helpers live in
 * `core/history/records.ts` (infrastructure does not import runtime code); a test checks that both agree.
 */
export const HISTORY_TABLE_SCHEMA = {
  partitionKey: 'id',
  indexes: [
    { indexName: 'byDatabaseKind', partitionKey: 'databaseKind', sortKey: 'startedAt' },
    { indexName: 'byDatabaseKindStatus', partitionKey: 'databaseKindStatus', sortKey: 'startedAt' },
    { indexName: 'byTenant', partitionKey: 'databaseTenant', sortKey: 'startedAt' },
  ],
} as const;

/** Properties of {@link BackupHistory}. */
export interface BackupHistoryProps {
  /**
   * Alias of the table's key.
   * @default 'alias/cofre-history'
   */
  readonly keyAlias?: string;
  /**
   * Days of point-in-time recovery (DynamoDB allows 1 to 35).
   * @default 35
   */
  readonly pointInTimeRecoveryDays?: number;
}

/**
 * The backup history (audit log) table: on-demand, point-in-time recovery, deletion protection,
 * encrypted with its own customer-managed key (rotated, `RETAIN`), `RETAIN`ed. Partition key `id`;
 * global secondary indexes for the latest runs by database and kind, by database, kind and status,
 * and by tenant, all sorted by `startedAt`. Item fields: `HistoryRecord` in `core/history/records.ts`.
 */
export class BackupHistory extends Construct {
  /** The table. */
  public readonly table: Table;
  /** Its key: the account may administer it, and use it only through DynamoDB. */
  public readonly key: Key;
  /** `alias/cofre-history` (or `keyAlias`). */
  public readonly keyAlias: Alias;

  constructor(scope: Construct, id: string, props: BackupHistoryProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const pitrDays = props.pointInTimeRecoveryDays ?? 35;
    requireWholeNumber(`BackupHistory ${this.node.path}`, 'pointInTimeRecoveryDays', pitrDays, 1, 35);
    const keyAlias = props.keyAlias ?? 'alias/cofre-history';
    if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(keyAlias) || keyAlias.startsWith('alias/aws/'))
      throw new Error(
        `BackupHistory ${this.node.path}: keyAlias must look like "alias/<name>" and not start with "alias/aws/", got "${keyAlias}"`,
      );

    const policy = administeredKeyPolicy();
    // As the DynamoDB documentation prescribes for a customer managed table key: principals of this
    // account may use it only through DynamoDB in this region (and still need IAM permissions).
    policy.addStatements(
      usableOnlyThroughServices(this, 'AccountUsesTheKeyOnlyThroughDynamoDb', ['dynamodb']),
      new PolicyStatement({
        sid: 'DynamoDbReadsKeyState',
        principals: [new ServicePrincipal('dynamodb.amazonaws.com')],
        actions: ['kms:Describe*', 'kms:Get*', 'kms:List*'],
        resources: ['*'],
      }),
    );
    this.key = new Key(this, 'Key', {
      description: `Cofre backup history table key (${stack.region})`,
      enableKeyRotation: true,
      policy,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.keyAlias = this.key.addAlias(keyAlias);

    this.table = new Table(this, 'Table', {
      partitionKey: { name: HISTORY_TABLE_SCHEMA.partitionKey, type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true, recoveryPeriodInDays: pitrDays },
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const index of HISTORY_TABLE_SCHEMA.indexes) {
      this.table.addGlobalSecondaryIndex({
        indexName: index.indexName,
        partitionKey: { name: index.partitionKey, type: AttributeType.STRING },
        sortKey: { name: index.sortKey, type: AttributeType.STRING },
        projectionType: ProjectionType.ALL,
      });
    }
    acknowledge(this.table, {
      id: 'HIPAA.Security-DynamoDBInBackupPlan',
      reason:
        'The history table has 35-day point-in-time recovery, deletion protection and RETAIN, and the pipeline can only put and update items (grantRecord has no DeleteItem); an AWS Backup plan is a follow-up.',
    });
  }

  /** Lets `grantee` record runs: put, update and get items (never delete: the history is an audit log). */
  public grantRecord(grantee: IGrantable): Grant {
    return this.table
      .grant(
        grantee,
        'dynamodb:PutItem',
        'dynamodb:UpdateItem',
        'dynamodb:GetItem',
        'dynamodb:ConditionCheckItem',
      )
      .combine(this.key.grant(grantee, 'kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'));
  }

  /** Lets `grantee` read the history: get, query the table and its indexes. */
  public grantReadHistory(grantee: IGrantable): Grant {
    return this.table
      .grant(grantee, 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query', 'dynamodb:DescribeTable')
      .combine(this.key.grant(grantee, 'kms:Decrypt'));
  }
}
