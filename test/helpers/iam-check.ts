/**
 * IAM per call: an AWS SDK v3 middleware that maps each command a client sends to the IAM
 * request(s) AWS would authorize (action, resource ARN, the condition keys that matter, and the KMS
 * calls S3, DynamoDB and SNS make on the caller's behalf), records them, and in `enforce` mode
 * evaluates them with `@cloud-copilot/iam-simulate` against the synthesized identity policies of the
 * role that runs the code in AWS plus the resource policy (bucket, key or topic policy). A denied
 * request throws AccessDenied before it reaches the local AWS, as AWS would. A command this file does
 * not know fails the test.
 *
 * Clients get the middleware explicitly (`checker.attach(client, role)`) or, for clients the runtime
 * builds itself (Lambda handlers' module-level clients, the CLI), through `checker.interceptAll()`
 * plus `checker.as(role, fn)`, which names the role for everything `fn` does (AsyncLocalStorage).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { runSimulation, type Simulation } from '@cloud-copilot/iam-simulate';
import { Client } from '@smithy/core/client';
import type { HandlerExecutionContext, InitializeHandlerArguments, InitializeHandler } from '@smithy/types';
import type { PolicyDocument, RuntimeRoleName, SynthesizedIam } from './iam';

/** One request AWS would authorize. */
export interface IamRequest {
  readonly action: string;
  readonly resource: string;
  readonly context: Readonly<Record<string, string | string[]>>;
  /** For calls a service makes on the caller's behalf (S3 → KMS): the service. */
  readonly via?: string;
  /**
   * Only some response fields depend on it (HeadObject's Object Lock fields need
   * s3:GetObjectRetention): when denied, the call still succeeds and the fields are left out.
   */
  readonly optional?: { readonly strips: readonly string[] };
}

export type Decision = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

export interface RecordedRequest extends IamRequest {
  readonly role: RuntimeRoleName;
  readonly command: string;
  readonly decision: Decision;
}

/** Commands answered by the middleware because moto lacks them (no request reaches moto). */
const STUBBED: Record<string, (input: Record<string, unknown>) => Record<string, unknown>> = {
  // Step Functions task tokens belong to a running execution; moto has none.
  'SFNClient/SendTaskSuccessCommand': () => ({}),
  'SFNClient/SendTaskFailureCommand': () => ({}),
  'SFNClient/SendTaskHeartbeatCommand': () => ({}),
  // moto does not implement DescribeAlarmHistory.
  'CloudWatchClient/DescribeAlarmHistoryCommand': () => ({ AlarmHistoryItems: [] }),
  // moto implements no AWS Backup restore jobs (DescribeRestoreJob is stubbed per test: addStub).
  'BackupClient/PutRestoreValidationResultCommand': () => ({}),
};

/** What a test knows about the resources: which key protects which bucket, table or topic. */
interface KeyOwners {
  readonly bucketKeys: ReadonlyMap<string, string>;
  readonly tableKeys: ReadonlyMap<string, string>;
  readonly topicKeys: ReadonlyMap<string, string>;
}

function keyOwners(iam: SynthesizedIam): KeyOwners {
  const r = iam.resources;
  return {
    bucketKeys: new Map([
      [r.vaultBucket, r.vaultKeyArn],
      [r.drVaultBucket, r.drVaultKeyArn],
    ]),
    tableKeys: new Map([[r.historyTable, r.historyKeyArn]]),
    topicKeys: new Map([[r.alertsTopicArn, r.alertsKeyArn]]),
  };
}

const DAY_MS = 86_400_000;

function tagContext(tagging: unknown): Record<string, string | string[]> {
  if (typeof tagging !== 'string' || tagging === '') return {};
  const tags = [...new URLSearchParams(tagging)];
  return {
    ...Object.fromEntries(tags.map(([k, v]) => [`s3:RequestObjectTag/${k}`, v])),
    's3:RequestObjectTagKeys': tags.map(([k]) => k),
  };
}

function lockContext(input: Record<string, unknown>, now: Date): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof input.ObjectLockMode === 'string') out['s3:object-lock-mode'] = input.ObjectLockMode;
  const until = input.ObjectLockRetainUntilDate;
  if (until instanceof Date || typeof until === 'string') {
    const date = new Date(until);
    out['s3:object-lock-retain-until-date'] = date.toISOString();
    out['s3:object-lock-remaining-retention-days'] = String(
      Math.max(0, Math.ceil((date.getTime() - now.getTime()) / DAY_MS)),
    );
  }
  if (typeof input.ObjectLockLegalHoldStatus === 'string')
    out['s3:object-lock-legal-hold'] = input.ObjectLockLegalHoldStatus;
  return out;
}

