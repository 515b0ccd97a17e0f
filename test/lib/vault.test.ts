import { App, Duration, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  lifecycleExpiry,
  RETENTION_KINDS,
  retentionFor,
  type RetentionSettings,
} from '../../core/policy/retention';
import { REPLICA_STORAGE_CLASSES as SCHEMA_REPLICA_CLASSES } from '../../lib/config/schema';
import type { CofreConfigInput } from '../../lib/config';
import { KEY_ADMIN_ACTIONS } from '../../lib/constructs/key-policy';
import {
  BackupVault,
  DESTRUCTIVE_OBJECT_ACTIONS,
  REPLICA_STORAGE_CLASSES,
  RETENTION_CONFIG_ACTIONS,
  type BackupVaultProps,
} from '../../lib/constructs/backup-vault';
import { dataClassesOf } from '../../lib/constructs/vault-lifecycle';
import { buildTestApp, testAppProps } from '../helpers/cdk';
import {
  actionsOf,
  arnOf,
  logicalIdOf,
  objectsOf,
  resourceOf,
  statementsOf,
  statementWithSid,
  type FoundResource,
} from '../helpers/template';

/** Asymmetric matchers, typed (vitest's return `any`). */
const like = (object: object): unknown => expect.objectContaining(object);
const including = (items: unknown[]): unknown => expect.arrayContaining(items);

const BREAK_GLASS = 'arn:aws:iam::111111111111:role/cofre-break-glass';
const CRYPTO_ACTIONS = [
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:GenerateDataKey',
  'kms:ReEncryptFrom',
  'kms:CreateGrant',
];

/** A non-default configuration: every retention number, the lock, the classes and the replica class changed. */
function nonDefault(c: CofreConfigInput): CofreConfigInput {
  return {
    ...c,
    breakGlassRoleArn: undefined,
    retention: {
      tiers: { dailyDays: 14, weeklyWeeks: 8, monthlyMonths: 24, yearlyYears: 3 },
      classes: { health: { years: 6 }, accounting: { years: 11 }, tax: { years: 20 } },
      tenantExportDays: 60,
    },
    objectLock: { mode: 'GOVERNANCE', days: 10 },
    replication: { storageClass: 'STANDARD_IA' },
  };
}

interface Built {
  app: ReturnType<typeof buildTestApp>;
  primary: Template;
  dr: Template;
}

function build(change?: (c: CofreConfigInput) => CofreConfigInput): Built {
  const app = buildTestApp(change);
  return { app, primary: Template.fromStack(app.primary), dr: Template.fromStack(app.dr) };
}

let byDefault: Built;
let custom: Built;
beforeAll(() => {
  byDefault = build();
  custom = build(nonDefault);
});

const regions = [
  ['primary', 'CofrePrimary', 'sa-east-1'],
  ['DR', 'CofreDr', 'us-east-1'],
] as const;

function templateOf(built: Built, which: 'primary' | 'DR'): Template {
  return which === 'primary' ? built.primary : built.dr;
}
function vaultOf(built: Built, which: 'primary' | 'DR'): BackupVault {
  return which === 'primary' ? built.app.primary.vault : built.app.dr.vault;
}
function bucketOf(built: Built, which: 'primary' | 'DR', _stackName?: string): FoundResource {
  return resourceOf(templateOf(built, which), vaultOf(built, which).bucket);
}
function bucketPolicyOf(built: Built, which: 'primary' | 'DR', _stackName?: string, bucket = 'Bucket') {
  const vault = vaultOf(built, which);
  const policy = (bucket === 'Bucket' ? vault.bucket : vault.logBucket).policy!;
  return resourceOf(templateOf(built, which), policy).Properties.PolicyDocument;
}
function keyPolicyOf(built: Built, which: 'primary' | 'DR', _stackName?: string) {
  return resourceOf(templateOf(built, which), vaultOf(built, which).key).Properties.KeyPolicy;
}

