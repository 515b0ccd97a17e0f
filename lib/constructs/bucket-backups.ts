import { Duration, Stack, TimeZone, Token } from 'aws-cdk-lib';
import { BackupPlan, BackupPlanRule, BackupResource, type BackupSelection } from 'aws-cdk-lib/aws-backup';
import { Schedule } from 'aws-cdk-lib/aws-events';
import { Effect, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { retentionFor, type RetentionSettings } from '../../core/policy/retention';
import type { CofreConfig } from '../config';
import { acknowledge } from '../nag';
import { pascal } from './alerts';
import { DEFAULT_PLAN_RETENTION, SNAPSHOT_LIMITS, type SnapshotVault } from './database-snapshots';

/** An application bucket in AWS S3 (this account, the primary region) that AWS Backup protects. */
export interface ProtectedBucket {
  /** The bucket's name (`buckets[].bucketName`); it is not created or changed by Cofre. */
  readonly bucketName: string;
  /**
   * Data class: the yearly recovery points are kept for its legal years.
   * @default 'general'
   */
  readonly dataClass?: string;
}

/** Properties of {@link BucketBackups}. */
export interface BucketBackupsProps {
  /** The buckets to protect (at least one). */
  readonly buckets: readonly ProtectedBucket[];
  /** The AWS Backup vault in this region (the RDS/Aurora snapshot vault is reused). */
  readonly vault: SnapshotVault;
  /** The vault in the DR region every rule copies to; must be in another region. */
  readonly drVault: SnapshotVault;
  /**
   * Days of point-in-time restore (continuous backup for S3), 1–35.
   * @default 35
   */
  readonly continuousDays?: number;
  /**
   * The daily (differential) recovery point: a `cron(...)` expression in `timeZone`.
   * @default 'cron(0 3 ? * MON-SAT *)'
   */
  readonly differentialSchedule?: string;
  /**
   * The weekly (full) recovery point: a `cron(...)` expression in `timeZone`.
   * @default 'cron(0 3 ? * SUN *)'
   */
  readonly fullSchedule?: string;
  /**
   * Days a differential recovery point (and its DR copy) is kept.
   * @default 30
   */
  readonly differentialDays?: number;
  /**
   * Weeks a full recovery point (and its DR copy) is kept.
   * @default 12
   */
  readonly fullWeeks?: number;
  /**
   * IANA time zone of the schedules.
   * @default 'America/Sao_Paulo'
   */
  readonly timeZone?: string;
  /**
   * Legal retention per data class (yearly recovery points), as for the databases.
   * @default - 7 yearly years; no legal classes
   */
  readonly retention?: RetentionSettings;
}

/** The rules of the bucket plan, by construct id. */
export const BUCKET_RULES = ['Continuous', 'Differential', 'Full', 'Yearly'] as const;
export type BucketRuleName = (typeof BUCKET_RULES)[number];

/** The days each rule keeps a bucket's recovery points (the source and the DR copy alike). */
export function bucketRetentionDays(o: {
  readonly continuousDays: number;
  readonly differentialDays: number;
  readonly fullWeeks: number;
  readonly dataClass: string;
  readonly retention: RetentionSettings;
}): Record<BucketRuleName, number> {
  return {
    Continuous: o.continuousDays,
    Differential: o.differentialDays,
    Full: o.fullWeeks * 7,
    Yearly: retentionFor('yearly', o.dataClass, o.retention).expireAfterDays,
  };
}

const CRON = /^cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)$/;

/**
 * AWS Backup of application S3 buckets: one plan per bucket with a continuous rule (point-in-time
 * restore within 1–35 days) and differential (daily), full (weekly) and yearly rules whose retention
 * follows `retention.files*` and the bucket's data class, each copying to the DR-region vault; a
 * selection by bucket ARN; and one role for S3 backup and restore limited to those buckets (and to
 * new restore buckets named `cofre-restore-*`), narrower than AWS's AWSBackupServiceRolePolicyForS3Backup
 * and …ForS3Restore, which cover every bucket of the account.
 *
 * AWS Backup needs S3 versioning on each bucket: Cofre does not turn it on. A bucket without
 * versioning fails its backup jobs, and the job events (resource type S3) reach the history and the
 * critical alerts through the backup-events Lambda, naming the bucket.
 */