/**
 * The IAM requests of one SDK command. Throws for a command it does not know, so a new AWS call in
 * the runtime cannot pass unchecked.
 */
export function iamRequestsOf(
  clientName: string,
  commandName: string,
  input: Record<string, unknown>,
  env: { readonly account: string; readonly region: string; readonly owners: KeyOwners; readonly now?: Date },
): IamRequest[] {
  const { account, region, owners } = env;
  const now = env.now ?? new Date();
  const command = commandName.replace(/Command$/, '');
  const str = (name: string): string => {
    const v = input[name];
    if (typeof v !== 'string' || v === '')
      throw new Error(`${clientName} ${commandName}: no ${name} in the input`);
    return v;
  };
  const via = (service: string) => `${service}.${region}.amazonaws.com`;

  if (clientName === 'S3Client') {
    const bucket = str('Bucket');
    const bucketArn = `arn:aws:s3:::${bucket}`;
    const objectArn = () => `${bucketArn}/${str('Key')}`;
    const versioned = typeof input.VersionId === 'string';
    const bucketKey = owners.bucketKeys.get(bucket);
    const s3Kms = (action: string, keyArn: string | undefined): IamRequest[] =>
      keyArn
        ? [
            {
              action,
              resource: keyArn,
              via: 's3',
              context: {
                'kms:ViaService': via('s3'),
                'kms:CallerAccount': account,
                // The vault uses S3 Bucket Keys: S3 asks KMS for a bucket-level key, bound to the bucket.
                'kms:EncryptionContext:aws:s3:arn': bucketArn,
                'kms:EncryptionContextKeys': ['aws:s3:arn'],
              },
            },
          ]
        : [];
    /** The KMS key S3 uses for a write: the one named in the request, else the bucket's default. */
    const writeKey = () =>
      input.ServerSideEncryption === 'aws:kms'
        ? typeof input.SSEKMSKeyId === 'string'
          ? input.SSEKMSKeyId
          : bucketKey
        : input.ServerSideEncryption === undefined
          ? bucketKey
          : undefined;
    // HeadObject and GetObject return the lock fields only with these permissions (else they leave them out).
    const readLockFields = (): IamRequest[] => [
      {
        action: 's3:GetObjectRetention',
        resource: objectArn(),
        context: {},
        optional: { strips: ['ObjectLockMode', 'ObjectLockRetainUntilDate'] },
      },
      {
        action: 's3:GetObjectLegalHold',
        resource: objectArn(),
        context: {},
        optional: { strips: ['ObjectLockLegalHoldStatus'] },
      },
    ];
    switch (command) {
      case 'PutObject':
      case 'CreateMultipartUpload': {
        const sse: Record<string, string> = {};
        if (typeof input.ServerSideEncryption === 'string')
          sse['s3:x-amz-server-side-encryption'] = input.ServerSideEncryption;
        if (typeof input.SSEKMSKeyId === 'string')
          sse['s3:x-amz-server-side-encryption-aws-kms-key-id'] = input.SSEKMSKeyId;
        if (typeof input.SSECustomerAlgorithm === 'string')
          sse['s3:x-amz-server-side-encryption-customer-algorithm'] = input.SSECustomerAlgorithm;
        const tags = tagContext(input.Tagging);
        const lock = lockContext(input, now);
        const requests: IamRequest[] = [
          { action: 's3:PutObject', resource: objectArn(), context: { ...sse, ...tags, ...lock } },
        ];
        // Tags and a retain-until date sent with the object need their own permissions too.
        if (Object.keys(tags).length)
          requests.push({ action: 's3:PutObjectTagging', resource: objectArn(), context: tags });
        if (lock['s3:object-lock-retain-until-date'])
          requests.push({ action: 's3:PutObjectRetention', resource: objectArn(), context: lock });
        return [...requests, ...s3Kms('kms:GenerateDataKey', writeKey())];
      }
      case 'UploadPart':
        // S3 decrypts the upload's data key to encrypt each part and to complete the upload.
        return [
          { action: 's3:PutObject', resource: objectArn(), context: {} },
          ...s3Kms('kms:Decrypt', bucketKey),
        ];
      case 'CompleteMultipartUpload':
        return [
          { action: 's3:PutObject', resource: objectArn(), context: {} },
          ...s3Kms('kms:Decrypt', bucketKey),
        ];
      case 'AbortMultipartUpload':
        return [{ action: 's3:AbortMultipartUpload', resource: objectArn(), context: {} }];
      case 'GetObject':
        return [
          { action: versioned ? 's3:GetObjectVersion' : 's3:GetObject', resource: objectArn(), context: {} },
          ...readLockFields(),
          ...s3Kms('kms:Decrypt', bucketKey),
        ];
      case 'HeadObject':
        return [
          { action: versioned ? 's3:GetObjectVersion' : 's3:GetObject', resource: objectArn(), context: {} },
          ...readLockFields(),
          // The stored checksum of an SSE-KMS object is encrypted: checksum mode needs kms:Decrypt.
          ...(input.ChecksumMode === 'ENABLED' ? s3Kms('kms:Decrypt', bucketKey) : []),
        ];
      case 'GetObjectRetention':
        return [{ action: 's3:GetObjectRetention', resource: objectArn(), context: {} }];
      case 'GetObjectLegalHold':
        return [{ action: 's3:GetObjectLegalHold', resource: objectArn(), context: {} }];
      case 'GetObjectTagging':
        return [
          {
            action: versioned ? 's3:GetObjectVersionTagging' : 's3:GetObjectTagging',
            resource: objectArn(),
            context: {},
          },
        ];
      case 'PutObjectTagging':
        return [
          {
            action: versioned ? 's3:PutObjectVersionTagging' : 's3:PutObjectTagging',
            resource: objectArn(),
            context: {},
          },
        ];
      case 'PutObjectRetention':
        return [{ action: 's3:PutObjectRetention', resource: objectArn(), context: lockContext(input, now) }];
      case 'DeleteObject':
        return [
          {
            action: versioned ? 's3:DeleteObjectVersion' : 's3:DeleteObject',
            resource: objectArn(),
            context: {},
          },
          ...(input.BypassGovernanceRetention
            ? [{ action: 's3:BypassGovernanceRetention', resource: objectArn(), context: {} }]
            : []),
        ];
      case 'GetObjectAttributes':
        return [
          {
            action: versioned ? 's3:GetObjectVersionAttributes' : 's3:GetObjectAttributes',
            resource: objectArn(),
            context: {},
          },
        ];
      case 'ListObjectsV2':
      case 'ListObjects':
      case 'ListObjectVersions': {
        const context: Record<string, string> = {};
        if (typeof input.Prefix === 'string') context['s3:prefix'] = input.Prefix;
        if (typeof input.Delimiter === 'string') context['s3:delimiter'] = input.Delimiter;
        if (typeof input.MaxKeys === 'number') context['s3:max-keys'] = String(input.MaxKeys);
        return [
          {
            action: command === 'ListObjectVersions' ? 's3:ListBucketVersions' : 's3:ListBucket',
            resource: bucketArn,
            context,
          },
        ];
      }
      case 'ListMultipartUploads':
        return [{ action: 's3:ListBucketMultipartUploads', resource: bucketArn, context: {} }];
      case 'HeadBucket':
        return [{ action: 's3:ListBucket', resource: bucketArn, context: {} }];
      case 'GetObjectLockConfiguration':
        return [{ action: 's3:GetBucketObjectLockConfiguration', resource: bucketArn, context: {} }];
      case 'GetBucketVersioning':
        return [{ action: 's3:GetBucketVersioning', resource: bucketArn, context: {} }];
    }
  }

  if (clientName === 'KMSClient') {
    const keyId = str('KeyId');
    const resource = keyId.startsWith('arn:')
      ? keyId
      : keyId.startsWith('alias/')
        ? `arn:aws:kms:${region}:${account}:${keyId}`
        : `arn:aws:kms:${region}:${account}:key/${keyId}`;
    const context: Record<string, string | string[]> = { 'kms:CallerAccount': account };
    const encryptionContext = input.EncryptionContext as Record<string, string> | undefined;
    if (encryptionContext && Object.keys(encryptionContext).length) {
      for (const [k, v] of Object.entries(encryptionContext)) context[`kms:EncryptionContext:${k}`] = v;
      context['kms:EncryptionContextKeys'] = Object.keys(encryptionContext);
    }
    if (keyId.includes('alias/')) context['kms:RequestAlias'] = keyId.slice(keyId.indexOf('alias/'));
    const known = [
      'GenerateDataKey',
      'GenerateDataKeyWithoutPlaintext',
      'Decrypt',
      'Encrypt',
      'ReEncrypt',
      'DescribeKey',
      'DisableKey',
      'ScheduleKeyDeletion',
      'PutKeyPolicy',
      'CreateGrant',
    ];
    if (known.includes(command)) {
      const action = command === 'ReEncrypt' ? 'kms:ReEncryptFrom' : `kms:${command}`;
      return [{ action, resource, context }];
    }
  }

  if (clientName === 'DynamoDBClient') {
    const tableArn = (name: string) => `arn:aws:dynamodb:${region}:${account}:table/${name}`;
    // A table under a customer managed key: DynamoDB decrypts the table key with the caller's permission.
    const tableKms = (name: string): IamRequest[] => {
      const key = owners.tableKeys.get(name);
      return key
        ? [
            {
              action: 'kms:Decrypt',
              resource: key,
              via: 'dynamodb',
              context: {
                'kms:ViaService': via('dynamodb'),
                'kms:CallerAccount': account,
                'kms:EncryptionContext:aws:dynamodb:tableName': name,
                'kms:EncryptionContext:aws:dynamodb:subscriberId': account,
                'kms:EncryptionContextKeys': ['aws:dynamodb:tableName', 'aws:dynamodb:subscriberId'],
              },
            },
          ]
        : [];
    };
    const single = ['PutItem', 'UpdateItem', 'GetItem', 'DeleteItem', 'Scan', 'DescribeTable', 'Query'];
    if (single.includes(command)) {
      const table = str('TableName');
      const index = typeof input.IndexName === 'string' ? `/index/${input.IndexName}` : '';
      const context: Record<string, string | string[]> = {};
      if (typeof input.Select === 'string') context['dynamodb:Select'] = input.Select;
      return [
        { action: `dynamodb:${command}`, resource: `${tableArn(table)}${index}`, context },
        ...(command === 'DescribeTable' ? [] : tableKms(table)),
      ];
    }
    if (command === 'TransactWriteItems') {
      const items = input.TransactItems as Record<string, { TableName: string }>[];
      const actions: Record<string, string> = {
        Put: 'dynamodb:PutItem',
        Update: 'dynamodb:UpdateItem',
        Delete: 'dynamodb:DeleteItem',
        ConditionCheck: 'dynamodb:ConditionCheckItem',
      };
      return items.flatMap((item) =>
        Object.entries(item).flatMap(([kind, op]) => [
          { action: actions[kind]!, resource: tableArn(op.TableName), context: {} },
          ...tableKms(op.TableName),
        ]),
      );
    }
    if (command === 'BatchGetItem') {
      const tables = Object.keys(input.RequestItems as Record<string, unknown>);
      return tables.flatMap((t) => [
        { action: 'dynamodb:BatchGetItem', resource: tableArn(t), context: {} },
        ...tableKms(t),
      ]);
    }
  }

  if (clientName === 'SNSClient' && command === 'Publish') {
    const topic = str('TopicArn');
    const key = owners.topicKeys.get(topic);
    const kms = (action: string): IamRequest => ({
      action,
      resource: key!,
      via: 'sns',
      context: {
        'kms:ViaService': via('sns'),
        'kms:CallerAccount': account,
        'kms:EncryptionContext:aws:sns:topicArn': topic,
        'kms:EncryptionContextKeys': ['aws:sns:topicArn'],
      },
    });
    // An encrypted topic: SNS makes a data key under the topic's key with the publisher's permission.
    return [
      { action: 'sns:Publish', resource: topic, context: {} },
      ...(key ? [kms('kms:GenerateDataKey'), kms('kms:Decrypt')] : []),
    ];
  }

  // Restore jobs are no IAM resource: both actions are authorized on "*".
  if (
    clientName === 'BackupClient' &&
    (command === 'DescribeRestoreJob' || command === 'PutRestoreValidationResult')
  )
    return [{ action: `backup:${command}`, resource: '*', context: {} }];

  if (clientName === 'SecretsManagerClient' && command === 'DescribeSecret') {
    const id = str('SecretId');
    const resource = id.startsWith('arn:')
      ? id
      : `arn:aws:secretsmanager:${region}:${account}:secret:${id}-??????`;
    return [{ action: 'secretsmanager:DescribeSecret', resource, context: {} }];
  }
  if (clientName === 'SecretsManagerClient' && command === 'ListSecrets')
    return [{ action: 'secretsmanager:ListSecrets', resource: '*', context: {} }];

  if (clientName === 'SSMClient') {
    // Parameter ARNs are the name after "parameter" (a leading "/" kept); a path has no trailing "/".
    const parameter = (name: string) =>
      `arn:aws:ssm:${region}:${account}:parameter${name.startsWith('/') ? '' : '/'}${name.replace(/(.)\/+$/, '$1')}`;
    if (command === 'GetParametersByPath')
      return [{ action: 'ssm:GetParametersByPath', resource: parameter(str('Path')), context: {} }];
    if (command === 'GetParameter' || command === 'GetParameterHistory')
      return [{ action: `ssm:${command}`, resource: parameter(str('Name')), context: {} }];
    if (command === 'DescribeParameters')
      return [{ action: 'ssm:DescribeParameters', resource: '*', context: {} }];
  }

  if (clientName === 'SecretsManagerClient' && command === 'GetSecretValue') {
    const id = str('SecretId');
    const resource = id.startsWith('arn:')
      ? id
      : `arn:aws:secretsmanager:${region}:${account}:secret:${id}-??????`;
    // The secret's own KMS key (aws/secretsmanager unless the secret names one) is not in our templates.
    return [{ action: 'secretsmanager:GetSecretValue', resource, context: {} }];
  }

  if (
    clientName === 'SFNClient' &&
    ['SendTaskSuccess', 'SendTaskFailure', 'SendTaskHeartbeat'].includes(command)
  )
    return [{ action: `states:${command}`, resource: '*', context: {} }];

  if (clientName === 'CloudWatchClient') {
    if (command === 'GetMetricData')
      return [{ action: 'cloudwatch:GetMetricData', resource: '*', context: {} }];
    if (command === 'DescribeAlarmHistory')
      return [
        {
          action: 'cloudwatch:DescribeAlarmHistory',
          resource:
            typeof input.AlarmName === 'string'
              ? `arn:aws:cloudwatch:${region}:${account}:alarm:${input.AlarmName}`
              : `arn:aws:cloudwatch:${region}:${account}:alarm:*`,
          context: {},
        },
      ];
    if (command === 'PutMetricData')
      return [
        {
          action: 'cloudwatch:PutMetricData',
          resource: '*',
          context: typeof input.Namespace === 'string' ? { 'cloudwatch:namespace': input.Namespace } : {},
        },
      ];
  }

  if (clientName === 'RDSClient' && (command === 'DescribeDBInstances' || command === 'DescribeDBClusters')) {
    const instance = command === 'DescribeDBInstances';
    const id = input[instance ? 'DBInstanceIdentifier' : 'DBClusterIdentifier'];
    return [
      {
        action: `rds:${command}`,
        resource:
          typeof id === 'string'
            ? `arn:aws:rds:${region}:${account}:${instance ? 'db' : 'cluster'}:${id}`
            : `arn:aws:rds:${region}:${account}:${instance ? 'db' : 'cluster'}:*`,
        context: {},
      },
    ];
  }

  if (
    clientName === 'RDSClient' &&
    (command === 'DescribeDBSnapshots' || command === 'DescribeDBClusterSnapshots')
  ) {
    const cluster = command === 'DescribeDBClusterSnapshots';
    const id = input[cluster ? 'DBClusterSnapshotIdentifier' : 'DBSnapshotIdentifier'];
    return [
      {
        action: `rds:${command}`,
        resource: `arn:aws:rds:${region}:${account}:${cluster ? 'cluster-snapshot' : 'snapshot'}:${typeof id === 'string' ? id : '*'}`,
        context: {},
      },
    ];
  }

  if (
    clientName === 'RDSClient' &&
    (command === 'RestoreDBInstanceFromDBSnapshot' || command === 'RestoreDBClusterFromSnapshot')
  ) {
    const tags = (input.Tags ?? []) as { Key?: string; Value?: string }[];
    const context: Record<string, string | string[]> = { 'aws:TagKeys': tags.map((t) => t.Key ?? '') };
    for (const t of tags) context[`aws:RequestTag/${t.Key ?? ''}`] = t.Value ?? '';
    const cluster = command === 'RestoreDBClusterFromSnapshot';
    const made = `arn:aws:rds:${region}:${account}:${cluster ? 'cluster' : 'db'}:${String(input[cluster ? 'DBClusterIdentifier' : 'DBInstanceIdentifier'])}`;
    const snapshot = `arn:aws:rds:${region}:${account}:${cluster ? 'cluster-snapshot' : 'snapshot'}:${String(input[cluster ? 'SnapshotIdentifier' : 'DBSnapshotIdentifier'])}`;
    return [
      { action: `rds:${command}`, resource: made, context },
      { action: `rds:${command}`, resource: snapshot, context },
      ...(tags.length ? [{ action: 'rds:AddTagsToResource', resource: made, context }] : []),
    ];
  }

  if (
    clientName === 'RDSClient' &&
    (command === 'RestoreDBInstanceToPointInTime' ||
      command === 'RestoreDBClusterToPointInTime' ||
      command === 'CreateDBInstance')
  ) {
    // Creating with tags: the create action and rds:AddTagsToResource on the new resource, with the
    // request's tags as aws:RequestTag/<key> and aws:TagKeys; the restores also read their source.
    const tags = (input.Tags ?? []) as { Key?: string; Value?: string }[];
    const context: Record<string, string | string[]> = { 'aws:TagKeys': tags.map((t) => t.Key ?? '') };
    for (const t of tags) context[`aws:RequestTag/${t.Key ?? ''}`] = t.Value ?? '';
    const arn = (type: 'db' | 'cluster', id: unknown) =>
      `arn:aws:rds:${region}:${account}:${type}:${String(id)}`;
    const made =
      command === 'RestoreDBClusterToPointInTime'
        ? arn('cluster', input.DBClusterIdentifier)
        : command === 'CreateDBInstance'
          ? arn('db', input.DBInstanceIdentifier)
          : arn('db', input.TargetDBInstanceIdentifier);
    const source =
      command === 'RestoreDBInstanceToPointInTime'
        ? [arn('db', input.SourceDBInstanceIdentifier)]
        : command === 'RestoreDBClusterToPointInTime'
          ? [arn('cluster', input.SourceDBClusterIdentifier)]
          : [];
    return [
      { action: `rds:${command}`, resource: made, context },
      ...source.map((resource) => ({ action: `rds:${command}`, resource, context })),
      ...(tags.length ? [{ action: 'rds:AddTagsToResource', resource: made, context }] : []),
    ];
  }

  throw new Error(
    `IAM check: no IAM mapping for ${clientName} ${commandName}; add it to test/helpers/iam-check.ts (a call the runtime makes must be checked, not passed)`,
  );
}

