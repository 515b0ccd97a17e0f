/**
 * The local AWS (moto server, started once per run by `moto-global-setup.ts`) and what tests
 * build in it: an Object-Lock vault bucket, KMS keys, the history table (from the same key schema
 * as the CDK construct), an SNS topic read back through an SQS queue, secrets.
 *
 * Every resource gets a unique name, so test files share one server without seeing each other.
 */
import { randomBytes } from 'node:crypto';
import {
  CreateTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type AttributeDefinition,
} from '@aws-sdk/client-dynamodb';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  CreateBucketCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
  type ObjectLockMode,
} from '@aws-sdk/client-s3';
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { SSMClient } from '@aws-sdk/client-ssm';
import { describe, inject, test } from 'vitest';
import { HISTORY_TABLE_SCHEMA } from '../../lib/constructs/backup-history';
import { IDEMPOTENCY_TABLE_SCHEMA } from '../../lib/constructs/idempotency-table';

export const REGION = 'sa-east-1';
export const ACCOUNT = '123456789012';
const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

/** Why there is no local AWS, or `undefined` when there is one. */
export function localAwsMissing(): string | undefined {
  return inject('motoEndpoint') ? undefined : inject('motoMissing') || 'moto_server not started';
}

/**
 * `describe(name, fn)` when the local AWS runs. Otherwise: with CI=true, one failing test with the
 * reason; else the suite is skipped with the reason printed.
 */
export function describeLocalAws(name: string, fn: () => void): void {
  const reason = localAwsMissing();
  if (reason === undefined) {
    describe(name, fn);
    return;
  }
  describe(name, () => {
    if (process.env.CI === 'true') {
      test('the local AWS (moto) is available (required because CI=true)', () => {
        throw new Error(reason);
      });
      return;
    }
    console.warn(`[cofre tests] skipping "${name}": ${reason}`);
    describe.skip('skipped: local AWS unavailable', fn);
  });
}

/** Client settings that point an AWS SDK v3 client at the local AWS. */
export function clientConfig(): {
  endpoint: string;
  region: string;
  credentials: typeof CREDENTIALS;
  maxAttempts: number;
} {
  const endpoint = inject('motoEndpoint');
  if (!endpoint) throw new Error(localAwsMissing());
  return { endpoint, region: REGION, credentials: CREDENTIALS, maxAttempts: 2 };
}

/** The environment that points the CLI, `openVault` and the SDK's default chain at the local AWS. */
export function localAwsEnv(): NodeJS.ProcessEnv {
  const { endpoint } = clientConfig();
  return {
    ...process.env,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_REGION: REGION,
  };
}

export function uniqueName(label: string): string {
  return `cofre-t-${label}-${process.pid}-${randomBytes(3).toString('hex')}`.toLowerCase();
}

export function s3Client(): S3Client {
  return new S3Client({ ...clientConfig(), forcePathStyle: true });
}

/** The clients of every service the runtime talks to, pointed at the local AWS. */
export interface LocalAws {
  readonly s3: S3Client;
  readonly kms: KMSClient;
  readonly dynamodb: DynamoDBClient;
  readonly sns: SNSClient;
  readonly sqs: SQSClient;
  readonly secrets: SecretsManagerClient;
}

export function localAws(): LocalAws {
  const config = clientConfig();
  return {
    s3: new S3Client({ ...config, forcePathStyle: true }),
    kms: new KMSClient(config),
    dynamodb: new DynamoDBClient(config),
    sns: new SNSClient(config),
    sqs: new SQSClient(config),
    secrets: new SecretsManagerClient(config),
  };
}

/**
 * A vault bucket as the CDK vault makes it: versioned, Object Lock enabled with a default
 * retention (`mode`, `days`), or a plain versioned bucket with `objectLock: false`.
 */
export async function createVaultBucket(
  s3: S3Client,
  options: { objectLock?: boolean; mode?: ObjectLockMode; days?: number } = {},
): Promise<string> {
  const bucket = uniqueName('vault');
  const objectLock = options.objectLock ?? true;
  await s3.send(
    new CreateBucketCommand({
      Bucket: bucket,
      CreateBucketConfiguration: { LocationConstraint: REGION },
      ...(objectLock ? { ObjectLockEnabledForBucket: true } : {}),
    }),
  );
  await s3.send(
    new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
  );
  if (objectLock)
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: bucket,
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: options.mode ?? 'COMPLIANCE', Days: options.days ?? 30 } },
        },
      }),
    );
  return bucket;
}

