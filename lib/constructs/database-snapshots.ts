import { Arn, ArnFormat, Duration, RemovalPolicy, Stack, TimeZone, Token } from 'aws-cdk-lib';
import {
  BackupPlan,
  BackupPlanRule,
  BackupResource,
  BackupSelection,
  BackupVault,
} from 'aws-cdk-lib/aws-backup';
import { Schedule } from 'aws-cdk-lib/aws-events';
import { Effect, PolicyDocument, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key, type IKey } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { retentionFor, type RetentionSettings } from '../../core/policy/retention';
import type { CofreConfig } from '../config';
import { acknowledge } from '../nag';
import { pascal } from './alerts';

/** AWS Backup limits the constructs below check at synth time. */
export const SNAPSHOT_LIMITS = {
  /** Continuous backup (point in time) keeps 1–35 days. */
  continuousDays: { min: 1, max: 35 },
  /** Vault Lock's grace period (ChangeableForDays) is at least 3 days. */
  lockGraceDays: { min: 3, max: 36500 },
  /** Vault Lock's MinRetentionDays / MaxRetentionDays. */
  lockRetentionDays: { min: 1, max: 36500 },
} as const;

/** Vault Lock of a {@link SnapshotVault}. */
export interface SnapshotVaultLock {
  /**
   * `COMPLIANCE`: after `graceDays` nobody (root and AWS included) can remove the lock, shorten
   * retention or delete a recovery point early. `GOVERNANCE`: the same rules, but a principal allowed
   * `backup:DeleteBackupVaultLockConfiguration` can remove them.
   * @default 'COMPLIANCE'
   */
  readonly mode?: 'COMPLIANCE' | 'GOVERNANCE';
  /**
   * COMPLIANCE: days after the deploy during which the lock can still be changed or deleted
   * (ChangeableForDays, at least 3); a mistake in a first deploy can be corrected within them.
   * @default 7
   */
  readonly graceDays?: number;
  /** Shortest retention a recovery point may have (MinRetentionDays): the shortest rule that writes here. */
  readonly minRetentionDays: number;
  /** Longest retention a recovery point may have (MaxRetentionDays): the longest rule that writes here. */
  readonly maxRetentionDays: number;
}

/** Properties of {@link SnapshotVault}. */
export interface SnapshotVaultProps {
  /** Vault Lock settings. */
  readonly lock: SnapshotVaultLock;
  /**
   * What happens to the vault and its key when removed from the stack. A vault holding recovery
   * points cannot be deleted anyway; the key must outlive every recovery point it encrypts.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * An AWS Backup vault for RDS/Aurora recovery points: its own KMS key (rotated, retained), recovery
 * point deletion blocked by the access policy (`backup:DeleteRecoveryPoint` and
 * `backup:UpdateRecoveryPointLifecycle` denied to everyone), and Vault Lock.
 */
export class SnapshotVault extends Construct {
  /** The vault's own KMS key. */
  public readonly key: Key;
  /** The AWS Backup vault. */
  public readonly vault: BackupVault;
  /** The lock as deployed (mode, grace, retention bounds). */
  public readonly lock: Required<SnapshotVaultLock>;