/** The error AWS returns for a denied call. */
export class AccessDeniedError extends Error {
  readonly $fault = 'client';
  readonly $metadata = { httpStatusCode: 403 };
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export type CheckMode = 'enforce' | 'record';

interface Scope {
  readonly role: RuntimeRoleName;
  readonly secureTransport?: boolean;
}

const MIDDLEWARE_NAME = 'cofreIamCheck';

/** Any SDK v3 client (every service's client extends the Smithy client). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- clients of every service, whatever their types
type SdkClient = Client<any, any, any, any>;

/** Records and checks calls against the synthesized policies. */
export class IamChecker {
  readonly records: RecordedRequest[] = [];
  /** Inputs of stubbed commands (Step Functions task reports), in order. */
  readonly stubbed: { role: RuntimeRoleName; command: string; input: Record<string, unknown> }[] = [];
  private readonly owners: KeyOwners;
  private readonly scope = new AsyncLocalStorage<Scope>();
  private readonly handled = new WeakSet<object>();
  private restore: (() => void) | undefined;

  constructor(
    readonly iam: SynthesizedIam,
    readonly mode: CheckMode = 'enforce',
  ) {
    this.owners = keyOwners(iam);
  }

  /** Adds the middleware to `client`: every call it makes is checked as `role`. */
  attach<C extends SdkClient>(client: C, role: RuntimeRoleName): C {
    this.handled.add(client.middlewareStack);
    client.middlewareStack.add(
      this.middleware(() => ({ role })),
      {
        step: 'initialize',
        name: MIDDLEWARE_NAME,
        priority: 'high',
        override: true,
      },
    );
    return client;
  }