/** A symmetric KMS key; returns its ARN. */
export async function createKmsKey(kms: KMSClient, description = 'cofre test key'): Promise<string> {
  const out = await kms.send(new CreateKeyCommand({ Description: description }));
  return out.KeyMetadata!.Arn!;
}

/** The backup history table, built from the CDK construct's own key schema and indexes. */
export async function createHistoryTable(dynamodb: DynamoDBClient): Promise<string> {
  const tableName = uniqueName('history');
  const names = new Set<string>([HISTORY_TABLE_SCHEMA.partitionKey]);
  const indexes: GlobalSecondaryIndex[] = HISTORY_TABLE_SCHEMA.indexes.map((index) => {
    names.add(index.partitionKey);
    names.add(index.sortKey);
    return {
      IndexName: index.indexName,
      KeySchema: [
        { AttributeName: index.partitionKey, KeyType: 'HASH' },
        { AttributeName: index.sortKey, KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    };
  });
  const attributes: AttributeDefinition[] = [...names].map((name) => ({
    AttributeName: name,
    AttributeType: 'S',
  }));
  await dynamodb.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: HISTORY_TABLE_SCHEMA.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: attributes,
      GlobalSecondaryIndexes: indexes,
    }),
  );
  return tableName;
}

/** A table like lib/constructs/idempotency-table.ts makes (Powertools Idempotency's records). */
export async function createIdempotencyTable(dynamodb: DynamoDBClient): Promise<string> {
  const tableName = uniqueName('idempotency');
  await dynamodb.send(
    new CreateTableCommand({
      TableName: tableName,
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: IDEMPOTENCY_TABLE_SCHEMA.partitionKey, KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: IDEMPOTENCY_TABLE_SCHEMA.partitionKey, AttributeType: 'S' }],
    }),
  );
  return tableName;
}

/** An SNS topic with an SQS queue subscribed (raw delivery off: the queue gets SNS envelopes). */
export interface TopicWithQueue {
  readonly topicArn: string;
  readonly queueUrl: string;
  /** Waits up to `waitSeconds` for messages and returns the SNS envelopes' `Subject` and `Message`. */
  receive(
    waitSeconds?: number,
  ): Promise<Array<{ subject?: string; message: string; attributes: Record<string, unknown> }>>;
}

export async function createTopicWithQueue(
  sns: SNSClient,
  sqs: SQSClient,
  label = 'alerts',
): Promise<TopicWithQueue> {
  const name = uniqueName(label);
  const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: name }));
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
  const queueArn = attrs.Attributes!.QueueArn!;
  await sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl,
      Attributes: {
        Policy: JSON.stringify({
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { Service: 'sns.amazonaws.com' },
              Action: 'sqs:SendMessage',
              Resource: queueArn,
              Condition: { ArnEquals: { 'aws:SourceArn': TopicArn } },
            },
          ],
        }),
      },
    }),
  );
  await sns.send(new SubscribeCommand({ TopicArn, Protocol: 'sqs', Endpoint: queueArn }));
  return {
    topicArn: TopicArn!,
    queueUrl: QueueUrl!,
    async receive(waitSeconds = 1) {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: waitSeconds }),
      );
      return (out.Messages ?? []).map((m) => {
        const envelope = JSON.parse(m.Body!) as {
          Subject?: string;
          Message: string;
          MessageAttributes?: Record<string, unknown>;
        };
        return {
          ...(envelope.Subject !== undefined ? { subject: envelope.Subject } : {}),
          message: envelope.Message,
          attributes: envelope.MessageAttributes ?? {},
        };
      });
    },
  };
}

/** A Secrets Manager secret holding `value` (a string, or an object stored as JSON); returns its ARN. */
export async function createSecret(
  secrets: SecretsManagerClient,
  value: string | Record<string, unknown>,
  label = 'secret',
): Promise<string> {
  const out = await secrets.send(
    new CreateSecretCommand({
      Name: uniqueName(label),
      SecretString: typeof value === 'string' ? value : JSON.stringify(value),
    }),
  );
  return out.ARN!;
}

/** An SSM client pointed at the local AWS (Parameter Store: String, StringList, SecureString with KMS). */
export function ssmClient(): SSMClient {
  return new SSMClient(clientConfig());
}

/** A unique parameter path for one test (`/cofre-t-<label>-…`). */
export function uniqueParameterPath(label: string): string {
  return `/${uniqueName(label)}`;
}