  constructor(scope: Construct, id: string, props: SnapshotVaultProps) {
    super(scope, id);
    const lock: Required<SnapshotVaultLock> = {
      mode: props.lock.mode ?? 'COMPLIANCE',
      graceDays: props.lock.graceDays ?? 7,
      minRetentionDays: props.lock.minRetentionDays,
      maxRetentionDays: props.lock.maxRetentionDays,
    };
    const { lockGraceDays: grace, lockRetentionDays: range } = SNAPSHOT_LIMITS;
    if (!Number.isInteger(lock.graceDays) || lock.graceDays < grace.min || lock.graceDays > grace.max)
      throw new Error(
        `SnapshotVault ${this.node.path}: lock.graceDays must be a whole number of days between ${grace.min} and ${grace.max} (AWS Backup Vault Lock ChangeableForDays), got ${lock.graceDays}`,
      );
    for (const field of ['minRetentionDays', 'maxRetentionDays'] as const) {
      const value = lock[field];
      if (!Number.isInteger(value) || value < range.min || value > range.max)
        throw new Error(
          `SnapshotVault ${this.node.path}: lock.${field} must be a whole number of days between ${range.min} and ${range.max}, got ${value}`,
        );
    }
    if (lock.minRetentionDays > lock.maxRetentionDays)
      throw new Error(
        `SnapshotVault ${this.node.path}: lock.minRetentionDays (${lock.minRetentionDays}) must not exceed lock.maxRetentionDays (${lock.maxRetentionDays})`,
      );
    this.lock = lock;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.key = new Key(this, 'Key', {
      description: 'Cofre: encrypts the RDS/Aurora recovery points in this AWS Backup vault',
      enableKeyRotation: true,
      removalPolicy,
    });
    this.vault = new BackupVault(this, 'Vault', {
      encryptionKey: this.key,
      blockRecoveryPointDeletion: true,
      removalPolicy,
      lockConfiguration: {
        minRetention: Duration.days(lock.minRetentionDays),
        maxRetention: Duration.days(lock.maxRetentionDays),
        // Without ChangeableForDays the lock stays in governance mode; with it, compliance mode starts
        // once the grace period is over.
        ...(lock.mode === 'COMPLIANCE' ? { changeableFor: Duration.days(lock.graceDays) } : {}),
      },
    });
  }
}

/** One RDS DB instance or Aurora cluster to protect. */
export interface SnapshotDatabase {
  /** `databases[].id`: construct ids, tags, metrics. */
  readonly id: string;
  /** RDS DB instance identifier (exactly one of this and `rdsClusterId`). */
  readonly rdsInstanceId?: string;
  /** Aurora DB cluster identifier (exactly one of this and `rdsInstanceId`). */
  readonly rdsClusterId?: string;
  /**
   * Data class: the yearly snapshots are kept for its legal years.
   * @default 'general'
   */
  readonly dataClass?: string;
}

/** Properties of {@link DatabaseSnapshots}. */
export interface DatabaseSnapshotsProps {
  /** The databases to protect; each must name an RDS instance or an Aurora cluster. */
  readonly databases: readonly SnapshotDatabase[];
  /** The vault in this (the databases') region. */
  readonly vault: SnapshotVault;
  /** The vault in the DR region that every rule copies to; must be in another region. */
  readonly drVault: SnapshotVault;
  /**
   * Days of point in time recovery (continuous backup), 1–35.
   * @default 35
   */
  readonly continuousDays?: number;
  /**
   * Days a daily snapshot (and its DR copy) is kept.
   * @default 30
   */
  readonly snapshotDays?: number;
  /**
   * When the daily snapshot is taken: a daily `cron(M H * * ? *)` in `timeZone`; the weekly (Sunday),
   * monthly (1st) and yearly (1 January) snapshots are taken at the same time of day.
   * @default 'cron(0 3 * * ? *)'
   */
  readonly schedule?: string;
  /**
   * IANA time zone of the schedules.
   * @default 'America/Sao_Paulo'
   */
  readonly timeZone?: string;
  /**
   * Grandfather-father-son retention (weeks, months, years) and legal retention per data class, the
   * same settings as the logical backups' tiers.
   * @default - 12 weekly, 12 monthly, 7 yearly; no legal classes
   */
  readonly retention?: RetentionSettings;
}

/** The rules of each plan, by construct id. */
export const SNAPSHOT_RULES = ['Continuous', 'Daily', 'Weekly', 'Monthly', 'Yearly'] as const;
export type SnapshotRuleName = (typeof SNAPSHOT_RULES)[number];

/** Retention when a plan is given none: the logical backups' defaults (also the bucket plans'). */
export const DEFAULT_PLAN_RETENTION: RetentionSettings = {
  tiers: { dailyDays: 30, weeklyWeeks: 12, monthlyMonths: 12, yearlyYears: 7 },
  classes: {},
  tenantExportDays: 90,
};

/** The days each rule keeps its recovery points (the source and the DR copy alike). */
export function snapshotRetentionDays(o: {
  readonly continuousDays: number;
  readonly snapshotDays: number;
  readonly dataClass: string;
  readonly retention: RetentionSettings;
}): Record<SnapshotRuleName, number> {
  return {
    Continuous: o.continuousDays,
    Daily: o.snapshotDays,
    Weekly: retentionFor('weekly', o.dataClass, o.retention).expireAfterDays,
    Monthly: retentionFor('monthly', o.dataClass, o.retention).expireAfterDays,
    Yearly: retentionFor('yearly', o.dataClass, o.retention).expireAfterDays,
  };
}

const DAILY_CRON = /^cron\((\d{1,2}) (\d{1,2}) \* \* \? \*\)$/;

/**
 * AWS Backup of RDS DB instances and Aurora clusters: one plan per database with a continuous rule
 * (point in time recovery) and daily, weekly, monthly and yearly snapshot rules, each copying to the
 * DR-region vault with the same retention; a selection by resource ARN; and one backup role limited to
 * those databases, their AWS Backup snapshots and the two vaults (not the managed
 * AWSBackupServiceRolePolicyForBackup, which covers every resource type in the account).
 *
 * Cold storage: AWS Backup does not move RDS or Aurora recovery points to cold storage, so no rule
 * sets `moveToColdStorageAfter` (CloudFormation would reject the plan).
 */
export class DatabaseSnapshots extends Construct {
  /** One plan per database id. */
  public readonly plans: ReadonlyMap<string, BackupPlan>;
  /** The rules of each plan (by database id, then rule). */
  public readonly rules: ReadonlyMap<string, Readonly<Record<SnapshotRuleName, BackupPlanRule>>>;
  /** The selections (by database id). */
  public readonly selections: ReadonlyMap<string, BackupSelection>;
  /** The role AWS Backup assumes for every plan here. */
  public readonly role: Role;
  /** ARN of each protected database or cluster (by database id). */
  public readonly resourceArns: ReadonlyMap<string, string>;