  /** Leaves `client` unchecked (the test's own setup and read-back clients). */
  exempt<C extends SdkClient>(client: C): C {
    this.handled.add(client.middlewareStack);
    return client;
  }

  /**
   * Every other SDK client gets the middleware on its first call, checked as the role of the
   * enclosing {@link as}; a call outside any `as` fails.
   */
  interceptAll(): void {
    if (this.restore) return;
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with the client as `this`
    const original = Client.prototype.send;
    const handled = this.handled;
    const middleware = this.middleware(() => this.scope.getStore());
    Client.prototype.send = function (this: SdkClient, ...args: unknown[]) {
      if (!handled.has(this.middlewareStack)) {
        handled.add(this.middlewareStack);
        this.middlewareStack.add(middleware, {
          step: 'initialize',
          name: MIDDLEWARE_NAME,
          priority: 'high',
          override: true,
        });
      }
      return (original as (...a: unknown[]) => unknown).apply(this, args);
    } as typeof original;
    this.restore = () => {
      Client.prototype.send = original;
    };
  }

  /** Undoes {@link interceptAll}. */
  dispose(): void {
    this.restore?.();
    this.restore = undefined;
  }

  /** Runs `fn` as `role`: calls of intercepted clients inside it are checked against that role. */
  as<T>(
    role: RuntimeRoleName,
    fn: () => Promise<T>,
    options: { secureTransport?: boolean } = {},
  ): Promise<T> {
    return this.scope.run({ role, ...options }, fn);
  }