describe.each(regions)('the %s vault key (%s, %s)', (which, stackName, region) => {
  it('is a customer-managed, single-region key with rotation on, retained, aliased alias/cofre-vault', () => {
    const key = resourceOf(templateOf(byDefault, which), vaultOf(byDefault, which).key);
    expect(key.Properties).toMatchObject({ EnableKeyRotation: true });
    expect(key.Properties.MultiRegion).toBeUndefined();
    expect(key.Properties.Description).toContain(region);
    expect(key.DeletionPolicy).toBe('Retain');
    expect(key.UpdateReplacePolicy).toBe('Retain');
    templateOf(byDefault, which).hasResourceProperties('AWS::KMS::Alias', {
      AliasName: 'alias/cofre-vault',
      TargetKeyId: { 'Fn::GetAtt': [key.logicalId, 'Arn'] },
    });
  });

  it('lets the account administer the key but not use, disable or delete it', () => {
    const admin = statementWithSid(
      keyPolicyOf(byDefault, which, stackName),
      'AccountAdministersButCannotUseOrDeleteTheKey',
    );
    expect(admin.Principal).toEqual({ AWS: 'arn:aws:iam::111111111111:root' });
    expect([...actionsOf(admin)].sort()).toEqual([...KEY_ADMIN_ACTIONS].sort());
    for (const action of [...CRYPTO_ACTIONS, 'kms:ScheduleKeyDeletion', 'kms:DisableKey', 'kms:*']) {
      expect(actionsOf(admin).some((a) => new RegExp(`^${a.replace('*', '.*')}$`).test(action))).toBe(false);
    }
  });

  it('names no other principal than the account, the replication role and (primary) the pipeline roles, the configuration snapshot role and the restore validation role that write or read backups', () => {
    const principals = statementsOf(keyPolicyOf(byDefault, which, stackName)).flatMap((s) =>
      [(s.Principal as { AWS: unknown }).AWS].flat().map((p) => JSON.stringify(p)),
    );
    expect(principals[0]).toEqual(JSON.stringify('arn:aws:iam::111111111111:root'));
    const replication = principals.filter(
      (p) =>
        p.includes('Fn::GetStackOutput') ||
        p === JSON.stringify(arnOf(byDefault.app.dr.vault.replicationRole!)),
    );
    expect(replication.length).toBeGreaterThan(0);
    const pipeline = byDefault.app.primary.pipeline;
    const expected =
      which === 'primary'
        ? [
            ...[...pipeline.dumpTasks.values()].map((t) => t.taskRole),
            pipeline.functions.verify.function.role!,
            pipeline.functions['list-backups'].function.role!,
            // Configuration snapshots (the example configures some): encrypts config/ snapshots.
            byDefault.app.primary.configSnapshots!.snapshotFunction.function.role!,
            // The snapshot restore test (the example has an RDS instance): reads its manifests.
            byDefault.app.primary.snapshotRestoreTests!.validationFunction.function.role!,
            // The console restore's validation: reads the manifests of the configured databases.
            byDefault.app.primary.consoleRestore!.validateFunction.function.role!,
            // The files task of each S3-compatible bucket (the example has one): writes files/<bucket>/.
            ...[...(byDefault.app.primary.filesSyncJobs?.tasks.values() ?? [])].map((t) => t.taskRole),
          ].map((role) => JSON.stringify(arnOf(role)))
        : [];
    const others = principals.slice(1).filter((p) => !replication.includes(p));
    expect([...new Set(others)].sort()).toEqual([...new Set(expected)].sort());
  });
});

describe('the keys of the two regions', () => {
  it('let the replication role decrypt in the primary region and encrypt replicas in the DR region, through S3 only', () => {
    const role = byDefault.app.dr.vault.replicationRole!;
    const source = statementWithSid(
      keyPolicyOf(byDefault, 'primary', 'CofrePrimary'),
      'ReplicationDecryptsSourceObjectsThroughS3',
    );
    expect(source).toMatchObject({
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Principal: { AWS: { 'Fn::GetStackOutput': like({ StackName: 'CofreDr' }) } },
      Condition: { StringEquals: { 'kms:ViaService': 's3.sa-east-1.amazonaws.com' } },
    });
    const destination = statementWithSid(
      keyPolicyOf(byDefault, 'DR', 'CofreDr'),
      'ReplicationEncryptsReplicasThroughS3',
    );
    expect(destination).toMatchObject({
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:Encrypt'],
      Principal: { AWS: arnOf(role) },
      Condition: { StringEquals: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' } },
    });
  });

  it('are separate: replicas are encrypted with the DR key, read from the DR stack', () => {
    const bucket = bucketOf(byDefault, 'primary', 'CofrePrimary');
    const rule = (bucket.Properties.ReplicationConfiguration as { Rules: Record<string, unknown>[] })
      .Rules[0]!;
    expect(rule).toMatchObject({
      Destination: {
        EncryptionConfiguration: {
          ReplicaKmsKeyID: {
            'Fn::GetStackOutput': like({ StackName: 'CofreDr', Region: 'us-east-1' }),
          },
        },
      },
    });
    Template.fromStack(byDefault.app.dr).hasOutput('*', { Value: arnOf(byDefault.app.dr.vault.key) });
  });
});

describe.each(regions)('the %s vault bucket (%s, %s)', (which, stackName) => {
  it('is versioned, Object-Locked COMPLIANCE 30 days by default, SSE-KMS with the vault key and bucket keys', () => {
    const bucket = bucketOf(byDefault, which, stackName);
    expect(bucket.Properties).toMatchObject({
      VersioningConfiguration: { Status: 'Enabled' },
      ObjectLockEnabled: true,
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } },
      },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: arnOf(vaultOf(byDefault, which).key),
            },
          },
        ],
      },
    });
  });

  it('takes the Object Lock mode and days from the configuration', () => {
    expect(bucketOf(custom, which, stackName).Properties.ObjectLockConfiguration).toEqual({
      ObjectLockEnabled: 'Enabled',
      Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 10 } },
    });
  });

  it('blocks all public access, enforces bucket ownership (no ACLs), and is retained', () => {
    const bucket = bucketOf(byDefault, which, stackName);
    expect(bucket.Properties).toMatchObject({
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
    });
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.UpdateReplacePolicy).toBe('Retain');
    expect(bucket.Properties.BucketName).toBeUndefined();
  });

  it('sends its server access logs to its own log bucket', () => {
    const bucket = bucketOf(byDefault, which, stackName);
    expect(bucket.Properties.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: logicalIdOf(vaultOf(byDefault, which).logBucket) },
      TargetObjectKeyFormat: { PartitionedPrefix: { PartitionDateSource: 'EventTime' } },
    });
  });
});

