import { Match, Template } from 'aws-cdk-lib/assertions';
import { Role } from 'aws-cdk-lib/aws-iam';
import { beforeAll, describe, expect, it } from 'vitest';
import { RESTORE_FAILED_STATES } from '../../core/aws/restore-jobs';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import { RESTORE_TEST_BUCKET_PREFIX } from '../../lib/constructs/bucket-restore-tests';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp, exampleConfig } from '../helpers/cdk';
import {
  actionsOf,
  arnOf,
  logicalIdOf,
  resourceOf,
  statementsOf,
  statementWithSid,
} from '../helpers/template';

/**
 * Two AWS S3 buckets, no S3-compatible source, the weekly files restore test on Wednesdays 06:30 in
 * Manaus, successes e-mailed.
 */
function nonDefault(c: CofreConfigInput): CofreConfigInput {
  return {
    ...c,
    timeZone: 'America/Manaus',
    buckets: [
      { bucketName: 'app-prod-documents', dataClass: 'accounting' },
      { bucketName: 'clinic-prod-attachments', dataClass: 'health' },
    ],
    schedules: { filesRestoreTest: 'cron(30 6 ? * WED *)' },
    alerts: { ...c.alerts, notifyOnSuccess: true },
  };
}

function problemsOf(change: (c: CofreConfigInput) => CofreConfigInput): string[] {
  try {
    parseConfig(exampleConfig(change));
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected the configuration to be rejected');
}

const BUCKETS = {
  'app-prod-documents': 'arn:aws:s3:::app-prod-documents',
  'clinic-prod-attachments': 'arn:aws:s3:::clinic-prod-attachments',
};
const RESTORED = `arn:aws:s3:::${RESTORE_TEST_BUCKET_PREFIX}*`;

describe('weekly AWS Backup restore test of the AWS S3 buckets', () => {
  let primary: CofrePrimaryStack;
  let template: Template;
  beforeAll(() => {
    ({ primary } = buildTestApp(nonDefault));
    template = Template.fromStack(primary);
  }, 120_000);

  const tests = () => primary.bucketRestoreTests!;

  it('has a restore testing plan on schedules.filesRestoreTest in the time zone: the latest periodic recovery point of the primary snapshot vault', () => {
    const plan = resourceOf(template, tests().plan).Properties;
    expect(plan).toMatchObject({
      RestoreTestingPlanName: expect.stringMatching(/^[A-Za-z0-9_]{1,50}$/) as unknown,
      ScheduleExpression: 'cron(30 6 ? * WED *)',
      ScheduleExpressionTimezone: 'America/Manaus',
      StartWindowHours: 8,
      RecoveryPointSelection: {
        Algorithm: 'LATEST_WITHIN_WINDOW',
        IncludeVaults: [arnOfVault()],
        RecoveryPointTypes: ['SNAPSHOT'],
        SelectionWindowDays: 7,
      },
    });
    template.resourceCountIs('AWS::Backup::RestoreTestingPlan', 2); // this one and the RDS one
  });

  const arnOfVault = () => ({
    'Fn::GetAtt': [logicalIdOf(primary.snapshots!.vault.vault), 'BackupVaultArn'],
  });

  it('selects each bucket by ARN (type S3) with the bucket backup role, the restored copy under the snapshot vault key', () => {
    expect([...tests().selections.keys()]).toEqual(Object.keys(BUCKETS));
    const planName = resourceOf(template, tests().plan).Properties.RestoreTestingPlanName;
    for (const [bucket, selection] of tests().selections)
      expect(resourceOf(template, selection).Properties).toEqual({
        RestoreTestingPlanName: planName,
        RestoreTestingSelectionName: bucket.replace(/-/g, '_'),
        ProtectedResourceType: 'S3',
        ProtectedResourceArns: [BUCKETS[bucket as keyof typeof BUCKETS]],
        IamRoleArn: arnOf(primary.bucketBackups!.role),
        ValidationWindowHours: 8,
        RestoreMetadataOverrides: {
          EncryptionType: 'SSE_KMS',
          KMSKey: arnOf(primary.snapshots!.vault.key),
        },
      });
  });

  it('extends the bucket backup role (no second role) to the restore-test buckets only: create, write, expire, delete', () => {
    // The only role of the construct is the validation Lambda's: AWS Backup restores with the bucket role.
    expect(
      tests()
        .node.findAll()
        .filter((c) => c instanceof Role),
    ).toEqual([tests().validationFunction.function.role]);
    const policy = resourceOf(template, primary.bucketBackups!.role.node.findChild('DefaultPolicy'))
      .Properties.PolicyDocument;
    const bucketLevel = statementWithSid(policy, 'RestoreTestingCreatesExpiresAndDeletesItsBucket');
    expect(bucketLevel.Resource).toBe(RESTORED);
    expect(actionsOf(bucketLevel)).toEqual(
      expect.arrayContaining(['s3:CreateBucket', 's3:DeleteBucket', 's3:PutLifecycleConfiguration']),
    );
    const objects = statementWithSid(policy, 'RestoreTestingWritesAndRemovesTheRestoredObjects');
    expect(objects.Resource).toBe(`${RESTORED}/*`);
    // Nothing in it reaches an application bucket.
    expect(JSON.stringify(statementsOf(policy))).not.toMatch(/app-prod-documents|clinic-prod-attachments/);
  });

  it('runs a small validation Lambda (no VPC) with the plan, the buckets and the sample in its environment', () => {
    const fn = resourceOf(template, tests().validationFunction.function).Properties;
    expect(fn.VpcConfig).toBeUndefined();
    expect(fn.Timeout).toBe(900);
    const env = (fn.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env).toMatchObject({
      COFRE_RESTORE_TESTING_PLAN_ARN: { 'Fn::GetAtt': [logicalIdOf(tests().plan), 'RestoreTestingPlanArn'] },
      COFRE_TOPIC_ARN: { Ref: logicalIdOf(primary.alerts.topic) },
      COFRE_HISTORY_TABLE: { Ref: logicalIdOf(primary.history.table) },
      COFRE_NOTIFY_ON_SUCCESS: 'true',
      COFRE_RESTORE_TEST_SAMPLE: '20',
    });
    expect(JSON.parse(env.COFRE_RESTORE_TEST_BUCKETS as string)).toEqual(
      Object.entries(BUCKETS).map(([bucketName, resourceArn]) => ({ bucketName, resourceArn })),
    );
  });

  it('gives the validation Lambda least privilege: read exactly the configured buckets and the restore-test buckets, decrypt only through S3, describe and report restore jobs, nothing that writes or deletes objects', () => {
    const policy = resourceOf(
      template,
      tests().validationFunction.function.role!.node.findChild('DefaultPolicy'),
    ).Properties.PolicyDocument;
    const statements = statementsOf(policy);
    const actions = statements.flatMap(actionsOf);
    for (const forbidden of [/^s3:Put/, /^s3:Delete/, /^s3:Create/, /^backup:Start/])
      expect(actions.filter((a) => forbidden.test(a))).toEqual([]);
    expect(statementWithSid(policy, 'ListTheSourceVersions')).toMatchObject({
      Action: ['s3:ListBucket', 's3:ListBucketVersions'],
      Resource: Object.values(BUCKETS),
    });
    expect(statementWithSid(policy, 'ReadTheSourceVersions')).toMatchObject({
      Action: ['s3:GetObject', 's3:GetObjectVersion'],
      Resource: Object.values(BUCKETS).map((a) => `${a}/*`),
    });
    expect(statementWithSid(policy, 'ListTheRestoredBuckets')).toMatchObject({
      Action: 's3:ListBucket',
      Resource: RESTORED,
    });
    expect(statementWithSid(policy, 'ReadTheRestoredObjects')).toMatchObject({
      Action: 's3:GetObject',
      Resource: `${RESTORED}/*`,
    });
    expect(statementWithSid(policy, 'DecryptObjectsOnlyThroughS3')).toMatchObject({
      Action: 'kms:Decrypt',
      Condition: { StringEquals: { 'kms:ViaService': 's3.sa-east-1.amazonaws.com' } },
    });
    expect(actionsOf(statementWithSid(policy, 'ReadAndReportRestoreJobs')).sort()).toEqual([
      'backup:DescribeRestoreJob',
      'backup:PutRestoreValidationResult',
    ]);
  });

  it('triggers the validation on ended S3 restore jobs (completed, failed, aborted), with a dead-letter queue and critical alarms', () => {
    const rule = resourceOf(template, tests().rule).Properties;
    expect(rule.EventPattern).toEqual({
      source: ['aws.backup'],
      'detail-type': ['Restore Job State Change'],
      detail: { resourceType: ['S3'], status: ['COMPLETED', ...RESTORE_FAILED_STATES] },
    });
    const targets = rule.Targets as { Arn: unknown; DeadLetterConfig: unknown }[];
    expect(targets[0]!.Arn).toEqual(arnOf(tests().validationFunction.function));
    expect(targets[0]!.DeadLetterConfig).toEqual({ Arn: arnOf(tests().validationFunction.deadLetterQueue!) });
    for (const id of ['FilesRestoreValidationErrors', 'FilesRestoreValidationDeadLettersDepth']) {
      const alarm = resourceOf(template, primary.alerts.alarms.get(id)!).Properties;
      expect(alarm.AlarmDescription).toMatch(/^\[critical\]/);
    }
  });

  it('alarms on each AWS bucket whose last good weekly restore test is older than 8 days (DaysSinceLastGoodFilesRestoreTest)', () => {
    for (const bucket of Object.keys(BUCKETS))
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmDescription: Match.stringLikeRegexp(
          `^\\[critical\\] ${bucket}: no good weekly AWS Backup restore test of the bucket`,
        ),
        MetricName: 'DaysSinceLastGoodFilesRestoreTest',
        Namespace: 'Cofre',
        Dimensions: [{ Name: 'Bucket', Value: bucket }],
        Threshold: 8,
        TreatMissingData: 'breaching',
      });
  });
});

describe('files restore test configuration, checked at synth', () => {
  it('rejects a files restore test schedule AWS Backup restore testing cannot take (rate/at) when there is an AWS S3 bucket', () => {
    expect(problemsOf((c) => ({ ...c, schedules: { filesRestoreTest: 'rate(7 days)' } }))).toEqual([
      expect.stringMatching(
        /^schedules\.filesRestoreTest: expected a cron expression .*AWS Backup restore testing plan of the AWS S3 buckets/,
      ),
    ]);
  });

  it('accepts a rate for the files restore test when every bucket is S3-compatible (the files task schedule takes it)', () => {
    expect(() =>
      parseConfig(
        exampleConfig((c) => ({
          ...c,
          buckets: c.buckets!.filter((b) => b.source !== undefined),
          schedules: { filesRestoreTest: 'rate(7 days)' },
        })),
      ),
    ).not.toThrow();
  });

  it('builds no S3 restore test without AWS S3 buckets', () => {
    const { primary } = buildTestApp((c) => ({
      ...c,
      buckets: c.buckets!.filter((b) => b.source !== undefined),
    }));
    expect(primary.bucketRestoreTests).toBeUndefined();
  }, 60_000);
});