  constructor(scope: Construct, id: string, props: DatabaseSnapshotsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const continuousDays = props.continuousDays ?? 35;
    const snapshotDays = props.snapshotDays ?? 30;
    const schedule = props.schedule ?? 'cron(0 3 * * ? *)';
    const timeZone = props.timeZone ?? 'America/Sao_Paulo';
    const retention = props.retention ?? DEFAULT_PLAN_RETENTION;
    const { continuousDays: pitr } = SNAPSHOT_LIMITS;
    if (!Number.isInteger(continuousDays) || continuousDays < pitr.min || continuousDays > pitr.max)
      throw new Error(
        `DatabaseSnapshots ${this.node.path}: continuousDays must be a whole number of days between ${pitr.min} and ${pitr.max} (AWS Backup continuous backup), got ${continuousDays}`,
      );
    if (!Number.isInteger(snapshotDays) || snapshotDays < 1)
      throw new Error(
        `DatabaseSnapshots ${this.node.path}: snapshotDays must be a whole number of days of at least 1, got ${snapshotDays}`,
      );
    const cron = DAILY_CRON.exec(schedule);
    if (!cron || Number(cron[1]) > 59 || Number(cron[2]) > 23)
      throw new Error(
        `DatabaseSnapshots ${this.node.path}: schedule must be a daily cron expression like "cron(0 3 * * ? *)", got "${schedule}"`,
      );
    const [minute, hour] = [cron[1]!, cron[2]!];
    const drStack = Stack.of(props.drVault);
    if (Token.isUnresolved(drStack.region) || Token.isUnresolved(stack.region))
      throw new Error(
        `DatabaseSnapshots ${this.node.path}: the stacks of the vault and of drVault need an explicit region (env), so the copy can be checked to leave the region`,
      );
    if (drStack.region === stack.region)
      throw new Error(
        `DatabaseSnapshots ${this.node.path}: drVault must be in another region than the databases (both are in ${stack.region}); a copy in the same region does not survive a regional outage`,
      );
    if (props.databases.length === 0)
      throw new Error(`DatabaseSnapshots ${this.node.path}: databases must name at least one database`);

    const resourceArns = new Map<string, string>();
    for (const db of props.databases) {
      if ((db.rdsInstanceId === undefined) === (db.rdsClusterId === undefined))
        throw new Error(
          `DatabaseSnapshots ${this.node.path}: database "${db.id}" must set exactly one of rdsInstanceId (an RDS DB instance) or rdsClusterId (an Aurora cluster: AWS Backup protects Aurora by cluster, not by its instances)`,
        );
      resourceArns.set(
        db.id,
        db.rdsInstanceId !== undefined
          ? stack.formatArn({
              service: 'rds',
              resource: 'db',
              resourceName: db.rdsInstanceId,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            })
          : stack.formatArn({
              service: 'rds',
              resource: 'cluster',
              resourceName: db.rdsClusterId!,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
      );
    }
    this.resourceArns = resourceArns;
    this.role = this.backupRole([...resourceArns.values()], props.vault, props.drVault, drStack.region);

    const plans = new Map<string, BackupPlan>();
    const rules = new Map<string, Record<SnapshotRuleName, BackupPlanRule>>();
    const selections = new Map<string, BackupSelection>();
    const zone = TimeZone.of(timeZone);
    const cronAt = (day: string, month: string, weekDay: string) =>
      Schedule.expression(`cron(${minute} ${hour} ${day} ${month} ${weekDay} *)`);
    for (const db of props.databases) {
      const days = snapshotRetentionDays({
        continuousDays,
        snapshotDays,
        dataClass: db.dataClass ?? 'general',
        retention,
      });
      const copyTo = (ruleDays: number) => [
        { destinationBackupVault: props.drVault.vault, deleteAfter: Duration.days(ruleDays) },
      ];
      const tags = { 'cofre:database': db.id };
      const made: Record<SnapshotRuleName, BackupPlanRule> = {
        Continuous: new BackupPlanRule({
          ruleName: 'Continuous',
          enableContinuousBackup: true,
          deleteAfter: Duration.days(days.Continuous),
          scheduleExpression: cronAt('*', '*', '?'),
          scheduleExpressionTimezone: zone,
          copyActions: copyTo(days.Continuous),
          recoveryPointTags: { ...tags, 'cofre:tier': 'continuous' },
        }),
        Daily: new BackupPlanRule({
          ruleName: 'Daily',
          deleteAfter: Duration.days(days.Daily),
          scheduleExpression: cronAt('*', '*', '?'),
          scheduleExpressionTimezone: zone,
          copyActions: copyTo(days.Daily),
          recoveryPointTags: { ...tags, 'cofre:tier': 'daily' },
        }),
        Weekly: new BackupPlanRule({
          ruleName: 'Weekly',
          deleteAfter: Duration.days(days.Weekly),
          scheduleExpression: cronAt('?', '*', 'SUN'),
          scheduleExpressionTimezone: zone,
          copyActions: copyTo(days.Weekly),
          recoveryPointTags: { ...tags, 'cofre:tier': 'weekly' },
        }),
        Monthly: new BackupPlanRule({
          ruleName: 'Monthly',
          deleteAfter: Duration.days(days.Monthly),
          scheduleExpression: cronAt('1', '*', '?'),
          scheduleExpressionTimezone: zone,
          copyActions: copyTo(days.Monthly),
          recoveryPointTags: { ...tags, 'cofre:tier': 'monthly' },
        }),
        Yearly: new BackupPlanRule({
          ruleName: 'Yearly',
          deleteAfter: Duration.days(days.Yearly),
          scheduleExpression: cronAt('1', '1', '?'),
          scheduleExpressionTimezone: zone,
          copyActions: copyTo(days.Yearly),
          recoveryPointTags: { ...tags, 'cofre:tier': 'yearly' },
        }),
      };
      for (const [rule, ruleDays] of Object.entries(days)) {
        for (const vault of [props.vault, props.drVault]) {
          if (ruleDays < vault.lock.minRetentionDays || ruleDays > vault.lock.maxRetentionDays)
            throw new Error(
              `DatabaseSnapshots ${this.node.path}: the ${rule} rule of "${db.id}" keeps ${ruleDays} days, outside the Vault Lock of ${vault.node.path} (${vault.lock.minRetentionDays}–${vault.lock.maxRetentionDays} days): AWS Backup would fail every job`,
            );
        }
      }
      const plan = new BackupPlan(this, `${pascal(db.id)}Plan`, {
        backupVault: props.vault.vault,
        backupPlanRules: Object.values(made),
      });
      const selection = plan.addSelection('Selection', {
        resources: [BackupResource.fromArn(resourceArns.get(db.id)!)],
        role: this.role,
        disableDefaultBackupPolicy: true,
      });
      plans.set(db.id, plan);
      rules.set(db.id, made);
      selections.set(db.id, selection);
    }
    this.plans = plans;
    this.rules = rules;
    this.selections = selections;
  }

  /**
   * The backup role: RDS snapshot and continuous-backup actions on the selected databases and on
   * the snapshots AWS Backup names `awsbackup:*` (here and their copies in the DR region), the copy
   * into the DR vault, and KMS use only through RDS and AWS Backup.
   */
  private backupRole(resourceArns: string[], vault: SnapshotVault, drVault: SnapshotVault, drRegion: string) {
    const stack = Stack.of(this);
    const rds = (region: string, resource: string, name: string) =>
      Arn.format(
        { service: 'rds', region, resource, resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME },
        stack,
      );
    const snapshots = [stack.region, drRegion].flatMap((region) => [
      rds(region, 'snapshot', 'awsbackup:*'),
      rds(region, 'cluster-snapshot', 'awsbackup:*'),
    ]);
    const automatedBackups = [
      rds(stack.region, 'auto-backup', '*'),
      rds(stack.region, 'cluster-auto-backup', '*'),
    ];
    const keys: IKey[] = [vault.key, drVault.key];
    const anyKey = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    const role = new Role(this, 'BackupRole', {
      description:
        'AWS Backup: snapshots and continuous backup of the Cofre RDS/Aurora databases, copies to the DR vault',
      assumedBy: new ServicePrincipal('backup.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      inlinePolicies: {
        RdsSnapshots: new PolicyDocument({
          statements: [
            new PolicyStatement({
              sid: 'SnapshotAndContinuousBackupOfTheSelectedDatabases',
              effect: Effect.ALLOW,
              actions: [
                'rds:DescribeDBInstances',
                'rds:DescribeDBClusters',
                'rds:CreateDBSnapshot',
                'rds:CreateDBClusterSnapshot',
                'rds:ModifyDBInstance',
                'rds:ModifyDBCluster',
                'rds:ListTagsForResource',
                'rds:AddTagsToResource',
              ],
              resources: resourceArns,
            }),
            new PolicyStatement({
              sid: 'TheSnapshotsAwsBackupMakesAndCopies',
              effect: Effect.ALLOW,
              actions: [
                'rds:DescribeDBSnapshots',
                'rds:DescribeDBClusterSnapshots',
                'rds:CreateDBSnapshot',
                'rds:CreateDBClusterSnapshot',
                'rds:CopyDBSnapshot',
                'rds:CopyDBClusterSnapshot',
                'rds:ListTagsForResource',
                'rds:AddTagsToResource',
              ],
              resources: snapshots,
            }),
            new PolicyStatement({
              sid: 'AutomatedBackupsOfContinuousBackup',
              effect: Effect.ALLOW,
              actions: ['rds:DescribeDBInstanceAutomatedBackups', 'rds:DescribeDBClusterAutomatedBackups'],
              resources: automatedBackups,
            }),
            new PolicyStatement({
              sid: 'CopyIntoTheDrVault',
              effect: Effect.ALLOW,
              actions: ['backup:CopyIntoBackupVault', 'backup:DescribeBackupVault'],
              resources: [drVault.vault.backupVaultArn],
            }),
            new PolicyStatement({
              sid: 'VaultKeysForRecoveryPointsAndCopies',
              effect: Effect.ALLOW,
              actions: [
                'kms:DescribeKey',
                'kms:CreateGrant',
                'kms:GenerateDataKey',
                'kms:Decrypt',
                'kms:ReEncryptFrom',
                'kms:ReEncryptTo',
              ],
              resources: keys.map((k) => k.keyArn),
            }),
            new PolicyStatement({
              // The databases' own keys are not known to Cofre; RDS needs a grant on them to copy an
              // encrypted snapshot. Only through RDS, only for keys of this account.
              sid: 'DatabaseKeysOnlyThroughRds',
              effect: Effect.ALLOW,
              actions: ['kms:DescribeKey', 'kms:CreateGrant'],
              resources: [anyKey],
              conditions: {
                StringEquals: {
                  'kms:ViaService': [`rds.${stack.region}.amazonaws.com`, `rds.${drRegion}.amazonaws.com`],
                },
                Bool: { 'kms:GrantIsForAWSResource': 'true' },
              },
            }),
          ],
        }),
      },
    });
    acknowledge(role, {
      id: 'HIPAA.Security-IAMNoInlinePolicy',
      reason:
        'The policy belongs to the AWS Backup role of the Cofre snapshot plans alone and names their databases, snapshots, vault and keys; a managed policy would only make it attachable elsewhere.',
    });
    acknowledge(role, {
      id: `AwsSolutions-IAM5[Resource::${stack.resolve(anyKey) as string}]`,
      reason:
        'The RDS databases are encrypted with their own KMS keys, which the configuration does not name; the grant is limited to RDS (kms:ViaService) and to AWS resources (kms:GrantIsForAWSResource).',
    });
    for (const resource of snapshots.concat(automatedBackups))
      acknowledge(role, {
        id: `AwsSolutions-IAM5[Resource::${stack.resolve(resource) as string}]`,
        reason:
          'AWS Backup names the snapshots it creates and copies awsbackup:job-<id> and RDS names automated backups at runtime; the wildcard covers only those names.',
      });
    return role;
  }
}

/** The RDS instances and Aurora clusters of a configuration (databases with `rdsInstanceId` or `rdsClusterId`). */
export function snapshotDatabasesOf(config: CofreConfig): SnapshotDatabase[] {
  return config.databases
    .filter((db) => db.rdsInstanceId !== undefined || db.rdsClusterId !== undefined)
    .map((db) => ({
      id: db.id,
      ...(db.rdsInstanceId !== undefined ? { rdsInstanceId: db.rdsInstanceId } : {}),
      ...(db.rdsClusterId !== undefined ? { rdsClusterId: db.rdsClusterId } : {}),
      dataClass: db.dataClass,
    }));
}

/**
 * Vault Lock of both snapshot vaults from the configuration: its mode and grace, and the retention
 * bounds of the rules that write there (the shortest and the longest rule over every database, and
 * `otherRuleDays` of other plans that use the vaults).
 */
export function snapshotVaultLockOf(
  config: CofreConfig,
  otherRuleDays: readonly number[] = [],
): SnapshotVaultLock {
  const all = snapshotDatabasesOf(config).map((db) =>
    Object.values(
      snapshotRetentionDays({
        continuousDays: config.snapshots.continuousDays,
        snapshotDays: config.retention.rdsSnapshotDays,
        dataClass: db.dataClass ?? 'general',
        retention: config.retention,
      }),
    ),
  );
  // Other plans that write into the same vaults (the application buckets') widen the bounds.
  const days = [...all.flat(), ...otherRuleDays];
  return {
    mode: config.snapshots.vaultLock.mode,
    graceDays: config.snapshots.vaultLock.graceDays,
    minRetentionDays: Math.min(...days),
    maxRetentionDays: Math.max(...days),
  };
}