describe.each(regions)('the %s vault bucket policy (%s, %s)', (which, stackName) => {
  const policy = () => bucketPolicyOf(byDefault, which, stackName);
  const vault = () => vaultOf(byDefault, which);
  const deployRole = (region: string) => ({
    'Fn::Sub': `arn:\${AWS::Partition}:iam::111111111111:role/cdk-hnb659fds-cfn-exec-role-111111111111-${region}`,
  });

  it('denies requests without TLS and with TLS older than 1.2', () => {
    const statements = statementsOf(policy());
    expect(statements).toContainEqual(
      like({
        Effect: 'Deny',
        Action: 's3:*',
        Principal: { AWS: '*' },
        Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );
    expect(statements).toContainEqual(
      like({
        Effect: 'Deny',
        Action: 's3:*',
        Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } },
      }),
    );
  });

  // Only when the header is present (Null false): `...IfExists` is true for an absent key, so it
  // would also deny UploadPart and CompleteMultipartUpload (authorized as s3:PutObject, never carrying
  // encryption headers), that is every backup larger than one part.
  it('denies uploads that ask for anything but SSE-KMS with the vault key, and never a request without encryption headers', () => {
    const key = arnOf(vault().key);
    const objects = objectsOf(vault().bucket);
    const expected: Record<string, unknown> = {
      DenyEncryptionOtherThanSseKms: {
        StringNotEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' },
        Null: { 's3:x-amz-server-side-encryption': 'false' },
      },
      DenyKmsKeysOtherThanTheVaultKey: {
        StringNotEquals: { 's3:x-amz-server-side-encryption-aws-kms-key-id': key },
        Null: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'false' },
      },
      DenySseKmsWithoutKeyId: {
        StringEquals: { 's3:x-amz-server-side-encryption': 'aws:kms' },
        Null: { 's3:x-amz-server-side-encryption-aws-kms-key-id': 'true' },
      },
      DenyCustomerProvidedKeys: { Null: { 's3:x-amz-server-side-encryption-customer-algorithm': 'false' } },
    };
    for (const [sid, condition] of Object.entries(expected)) {
      expect(statementWithSid(policy(), sid)).toEqual({
        Sid: sid,
        Effect: 'Deny',
        Principal: { AWS: '*' },
        Action: 's3:PutObject',
        Resource: objects,
        Condition: condition,
      });
    }
  });

  it('denies deleting objects and bypassing governance retention to all but the break-glass role with MFA', () => {
    const resource = objectsOf(vault().bucket);
    expect(statementWithSid(policy(), 'DenyDestructiveActionsExceptBreakGlass')).toMatchObject({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: [...DESTRUCTIVE_OBJECT_ACTIONS].sort(),
      Resource: resource,
      Condition: { ArnNotEquals: { 'aws:PrincipalArn': BREAK_GLASS } },
    });
    expect(statementWithSid(policy(), 'DenyDestructiveActionsWithoutMfa')).toMatchObject({
      Effect: 'Deny',
      Action: [...DESTRUCTIVE_OBJECT_ACTIONS].sort(),
      Resource: resource,
      Condition: { BoolIfExists: { 'aws:MultiFactorAuthPresent': 'false' } },
    });
    expect(DESTRUCTIVE_OBJECT_ACTIONS).toContain('s3:DeleteObject*');
  });

  it('denies changing Object Lock and lifecycle settings to all but break-glass with MFA and the CloudFormation execution role', () => {
    const region = Stack.of(vault()).region;
    expect(RETENTION_CONFIG_ACTIONS).toEqual([
      's3:PutBucketObjectLockConfiguration',
      's3:PutLifecycleConfiguration',
    ]);
    expect(statementWithSid(policy(), 'DenyRetentionChangesExceptBreakGlassAndDeployments')).toMatchObject({
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: RETENTION_CONFIG_ACTIONS,
      Resource: arnOf(vault().bucket),
      Condition: { ArnNotEquals: { 'aws:PrincipalArn': [BREAK_GLASS, deployRole(region)] } },
    });
    // CloudFormation deploys lifecycle changes with its execution role, which has no MFA: exempt from
    // the MFA condition, or a deployment that changes retention (and its rollback) would be refused.
    expect(statementWithSid(policy(), 'DenyRetentionChangesWithoutMfaOutsideDeployments')).toMatchObject({
      Effect: 'Deny',
      Action: RETENTION_CONFIG_ACTIONS,
      Condition: {
        BoolIfExists: { 'aws:MultiFactorAuthPresent': 'false' },
        ArnNotEquals: { 'aws:PrincipalArn': deployRole(region) },
      },
    });
  });

  it('denies destruction to everyone, and settings changes to all but deployments, without a break-glass role', () => {
    const noBreakGlass = bucketPolicyOf(custom, which, stackName);
    expect(statementWithSid(noBreakGlass, 'DenyDestructiveActions')).toEqual({
      Sid: 'DenyDestructiveActions',
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Action: [...DESTRUCTIVE_OBJECT_ACTIONS].sort(),
      Resource: objectsOf(vaultOf(custom, which).bucket),
    });
    expect(statementWithSid(noBreakGlass, 'DenyRetentionChangesOutsideDeployments').Condition).toEqual({
      ArnNotEquals: { 'aws:PrincipalArn': deployRole(Stack.of(vaultOf(custom, which)).region) },
    });
    expect(JSON.stringify(noBreakGlass)).not.toContain('cofre-break-glass');
  });

  it('allows nothing: every statement is a Deny', () => {
    expect(statementsOf(policy()).every((s) => s.Effect === 'Deny')).toBe(true);
  });
});

