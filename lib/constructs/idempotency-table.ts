import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import type { Grant, IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';
import { requireWholeNumber } from './prop-checks';

/**
 * Key schema of the idempotency table: what Powertools Idempotency's DynamoDB persistence layer
 * writes (core/aws/idempotency.ts passes the same names; a test creates its local table from these).
 */
export const IDEMPOTENCY_TABLE_SCHEMA = { partitionKey: 'id', timeToLiveAttribute: 'expiration' } as const;

/** Properties of {@link IdempotencyTable}. */
export interface IdempotencyTableProps {
  /** The table's customer-managed key (Cofre uses the history table's key: usable only through DynamoDB). */
  readonly encryptionKey: IKey;
  /**
   * Days of point-in-time recovery (DynamoDB allows 1 to 35).
   * @default 7 (its records live a day: a week covers any investigation of a retried step)
   */
  readonly pointInTimeRecoveryDays?: number;
}

/**
 * The idempotency records of the retried pipeline steps that write (Powertools Idempotency): one item
 * per Step Functions execution, expired by DynamoDB's TTL on `expiration`. On-demand, point-in-time
 * recovery, encrypted with the given customer-managed key. Its items are a cache of step results, not
 * an audit log (that is the history table): the table is removed with the stack.
 */
export class IdempotencyTable extends Construct {
  /** The table. */
  public readonly table: Table;
  private readonly key: IKey;

  constructor(scope: Construct, id: string, props: IdempotencyTableProps) {
    super(scope, id);
    const pitrDays = props.pointInTimeRecoveryDays ?? 7;
    requireWholeNumber(`IdempotencyTable ${this.node.path}`, 'pointInTimeRecoveryDays', pitrDays, 1, 35);
    this.key = props.encryptionKey;
    this.table = new Table(this, 'Table', {
      partitionKey: { name: IDEMPOTENCY_TABLE_SCHEMA.partitionKey, type: AttributeType.STRING },
      timeToLiveAttribute: IDEMPOTENCY_TABLE_SCHEMA.timeToLiveAttribute,
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true, recoveryPeriodInDays: pitrDays },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(this.table, {
      id: 'HIPAA.Security-DynamoDBInBackupPlan',
      reason:
        'The idempotency table holds only day-long records of step results keyed by execution id (no tenant data, no backups); point-in-time recovery covers it and the history table is the audit log.',
    });
  }

  /**
   * Lets `grantee` run idempotent steps: get, put, update and delete its records (Powertools deletes
   * the in-progress record of a step that failed, so the retry runs it again).
   */
  public grantIdempotency(grantee: IGrantable): Grant {
    return this.table
      .grant(grantee, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem')
      .combine(this.key.grant(grantee, 'kms:Encrypt', 'kms:Decrypt', 'kms:GenerateDataKey'));
  }
}
