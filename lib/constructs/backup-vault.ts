import { DefaultStackSynthesizer, Duration, Fn, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import {
  AnyPrincipal,
  Effect,
  Grant,
  ManagedPolicy,
  PolicyStatement,
  Role,
  ServicePrincipal,
  type IGrantable,
} from 'aws-cdk-lib/aws-iam';
import { Key, type Alias } from 'aws-cdk-lib/aws-kms';
import {
  BlockPublicAccess,
  Bucket,
  BucketEncryption,
  CfnBucket,
  ObjectLockRetention,
  ObjectOwnership,
  ReplicationTimeValue,
  StorageClass,
  TransitionDefaultMinimumObjectSize,
} from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { RetentionSettings } from '../../core/policy/retention';
import { acknowledge } from '../nag';
import { administeredKeyPolicy, serviceEndpoint } from './key-policy';
import { HOUSEKEEPING_RULE_ID, shortestExpiryDays, vaultLifecycleRules } from './vault-lifecycle';

/** Object Lock modes (S3's names). */
export type ObjectLockMode = 'COMPLIANCE' | 'GOVERNANCE';

/** Default retention of objects written without their own retain-until date. */
export interface VaultObjectLock {
  /** COMPLIANCE: nobody, root included, can shorten or remove a lock. GOVERNANCE: `s3:BypassGovernanceRetention` can. */
  readonly mode: ObjectLockMode;
  /** Days; at most the shortest expiry of any retention rule. */
  readonly days: number;
}

/**
 * Storage classes a replica may be written in: those with millisecond retrieval, so a restore from
 * the DR region does not wait hours for an archive retrieval.
 */
export const REPLICA_STORAGE_CLASSES = [
  'STANDARD',
  'STANDARD_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
] as const;
export type ReplicaStorageClass = (typeof REPLICA_STORAGE_CLASSES)[number];

const REPLICA_STORAGE: Record<ReplicaStorageClass, StorageClass> = {
  STANDARD: new StorageClass('STANDARD'),
  STANDARD_IA: StorageClass.INFREQUENT_ACCESS,
  INTELLIGENT_TIERING: StorageClass.INTELLIGENT_TIERING,
  GLACIER_IR: StorageClass.GLACIER_INSTANT_RETRIEVAL,
};

/** Where and how a vault replicates. */
export interface VaultReplication {
  /** The vault that receives the replicas (created with `acceptReplication: true`, normally in another region). */
  readonly destination: BackupVault;
  /**
   * Storage class of the replicas.
   * @default 'GLACIER_IR'
   */
  readonly storageClass?: ReplicaStorageClass;
}

/** Properties of {@link BackupVault}. */
export interface BackupVaultProps {
  /** Retention settings (`config.retention`): the lifecycle rules are generated from them with `retentionFor`. */
  readonly retention: RetentionSettings;
  /**
   * Default Object Lock retention (`config.objectLock`).
   * @default { mode: 'COMPLIANCE', days: 30 }
   */
  readonly objectLock?: VaultObjectLock;
  /**
   * The only role that may, with MFA, delete object versions, bypass governance retention, or change
   * the Object Lock or lifecycle configuration (`config.breakGlassRoleArn`).
   * @default - nobody may
   */
  readonly breakGlassRoleArn?: string;
  /**
   * The role CloudFormation deploys with: the only principal besides the break-glass role allowed to
   * put the lifecycle and Object Lock configuration, so a deployment that changes retention works.
   * It must be a role that only CloudFormation can assume.
   * @default - the CloudFormation execution role of the stack's `DefaultStackSynthesizer` (CDK bootstrap)
   */
  readonly deploymentRoleArn?: string;
  /**
   * Alias of the vault key (aliases are per region, so both regions can use the same one).
   * @default 'alias/cofre-vault'
   */
  readonly keyAlias?: string;
  /**
   * How long the server access logs are kept.
   * @default Duration.days(731) (two years, leap day included)
   */
  readonly accessLogRetention?: Duration;
  /**
   * When a noncurrent object version is deleted (once its Object Lock allows).
   * @default Duration.days(30)
   */
  readonly noncurrentVersionExpiration?: Duration;
  /**
   * Create the role that S3 replication assumes to write replicas into this vault ({@link replicationRole}).
   * @default false
   */
  readonly acceptReplication?: boolean;
  /**
   * Replicate every object of this vault to another vault.
   * @default - no replication
   */
  readonly replicateTo?: VaultReplication;
}

const DEFAULT_OBJECT_LOCK: VaultObjectLock = { mode: 'COMPLIANCE', days: 30 };
const DAY = 86_400;

/** Actions that destroy backups: denied to everyone but the break-glass role with MFA. */
export const DESTRUCTIVE_OBJECT_ACTIONS = ['s3:DeleteObject*', 's3:BypassGovernanceRetention'];
/** Actions that change how long backups are kept: denied to everyone but the break-glass role with MFA and the deployment role. */
export const RETENTION_CONFIG_ACTIONS = [
  's3:PutBucketObjectLockConfiguration',
  's3:PutLifecycleConfiguration',
];

/**
 * A backup vault: a KMS key (rotated, `RETAIN`, its policy naming every principal that may use it),
 * a versioned, Object-Locked, SSE-KMS bucket whose lifecycle rules are generated from the retention
 * settings with `retentionFor`, a bucket policy that refuses what could weaken it, and a separate
 * SSE-S3 bucket for its server access logs. Optionally the receiving end of replication
 * (`acceptReplication`) or the sending end (`replicateTo`). Everything is `RETAIN`ed.
 *
 * Grant access with {@link grantWrite} and {@link grantRead}: the key policy delegates no
 * cryptographic use to IAM, so `key.grant*()` alone is not enough.
 */
export class BackupVault extends Construct {
  /** The vault key. Its policy lets the account administer it but not use it; use the vault's grant methods. */
  public readonly key: Key;
  /** `alias/cofre-vault` (or `keyAlias`). */
  public readonly keyAlias: Alias;
  /** The vault bucket. */
  public readonly bucket: Bucket;
  /** The bucket that receives the vault's server access logs. */
  public readonly logBucket: Bucket;
  /**
   * The role S3 replication assumes: on a receiving vault (`acceptReplication`), the role it created;
   * on a sending vault (`replicateTo`), the destination's role.
   */
  public readonly replicationRole?: Role;
  /** The default Object Lock retention applied. */
  public readonly objectLock: VaultObjectLock;
  /** Whether this vault receives replicas (`acceptReplication`). */
  public readonly acceptsReplication: boolean;

  constructor(scope: Construct, id: string, props: BackupVaultProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const objectLock = props.objectLock ?? DEFAULT_OBJECT_LOCK;
    this.objectLock = objectLock;
    this.acceptsReplication = props.acceptReplication ?? false;
    const deploymentRoleArn = props.deploymentRoleArn ?? this.defaultDeploymentRoleArn();
    const keyAlias = props.keyAlias ?? 'alias/cofre-vault';
    const accessLogRetention = props.accessLogRetention ?? Duration.days(731);
    const noncurrentVersionExpiration = props.noncurrentVersionExpiration ?? Duration.days(30);
    this.validate(props, objectLock, keyAlias, accessLogRetention, noncurrentVersionExpiration);

    this.key = new Key(this, 'Key', {
      description: `Cofre backup vault key (${stack.region}): SSE-KMS of the vault and envelope keys of its backups`,
      enableKeyRotation: true,
      policy: administeredKeyPolicy(),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.keyAlias = this.key.addAlias(keyAlias);

    this.logBucket = new Bucket(this, 'AccessLogs', {
      // S3 delivers server access logs only to SSE-S3 buckets without Object Lock.
      encryption: BucketEncryption.S3_MANAGED,
      versioned: true,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
      lifecycleRules: [
        {
          id: 'cofre-access-logs',
          expiration: accessLogRetention,
          noncurrentVersionExpiration,
        },
        {
          id: HOUSEKEEPING_RULE_ID,
          expiredObjectDeleteMarker: true,
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
    });

    if (props.acceptReplication) {
      this.replicationRole = new Role(this, 'ReplicationRole', {
        assumedBy: new ServicePrincipal('s3.amazonaws.com'),
        description: `S3 replication into the Cofre vault in ${stack.region}`,
      });
    } else if (props.replicateTo) {
      this.replicationRole = props.replicateTo.destination.replicationRole;
    }

    const replication = props.replicateTo;
    this.bucket = new Bucket(this, 'Bucket', {
      versioned: true,
      objectLockEnabled: true,
      objectLockDefaultRetention:
        objectLock.mode === 'COMPLIANCE'
          ? ObjectLockRetention.compliance(Duration.days(objectLock.days))
          : ObjectLockRetention.governance(Duration.days(objectLock.days)),
      encryption: BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: vaultLifecycleRules(props.retention, {
        noncurrentVersionExpiration,
        abortIncompleteMultipartUploadAfter: Duration.days(1),
      }),
      transitionDefaultMinimumObjectSize: TransitionDefaultMinimumObjectSize.ALL_STORAGE_CLASSES_128_K,
      removalPolicy: RemovalPolicy.RETAIN,
      ...(replication
        ? {
            replicationRole: replication.destination.replicationRole,
            replicationRules: [
              {
                id: 'cofre-replicate-to-dr',
                destination: replication.destination.bucket,
                kmsKey: replication.destination.key,
                storageClass: REPLICA_STORAGE[replication.storageClass ?? 'GLACIER_IR'],
                sseKmsEncryptedObjects: true,
                replicaModifications: true,
                deleteMarkerReplication: false,
                replicationTimeControl: ReplicationTimeValue.FIFTEEN_MINUTES,
                metrics: ReplicationTimeValue.FIFTEEN_MINUTES,
              },
            ],
          }
        : {}),
    });

    this.logAccessTo(this.logBucket);
    this.addEncryptionPolicy();
    this.protect(this.bucket, props.breakGlassRoleArn, deploymentRoleArn);
    this.protect(this.logBucket, props.breakGlassRoleArn, deploymentRoleArn);
    if (props.acceptReplication) this.allowReplicationIn();
    if (replication) this.replicateTo(replication.destination);
    this.acknowledgeNagFindings(props);
  }

  /**
   * Lets `grantee` write backups: put objects with their tags and Object Lock retention, abort its
   * own failed multipart uploads, and use the key to encrypt (SSE-KMS through S3, and envelope data
   * keys). Never delete, never read back. `grantee` must be in this stack (or in a stack deployed
   * after it), since the key policy names it. `keyPrefixes` (e.g. `['full/app-prod/']`) limits the
   * writes to those key prefixes; by default the whole vault.
   */
  public grantWrite(grantee: IGrantable, keyPrefixes?: readonly string[]): Grant {
    const s3 = Grant.addToPrincipal({
      grantee,
      actions: ['s3:PutObject', 's3:PutObjectTagging', 's3:PutObjectRetention', 's3:AbortMultipartUpload'],
      resourceArns: this.objectArns(keyPrefixes),
    });
    this.key.addToResourcePolicy(
      new PolicyStatement({
        principals: [grantee.grantPrincipal],
        actions: ['kms:GenerateDataKey', 'kms:Encrypt'],
        resources: ['*'],
      }),
    );
    // S3 decrypts the upload's data key to complete a multipart upload with SSE-KMS; only through S3.
    this.key.addToResourcePolicy(
      new PolicyStatement({
        principals: [grantee.grantPrincipal],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'kms:ViaService': this.s3Service() } },
      }),
    );
    return s3;
  }

  /**
   * Lets `grantee` read backups: list versions, get objects with their tags and lock status, restore
   * archived objects, and decrypt (SSE-KMS and envelope data keys). `grantee` must be in this stack
   * (or in a stack deployed after it), since the key policy names it. `keyPrefixes` limits the
   * objects and listings to those key prefixes; by default the whole vault.
   */
  public grantRead(grantee: IGrantable, keyPrefixes?: readonly string[]): Grant {
    const objects = Grant.addToPrincipal({
      grantee,
      actions: [
        's3:GetObject',
        's3:GetObjectVersion',
        's3:GetObjectTagging',
        's3:GetObjectVersionTagging',
        's3:GetObjectRetention',
        's3:GetObjectLegalHold',
        's3:GetObjectAttributes',
        's3:RestoreObject',
      ],
      resourceArns: this.objectArns(keyPrefixes),
    });
    const bucket = Grant.addToPrincipal({
      grantee,
      actions: ['s3:ListBucket', 's3:ListBucketVersions'],
      resourceArns: [this.bucket.bucketArn],
      ...(keyPrefixes
        ? { conditions: { StringLike: { 's3:prefix': keyPrefixes.map((p) => `${p}*`) } } }
        : {}),
    });
    this.key.addToResourcePolicy(
      new PolicyStatement({
        principals: [grantee.grantPrincipal],
        actions: ['kms:Decrypt', 'kms:DescribeKey'],
        resources: ['*'],
      }),
    );
    return objects.combine(bucket);
  }

  /** `<bucket>/<prefix>*` for each prefix (each must end in `/`), or `<bucket>/*`. */
  private objectArns(keyPrefixes: readonly string[] | undefined): string[] {
    if (keyPrefixes === undefined) return [this.bucket.arnForObjects('*')];
    for (const prefix of keyPrefixes) {
      if (!/^[A-Za-z0-9!_.'()=%-]+(\/[A-Za-z0-9!_.'()=%-]+)*\/$/.test(prefix))
        throw new Error(
          `BackupVault ${this.node.path}: keyPrefixes must be key prefixes ending in "/" without wildcards, got "${prefix}"`,
        );
    }
    if (keyPrefixes.length === 0)
      throw new Error(
        `BackupVault ${this.node.path}: keyPrefixes must not be empty (omit it for the whole vault)`,
      );
    return keyPrefixes.map((prefix) => this.bucket.arnForObjects(`${prefix}*`));
  }

  private s3Service(): string {
    return serviceEndpoint(this, 's3');
  }

  private defaultDeploymentRoleArn(): string {
    const synthesizer = Stack.of(this).synthesizer;
    // The synthesizer's ARN carries ${AWS::Partition}-style placeholders for CloudFormation to fill in.
    if (synthesizer instanceof DefaultStackSynthesizer)
      return Fn.sub(synthesizer.cloudFormationExecutionRoleArn);
    throw new Error(
      `BackupVault ${this.node.path}: deploymentRoleArn is required when the stack does not use the DefaultStackSynthesizer (it names the role CloudFormation deploys with, the only one besides break-glass allowed to change lifecycle and Object Lock settings)`,
    );
  }

  private validate(
    props: BackupVaultProps,
    objectLock: VaultObjectLock,
    keyAlias: string,
    accessLogRetention: Duration,
    noncurrentVersionExpiration: Duration,
  ): void {
    const where = `BackupVault ${this.node.path}`;
    const mode: string = objectLock.mode; // typed, but JavaScript callers can pass anything
    if (mode !== 'COMPLIANCE' && mode !== 'GOVERNANCE')
      throw new Error(`${where}: objectLock.mode must be COMPLIANCE or GOVERNANCE, got ${mode}`);
    const shortest = shortestExpiryDays(props.retention);
    if (!Number.isInteger(objectLock.days) || objectLock.days < 1 || objectLock.days > shortest)
      throw new Error(
        `${where}: objectLock.days must be a whole number of days between 1 and ${shortest} (the shortest expiry of any retention rule, which a default lock must not outlive), got ${objectLock.days}`,
      );
    if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(keyAlias) || keyAlias.startsWith('alias/aws/'))
      throw new Error(
        `${where}: keyAlias must look like "alias/<name>" (letters, digits, / _ -) and not start with "alias/aws/", got "${keyAlias}"`,
      );
    if (accessLogRetention.toSeconds() < 365 * DAY || accessLogRetention.toSeconds() % DAY !== 0)
      throw new Error(
        `${where}: accessLogRetention must be whole days, at least 365, got ${accessLogRetention.toHumanString()}`,
      );
    if (noncurrentVersionExpiration.toSeconds() < DAY || noncurrentVersionExpiration.toSeconds() % DAY !== 0)
      throw new Error(
        `${where}: noncurrentVersionExpiration must be whole days, at least 1, got ${noncurrentVersionExpiration.toHumanString()}`,
      );
    if (props.breakGlassRoleArn !== undefined && !Token.isUnresolved(props.breakGlassRoleArn)) {
      if (!/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(props.breakGlassRoleArn))
        throw new Error(
          `${where}: breakGlassRoleArn must be an IAM role ARN like arn:aws:iam::123456789012:role/cofre-break-glass, got "${props.breakGlassRoleArn}"`,
        );
    }
    if (props.acceptReplication && props.replicateTo)
      throw new Error(
        `${where}: acceptReplication and replicateTo cannot both be set (replication chains are not supported)`,
      );
    if (props.replicateTo) {
      const { destination, storageClass } = props.replicateTo;
      if (!destination.acceptsReplication)
        throw new Error(
          `${where}: replicateTo.destination must be a BackupVault created with acceptReplication: true (${destination.node.path} is not)`,
        );
      if (
        storageClass !== undefined &&
        !(REPLICA_STORAGE_CLASSES as readonly string[]).includes(storageClass)
      )
        throw new Error(
          `${where}: replicateTo.storageClass must be one of ${REPLICA_STORAGE_CLASSES.join(', ')}, got "${storageClass}"`,
        );
    }
  }

  /**
   * Server access logs of the vault go to `logBucket`, delivered under a bucket policy that admits
   * the S3 logging service for this vault only. Written out here rather than through the Bucket's
   * `serverAccessLogsBucket`, whose behaviour depends on a feature flag (without it, it falls back
   * to an ACL that bucket-owner-enforced ownership forbids).
   */
  private logAccessTo(logBucket: Bucket): void {
    (this.bucket.node.defaultChild as CfnBucket).loggingConfiguration = {
      destinationBucketName: logBucket.bucketName,
      targetObjectKeyFormat: { partitionedPrefix: { partitionDateSource: 'EventTime' } },
    };
    logBucket.addToResourcePolicy(
      new PolicyStatement({
        sid: 'AllowServerAccessLogDeliveryFromTheVault',
        principals: [new ServicePrincipal('logging.s3.amazonaws.com')],
        actions: ['s3:PutObject'],
        resources: [logBucket.arnForObjects('*')],
        conditions: {
          ArnLike: { 'aws:SourceArn': this.bucket.bucketArn },
          StringEquals: { 'aws:SourceAccount': Stack.of(this).account },
        },
      }),
    );
  }

  /**
   * Uploads must end up SSE-KMS under the vault key. Headers are checked only when present
   * (`Null: false`): UploadPart requests carry none, and objects sent without them get the bucket's
   * default encryption, which is that key. What a writer cannot do is ask for something else: SSE-S3,
   * another KMS key, `aws:kms` without a key id (S3 would use the AWS managed key), or SSE-C.
   */
  private addEncryptionPolicy(): void {
    const objects = this.bucket.arnForObjects('*');
    const deny = (sid: string, conditions: Record<string, Record<string, unknown>>) =>
      this.bucket.addToResourcePolicy(
        new PolicyStatement({
          sid,
          effect: Effect.DENY,
          principals: [new AnyPrincipal()],
          actions: ['s3:PutObject'],
          resources: [objects],
          conditions,
        }),
      );
    // `Null: false` makes each check apply only when the header is present. (`...IfExists` would not:
    // it is true when the key is absent, so it would deny every UploadPart and CompleteMultipartUpload.)
    deny('DenyEncryptionOtherThanSseKms', {
      StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' },
      Null: { 's3:x-amz-server-side-encryption': 'false' },
    });
    deny('DenyKmsKeysOtherThanTheVaultKey', {
      StringNotEquals: { 's3:x-amz-server-side-encryption-aws-kms-key-id': this.key.keyArn },
      Null: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'false' },
    });
    deny('DenySseKmsWithoutKeyId', {
      StringEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' },
      Null: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'true' },
    });
    deny('DenyCustomerProvidedKeys', {
      Null: { 's3:x-amz-server-side-encryption-customer-algorithm': 'false' },
    });
  }

  /**
   * Denies destroying objects and changing retention settings. Exempt: the break-glass role, only
   * with MFA; and, for the lifecycle and Object Lock configuration only, the deployment role (so a
   * deployment that changes retention, or its rollback, is not refused by the vault's own policy).
   */
  private protect(bucket: Bucket, breakGlassRoleArn: string | undefined, deploymentRoleArn: string): void {
    const everyone = [new AnyPrincipal()];
    const objects = bucket.arnForObjects('*');
    const add = (sid: string, actions: string[], resources: string[], conditions?: Record<string, unknown>) =>
      bucket.addToResourcePolicy(
        new PolicyStatement({
          sid,
          effect: Effect.DENY,
          principals: everyone,
          actions,
          resources,
          conditions,
        }),
      );
    const noMfa = { BoolIfExists: { 'aws:MultiFactorAuthPresent': 'false' } };
    if (breakGlassRoleArn === undefined) {
      add('DenyDestructiveActions', DESTRUCTIVE_OBJECT_ACTIONS, [objects]);
      add('DenyRetentionChangesOutsideDeployments', RETENTION_CONFIG_ACTIONS, [bucket.bucketArn], {
        ArnNotEquals: { 'aws:PrincipalArn': deploymentRoleArn },
      });
      return;
    }
    add('DenyDestructiveActionsExceptBreakGlass', DESTRUCTIVE_OBJECT_ACTIONS, [objects], {
      ArnNotEquals: { 'aws:PrincipalArn': breakGlassRoleArn },
    });
    add('DenyDestructiveActionsWithoutMfa', DESTRUCTIVE_OBJECT_ACTIONS, [objects], noMfa);
    add('DenyRetentionChangesExceptBreakGlassAndDeployments', RETENTION_CONFIG_ACTIONS, [bucket.bucketArn], {
      ArnNotEquals: { 'aws:PrincipalArn': [breakGlassRoleArn, deploymentRoleArn] },
    });
    add('DenyRetentionChangesWithoutMfaOutsideDeployments', RETENTION_CONFIG_ACTIONS, [bucket.bucketArn], {
      ...noMfa,
      ArnNotEquals: { 'aws:PrincipalArn': deploymentRoleArn },
    });
  }

  /**
   * Receiving end: the replication role may write replicas (with their tags and lock metadata) into
   * this vault and encrypt them under this vault's key, through S3 in this region only. With S3
   * Bucket Keys the encryption context is the bucket ARN, and KMS also needs Decrypt to verify the
   * bucket key.
   */
  private allowReplicationIn(): void {
    const role = this.replicationRole!;
    const policy = new ManagedPolicy(this, 'ReplicationDestinationAccess', {
      description: `S3 replication writes replicas into the Cofre vault in ${Stack.of(this).region}`,
      roles: [role],
      statements: [
        new PolicyStatement({
          sid: 'WriteReplicas',
          actions: ['s3:ReplicateObject', 's3:ReplicateDelete', 's3:ReplicateTags'],
          resources: [this.bucket.arnForObjects('*')],
        }),
        new PolicyStatement({
          sid: 'EncryptReplicasWithTheDestinationKey',
          actions: ['kms:Encrypt', 'kms:Decrypt'],
          resources: [this.key.keyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': this.s3Service() },
            StringLike: {
              'kms:EncryptionContext:aws:s3:arn': [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
            },
          },
        }),
      ],
    });
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'ReplicationEncryptsReplicasThroughS3',
        principals: [role],
        actions: ['kms:Encrypt', 'kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'kms:ViaService': this.s3Service() } },
      }),
    );
    acknowledge(policy, {
      id: this.allObjectsFinding(),
      reason:
        'S3 replication writes replicas of any backup key into the DR vault, so the object ARN ends in /*; the role is assumable only by s3.amazonaws.com and may not read or delete.',
    });
  }

  /**
   * Sending end: the (destination's) replication role may read versions, tags, ACLs and Object Lock
   * metadata of this vault for replication, and decrypt its objects through S3 in this region only.
   */
  private replicateTo(destination: BackupVault): void {
    const role = destination.replicationRole!;
    const policy = new ManagedPolicy(this, 'ReplicationSourceAccess', {
      description: `S3 replication reads the Cofre vault in ${Stack.of(this).region}`,
      roles: [role],
      statements: [
        new PolicyStatement({
          sid: 'ReadReplicationConfiguration',
          actions: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
          resources: [this.bucket.bucketArn],
        }),
        new PolicyStatement({
          sid: 'ReadVersionsToReplicate',
          actions: [
            's3:GetObjectVersionForReplication',
            's3:GetObjectVersionAcl',
            's3:GetObjectVersionTagging',
            's3:GetObjectRetention',
            's3:GetObjectLegalHold',
          ],
          resources: [this.bucket.arnForObjects('*')],
        }),
        new PolicyStatement({
          sid: 'DecryptSourceObjects',
          actions: ['kms:Decrypt'],
          resources: [this.key.keyArn],
          conditions: {
            StringEquals: { 'kms:ViaService': this.s3Service() },
            StringLike: {
              'kms:EncryptionContext:aws:s3:arn': [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
            },
          },
        }),
      ],
    });
    this.key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'ReplicationDecryptsSourceObjectsThroughS3',
        principals: [role],
        actions: ['kms:Decrypt'],
        resources: ['*'],
        conditions: { StringEquals: { 'kms:ViaService': this.s3Service() } },
      }),
    );
    acknowledge(policy, {
      id: this.allObjectsFinding(),
      reason:
        'S3 replication reads every version of every backup in the vault to copy it to the DR region, so the object ARN ends in /*; the role is assumable only by s3.amazonaws.com and may not write here.',
    });
  }

  /** cdk-nag's id for a policy resource `<this bucket>/*` (v3 acknowledges each finding by its exact id). */
  private allObjectsFinding(): string {
    const logicalId = Stack.of(this).resolve(
      (this.bucket.node.defaultChild as CfnBucket).logicalId,
    ) as string;
    return `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>/*]`;
  }

  private acknowledgeNagFindings(props: BackupVaultProps): void {
    acknowledge(
      this.logBucket,
      {
        id: 'AwsSolutions-S1',
        reason:
          'This bucket is the server access log target of the vault; logging access to it into itself would loop, and CloudTrail records its management events.',
      },
      {
        id: 'HIPAA.Security-S3BucketLoggingEnabled',
        reason:
          'This bucket is the server access log target of the vault; logging access to it into itself would loop, and CloudTrail records its management events.',
      },
      {
        id: 'HIPAA.Security-S3DefaultEncryptionKMS',
        reason:
          'S3 delivers server access logs only to buckets encrypted with SSE-S3, so this log bucket cannot use SSE-KMS; it holds access logs, never backup data.',
      },
      {
        id: 'HIPAA.Security-S3BucketReplicationEnabled',
        reason:
          'Access logs of the vault are kept in the region they describe for two years; each region has its own vault and its own log bucket, so there is nothing to replicate.',
      },
    );
    if (props.acceptReplication) {
      acknowledge(this.bucket, {
        id: 'HIPAA.Security-S3BucketReplicationEnabled',
        reason:
          'This is the receiving DR vault: it holds the replicas of the primary vault, and replicating it onward would only add a third copy of the same backups.',
      });
    }
  }
}