/** The lifecycle rules of a bucket that apply to an object with these tags. */
function rulesFor(bucket: FoundResource, tags: Record<string, string>) {
  const rules = (bucket.Properties.LifecycleConfiguration as { Rules: Record<string, unknown>[] }).Rules;
  return rules.filter((rule) => {
    const filters = (rule.TagFilters as { Key: string; Value: string }[] | undefined) ?? [];
    return filters.length > 0 && filters.every((f) => tags[f.Key] === f.Value);
  });
}

const CUSTOM_SETTINGS: RetentionSettings = {
  tiers: { dailyDays: 14, weeklyWeeks: 8, monthlyMonths: 24, yearlyYears: 3 },
  classes: { health: { years: 6 }, accounting: { years: 11 }, tax: { years: 20 } },
  tenantExportDays: 60,
};

describe.each(regions)('the %s vault lifecycle (%s, %s)', (which, stackName) => {
  it.each(RETENTION_KINDS)(
    'gives %s objects of every data class exactly the transitions and expiry retentionFor() computes from a non-default config',
    (kind) => {
      const bucket = bucketOf(custom, which, stackName);
      for (const dataClass of dataClassesOf(CUSTOM_SETTINGS)) {
        const expected = retentionFor(kind, dataClass, CUSTOM_SETTINGS);
        const rules = rulesFor(bucket, { 'cofre:tier': kind, 'cofre:class': dataClass });
        expect(rules, `${kind}/${dataClass}`).toHaveLength(1);
        expect(rules[0]!.ExpirationInDays).toBe(expected.expireAfterDays);
        expect(rules[0]!.Transitions ?? []).toEqual(
          expected.transitions.map((t) => ({ StorageClass: t.storageClass, TransitionInDays: t.afterDays })),
        );
        expect(rules[0]!.Prefix).toBeUndefined();
      }
    },
  );

  it('filters yearly and tenant rules on the class, daily, weekly and monthly rules on the tier only', () => {
    const bucket = bucketOf(custom, which, stackName);
    expect(rulesFor(bucket, { 'cofre:tier': 'daily' })).toHaveLength(1);
    expect(rulesFor(bucket, { 'cofre:tier': 'yearly' })).toHaveLength(0);
    expect(rulesFor(bucket, { 'cofre:tier': 'yearly', 'cofre:class': 'tax' })[0]).toMatchObject({
      Id: 'cofre-yearly-tax',
      ExpirationInDays: 20 * 365 + 5,
      Transitions: [{ StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 1 }],
    });
    expect(rulesFor(bucket, { 'cofre:tier': 'tenant', 'cofre:class': 'general' })[0]).toMatchObject({
      Id: 'cofre-tenant-general',
      ExpirationInDays: 60,
    });
  });

  it('expires noncurrent versions after 30 days, removes orphan delete markers, aborts uploads after 1 day', () => {
    const rules = (
      bucketOf(custom, which, stackName).Properties.LifecycleConfiguration as { Rules: unknown[] }
    ).Rules;
    expect(rules).toContainEqual({
      Id: 'cofre-housekeeping',
      Status: 'Enabled',
      NoncurrentVersionExpiration: { NoncurrentDays: 30 },
      ExpiredObjectDeleteMarker: true,
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
    });
  });

  it('never transitions objects under 128 KiB (they still expire: no size filter on any rule)', () => {
    const lifecycle = bucketOf(byDefault, which, stackName).Properties.LifecycleConfiguration as {
      TransitionDefaultMinimumObjectSize: string;
      Rules: Record<string, unknown>[];
    };
    expect(lifecycle.TransitionDefaultMinimumObjectSize).toBe('all_storage_classes_128K');
    for (const rule of lifecycle.Rules) {
      expect(rule.ObjectSizeGreaterThan).toBeUndefined();
      expect(rule.ObjectSizeLessThan).toBeUndefined();
      expect(rule.Status).toBe('Enabled');
    }
  });
});

