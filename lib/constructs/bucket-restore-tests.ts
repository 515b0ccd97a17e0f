import path from 'node:path';
import { CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { CfnRestoreTestingPlan, CfnRestoreTestingSelection } from 'aws-cdk-lib/aws-backup';
import { Rule } from 'aws-cdk-lib/aws-events';
import { PolicyStatement, type Role } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';
import type { CofreAlerts } from './alerts';
import { pascal } from './alerts';
import type { BackupHistory } from './backup-history';
import { CofreFunction } from './cofre-function';
import type { SnapshotVault } from './database-snapshots';
import {
  endedRestoreJobsRule,
  latestSnapshotTestingPlan,
  restoreTestingSelection,
} from './restore-testing-plan';
import { requireWholeNumber } from './prop-checks';

const LAMBDAS = path.join(__dirname, '..', '..', 'lambdas');

/**
 * Prefix of the buckets AWS Backup restore testing creates (and deletes by name after the validation
 * window: S3 restores carry no `awsbackup-restore-test` tag). AWS Backup documents that backup plans
 * ignore resources "with a name starting with awsbackup-restore-test"; the restore role and the
 * validation Lambda are scoped to it. Should AWS name them otherwise, the restore or the listing is
 * denied and the test fails loudly (alerted), it never passes unchecked.
 */
export const RESTORE_TEST_BUCKET_PREFIX = 'awsbackup-restore-test-';

/** An AWS S3 bucket whose recovery points the weekly restore test restores and validates. */
export interface RestoreTestedBucket {
  /** `buckets[].bucketName`. */
  readonly bucketName: string;
  /** Its ARN (as the bucket plan selects it). */
  readonly resourceArn: string;
}

/** Properties of {@link BucketRestoreTests}. */
export interface BucketRestoreTestsProps {
  /** The buckets to test (at least one; AWS Backup takes at most 30 ARNs per selection: one selection each). */
  readonly buckets: readonly RestoreTestedBucket[];
  /** The AWS Backup vault (primary region) whose latest recovery points are restored. */
  readonly snapshotVault: SnapshotVault;
  /**
   * The role AWS Backup backs up and restores the buckets with (BucketBackups): restore testing uses
   * it too, extended here to the restore-test buckets only.
   */
  readonly restoreRole: Role;
  readonly history: BackupHistory;
  /** Alerts: topic, key (Lambda encryption), alarms. */
  readonly alerts: CofreAlerts;
  /**
   * When the restore testing plan starts: a `cron(...)` expression in `timeZone`.
   * @default 'cron(0 5 ? * SAT *)'
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
   * Objects of the restored bucket compared with the source each time (1–1000).
   * @default 20
   */
  readonly sample?: number;
  /**
   * Hours after the scheduled time within which AWS Backup must start the restore (1–168).
   * @default 8
   */
  readonly startWindowHours?: number;
  /**
   * Hours the restored bucket is kept for validation before AWS Backup deletes it (1–168); it is
   * deleted as soon as the validation result is reported.
   * @default 8
   */
  readonly validationWindowHours?: number;
  /**
   * Days back the plan looks for the latest periodic recovery point (1–365).
   * @default 7
   */
  readonly selectionWindowDays?: number;
}

/**
 * The weekly AWS Backup restore test of the application S3 buckets: a restore testing plan (latest
 * periodic recovery point in the primary snapshot vault; continuous ones are left out, their creation
 * date is not the time they restore to), one selection per bucket restoring into a new
 * `awsbackup-restore-test-…` bucket encrypted with the snapshot vault's key, and a small validation
 * Lambda, triggered by each ended restore job, that compares a random sample of the restored bucket
 * with the source's versions current at the recovery point (SHA-256), records the result (history kind
 * `files-restore-test`, the `DaysSinceLastGoodFilesRestoreTest` alarm) and reports it to AWS Backup.
 */
export class BucketRestoreTests extends Construct {
  public readonly plan: CfnRestoreTestingPlan;
  /** One selection per bucket name. */
  public readonly selections: ReadonlyMap<string, CfnRestoreTestingSelection>;
  public readonly validationFunction: CofreFunction;
  /** The EventBridge rule of ended S3 restore jobs → the validation Lambda. */
  public readonly rule: Rule;

  constructor(scope: Construct, id: string, props: BucketRestoreTestsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const where = `BucketRestoreTests ${this.node.path}`;
    if (props.buckets.length === 0) throw new Error(`${where}: buckets must name at least one bucket`);
    const schedule = props.schedule ?? 'cron(0 5 ? * SAT *)';
    if (!/^cron\(.+\)$/.test(schedule))
      throw new Error(
        `${where}: schedule must be a cron(...) expression (AWS Backup restore testing takes cron only), got "${schedule}"`,
      );
    const startWindowHours = props.startWindowHours ?? 8;
    const validationWindowHours = props.validationWindowHours ?? 8;
    const selectionWindowDays = props.selectionWindowDays ?? 7;
    const sample = props.sample ?? 20;
    for (const [name, value, max] of [
      ['startWindowHours', startWindowHours, 168],
      ['validationWindowHours', validationWindowHours, 168],
      ['selectionWindowDays', selectionWindowDays, 365],
      ['sample', sample, 1000],
    ] as const)
      requireWholeNumber(where, name, value, 1, max);

    const restoreBuckets = `arn:${stack.partition}:s3:::${RESTORE_TEST_BUCKET_PREFIX}*`;
    this.extendRestoreRole(props.restoreRole, restoreBuckets);

    this.plan = latestSnapshotTestingPlan(this, {
      schedule,
      timeZone: props.timeZone ?? 'America/Sao_Paulo',
      startWindowHours,
      vaultArn: props.snapshotVault.vault.backupVaultArn,
      selectionWindowDays,
    });
    const selections = new Map<string, CfnRestoreTestingSelection>();
    for (const bucket of props.buckets) {
      const selection = restoreTestingSelection(this, `${pascal(bucket.bucketName)}Selection`, this.plan, {
        name: bucket.bucketName,
        resourceType: 'S3',
        resourceArn: bucket.resourceArn,
        roleArn: props.restoreRole.roleArn,
        validationWindowHours,
        // Restore testing always restores S3 into a new bucket it names (the destination bucket and
        // NewBucket are not overridable); what may be overridden is the encryption: the restored copy of
        // the legally protected objects is kept under the Cofre snapshot vault key, not SSE-S3.
        restoreMetadataOverrides: {
          EncryptionType: 'SSE_KMS',
          KMSKey: props.snapshotVault.key.keyArn,
        },
      });
      selections.set(bucket.bucketName, selection);
    }
    this.selections = selections;

    const fn = new CofreFunction(this, 'Validation', {
      entry: path.join(LAMBDAS, 'files-restore-validation', 'index.ts'),
      description:
        'Cofre: validates the weekly AWS Backup restore test of each application S3 bucket against the source versions',
      encryptionKey: props.alerts.key,
      asyncInvocation: true,
      timeout: Duration.minutes(15),
      memorySize: 512,
      environment: {
        COFRE_HISTORY_TABLE: props.history.table.tableName,
        COFRE_TOPIC_ARN: props.alerts.topic.topicArn,
        COFRE_NOTIFY_ON_SUCCESS: String(props.notifyOnSuccess ?? false),
        COFRE_RESTORE_TESTING_PLAN_ARN: this.plan.attrRestoreTestingPlanArn,
        COFRE_RESTORE_TEST_BUCKETS: JSON.stringify(
          props.buckets.map((b) => ({ bucketName: b.bucketName, resourceArn: b.resourceArn })),
        ),
        COFRE_RESTORE_TEST_SAMPLE: String(sample),
      },
    });
    this.validationFunction = fn;
    const grantee = fn.function;
    props.history.grantRecord(grantee);
    props.alerts.topic.grantPublish(grantee);
    const sources = props.buckets.map((b) => b.resourceArn);
    grantee.addToRolePolicy(
      new PolicyStatement({
        sid: 'ListTheSourceVersions',
        actions: ['s3:ListBucket', 's3:ListBucketVersions'],
        resources: sources,
      }),
    );
    grantee.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadTheSourceVersions',
        actions: ['s3:GetObject', 's3:GetObjectVersion'],
        resources: sources.map((a) => `${a}/*`),
      }),
    );
    grantee.addToRolePolicy(
      new PolicyStatement({
        sid: 'ListTheRestoredBuckets',
        actions: ['s3:ListBucket'],
        resources: [restoreBuckets],
      }),
    );
    grantee.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadTheRestoredObjects',
        actions: ['s3:GetObject'],
        resources: [`${restoreBuckets}/*`],
      }),
    );
    const anyKey = stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
    grantee.addToRolePolicy(
      new PolicyStatement({
        // The restored copies are under the snapshot vault key; the application buckets may use their
        // own keys, which the configuration does not name: decrypt only through S3.
        sid: 'DecryptObjectsOnlyThroughS3',
        actions: ['kms:Decrypt'],
        resources: [anyKey],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
      }),
    );
    grantee.addToRolePolicy(
      new PolicyStatement({
        sid: 'ReadAndReportRestoreJobs',
        actions: ['backup:DescribeRestoreJob', 'backup:PutRestoreValidationResult'],
        resources: ['*'],
      }),
    );

    this.rule = endedRestoreJobsRule(this, 'EndedRestores', {
      description:
        'Cofre: ended AWS Backup restore jobs of S3 buckets (the weekly files restore test validates them)',
      resourceType: 'S3',
      validation: fn,
      alerts: props.alerts,
      alarmName: 'FilesRestoreValidation',
    });
    this.acknowledgeNagFindings(props, restoreBuckets, anyKey);
  }

  /**
   * What restore testing needs beyond the restores BucketBackups' role already makes (into
   * `cofre-restore-*` buckets): create the `awsbackup-restore-test-…` bucket, write the restored
   * objects, and, after validation, expire and delete it (AWS Backup adds a lifecycle rule and deletes
   * the bucket by name). Only buckets with that prefix.
   */
  private extendRestoreRole(role: Role, restoreBuckets: string): void {
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'RestoreTestingCreatesExpiresAndDeletesItsBucket',
        actions: [
          's3:CreateBucket',
          's3:DeleteBucket',
          's3:ListBucket',
          's3:ListBucketVersions',
          's3:GetBucketVersioning',
          's3:PutBucketVersioning',
          's3:GetBucketLocation',
          's3:GetBucketOwnershipControls',
          's3:PutBucketOwnershipControls',
          's3:GetLifecycleConfiguration',
          's3:PutLifecycleConfiguration',
          's3:GetEncryptionConfiguration',
          's3:PutEncryptionConfiguration',
        ],
        resources: [restoreBuckets],
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'RestoreTestingWritesAndRemovesTheRestoredObjects',
        actions: [
          's3:PutObject',
          's3:PutObjectAcl',
          's3:PutObjectVersionAcl',
          's3:PutObjectTagging',
          's3:GetObject',
          's3:GetObjectVersion',
          's3:DeleteObject',
          's3:DeleteObjectVersion',
          's3:ListMultipartUploadParts',
          's3:AbortMultipartUpload',
        ],
        resources: [`${restoreBuckets}/*`],
      }),
    );
  }

  private acknowledgeNagFindings(
    props: BucketRestoreTestsProps,
    restoreBuckets: string,
    anyKey: string,
  ): void {
    const stack = Stack.of(this);
    const logicalId = (c: Construct) =>
      stack.resolve((c.node.defaultChild as CfnElement).logicalId) as string;
    const resolve = (arn: string) => stack.resolve(arn) as string;
    acknowledge(
      props.restoreRole.node.findChild('DefaultPolicy'),
      {
        id: 'HIPAA.Security-IAMNoInlinePolicy',
        reason:
          'This policy belongs to the AWS Backup role of the Cofre bucket plans alone and adds the restore-test buckets (awsbackup-restore-test-*) to the restores it already makes; a managed policy would only make it attachable elsewhere.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::${restoreBuckets}]`,
        reason:
          'AWS Backup restore testing names the bucket it restores into at run time (awsbackup-restore-test-<random>) and deletes it by name after validation; the prefix is the narrowest ARN that covers it.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::${restoreBuckets}/*]`,
        reason:
          'The objects restore testing writes into, and expires from, its own awsbackup-restore-test-* bucket; the application buckets are not covered by this statement.',
      },
    );
    const fn = this.validationFunction;
    const role = fn.function.role!;
    acknowledge(role, {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason:
        'CDK attaches AWSLambdaBasicExecutionRole so the files restore validation Lambda can write its logs: only creating log streams and putting log events, into its explicit KMS-encrypted log group.',
    });
    acknowledge(
      role.node.findChild('DefaultPolicy'),
      {
        id: 'HIPAA.Security-IAMNoInlinePolicy',
        reason:
          'This policy belongs to the files restore validation Lambda role alone and names the history table, the alerts topic and the configured buckets; a managed policy would only make it attachable elsewhere.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'backup:DescribeRestoreJob and backup:PutRestoreValidationResult have no resource-level permissions (restore jobs are not IAM resources), and the X-Ray actions take none; the Lambda acts only on jobs of the Cofre S3 restore testing plan.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::${restoreBuckets}]`,
        reason:
          'AWS Backup restore testing names the restored bucket at run time (awsbackup-restore-test-<random>); listing it (read-only) needs the prefix, the narrowest ARN that covers it.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::${restoreBuckets}/*]`,
        reason:
          'The validation reads the sampled objects of the restored awsbackup-restore-test-* bucket (s3:GetObject only); it may not write, tag or delete.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::${resolve(anyKey)}]`,
        reason:
          'The restored copy is under the snapshot vault key and the application buckets may use their own KMS keys, which the configuration does not name; kms:Decrypt is allowed only for requests S3 makes (kms:ViaService).',
      },
      {
        id: 'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]',
        reason:
          'Publishing to the KMS-encrypted alerts topic needs GenerateDataKey* on the alerts key only (the files restore validation Lambda); the key policy allows it only through SNS, Lambda and SQS.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${logicalId(props.history.table)}.Arn>/index/*]`,
        reason:
          'Recording the restore test uses the history grant, which includes the indexes of the one history table (index/*), never another table.',
      },
      ...props.buckets.map((b) => ({
        id: `AwsSolutions-IAM5[Resource::${resolve(b.resourceArn)}/*]`,
        reason: `The validation reads the versions of the sampled objects of ${b.bucketName} that were current at the recovery point (GetObject, GetObjectVersion); it may not write, tag or delete.`,
      })),
    );
    acknowledge(fn, {
      id: 'HIPAA.Security-LambdaInsideVPC',
      reason:
        'The files restore validation Lambda calls only AWS APIs (S3, AWS Backup, DynamoDB, SNS) over TLS with IAM authorization and never a database; a VPC would need NAT or endpoints without narrowing what it can reach.',
    });
    acknowledge(fn.deadLetterQueue!, {
      id: 'Serverless-SQSRedrivePolicy',
      reason:
        'This queue is itself the dead-letter queue of the files restore validation Lambda (kept 14 days, alarmed on depth); a queue behind it would only move the events again.',
    });
  }
}
