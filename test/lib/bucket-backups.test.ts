import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { daysCoveringYears } from '../../core/policy/retention';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import { BucketBackups, type BucketBackupsProps } from '../../lib/constructs/bucket-backups';
import { SnapshotVault } from '../../lib/constructs/database-snapshots';
import type { CofreDrStack } from '../../lib/stacks/dr-stack';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp, exampleConfig } from '../helpers/cdk';
import { actionsOf, arnOf, resourceOf, statementsOf, statementWithSid } from '../helpers/template';

/** Two buckets of different data classes, non-default schedules and retention, in Manaus time. */
function nonDefault(c: CofreConfigInput): CofreConfigInput {
  return {
    ...c,
    timeZone: 'America/Manaus',
    buckets: [
      { bucketName: 'app-prod-documents', dataClass: 'accounting' },
      { bucketName: 'clinic-prod-attachments', dataClass: 'health' },
    ],
    schedules: { filesDifferential: 'cron(15 2 ? * MON-SAT *)', filesFull: 'cron(45 1 ? * SUN *)' },
    retention: {
      filesDifferentialDays: 21,
      filesFullWeeks: 8,
      classes: { accounting: { years: 5 }, health: { years: 9 } },
    },
    snapshots: { continuousDays: 14 },
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

describe('AWS Backup of the application buckets', () => {
  let primary: CofrePrimaryStack;
  let dr: CofreDrStack;
  let template: Template;
  beforeAll(() => {
    ({ primary, dr } = buildTestApp(nonDefault));
    template = Template.fromStack(primary);
  }, 120_000);

  it('gives each bucket a plan: continuous, differential, full and yearly rules in the time zone, each copied to the DR vault with its retention', () => {
    const backups = primary.bucketBackups!;
    const expected = {
      'app-prod-documents': daysCoveringYears(5),
      'clinic-prod-attachments': daysCoveringYears(9),
    };
    for (const [bucket, yearlyDays] of Object.entries(expected)) {
      const plan = resourceOf(template, backups.plans.get(bucket)!);
      const rules = (plan.Properties.BackupPlan as { BackupPlanRule: Record<string, unknown>[] })
        .BackupPlanRule;
      const byName = Object.fromEntries(rules.map((r) => [String(r.RuleName), r]));
      const drVaultArn: unknown = expect.anything();
      expect(byName.Continuous).toMatchObject({
        EnableContinuousBackup: true,
        Lifecycle: { DeleteAfterDays: 14 },
        ScheduleExpression: 'cron(15 2 ? * MON-SAT *)',
        ScheduleExpressionTimezone: 'America/Manaus',
        CopyActions: [{ DestinationBackupVaultArn: drVaultArn, Lifecycle: { DeleteAfterDays: 14 } }],
      });
      expect(byName.Differential).toMatchObject({
        Lifecycle: { DeleteAfterDays: 21 },
        ScheduleExpression: 'cron(15 2 ? * MON-SAT *)',
        CopyActions: [{ Lifecycle: { DeleteAfterDays: 21 } }],
      });
      expect(byName.Full).toMatchObject({
        Lifecycle: { DeleteAfterDays: 56 },
        ScheduleExpression: 'cron(45 1 ? * SUN *)',
        CopyActions: [{ Lifecycle: { DeleteAfterDays: 56 } }],
      });
      expect(byName.Yearly).toMatchObject({
        Lifecycle: { DeleteAfterDays: yearlyDays },
        ScheduleExpression: 'cron(45 1 1 1 ? *)',
        CopyActions: [{ Lifecycle: { DeleteAfterDays: yearlyDays } }],
      });
      expect(byName.Continuous).toMatchObject({
        RecoveryPointTags: { 'cofre:bucket': bucket, 'cofre:tier': 'continuous' },
      });
    }
  });

  it('the copies go to the DR-region vault, and the Vault Lock of both vaults admits every rule', () => {
    const plan = resourceOf(template, primary.bucketBackups!.plans.get('app-prod-documents')!);
    const rules = (
      plan.Properties.BackupPlan as {
        BackupPlanRule: { CopyActions: { DestinationBackupVaultArn: unknown }[] }[];
      }
    ).BackupPlanRule;
    // The DR vault lives in the DR stack (us-east-1): its ARN crosses regions as that stack's output.
    for (const r of rules)
      expect(JSON.stringify(r.CopyActions[0]!.DestinationBackupVaultArn)).toMatch(
        /"StackName":"CofreDr","Region":"us-east-1"/,
      );
    for (const vault of [primary.snapshots!.vault, dr.snapshotVault!]) {
      expect(vault.lock.minRetentionDays).toBeLessThanOrEqual(14);
      expect(vault.lock.maxRetentionDays).toBeGreaterThanOrEqual(daysCoveringYears(9));
    }
  });

  it('selects each bucket by its ARN with the bucket backup role, without the default backup policy', () => {
    const backups = primary.bucketBackups!;
    for (const bucket of ['app-prod-documents', 'clinic-prod-attachments']) {
      const selection = resourceOf(template, backups.selections.get(bucket)!);
      expect(selection.Properties.BackupSelection).toMatchObject({
        Resources: [`arn:aws:s3:::${bucket}`],
        IamRoleArn: arnOf(backups.role),
      });
    }
  });

  it('gives the role S3 backup and restore on the configured buckets (and new cofre-restore-* buckets) only, and trusts only AWS Backup of this account', () => {
    const role = resourceOf(template, primary.bucketBackups!.role);
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.AssumeRolePolicyDocument).toMatchObject({
      Statement: [
        {
          Principal: { Service: 'backup.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': '111111111111' } },
        },
      ],
    });
    const policy = (role.Properties.Policies as { PolicyDocument: unknown }[])[0]!.PolicyDocument;
    const rendered = JSON.stringify(policy);
    expect(rendered).not.toMatch(/s3:::\*/);
    const objects = statementWithSid(policy, 'ReadTheObjects');
    expect(JSON.stringify(objects.Resource)).toContain(':s3:::app-prod-documents/*');
    expect(JSON.stringify(objects.Resource)).toContain(':s3:::clinic-prod-attachments/*');
    const create = statementWithSid(policy, 'RestoreIntoTheBucketsOrANewCofreRestoreBucket');
    expect(actionsOf(create)).toContain('s3:CreateBucket');
    expect(JSON.stringify(create.Resource)).toContain(':s3:::cofre-restore-*');
    expect(actionsOf(statementWithSid(policy, 'WriteRestoredObjects'))).not.toContain('s3:DeleteObject');
    expect(statementWithSid(policy, 'BucketKeysOnlyThroughS3').Condition).toEqual({
      StringLike: { 'kms:ViaService': 's3.sa-east-1.amazonaws.com' },
    });
    for (const s of statementsOf(policy).filter((st) => st.Resource === '*'))
      expect(actionsOf(s).sort()).toEqual([
        'cloudwatch:GetMetricData',
        'events:ListRules',
        's3:ListAllMyBuckets',
      ]);
  });
});