describe('changing retention in the configuration', () => {
  const createdAt = new Date('2024-02-29T02:00:00.000Z');

  it('changes the lifecycle rules and the Object Lock dates of retentionFor() together', () => {
    const longer = build((c) => ({
      ...c,
      retention: {
        ...c.retention,
        tiers: { dailyDays: 45, monthlyMonths: 18 },
        classes: { health: { years: 9 }, accounting: { years: 5 } },
      },
    }));
    const settingsOf = (built: Built) => built.app.primary.config.retention;
    const cases = [
      { kind: 'daily', dataClass: 'general', tags: { 'cofre:tier': 'daily' } },
      { kind: 'monthly', dataClass: 'accounting', tags: { 'cofre:tier': 'monthly' } },
      { kind: 'yearly', dataClass: 'health', tags: { 'cofre:tier': 'yearly', 'cofre:class': 'health' } },
      { kind: 'tenant', dataClass: 'health', tags: { 'cofre:tier': 'tenant', 'cofre:class': 'health' } },
    ] as const;
    for (const { kind, dataClass, tags } of cases) {
      const before = rulesFor(bucketOf(byDefault, 'primary', 'CofrePrimary'), tags)[0]!
        .ExpirationInDays as number;
      const after = rulesFor(bucketOf(longer, 'primary', 'CofrePrimary'), tags)[0]!
        .ExpirationInDays as number;
      expect(after, `${kind}/${dataClass}`).toBeGreaterThan(before);
      for (const [built, days] of [
        [byDefault, before],
        [longer, after],
      ] as const) {
        const retention = retentionFor(kind, dataClass, settingsOf(built));
        expect(retention.expireAfterDays).toBe(days);
        // The retain-until date a writer sets is the moment S3 expires the object under that rule.
        expect(retention.lockUntil(createdAt)).toEqual(lifecycleExpiry(createdAt, days));
      }
    }
    expect(rulesFor(bucketOf(longer, 'DR', 'CofreDr'), { 'cofre:tier': 'daily' })[0]!.ExpirationInDays).toBe(
      45,
    );
  });
});

describe.each(regions)('the %s access log bucket (%s, %s)', (which, stackName) => {
  const logBucket = () => resourceOf(templateOf(byDefault, which), vaultOf(byDefault, which).logBucket);

  it('is SSE-S3 encrypted (S3 delivers logs only there), versioned, private, retained, kept two years', () => {
    const bucket = logBucket();
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      VersioningConfiguration: { Status: 'Enabled' },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LifecycleConfiguration: {
        Rules: including([
          {
            Id: 'cofre-access-logs',
            Status: 'Enabled',
            ExpirationInDays: 731,
            NoncurrentVersionExpiration: { NoncurrentDays: 30 },
          },
        ]),
      },
    });
    expect(bucket.Properties.ObjectLockEnabled).toBeUndefined();
    expect(bucket.DeletionPolicy).toBe('Retain');
  });

  it('accepts log delivery from its vault only, over TLS 1.2, and protects the logs like the vault', () => {
    const document = bucketPolicyOf(byDefault, which, stackName, 'AccessLogs');
    const vault = vaultOf(byDefault, which);
    expect(statementsOf(document)).toContainEqual(
      like({
        Effect: 'Allow',
        Principal: { Service: 'logging.s3.amazonaws.com' },
        Action: 's3:PutObject',
        Condition: {
          ArnLike: { 'aws:SourceArn': arnOf(vault.bucket) },
          StringEquals: { 'aws:SourceAccount': '111111111111' },
        },
      }),
    );
    expect(statementsOf(document)).toContainEqual(
      like({ Condition: { NumericLessThan: { 's3:TlsVersion': 1.2 } } }),
    );
    expect(statementWithSid(document, 'DenyDestructiveActionsExceptBreakGlass').Resource).toEqual(
      objectsOf(vault.logBucket),
    );
  });
});