  /** The simulator's decision for one request made by `role`. */
  async evaluate(
    role: RuntimeRoleName,
    request: IamRequest,
    options: { secureTransport?: boolean } = {},
  ): Promise<{ decision: Decision; detail: string }> {
    const r = this.iam.roles.get(role);
    if (!r) throw new Error(`IAM check: no role ${role} in the synthesized app`);
    const roleName = r.arn.split('/').at(-1)!;
    const session = `arn:aws:sts::${this.iam.account}:assumed-role/${roleName}/cofre-test`;
    const service = request.action.split(':')[0]!;
    const simulation: Simulation = {
      request: {
        principal: session,
        action: request.action,
        resource: { resource: request.resource, accountId: this.iam.account },
        contextVariables: {
          'aws:SecureTransport': String(options.secureTransport ?? true),
          'aws:PrincipalArn': r.arn,
          'aws:PrincipalAccount': this.iam.account,
          'aws:PrincipalType': 'AssumedRole',
          'aws:PrincipalIsAWSService': 'false',
          'aws:userid': `AROA${r.logicalId.toUpperCase()}:cofre-test`,
          'aws:RequestedRegion': this.iam.region,
          'aws:CurrentTime': new Date().toISOString(),
          ...(service === 's3' ? { 's3:TlsVersion': '1.3', 's3:authType': 'REST-HEADER' } : {}),
          ...(request.via ? { 'aws:CalledVia': [`${request.via}.amazonaws.com`] } : {}),
          ...request.context,
        },
      },
      identityPolicies: r.policies.map((p) => ({ name: p.name, policy: p.policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: this.resourcePolicyOf(request.resource),
    };
    const result = await runSimulation(simulation, {});
    if (result.resultType === 'error')
      throw new Error(
        `IAM check: the simulator rejected ${request.action} on ${request.resource}: ${JSON.stringify(result.errors)}`,
      );
    return { decision: result.overallResult, detail: result.overallResult };
  }

  private resourcePolicyOf(resource: string): PolicyDocument | undefined {
    const policies = this.iam.resourcePolicies;
    if (resource.startsWith('arn:aws:s3:::'))
      return policies.get(`arn:aws:s3:::${resource.slice(13).split('/')[0]}`);
    return policies.get(resource);
  }

  /** Maps, records and (enforce) checks one command; the requests and their decisions. */
  async check(
    role: RuntimeRoleName,
    clientName: string,
    commandName: string,
    input: Record<string, unknown>,
    options: { secureTransport?: boolean; record?: boolean } = {},
  ): Promise<RecordedRequest[]> {
    const requests = iamRequestsOf(clientName, commandName, input, {
      account: this.iam.account,
      region: this.iam.region,
      owners: this.owners,
    });
    const out: RecordedRequest[] = [];
    for (const request of requests) {
      const { decision } = await this.evaluate(role, request, options);
      out.push({
        ...request,
        role,
        command: `${clientName.replace(/Client$/, '')}.${commandName.replace(/Command$/, '')}`,
        decision,
      });
    }
    if (options.record ?? true) this.records.push(...out);
    return out;
  }

  /**
   * Records and (enforce) checks requests that are not SDK calls of our code: a state machine's
   * integrations (lambda:InvokeFunction, ecs:RunTask, iam:PassRole...). A denial throws AccessDenied.
   */
  async checkRequests(role: RuntimeRoleName, label: string, requests: readonly IamRequest[]): Promise<void> {
    const out: RecordedRequest[] = [];
    for (const request of requests)
      out.push({ ...request, role, command: label, decision: (await this.evaluate(role, request)).decision });
    this.records.push(...out);
    const denied = out.find((c) => c.decision !== 'Allowed');
    if (this.mode === 'enforce' && denied)
      throw new AccessDeniedError(
        'AccessDeniedException',
        `${this.iam.roles.get(role)!.arn} is not authorized to perform: ${denied.action} on resource: ${denied.resource} (${label})`,
      );
  }

  private middleware(scopeOf: () => Scope | undefined) {
    return <Output extends object>(
        next: InitializeHandler<object, Output>,
        context: HandlerExecutionContext,
      ) =>
      async (args: InitializeHandlerArguments<object>) => {
        const clientName = context.clientName ?? '?';
        const commandName = context.commandName ?? '?';
        const scope = scopeOf();
        if (!scope)
          throw new Error(
            `IAM check: ${clientName} ${commandName} was sent outside any role (wrap the runtime path in checker.as(role, ...))`,
          );
        const input = args.input as Record<string, unknown>;
        const checked = await this.check(scope.role, clientName, commandName, input, {
          secureTransport: scope.secureTransport,
        });
        if (this.mode === 'enforce') {
          const denied = checked.find((c) => c.decision !== 'Allowed' && !c.optional);
          if (denied) {
            const service = denied.action.split(':')[0];
            throw new AccessDeniedError(
              service === 's3' ? 'AccessDenied' : 'AccessDeniedException',
              `User: ${this.iam.roles.get(scope.role)!.arn} is not authorized to perform: ${denied.action} on resource: ${denied.resource} (${denied.decision === 'ExplicitlyDenied' ? 'explicit deny' : 'no identity-based policy allows it'})`,
            );
          }
        }
        const stub = STUBBED[`${clientName}/${commandName}`];
        if (stub) {
          this.stubbed.push({ role: scope.role, command: commandName, input });
          return { output: { $metadata: {}, ...stub(input) } as unknown as Output, response: {} };
        }
        const result = await next(args);
        if (this.mode === 'enforce') {
          for (const c of checked)
            if (c.optional && c.decision !== 'Allowed')
              for (const field of c.optional.strips) Reflect.deleteProperty(result.output, field);
        }
        return result;
      };
  }

  /** Answers `<Client>/<Command>` with `fn` instead of the local AWS (a call moto does not implement); still checked. */
  addStub(key: string, fn: (input: Record<string, unknown>) => Record<string, unknown>): void {
    STUBBED[key] = fn;
  }

  /** Distinct (role, action) pairs recorded. */
  pairs(): string[] {
    return [...new Set(this.records.map((r) => `${r.role} ${r.action}`))].sort();
  }

  /** A table of the distinct (role, action, resource) recorded, object keys cut to their first two segments. */
  table(): string {
    const rows = new Map<
      string,
      { role: string; action: string; resource: string; decision: string; n: number }
    >();
    for (const r of this.records) {
      const resource = r.resource.replace(/^(arn:aws:s3:::[^/]+\/[^/]+\/[^/]+\/).+$/, '$1…');
      const key = `${r.role}|${r.action}|${resource}|${r.decision}`;
      const row = rows.get(key);
      if (row) row.n++;
      else rows.set(key, { role: r.role, action: r.action, resource, decision: r.decision, n: 1 });
    }
    const list = [...rows.values()].sort((a, b) =>
      `${a.role} ${a.action} ${a.resource}`.localeCompare(`${b.role} ${b.action} ${b.resource}`),
    );
    const width = (f: (r: (typeof list)[number]) => string) => Math.max(...list.map((r) => f(r).length));
    const wr = width((r) => r.role);
    const wa = width((r) => r.action);
    return list
      .map((r) => `${r.role.padEnd(wr)}  ${r.action.padEnd(wa)}  ${r.resource}  ${r.decision} ×${r.n}`)
      .join('\n');
  }
}
