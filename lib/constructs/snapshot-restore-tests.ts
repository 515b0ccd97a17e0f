import path from 'node:path';
import { Annotations, ArnFormat, CfnElement, Duration, Fn, Stack } from 'aws-cdk-lib';
import { CfnRestoreTestingPlan, CfnRestoreTestingSelection } from 'aws-cdk-lib/aws-backup';
import { SecurityGroup, Subnet, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Rule } from 'aws-cdk-lib/aws-events';
import { ManagedPolicy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { CofreConfig } from '../config';
import { acknowledge } from '../nag';
import type { CofreAlerts } from './alerts';
import type { BackupHistory } from './backup-history';
import type { BackupVault } from './backup-vault';
import { CofreFunction } from './cofre-function';
import type { SnapshotVault } from './database-snapshots';
import {
  endedRestoreJobsRule,
  latestSnapshotTestingPlan,
  restoreTestingSelection,
} from './restore-testing-plan';
import { grantSecretKeyDecrypt } from './secret-key-grant';
import { requireWholeNumber } from './prop-checks';

const LAMBDAS = path.join(__dirname, '..', '..', 'lambdas');

/** An RDS DB instance whose snapshots the monthly restore test restores and validates. */
export interface RestoreTestedInstance {
  /** `databases[].id`. */
  readonly id: string;
  readonly engine: 'postgres' | 'mysql';
  /** ARN of the source instance (as the snapshot plan selects it). */
  readonly resourceArn: string;
  /** The source's credentials secret (complete ARN); the restored copy has the same users. */
  readonly credentialsSecretArn: string;
  /** `databases[].databases`: which databases' manifests are compared. */
  readonly databases: 'all' | readonly string[];
  readonly excludeDatabases: readonly string[];
  /** DB subnet group of the source: the temporary instance is restored into it. */
  readonly dbSubnetGroupName: string;
  /** Security groups of the source, given to the temporary instance. */
  readonly vpcSecurityGroupIds: readonly string[];
  /** Where the validation Lambda runs: the databases' VPC, subnets and client security group. */
  readonly network: {
    readonly vpcId: string;
    readonly subnetIds: readonly string[];
    readonly securityGroupId: string;
    readonly availabilityZones?: readonly string[];
  };
}

/** Properties of {@link SnapshotRestoreTests}. */
export interface SnapshotRestoreTestsProps {
  /** The RDS instances to test (at least one). */
  readonly databases: readonly RestoreTestedInstance[];
  /** The AWS Backup vault (primary region) whose latest snapshots are restored. */
  readonly snapshotVault: SnapshotVault;
  /** The Cofre vault holding the manifests the restored copies are compared with. */
  readonly vault: BackupVault;
  readonly history: BackupHistory;
  /** Alerts: topic, key (Lambda encryption), alarms. */
  readonly alerts: CofreAlerts;
  /**
   * When the restore testing plan starts: a `cron(...)` expression in `timeZone`.
   * @default 'cron(0 4 ? * SUN#1 *)'
   */
  readonly schedule?: string;
  /**
   * IANA time zone of the schedule.
   * @default 'America/Sao_Paulo'
   */
  readonly timeZone?: string;
  /**
   * E-mail passed restore tests too.
   * @default false
   */
  readonly notifyOnSuccess?: boolean;
  /**
   * Hours after the scheduled time within which AWS Backup must start the restore (1–168).
   * @default 8
   */
  readonly startWindowHours?: number;
  /**
   * Hours the temporary instance is kept for validation before AWS Backup deletes it (1–168); it is
   * deleted as soon as the validation result is reported.
   * @default 4
   */
  readonly validationWindowHours?: number;
  /**
   * Days back the plan looks for the latest snapshot (1–365).
   * @default 7
   */
  readonly selectionWindowDays?: number;
}

export { RESTORE_ENDED_IN_FAILURE } from './restore-testing-plan';

/** AWS Backup's range for the start and validation windows of restore testing, in hours. */
const HOURS = { min: 1, max: 168 } as const;

/**
 * The monthly AWS Backup restore test of RDS instances: a restore testing plan (latest snapshot in
 * the primary snapshot vault), one selection per instance restoring into the source's DB subnet group
 * and security groups (explicit overrides: AWS never infers a default VPC), and a validation Lambda in
 * the databases' VPC, triggered by each completed restore job, that compares the temporary instance
 * with the Cofre manifests, records the restore time and reports the result to AWS Backup.
 *
 * AWS Backup restores Aurora clusters without any DB instance, so they are not tested here.
 */
export class SnapshotRestoreTests extends Construct {
  public readonly plan: CfnRestoreTestingPlan;
  /** One selection per database id. */
  public readonly selections: ReadonlyMap<string, CfnRestoreTestingSelection>;
  /** The role AWS Backup restores (and deletes the temporary instances) with. */
  public readonly restoreRole: Role;
  public readonly validationFunction: CofreFunction;
  /** The EventBridge rule of completed RDS restore jobs → the validation Lambda. */
  public readonly rule: Rule;

  constructor(scope: Construct, id: string, props: SnapshotRestoreTestsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const where = `SnapshotRestoreTests ${this.node.path}`;
    if (props.databases.length === 0)
      throw new Error(`${where}: databases must name at least one RDS instance`);
    const schedule = props.schedule ?? 'cron(0 4 ? * SUN#1 *)';
    if (!/^cron\(.+\)$/.test(schedule))
      throw new Error(
        `${where}: schedule must be a cron(...) expression (AWS Backup restore testing), got "${schedule}"`,
      );
    const startWindowHours = props.startWindowHours ?? 8;
    const validationWindowHours = props.validationWindowHours ?? 4;
    const selectionWindowDays = props.selectionWindowDays ?? 7;
    for (const [name, value, max] of [
      ['startWindowHours', startWindowHours, HOURS.max],
      ['validationWindowHours', validationWindowHours, HOURS.max],
      ['selectionWindowDays', selectionWindowDays, 365],
    ] as const)
      requireWholeNumber(where, name, value, 1, max);
    const vpcIds = [...new Set(props.databases.map((db) => db.network.vpcId))];
    if (vpcIds.length > 1)
      throw new Error(
        `${where}: the RDS instances must share one VPC (the validation Lambda runs in it); got ${vpcIds.join(', ')} (databases[].network.vpcId)`,
      );
    const securityGroupIds = [...new Set(props.databases.map((db) => db.network.securityGroupId))];
    if (securityGroupIds.length > 5)
      throw new Error(
        `${where}: the validation Lambda can have at most 5 security groups, the RDS instances have ${securityGroupIds.length} (databases[].network.securityGroupId)`,
      );

    // The restore role: AWS Backup restores the snapshot, and deletes the temporary instance after
    // validation. AWS's managed restore policy, as the names of the temporary instances and of what
    // RDS creates with them are only known at run time (see the nag reason below).
    this.restoreRole = new Role(this, 'RestoreRole', {
      description:
        'AWS Backup: restores the Cofre RDS snapshots for the monthly restore test and deletes the copies',
      assumedBy: new ServicePrincipal('backup.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      managedPolicies: [
        ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSBackupServiceRolePolicyForRestores'),
      ],
    });
    props.snapshotVault.key.grant(this.restoreRole, 'kms:Decrypt', 'kms:DescribeKey', 'kms:CreateGrant');

    this.plan = latestSnapshotTestingPlan(this, {
      schedule,
      timeZone: props.timeZone ?? 'America/Sao_Paulo',
      startWindowHours,
      vaultArn: props.snapshotVault.vault.backupVaultArn,
      selectionWindowDays,
    });
    const selections = new Map<string, CfnRestoreTestingSelection>();
    for (const db of props.databases) {
      const selection = restoreTestingSelection(
        this,
        `Selection${db.id.replace(/[^A-Za-z0-9]/g, '')}`,
        this.plan,
        {
          name: db.id,
          resourceType: 'RDS',
          resourceArn: db.resourceArn,
          roleArn: this.restoreRole.roleArn,
          validationWindowHours,
          // Explicit placement: the source's subnet group and security groups, never a default VPC.
          restoreMetadataOverrides: {
            dbSubnetGroupName: db.dbSubnetGroupName,
            vpcSecurityGroupIds: JSON.stringify(db.vpcSecurityGroupIds),
            publiclyAccessible: 'false',
          },
        },
      );
      selections.set(db.id, selection);
    }
    this.selections = selections;

    const network = props.databases[0]!.network;
    const vpc = Vpc.fromVpcAttributes(this, 'Vpc', {
      vpcId: vpcIds[0]!,
      availabilityZones: network.availabilityZones ? [...network.availabilityZones] : Fn.getAzs(),
    });
    Annotations.of(vpc).acknowledgeWarning(
      '@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones',
      'The imported VPC only carries the id for the restore validation Lambda; its subnets are passed explicitly, so no construct needs the zone list at synth.',
    );
    const subnetIds = [...new Set(props.databases.flatMap((db) => db.network.subnetIds))];
    const fn = new CofreFunction(this, 'Validation', {
      entry: path.join(LAMBDAS, 'restore-validation', 'index.ts'),
      description:
        'Cofre: validates the monthly AWS Backup restore test of each RDS instance against the Cofre manifests',
      encryptionKey: props.alerts.key,
      asyncInvocation: true,
      timeout: Duration.minutes(15),
      memorySize: 512,
      environment: {
        COFRE_HISTORY_TABLE: props.history.table.tableName,
        COFRE_TOPIC_ARN: props.alerts.topic.topicArn,
        COFRE_NOTIFY_ON_SUCCESS: String(props.notifyOnSuccess ?? false),
        COFRE_VAULT_URL: `s3://${props.vault.bucket.bucketName}`,
        COFRE_OBJECT_LOCK_MODE: props.vault.objectLock.mode,
        COFRE_RESTORE_TESTING_PLAN_ARN: this.plan.attrRestoreTestingPlanArn,
        COFRE_RESTORE_TEST_DATABASES: JSON.stringify(
          props.databases.map((db) => ({
            database: db.id,
            engine: db.engine,
            resourceArn: db.resourceArn,
            credentialsSecretArn: db.credentialsSecretArn,
            databases: db.databases,
            excludeDatabases: db.excludeDatabases,
          })),
        ),
      },
      overrides: {
        vpc,
        vpcSubnets: {
          subnets: subnetIds.map((subnetId) => {
            const subnet = Subnet.fromSubnetId(this, `Subnet-${subnetId}`, subnetId);
            Annotations.of(subnet).acknowledgeWarning(
              '@aws-cdk/aws-ec2:noSubnetRouteTableId',
              'Only the subnet id is passed to the Lambda VPC configuration; nothing routes through this imported subnet, so its route table is not needed.',
            );
            return subnet;
          }),
        },
        securityGroups: securityGroupIds.map((sg) =>
          SecurityGroup.fromSecurityGroupId(this, `SecurityGroup-${sg}`, sg, { mutable: false }),
        ),
      },
    });
    this.validationFunction = fn;
    const grantee = fn.function;
    props.history.grantRecord(grantee);
    props.alerts.topic.grantPublish(grantee);
    props.vault.grantRead(
      grantee,
      props.databases.map((db) => `full/${encodeURIComponent(db.id)}/`),
    );
    for (const db of props.databases)
      Secret.fromSecretCompleteArn(this, `Secret-${db.id}`, db.credentialsSecretArn).grantRead(grantee);
    grantSecretKeyDecrypt(
      grantee,
      props.databases.map((db) => db.credentialsSecretArn),
    );
    grantee.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadAndReportRestoreJobs',
        actions: ['backup:DescribeRestoreJob', 'backup:PutRestoreValidationResult'],
        resources: ['*'],
      }),
    );
    const restoredInstances = stack.formatArn({
      service: 'rds',
      resource: 'db',
      resourceName: '*',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    grantee.addToRolePolicy(
      new PolicyStatement({
        sid: 'EndpointOfTheRestoredInstance',
        actions: ['rds:DescribeDBInstances'],
        resources: [restoredInstances],
      }),
    );

    this.rule = endedRestoreJobsRule(this, 'CompletedRestores', {
      description:
        'Cofre: completed AWS Backup restore jobs of RDS instances (the restore test validates them)',
      resourceType: 'RDS',
      validation: fn,
      alerts: props.alerts,
      alarmName: 'RestoreValidation',
    });
    this.acknowledgeNagFindings(props, restoredInstances);
  }

  private acknowledgeNagFindings(props: SnapshotRestoreTestsProps, restoredInstances: string): void {
    const stack = Stack.of(this);
    const logicalId = (c: Construct) =>
      stack.resolve((c.node.defaultChild as CfnElement).logicalId) as string;
    acknowledge(this.restoreRole, {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores]',
      reason:
        'Restore testing creates RDS instances with names AWS Backup chooses at run time and deletes them after validation; the AWS-maintained restore policy tracks what RDS needs for that. Only AWS Backup of this account assumes the role, and the plan restores only from the Cofre snapshot vault.',
    });
    acknowledge(this.restoreRole.node.findChild('DefaultPolicy'), {
      id: 'HIPAA.Security-IAMNoInlinePolicy',
      reason:
        'This policy belongs to the AWS Backup restore role of the Cofre restore tests alone: it lets AWS Backup use the snapshot vault key to restore the encrypted snapshots; a managed policy would only make it attachable elsewhere.',
    });
    const fn = this.validationFunction;
    const role = fn.function.role!;
    acknowledge(
      role,
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason:
          'CDK attaches AWSLambdaBasicExecutionRole so the restore validation Lambda can write its logs: only creating log streams and putting log events, into its explicit KMS-encrypted log group.',
      },
      {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        reason:
          "The restore validation Lambda runs in the databases' VPC to connect to the temporary instance; AWSLambdaVPCAccessExecutionRole only lets Lambda create and delete the network interfaces it needs there.",
      },
    );
    acknowledge(
      role.node.findChild('DefaultPolicy'),
      {
        id: 'HIPAA.Security-IAMNoInlinePolicy',
        reason:
          'This policy belongs to the restore validation Lambda role alone and names the history table, the alerts topic, the vault prefixes and the database secrets; a managed policy would only make it attachable elsewhere.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'backup:DescribeRestoreJob and backup:PutRestoreValidationResult have no resource-level permissions (restore jobs are not IAM resources), and the X-Ray actions take none; the Lambda acts only on jobs of the Cofre restore testing plan.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::${stack.resolve(restoredInstances) as string}]`,
        reason:
          'AWS Backup names the temporary instance at run time; rds:DescribeDBInstances (read-only, for its endpoint) on db:* is the narrowest ARN that covers it.',
      },
      {
        id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
        reason:
          'Publishing to the KMS-encrypted alerts topic needs GenerateDataKey* on the alerts key only (the restore validation Lambda); the key policy allows it only through SNS, Lambda and SQS.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${logicalId(props.history.table)}.Arn>/index/*]`,
        reason:
          'Recording the restore test uses the history grant, which includes the indexes of the one history table (index/*), never another table.',
      },
      ...props.databases.map((db) => ({
        id: `AwsSolutions-IAM5[Resource::<${logicalId(props.vault.bucket)}.Arn>/full/${encodeURIComponent(db.id)}/*]`,
        reason: `The restore validation Lambda reads the manifests of ${db.id}'s full backups (full/${db.id}/) to compare row counts; it may not write, tag or delete.`,
      })),
    );
    acknowledge(fn.deadLetterQueue!, {
      id: 'Serverless-SQSRedrivePolicy',
      reason:
        'This queue is itself the dead-letter queue of the restore validation Lambda (kept 14 days, alarmed on depth); a queue behind it would only move the events again.',
    });
  }
}

/** The RDS instances of a configuration with their restore test placement (`databases[].snapshotRestoreTest`). */
export function restoreTestedInstancesOf(
  config: CofreConfig,
  resourceArns: ReadonlyMap<string, string>,
): RestoreTestedInstance[] {
  return config.databases.flatMap((db) => {
    const arn = resourceArns.get(db.id);
    if (db.rdsInstanceId === undefined || !db.snapshotRestoreTest || arn === undefined) return [];
    return [
      {
        id: db.id,
        engine: db.engine,
        resourceArn: arn,
        credentialsSecretArn: db.credentialsSecretArn,
        databases: db.databases,
        excludeDatabases: db.excludeDatabases,
        dbSubnetGroupName: db.snapshotRestoreTest.dbSubnetGroupName,
        vpcSecurityGroupIds: db.snapshotRestoreTest.vpcSecurityGroupIds,
        network: db.network,
      },
    ];
  });
}