describe('cross-region replication', () => {
  const replication = (built: Built) =>
    bucketOf(built, 'primary', 'CofrePrimary').Properties.ReplicationConfiguration as {
      Role: unknown;
      Rules: Record<string, unknown>[];
    };

  it('replicates the whole primary vault to the DR vault with RTC, metrics, replica sync and no delete markers', () => {
    const config = replication(byDefault);
    const fromDr = (output: string) => ({
      'Fn::GetStackOutput': { StackName: 'CofreDr', Region: 'us-east-1', OutputName: output },
    });
    const outputFor = (value: unknown) => {
      const outputs = byDefault.dr.findOutputs('*', { Value: value });
      const names = Object.keys(outputs);
      expect(names.length).toBeGreaterThan(0);
      return names.find((n) => n.startsWith('PublishOutput')) ?? names[0]!;
    };
    const dr = byDefault.app.dr.vault;
    expect(config.Role).toEqual(fromDr(outputFor(arnOf(dr.replicationRole!))));
    expect(config.Rules).toEqual([
      {
        Id: 'cofre-replicate-to-dr',
        Status: 'Enabled',
        Filter: { Prefix: '' },
        DeleteMarkerReplication: { Status: 'Disabled' },
        SourceSelectionCriteria: {
          SseKmsEncryptedObjects: { Status: 'Enabled' },
          ReplicaModifications: { Status: 'Enabled' },
        },
        Destination: {
          Bucket: fromDr(outputFor(arnOf(dr.bucket))),
          EncryptionConfiguration: { ReplicaKmsKeyID: fromDr(outputFor(arnOf(dr.key))) },
          StorageClass: 'GLACIER_IR',
          ReplicationTime: { Status: 'Enabled', Time: { Minutes: 15 } },
          Metrics: { Status: 'Enabled', EventThreshold: { Minutes: 15 } },
        },
      },
    ]);
  });

  it('writes replicas in the configured storage class', () => {
    expect(replication(custom).Rules[0]).toMatchObject({ Destination: { StorageClass: 'STANDARD_IA' } });
  });

  it('does not replicate the DR vault onward', () => {
    expect(bucketOf(byDefault, 'DR', 'CofreDr').Properties.ReplicationConfiguration).toBeUndefined();
  });

  it('uses a role in the DR stack that only S3 can assume, allowed to write replicas and encrypt them with the DR key', () => {
    const dr = byDefault.app.dr.vault;
    const role = resourceOf(byDefault.dr, dr.replicationRole!);
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Action: 'sts:AssumeRole', Principal: { Service: 's3.amazonaws.com' } }],
    });
    const policy = resourceOf(byDefault.dr, dr.node.findChild('ReplicationDestinationAccess'));
    expect(policy.Properties.Roles).toEqual([{ Ref: role.logicalId }]);
    expect(statementsOf(policy.Properties.PolicyDocument)).toEqual([
      {
        Sid: 'WriteReplicas',
        Effect: 'Allow',
        Action: ['s3:ReplicateDelete', 's3:ReplicateObject', 's3:ReplicateTags'],
        Resource: objectsOf(dr.bucket),
      },
      {
        Sid: 'EncryptReplicasWithTheDestinationKey',
        Effect: 'Allow',
        Action: ['kms:Decrypt', 'kms:Encrypt'],
        Resource: arnOf(dr.key),
        Condition: {
          StringEquals: { 'kms:ViaService': 's3.us-east-1.amazonaws.com' },
          // With S3 Bucket Keys the encryption context is the bucket ARN, without them the object ARN.
          StringLike: { 'kms:EncryptionContext:aws:s3:arn': [arnOf(dr.bucket), objectsOf(dr.bucket)] },
        },
      },
    ]);
  });

  it('lets that role read versions, tags and Object Lock metadata of the primary vault and decrypt them through S3', () => {
    const primary = byDefault.app.primary.vault;
    const policy = resourceOf(byDefault.primary, primary.node.findChild('ReplicationSourceAccess'));
    expect(policy.Properties.Roles).toEqual([{ 'Fn::GetStackOutput': like({ StackName: 'CofreDr' }) }]);
    expect(statementsOf(policy.Properties.PolicyDocument)).toEqual([
      {
        Sid: 'ReadReplicationConfiguration',
        Effect: 'Allow',
        Action: ['s3:GetReplicationConfiguration', 's3:ListBucket'],
        Resource: arnOf(primary.bucket),
      },
      {
        Sid: 'ReadVersionsToReplicate',
        Effect: 'Allow',
        Action: [
          's3:GetObjectLegalHold',
          's3:GetObjectRetention',
          's3:GetObjectVersionAcl',
          's3:GetObjectVersionForReplication',
          's3:GetObjectVersionTagging',
        ],
        Resource: objectsOf(primary.bucket),
      },
      {
        Sid: 'DecryptSourceObjects',
        Effect: 'Allow',
        Action: 'kms:Decrypt',
        Resource: arnOf(primary.key),
        Condition: {
          StringEquals: { 'kms:ViaService': 's3.sa-east-1.amazonaws.com' },
          StringLike: {
            'kms:EncryptionContext:aws:s3:arn': [arnOf(primary.bucket), objectsOf(primary.bucket)],
          },
        },
      },
    ]);
    expect(byDefault.app.primary.vault.replicationRole).toBe(byDefault.app.dr.vault.replicationRole);
  });

  it('offers the same replica storage classes in the configuration as in the construct', () => {
    expect([...SCHEMA_REPLICA_CLASSES]).toEqual([...REPLICA_STORAGE_CLASSES]);
  });
});