export class BucketBackups extends Construct {
  /** One plan per bucket name. */
  public readonly plans: ReadonlyMap<string, BackupPlan>;
  /** The rules of each plan (by bucket name, then rule). */
  public readonly rules: ReadonlyMap<string, Readonly<Record<BucketRuleName, BackupPlanRule>>>;
  public readonly selections: ReadonlyMap<string, BackupSelection>;
  /** The role AWS Backup assumes to back up and restore the buckets. */
  public readonly role: Role;
  /** ARN of each protected bucket (by name). */
  public readonly bucketArns: ReadonlyMap<string, string>;

  constructor(scope: Construct, id: string, props: BucketBackupsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const where = `BucketBackups ${this.node.path}`;
    const continuousDays = props.continuousDays ?? 35;
    const differentialDays = props.differentialDays ?? 30;
    const fullWeeks = props.fullWeeks ?? 12;
    const retention = props.retention ?? DEFAULT_PLAN_RETENTION;
    const timeZone = props.timeZone ?? 'America/Sao_Paulo';
    const { continuousDays: pitr } = SNAPSHOT_LIMITS;
    if (!Number.isInteger(continuousDays) || continuousDays < pitr.min || continuousDays > pitr.max)
      throw new Error(
        `${where}: continuousDays must be a whole number of days between ${pitr.min} and ${pitr.max} (AWS Backup continuous backup for S3), got ${continuousDays}`,
      );
    for (const [name, value] of [
      ['differentialDays', differentialDays],
      ['fullWeeks', fullWeeks],
    ] as const)
      if (!Number.isInteger(value) || value < 1)
        throw new Error(`${where}: ${name} must be a whole number of at least 1, got ${value}`);
    const schedules = {
      differentialSchedule: props.differentialSchedule ?? 'cron(0 3 ? * MON-SAT *)',
      fullSchedule: props.fullSchedule ?? 'cron(0 3 ? * SUN *)',
    };
    for (const [name, value] of Object.entries(schedules))
      if (!CRON.test(value))
        throw new Error(
          `${where}: ${name} must be a cron expression like "cron(0 3 ? * SUN *)" (AWS Backup rules take cron only), got "${value}"`,
        );
    const full = CRON.exec(schedules.fullSchedule)!;
    if (props.buckets.length === 0) throw new Error(`${where}: buckets must name at least one bucket`);
    const names = new Set<string>();
    for (const b of props.buckets) {
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(b.bucketName))
        throw new Error(`${where}: "${b.bucketName}" is not an S3 bucket name`);
      if (names.has(b.bucketName)) throw new Error(`${where}: bucket "${b.bucketName}" is listed twice`);
      names.add(b.bucketName);
    }
    const drStack = Stack.of(props.drVault);
    if (
      Token.isUnresolved(drStack.region) ||
      Token.isUnresolved(stack.region) ||
      drStack.region === stack.region
    )
      throw new Error(
        `${where}: drVault must be in another, explicit region than the buckets (${stack.region}); a copy in the same region does not survive a regional outage`,
      );

    const bucketArns = new Map(
      props.buckets.map((b) => [b.bucketName, `arn:${stack.partition}:s3:::${b.bucketName}`]),
    );
    this.bucketArns = bucketArns;
    this.role = this.backupRole([...bucketArns.values()], props.vault, props.drVault);