describe('job events of the buckets go to history and alerts', () => {
  it('the backup-events rule matches S3 jobs and the Lambda knows each bucket by ARN', () => {
    const { primary } = buildTestApp();
    const template = Template.fromStack(primary);
    const rule = resourceOf(template, primary.alerts.backupEventsRule!);
    expect(rule.Properties.EventPattern).toMatchObject({
      source: ['aws.backup'],
      detail: { resourceType: ['RDS', 'Aurora', 'S3'] },
    });
    const fn = resourceOf(template, primary.alerts.backupEventsFunction!.function);
    const env = (fn.Properties.Environment as { Variables: Record<string, string> }).Variables;
    expect(JSON.parse(env.COFRE_SNAPSHOT_DATABASES!)).toContainEqual({
      database: 's3:app-prod-documents',
      resourceArn: 'arn:aws:s3:::app-prod-documents',
    });
    // freshness: the age of the last good recovery point, alarmed (missing data breaching)
    const freshness = resourceOf(template, primary.alerts.freshnessFunction.function);
    const fenv = (freshness.Properties.Environment as { Variables: Record<string, string> }).Variables;
    expect(JSON.parse(fenv.COFRE_FILES_BUCKETS!)).toEqual(['app-prod-documents']);
    expect(fenv.COFRE_FILES_MAX_AGE_HOURS).toBe('26');
    const alarm = resourceOf(template, primary.alerts.alarms.get('AppProdDocumentsFilesBackupStale')!);
    expect(alarm.Properties).toMatchObject({
      MetricName: 'HoursSinceLastGoodFilesBackup',
      Namespace: 'Cofre',
      Dimensions: [{ Name: 'Bucket', Value: 'app-prod-documents' }],
      Threshold: 26,
      TreatMissingData: 'breaching',
    });
  }, 120_000);
});