describe('stack outputs', () => {
  it.each([
    [
      'CofrePrimary',
      ['VaultBucketName', 'VaultKeyArn', 'VaultAccessLogBucketName', 'HistoryTableName', 'HistoryKeyArn'],
    ],
    ['CofreDr', ['VaultBucketName', 'VaultKeyArn', 'VaultAccessLogBucketName', 'ReplicationRoleArn']],
  ])('%s exports the names and ARNs operators need', (stackName, names) => {
    const template = stackName === 'CofrePrimary' ? byDefault.primary : byDefault.dr;
    for (const name of names)
      template.hasOutput(name, { Value: Match.anyValue(), Description: Match.anyValue() });
    const vault = stackName === 'CofrePrimary' ? byDefault.app.primary.vault : byDefault.app.dr.vault;
    template.hasOutput('VaultBucketName', { Value: { Ref: logicalIdOf(vault.bucket) } });
    template.hasOutput('VaultKeyArn', { Value: arnOf(vault.key) });
  });
});

// --- The construct on its own ---------------------------------------------------------------

const SETTINGS: RetentionSettings = {
  tiers: { dailyDays: 30, weeklyWeeks: 12, monthlyMonths: 12, yearlyYears: 7 },
  classes: { health: { years: 7 } },
  tenantExportDays: 90,
};

function standalone(props: Partial<BackupVaultProps> = {}) {
  const stack = new Stack(new App(testAppProps()), 'Test', {
    env: { account: '111111111111', region: 'sa-east-1' },
  });
  const vault = new BackupVault(stack, 'Vault', { retention: SETTINGS, ...props });
  return { stack, vault };
}