    const plans = new Map<string, BackupPlan>();
    const rules = new Map<string, Record<BucketRuleName, BackupPlanRule>>();
    const selections = new Map<string, BackupSelection>();
    const zone = TimeZone.of(timeZone);
    for (const bucket of props.buckets) {
      const days = bucketRetentionDays({
        continuousDays,
        differentialDays,
        fullWeeks,
        dataClass: bucket.dataClass ?? 'general',
        retention,
      });
      for (const [rule, ruleDays] of Object.entries(days))
        for (const vault of [props.vault, props.drVault])
          if (ruleDays < vault.lock.minRetentionDays || ruleDays > vault.lock.maxRetentionDays)
            throw new Error(
              `${where}: the ${rule} rule of bucket "${bucket.bucketName}" keeps ${ruleDays} days, outside the Vault Lock of ${vault.node.path} (${vault.lock.minRetentionDays}–${vault.lock.maxRetentionDays} days): AWS Backup would fail every job`,
            );
      const copyTo = (ruleDays: number) => [
        { destinationBackupVault: props.drVault.vault, deleteAfter: Duration.days(ruleDays) },
      ];
      const tags = { 'cofre:bucket': bucket.bucketName };
      const rule = (
        name: BucketRuleName,
        schedule: string,
        extra: { enableContinuousBackup?: boolean } = {},
      ) =>
        new BackupPlanRule({
          ruleName: name,
          ...extra,
          deleteAfter: Duration.days(days[name]),
          scheduleExpression: Schedule.expression(schedule),
          scheduleExpressionTimezone: zone,
          copyActions: copyTo(days[name]),
          recoveryPointTags: { ...tags, 'cofre:tier': name.toLowerCase() },
        });
      const made: Record<BucketRuleName, BackupPlanRule> = {
        Continuous: rule('Continuous', schedules.differentialSchedule, { enableContinuousBackup: true }),
        Differential: rule('Differential', schedules.differentialSchedule),
        Full: rule('Full', schedules.fullSchedule),
        // 1 January, at the full copy's time of day.
        Yearly: rule('Yearly', `cron(${full[1]} ${full[2]} 1 1 ? *)`),
      };
      const plan = new BackupPlan(this, `${pascal(bucket.bucketName)}Plan`, {
        backupVault: props.vault.vault,
        backupPlanRules: Object.values(made),
      });
      selections.set(
        bucket.bucketName,
        plan.addSelection('Selection', {
          resources: [BackupResource.fromArn(bucketArns.get(bucket.bucketName)!)],
          role: this.role,
          disableDefaultBackupPolicy: true,
        }),
      );
      plans.set(bucket.bucketName, plan);
      rules.set(bucket.bucketName, made);
    }
    this.plans = plans;
    this.rules = rules;
    this.selections = selections;
  }

  /**
   * The backup and restore role, after AWSBackupServiceRolePolicyForS3Backup / …ForS3Restore but
   * on the configured buckets only (restores into a new bucket: only buckets named `cofre-restore-*`);
   * KMS only through S3 and AWS Backup; the change-tracking EventBridge rules AWS Backup manages.
   */
  private backupRole(bucketArns: string[], vault: SnapshotVault, drVault: SnapshotVault): Role {
    const stack = Stack.of(this);
    const restoreBuckets = `arn:${stack.partition}:s3:::cofre-restore-*`;
    const targets = [...bucketArns, restoreBuckets];
    const objects = (arns: string[]) => arns.map((a) => `${a}/*`);
    const managedRules = stack.formatArn({
      service: 'events',
      resource: 'rule',
      resourceName: 'AwsBackupManagedRule*',
    });
    const anyKey = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    const role = new Role(this, 'BackupRole', {
      description:
        'AWS Backup: continuous and periodic backups of the Cofre application buckets, copies to the DR vault, restores',
      assumedBy: new ServicePrincipal('backup.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      inlinePolicies: {
        S3BackupAndRestore: new PolicyDocument({
          statements: [
            new PolicyStatement({
              sid: 'ReadTheBucketsAndTrackTheirChanges',
              effect: Effect.ALLOW,
              actions: [
                's3:GetInventoryConfiguration',
                's3:PutInventoryConfiguration',
                's3:ListBucketVersions',
                's3:ListBucket',
                's3:GetBucketVersioning',
                's3:GetBucketNotification',
                's3:PutBucketNotification',
                's3:GetBucketLocation',
                's3:GetBucketTagging',
                's3:GetBucketAcl',
                's3:GetBucketOwnershipControls',
              ],
              resources: bucketArns,
            }),
            new PolicyStatement({
              sid: 'ReadTheObjects',
              effect: Effect.ALLOW,
              actions: [
                's3:GetObject',
                's3:GetObjectVersion',
                's3:GetObjectAcl',
                's3:GetObjectVersionAcl',
                's3:GetObjectTagging',
                's3:GetObjectVersionTagging',
              ],
              resources: objects(bucketArns),
            }),
            new PolicyStatement({
              sid: 'RestoreIntoTheBucketsOrANewCofreRestoreBucket',
              effect: Effect.ALLOW,
              actions: [
                's3:CreateBucket',
                's3:ListBucketVersions',
                's3:ListBucket',
                's3:GetBucketVersioning',
                's3:PutBucketVersioning',
                's3:GetBucketLocation',
              ],
              resources: targets,
            }),
            new PolicyStatement({
              sid: 'WriteRestoredObjects',
              effect: Effect.ALLOW,
              actions: [
                's3:PutObject',
                's3:PutObjectAcl',
                's3:PutObjectVersionAcl',
                's3:PutObjectTagging',
                's3:GetObject',
                's3:GetObjectVersion',
                's3:ListMultipartUploadParts',
              ],
              resources: objects(targets),
            }),
            new PolicyStatement({
              sid: 'ChangeTrackingRulesAwsBackupManages',
              effect: Effect.ALLOW,
              actions: [
                'events:DescribeRule',
                'events:EnableRule',
                'events:PutRule',
                'events:DeleteRule',
                'events:PutTargets',
                'events:RemoveTargets',
                'events:ListTargetsByRule',
                'events:DisableRule',
              ],
              resources: [managedRules],
            }),
            new PolicyStatement({
              sid: 'ListingsWithoutResourceLevelPermissions',
              effect: Effect.ALLOW,
              actions: ['s3:ListAllMyBuckets', 'cloudwatch:GetMetricData', 'events:ListRules'],
              resources: ['*'],
            }),
            new PolicyStatement({
              sid: 'CopyIntoTheDrVault',
              effect: Effect.ALLOW,
              actions: ['backup:CopyIntoBackupVault', 'backup:DescribeBackupVault'],
              resources: [drVault.vault.backupVaultArn],
            }),
            new PolicyStatement({
              sid: 'VaultKeys',
              effect: Effect.ALLOW,
              actions: [
                'kms:DescribeKey',
                'kms:CreateGrant',
                'kms:GenerateDataKey',
                'kms:Decrypt',
                'kms:ReEncryptFrom',
                'kms:ReEncryptTo',
              ],
              resources: [vault.key.keyArn, drVault.key.keyArn],
            }),
            new PolicyStatement({
              // The buckets' own SSE-KMS keys are not named by the configuration: only through S3.
              sid: 'BucketKeysOnlyThroughS3',
              effect: Effect.ALLOW,
              actions: ['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey'],
              resources: [anyKey],
              conditions: { StringLike: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
            }),
          ],
        }),
      },
    });
    acknowledge(role, {
      id: 'HIPAA.Security-IAMNoInlinePolicy',
      reason:
        'The policy belongs to the AWS Backup role of the Cofre bucket plans alone and names their buckets, vaults and keys; a managed policy would only make it attachable elsewhere.',
    });
    const resolve = (arn: string) => stack.resolve(arn) as string;
    const reasons: Array<[string, string]> = [
      [
        '*',
        's3:ListAllMyBuckets, cloudwatch:GetMetricData and events:ListRules have no resource-level permissions; AWS Backup lists them to find the buckets and watch its change tracking.',
      ],
      [
        resolve(anyKey),
        'The application buckets are encrypted with their own KMS keys, which the configuration does not name; their use is limited to calls S3 makes (kms:ViaService).',
      ],
      [
        resolve(managedRules),
        'AWS Backup creates the EventBridge rules of S3 change tracking itself, named AwsBackupManagedRule-<id>; the wildcard covers only those.',
      ],
      [
        restoreBuckets,
        'A restore into a new bucket creates it: only buckets named cofre-restore-* (the runbook names them so), never another bucket of the account.',
      ],
      [
        `${restoreBuckets}/*`,
        'The objects a restore writes into a new cofre-restore-* bucket; the configured buckets are named one by one.',
      ],
      ...bucketArns.map((a): [string, string] => [
        `${a}/*`,
        'AWS Backup reads and restores every object of a protected bucket: the objects of that bucket only.',
      ]),
    ];
    for (const [resource, reason] of reasons)
      acknowledge(role, { id: `AwsSolutions-IAM5[Resource::${resource}]`, reason });
    return role;
  }
}

/** The AWS S3 buckets of a configuration (`buckets[]` without `source`: S3-compatible ones are synced, lib/constructs/files-sync-jobs.ts). */
export function awsBucketsOf(config: CofreConfig): ProtectedBucket[] {
  return config.buckets
    .filter((b) => b.source === undefined)
    .map((b) => ({ bucketName: b.bucketName, dataClass: b.dataClass }));
}

/** Every retention (days) the bucket rules of a configuration write into the snapshot vaults. */
export function bucketRetentionDaysOf(config: CofreConfig): number[] {
  return awsBucketsOf(config).flatMap((b) =>
    Object.values(
      bucketRetentionDays({
        continuousDays: config.snapshots.continuousDays,
        differentialDays: config.retention.filesDifferentialDays,
        fullWeeks: config.retention.filesFullWeeks,
        dataClass: b.dataClass ?? 'general',
        retention: config.retention,
      }),
    ),
  );
}