describe('the example configuration protects its documents bucket', () => {
  it('with AWS Backup, in the snapshot vault shared with the RDS plans', () => {
    const { primary } = buildTestApp();
    expect([...primary.bucketBackups!.bucketArns.keys()]).toEqual(['app-prod-documents']);
    const template = Template.fromStack(primary);
    template.resourceCountIs('AWS::Backup::BackupVault', 1);
  }, 120_000);

  it('and without databases on RDS, the buckets alone still get both vaults', () => {
    const { primary, dr } = buildTestApp((c) => ({
      ...c,
      databases: c.databases!.filter((d) => d.host !== undefined),
    }));
    expect(primary.snapshots).toBeUndefined();
    expect(primary.bucketBackups).toBeDefined();
    expect(dr.snapshotVault).toBeDefined();
  }, 120_000);
});

describe('configuration checks', () => {
  it('refuses prefixes on an AWS S3 bucket (AWS Backup protects whole buckets; prefixes are for S3-compatible sources), naming the field', () => {
    expect(
      problemsOf((c) => ({ ...c, buckets: [{ bucketName: 'app-prod-documents', prefixes: ['tenants/'] }] })),
    ).toEqual([expect.stringMatching(/^buckets\[0\]\.prefixes: applies only to an S3-compatible source/)]);
  });

  it('refuses a rate() schedule for the buckets (AWS Backup takes cron only) and a bucket listed twice', () => {
    expect(problemsOf((c) => ({ ...c, schedules: { filesFull: 'rate(7 days)' } }))).toEqual([
      expect.stringMatching(/^schedules\.filesFull: expected a cron expression/),
    ]);
    expect(
      problemsOf((c) => ({
        ...c,
        buckets: [{ bucketName: 'app-prod-documents' }, { bucketName: 'app-prod-documents' }],
      })),
    ).toEqual([expect.stringMatching(/^buckets\[1\]\.bucketName: expected a bucket listed once/)]);
  });
});

describe('BucketBackups props', () => {
  function make(props: Partial<BucketBackupsProps> = {}, drRegion = 'us-east-1') {
    const app = new App();
    const primary = new Stack(app, 'P', { env: { account: '111111111111', region: 'sa-east-1' } });
    const drStack = new Stack(app, 'D', { env: { account: '111111111111', region: drRegion } });
    const lock = { minRetentionDays: 1, maxRetentionDays: 3650 };
    return new BucketBackups(primary, 'B', {
      buckets: [{ bucketName: 'docs-bucket' }],
      vault: new SnapshotVault(primary, 'V', { lock }),
      drVault: new SnapshotVault(drStack, 'V', { lock }),
      ...props,
    });
  }
  it('accepts the defaults', () => {
    expect(make().plans.size).toBe(1);
  });
  it('refuses a copy into the same region', () => {
    expect(() => make({}, 'sa-east-1')).toThrow(/drVault must be in another, explicit region/);
  });
  it('refuses continuousDays outside 1–35, a rate() schedule, no bucket', () => {
    expect(() => make({ continuousDays: 36 })).toThrow(
      /continuousDays must be a whole number of days between 1 and 35/,
    );
    expect(() => make({ fullSchedule: 'rate(7 days)' })).toThrow(/fullSchedule must be a cron expression/);
    expect(() => make({ buckets: [] })).toThrow(/buckets must name at least one bucket/);
  });
  it('refuses a rule the Vault Lock would reject', () => {
    expect(() => make({ fullWeeks: 600 })).toThrow(
      /the Full rule of bucket "docs-bucket" keeps 4200 days, outside the Vault Lock/,
    );
  });
});