describe('BackupVault grants', () => {
  it('grantWrite lets a role put, tag and lock objects and encrypt, but never delete or read back', () => {
    const { stack, vault } = standalone();
    const role = new Role(stack, 'Writer', { assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com') });
    vault.grantWrite(role);
    const template = Template.fromStack(stack);
    const policy = resourceOf(template, role.node.findChild('DefaultPolicy'));
    const statements = statementsOf(policy.Properties.PolicyDocument);
    expect(statements).toEqual([
      {
        Effect: 'Allow',
        Action: ['s3:AbortMultipartUpload', 's3:PutObject', 's3:PutObjectRetention', 's3:PutObjectTagging'],
        Resource: objectsOf(vault.bucket),
      },
    ]);
    const keyPolicy = resourceOf(template, vault.key).Properties.KeyPolicy;
    const forRole = statementsOf(keyPolicy).filter(
      (s) => JSON.stringify(s.Principal) === JSON.stringify({ AWS: arnOf(role) }),
    );
    expect(forRole).toEqual([
      {
        Effect: 'Allow',
        Principal: { AWS: arnOf(role) },
        Action: ['kms:Encrypt', 'kms:GenerateDataKey'],
        Resource: '*',
      },
      {
        Effect: 'Allow',
        Principal: { AWS: arnOf(role) },
        Action: 'kms:Decrypt',
        Resource: '*',
        Condition: { StringEquals: { 'kms:ViaService': 's3.sa-east-1.amazonaws.com' } },
      },
    ]);
  });

  it('grantRead lets a role list, get and restore objects and decrypt, but not write', () => {
    const { stack, vault } = standalone();
    const role = new Role(stack, 'Reader', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    vault.grantRead(role);
    const template = Template.fromStack(stack);
    const actions = statementsOf(
      resourceOf(template, role.node.findChild('DefaultPolicy')).Properties.PolicyDocument,
    ).flatMap(actionsOf);
    expect(actions).toEqual(
      including(['s3:GetObject', 's3:GetObjectVersion', 's3:RestoreObject', 's3:ListBucket']),
    );
    expect(actions.filter((a) => /Put|Delete|Replicate/.test(a))).toEqual([]);
    const keyPolicy = resourceOf(template, vault.key).Properties.KeyPolicy;
    expect(statementsOf(keyPolicy)).toContainEqual({
      Effect: 'Allow',
      Principal: { AWS: arnOf(role) },
      Action: ['kms:Decrypt', 'kms:DescribeKey'],
      Resource: '*',
    });
  });
});

describe('BackupVault props', () => {
  it('uses a given deployment role and key alias', () => {
    const { stack, vault } = standalone({
      deploymentRoleArn: 'arn:aws:iam::111111111111:role/deployer',
      keyAlias: 'alias/other-vault',
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/other-vault' });
    const policy = resourceOf(template, vault.bucket.policy!).Properties.PolicyDocument;
    expect(statementWithSid(policy, 'DenyRetentionChangesOutsideDeployments').Condition).toEqual({
      ArnNotEquals: { 'aws:PrincipalArn': 'arn:aws:iam::111111111111:role/deployer' },
    });
  });

  it.each<[string, Partial<BackupVaultProps>, RegExp]>([
    [
      'a default lock longer than the shortest expiry',
      { objectLock: { mode: 'COMPLIANCE', days: 31 } },
      /objectLock\.days must be a whole number of days between 1 and 30 .*got 31/,
    ],
    [
      'a fractional lock',
      { objectLock: { mode: 'COMPLIANCE', days: 1.5 } },
      /objectLock\.days must be a whole number/,
    ],
    [
      'an unknown lock mode',
      { objectLock: { mode: 'STRICT' as 'COMPLIANCE', days: 1 } },
      /objectLock\.mode must be COMPLIANCE or GOVERNANCE, got STRICT/,
    ],
    [
      'an AWS-reserved key alias',
      { keyAlias: 'alias/aws/s3' },
      /keyAlias must look like "alias\/<name>".*got "alias\/aws\/s3"/,
    ],
    ['a key alias without the prefix', { keyAlias: 'vault' }, /keyAlias must look like "alias\/<name>"/],
    [
      'access logs kept less than a year',
      { accessLogRetention: Duration.days(90) },
      /accessLogRetention must be whole days, at least 365, got 90 days/,
    ],
    [
      'a zero noncurrent expiry',
      { noncurrentVersionExpiration: Duration.hours(3) },
      /noncurrentVersionExpiration must be whole days, at least 1/,
    ],
    [
      'a break-glass ARN that is not a role',
      { breakGlassRoleArn: 'arn:aws:iam::111111111111:user/alice' },
      /breakGlassRoleArn must be an IAM role ARN/,
    ],
  ])('rejects %s, naming the prop', (_name, props, message) => {
    expect(() => standalone(props)).toThrow(message);
  });

  it('rejects replication to a vault that does not accept it, or an archive storage class', () => {
    const stack = new Stack(new App(testAppProps()), 'Test', {
      env: { account: '111111111111', region: 'sa-east-1' },
    });
    const plain = new BackupVault(stack, 'Plain', { retention: SETTINGS, keyAlias: 'alias/plain' });
    expect(
      () => new BackupVault(stack, 'A', { retention: SETTINGS, replicateTo: { destination: plain } }),
    ).toThrow(
      /replicateTo\.destination must be a BackupVault created with acceptReplication: true \(Test\/Plain is not\)/,
    );
    const receiving = new BackupVault(stack, 'Receiving', {
      retention: SETTINGS,
      acceptReplication: true,
      keyAlias: 'alias/r',
    });
    expect(
      () =>
        new BackupVault(stack, 'B', {
          retention: SETTINGS,
          replicateTo: { destination: receiving, storageClass: 'DEEP_ARCHIVE' as 'GLACIER_IR' },
        }),
    ).toThrow(
      /replicateTo\.storageClass must be one of STANDARD, STANDARD_IA, INTELLIGENT_TIERING, GLACIER_IR, got "DEEP_ARCHIVE"/,
    );
    expect(
      () =>
        new BackupVault(stack, 'C', {
          retention: SETTINGS,
          acceptReplication: true,
          replicateTo: { destination: receiving },
        }),
    ).toThrow(/acceptReplication and replicateTo cannot both be set/);
  });

  it('needs deploymentRoleArn when the stack has no default synthesizer', async () => {
    const { CliCredentialsStackSynthesizer } = await import('aws-cdk-lib');
    const stack = new Stack(new App(testAppProps()), 'Test', {
      env: { account: '111111111111', region: 'sa-east-1' },
      synthesizer: new CliCredentialsStackSynthesizer(),
    });
    expect(() => new BackupVault(stack, 'Vault', { retention: SETTINGS })).toThrow(
      /deploymentRoleArn is required when the stack does not use the DefaultStackSynthesizer/,
    );
  });
});
