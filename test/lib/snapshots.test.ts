import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { daysCoveringMonths, daysCoveringYears } from '../../core/policy/retention';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import {
  DatabaseSnapshots,
  SNAPSHOT_RULES,
  SnapshotVault,
  type DatabaseSnapshotsProps,
} from '../../lib/constructs/database-snapshots';
import type { CofreDrStack } from '../../lib/stacks/dr-stack';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp, exampleConfig } from '../helpers/cdk';
import { actionsOf, arnOf, logicalIdOf, resourceOf, statementsOf } from '../helpers/template';

/** `expect.arrayContaining`, typed (vitest's returns `any`). */
const including = (items: unknown[]): unknown => expect.arrayContaining(items);

type Db = NonNullable<CofreConfigInput['databases']>[number];

/**
 * A non-default configuration: PITR 14 days, daily snapshots kept 21 days at 01:30 in Manaus, 8 weekly,
 * 6 monthly, health kept 9 years, Vault Lock grace 10 days, and an Aurora cluster beside the instance.
 */
function nonDefault(c: CofreConfigInput): CofreConfigInput {
  const aurora: Db = {
    ...structuredClone(c.databases![0]!),
    id: 'ledger-aurora',
    engine: 'mysql',
    dataClass: 'accounting',
    tenants: undefined,
  };
  delete aurora.rdsInstanceId;
  // AWS Backup restores Aurora without instances: no snapshot restore test.
  delete aurora.snapshotRestoreTest;
  aurora.rdsClusterId = 'ledger-aurora-cluster';
  return {
    ...c,
    timeZone: 'America/Manaus',
    databases: [...c.databases!, aurora],
    schedules: { rdsSnapshot: 'cron(30 1 * * ? *)' },
    retention: {
      tiers: { dailyDays: 30, weeklyWeeks: 8, monthlyMonths: 6, yearlyYears: 7 },
      classes: { health: { years: 9 }, accounting: { years: 5 } },
      rdsSnapshotDays: 21,
    },
    snapshots: { continuousDays: 14, rpoMinutes: 30, vaultLock: { mode: 'COMPLIANCE', graceDays: 10 } },
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

describe('AWS Backup of RDS/Aurora from a non-default configuration', () => {
  let primary: CofrePrimaryStack;
  let dr: CofreDrStack;
  let template: Template;
  let drTemplate: Template;
  beforeAll(() => {
    ({ primary, dr } = buildTestApp(nonDefault));
    template = Template.fromStack(primary);
    drTemplate = Template.fromStack(dr);
  }, 120_000);

  const health9y = daysCoveringYears(9);

  it('puts a vault in each region, each with its own rotated, retained KMS key', () => {
    const vaults = [
      [template, primary.snapshots!.vault],
      [drTemplate, dr.snapshotVault!],
    ] as const;
    for (const [t, vault] of vaults) {
      const resource = resourceOf(t, vault.vault);
      expect(resource.Properties.EncryptionKeyArn).toEqual(arnOf(vault.key));
      expect(resource.DeletionPolicy).toBe('Retain');
      const key = resourceOf(t, vault.key);
      expect(key.Properties.EnableKeyRotation).toBe(true);
      expect(key.DeletionPolicy).toBe('Retain');
    }
    expect(Stack.of(dr.snapshotVault!).region).toBe('us-east-1');
    expect(Stack.of(primary.snapshots!.vault).region).toBe('sa-east-1');
  });

  it('blocks recovery point deletion and locks both vaults in compliance mode after the configured grace', () => {
    for (const [t, vault] of [
      [template, primary.snapshots!.vault],
      [drTemplate, dr.snapshotVault!],
    ] as const) {
      const props = resourceOf(t, vault.vault).Properties;
      // Shortest rule: PITR 14 days; longest: yearly of health data, 9 years.
      expect(props.LockConfiguration).toEqual({
        MinRetentionDays: 14,
        MaxRetentionDays: health9y,
        ChangeableForDays: 10,
      });
      const deny = statementsOf(props.AccessPolicy).find((s) => s.Effect === 'Deny');
      expect(deny).toMatchObject({
        Principal: { AWS: '*' },
        Action: including(['backup:DeleteRecoveryPoint', 'backup:UpdateRecoveryPointLifecycle']),
      });
    }
  });

  it('gives each database a plan: continuous (PITR) and daily/weekly/monthly/yearly snapshot rules in the time zone, each copied to the DR vault', () => {
    const days: Record<string, Record<string, number>> = {
      'app-prod': {
        Continuous: 14,
        Daily: 21,
        Weekly: 56,
        Monthly: daysCoveringMonths(6),
        Yearly: health9y,
      },
      'ledger-aurora': {
        Continuous: 14,
        Daily: 21,
        Weekly: 56,
        Monthly: daysCoveringMonths(6),
        Yearly: daysCoveringYears(5),
      },
    };
    const schedules: Record<string, string> = {
      Continuous: 'cron(30 1 * * ? *)',
      Daily: 'cron(30 1 * * ? *)',
      Weekly: 'cron(30 1 ? * SUN *)',
      Monthly: 'cron(30 1 1 * ? *)',
      Yearly: 'cron(30 1 1 1 ? *)',
    };
    const plans = primary.snapshots!.plans.plans;
    expect([...plans.keys()]).toEqual(['app-prod', 'ledger-aurora']);
    const drVaultArn = resourceOf(template, primary.snapshots!.vault.vault); // same-stack sanity
    expect(drVaultArn).toBeDefined();
    for (const [id, plan] of plans) {
      const rules = (resourceOf(template, plan).Properties.BackupPlan as { BackupPlanRule: Rule[] })
        .BackupPlanRule;
      expect(rules.map((r) => r.RuleName).sort()).toEqual([...SNAPSHOT_RULES].sort());
      for (const rule of rules) {
        const name = rule.RuleName;
        expect(rule.TargetBackupVault).toEqual({
          'Fn::GetAtt': [logicalIdOf(primary.snapshots!.vault.vault), 'BackupVaultName'],
        });
        expect(rule.ScheduleExpression).toBe(schedules[name]);
        expect(rule.ScheduleExpressionTimezone).toBe('America/Manaus');
        expect(rule.EnableContinuousBackup === true).toBe(name === 'Continuous');
        expect(rule.Lifecycle).toEqual({ DeleteAfterDays: days[id]![name] });
        expect(rule.RecoveryPointTags).toEqual({ 'cofre:database': id, 'cofre:tier': name.toLowerCase() });
        expect(rule.CopyActions).toHaveLength(1);
        const copy = rule.CopyActions![0]!;
        expect(copy.Lifecycle).toEqual({ DeleteAfterDays: days[id]![name] });
        // The DR vault's ARN, read from the DR stack's output (cross-region reference).
        expect(JSON.stringify(copy.DestinationBackupVaultArn)).toMatch(/"Region":"us-east-1"/);
        expect(JSON.stringify(copy.DestinationBackupVaultArn)).toMatch(/SnapshotVault/);
        // RDS and Aurora recovery points cannot go to cold storage.
        expect(JSON.stringify(rule)).not.toMatch(/MoveToColdStorageAfterDays/);
      }
    }
  });

  it('selects each database by ARN (instance as db:, Aurora as cluster:) with the narrow backup role', () => {
    const expected: Record<string, string> = {
      'app-prod': 'arn:aws:rds:sa-east-1:111111111111:db:app-prod',
      'ledger-aurora': 'arn:aws:rds:sa-east-1:111111111111:cluster:ledger-aurora-cluster',
    };
    for (const [id, selection] of primary.snapshots!.plans.selections) {
      const props = resourceOf(template, selection).Properties.BackupSelection as {
        Resources: unknown[];
        IamRoleArn: unknown;
      };
      expect(props.Resources).toEqual([expected[id]]);
      expect(props.IamRoleArn).toEqual(arnOf(primary.snapshots!.plans.role));
    }
  });

  it('gives the backup role no managed policy, RDS actions only on the selected databases and their awsbackup snapshots, and trusts only AWS Backup of this account', () => {
    const role = resourceOf(template, primary.snapshots!.plans.role).Properties;
    expect(role.ManagedPolicyArns).toBeUndefined();
    expect(statementsOf(role.AssumeRolePolicyDocument)).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { Service: 'backup.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': '111111111111' } },
      },
    ]);
    const statements = statementsOf((role.Policies as { PolicyDocument: unknown }[])[0]!.PolicyDocument);
    const bySid: Record<string, (typeof statements)[number]> = Object.fromEntries(
      statements.map((s) => [s.Sid ?? '', s]),
    );
    expect(bySid.SnapshotAndContinuousBackupOfTheSelectedDatabases!.Resource).toEqual(
      including([
        'arn:aws:rds:sa-east-1:111111111111:db:app-prod',
        'arn:aws:rds:sa-east-1:111111111111:cluster:ledger-aurora-cluster',
      ]),
    );
    expect(bySid.SnapshotAndContinuousBackupOfTheSelectedDatabases!.Resource).toHaveLength(2);
    expect(bySid.TheSnapshotsAwsBackupMakesAndCopies!.Resource).toEqual(
      including([
        'arn:aws:rds:sa-east-1:111111111111:snapshot:awsbackup:*',
        'arn:aws:rds:us-east-1:111111111111:cluster-snapshot:awsbackup:*',
      ]),
    );
    expect(bySid.DatabaseKeysOnlyThroughRds!.Condition).toEqual({
      StringEquals: { 'kms:ViaService': ['rds.sa-east-1.amazonaws.com', 'rds.us-east-1.amazonaws.com'] },
      Bool: { 'kms:GrantIsForAWSResource': 'true' },
    });
    for (const s of statements) expect(JSON.stringify(s.Action)).not.toMatch(/\*/);
  });
});

describe('watching AWS Backup (non-default configuration: RPO 30 min)', () => {
  let primary: CofrePrimaryStack;
  let template: Template;
  beforeAll(() => {
    const built = buildTestApp(nonDefault);
    primary = built.primary;
    // cdk-nag (AwsSolutions, HIPAA, Serverless) runs in synth: an unacknowledged finding throws.
    built.app.synth();
    template = Template.fromStack(primary);
  }, 180_000);

  it('sends the AWS Backup job state changes of RDS and Aurora to the backup-events Lambda, with a dead-letter queue', () => {
    const alerts = primary.alerts;
    const rule = resourceOf(template, alerts.backupEventsRule!).Properties;
    expect(rule.EventPattern).toEqual({
      source: ['aws.backup'],
      'detail-type': ['Backup Job State Change', 'Copy Job State Change', 'Restore Job State Change'],
      // S3: the example configuration's documents bucket is under AWS Backup too (test/lib/bucket-backups.test.ts).
      detail: { resourceType: ['RDS', 'Aurora', 'S3'] },
    });
    const targets = rule.Targets as { Arn: unknown; DeadLetterConfig: unknown; RetryPolicy: unknown }[];
    expect(targets).toHaveLength(1);
    expect(targets[0]!.Arn).toEqual(arnOf(alerts.backupEventsFunction!.function));
    expect(targets[0]!.DeadLetterConfig).toEqual({
      Arn: arnOf(alerts.backupEventsFunction!.deadLetterQueue!),
    });
    const env = (
      resourceOf(template, alerts.backupEventsFunction!.function).Properties.Environment as {
        Variables: Record<string, string>;
      }
    ).Variables;
    expect(JSON.parse(env.COFRE_SNAPSHOT_DATABASES!)).toEqual([
      { database: 'app-prod', resourceArn: 'arn:aws:rds:sa-east-1:111111111111:db:app-prod' },
      {
        database: 'ledger-aurora',
        resourceArn: 'arn:aws:rds:sa-east-1:111111111111:cluster:ledger-aurora-cluster',
      },
      { database: 's3:app-prod-documents', resourceArn: 'arn:aws:s3:::app-prod-documents' },
    ]);
    expect(env.COFRE_TOPIC_ARN).toEqual({ Ref: logicalIdOf(alerts.topic) });
  });

  it('lets the freshness check read LatestRestorableTime of exactly the protected databases, with the RPO', () => {
    const alerts = primary.alerts;
    const env = (
      resourceOf(template, alerts.freshnessFunction.function).Properties.Environment as {
        Variables: Record<string, string>;
      }
    ).Variables;
    expect(env.COFRE_RPO_MINUTES).toBe('30');
    expect(env.COFRE_SNAPSHOT_MAX_AGE_HOURS).toBe('26');
    expect(JSON.parse(env.COFRE_DATABASES!)).toEqual(
      including([
        { database: 'app-prod', tenants: true, rds: { rdsInstanceId: 'app-prod' } },
        { database: 'ledger-aurora', tenants: false, rds: { rdsClusterId: 'ledger-aurora-cluster' } },
        { database: 'ledger-prod', tenants: true },
      ]),
    );
    const policy = resourceOf(
      template,
      alerts.freshnessFunction.function.role!.node.findChild('DefaultPolicy'),
    ).Properties.PolicyDocument;
    const rds = statementsOf(policy).find((st) => actionsOf(st).some((a) => a.startsWith('rds:')));
    expect(rds!.Effect).toBe('Allow');
    expect([...(rds!.Resource as string[])].sort()).toEqual([
      'arn:aws:rds:sa-east-1:111111111111:cluster:ledger-aurora-cluster',
      'arn:aws:rds:sa-east-1:111111111111:db:app-prod',
    ]);
    expect(actionsOf(rds!).sort()).toEqual(['rds:DescribeDBClusters', 'rds:DescribeDBInstances']);
  });

  it.each([
    ['AppProdRecoveryPointLag', 'RecoveryPointLagMinutes', 'app-prod', 30, 1],
    ['LedgerAuroraRecoveryPointLag', 'RecoveryPointLagMinutes', 'ledger-aurora', 30, 1],
    ['AppProdSnapshotStale', 'HoursSinceLastGoodSnapshot', 'app-prod', 26, 2],
  ])(
    'alarm %s: %s of %s above %d, missing data breaching, critical',
    (id, metric, db, threshold, periods) => {
      const alarm = resourceOf(template, primary.alerts.alarms.get(id)!).Properties;
      expect(alarm).toMatchObject({
        MetricName: metric,
        Namespace: 'Cofre',
        Dimensions: [{ Name: 'Database', Value: db }],
        Threshold: threshold,
        EvaluationPeriods: periods,
        ComparisonOperator: 'GreaterThanThreshold',
        TreatMissingData: 'breaching',
        AlarmActions: [{ Ref: logicalIdOf(primary.alerts.topic) }],
      });
      expect(alarm.AlarmDescription).toMatch(/^\[critical\]/);
    },
  );

  it('has no snapshot alarms for the self-managed database', () => {
    expect(primary.alerts.alarms.has('LedgerProdRecoveryPointLag')).toBe(false);
    expect(primary.alerts.alarms.has('LedgerProdSnapshotStale')).toBe(false);
  });

  it('shows both metrics on the dashboard with their thresholds', () => {
    const body = JSON.stringify(resourceOf(template, primary.alerts.dashboard).Properties.DashboardBody);
    expect(body).toContain('Point-in-time lag (min, now - LatestRestorableTime)');
    expect(body).toContain('RPO 30 min');
    expect(body).toContain('Hours since the last AWS Backup snapshot');
    expect(body).toMatch(/RecoveryPointLagMinutes.*ledger-aurora/);
  });
});

interface Rule {
  RuleName: string;
  TargetBackupVault: unknown;
  ScheduleExpression: string;
  ScheduleExpressionTimezone: string;
  EnableContinuousBackup?: boolean;
  Lifecycle: unknown;
  RecoveryPointTags: unknown;
  CopyActions?: { DestinationBackupVaultArn: unknown; Lifecycle: unknown }[];
}

describe('Vault Lock mode', () => {
  it('GOVERNANCE sets no ChangeableForDays (the lock stays removable)', () => {
    const app = new App();
    const stack = new Stack(app, 'S', { env: { account: '111111111111', region: 'sa-east-1' } });
    const vault = new SnapshotVault(stack, 'V', {
      lock: { mode: 'GOVERNANCE', minRetentionDays: 7, maxRetentionDays: 35 },
    });
    expect(resourceOf(Template.fromStack(stack), vault.vault).Properties.LockConfiguration).toEqual({
      MinRetentionDays: 7,
      MaxRetentionDays: 35,
    });
  });

  it('defaults to COMPLIANCE with a 7-day grace', () => {
    const app = new App();
    const stack = new Stack(app, 'S', { env: { account: '111111111111', region: 'sa-east-1' } });
    const vault = new SnapshotVault(stack, 'V', { lock: { minRetentionDays: 7, maxRetentionDays: 35 } });
    expect(resourceOf(Template.fromStack(stack), vault.vault).Properties.LockConfiguration).toEqual({
      MinRetentionDays: 7,
      MaxRetentionDays: 35,
      ChangeableForDays: 7,
    });
  });
});

describe('synth-time validation', () => {
  it.each([
    [
      'PITR beyond 35 days',
      (c: CofreConfigInput) => ({ ...c, snapshots: { continuousDays: 36 } }),
      /^snapshots\.continuousDays: expected the days of point-in-time recovery between 1 and 35, got 36$/,
    ],
    [
      'a Vault Lock grace under AWS Backup minimum',
      (c: CofreConfigInput) => ({ ...c, snapshots: { vaultLock: { graceDays: 2 } } }),
      /^snapshots\.vaultLock\.graceDays: expected between 3 and 36500 days/,
    ],
    [
      'a daily snapshot retention beyond 35 days',
      (c: CofreConfigInput) => ({ ...c, retention: { rdsSnapshotDays: 40 } }),
      /^retention\.rdsSnapshotDays: expected the days to keep RDS snapshots between 1 and 35, got 40$/,
    ],
    [
      'a snapshot schedule that is not a daily cron',
      (c: CofreConfigInput) => ({ ...c, schedules: { rdsSnapshot: 'rate(1 day)' } }),
      /^schedules\.rdsSnapshot: expected a daily cron expression like "cron\(0 3 \* \* \? \*\)"/,
    ],
    [
      'an RDS instance id RDS would refuse',
      (c: CofreConfigInput) => {
        c.databases![0]!.rdsInstanceId = 'app--prod';
        return c;
      },
      /^databases\[0\]\.rdsInstanceId: expected an RDS identifier/,
    ],
    [
      'an Aurora cluster id RDS would refuse',
      (c: CofreConfigInput) => {
        delete c.databases![0]!.rdsInstanceId;
        delete c.databases![0]!.snapshotRestoreTest;
        c.databases![0]!.rdsClusterId = '1cluster';
        return c;
      },
      /^databases\[0\]\.rdsClusterId: expected an RDS identifier/,
    ],
  ])('rejects %s, naming the field', (_what, change, message) => {
    expect(problemsOf(change)).toEqual([expect.stringMatching(message)]);
  });

  const bare = () => {
    const app = new App();
    const primary = new Stack(app, 'P', { env: { account: '111111111111', region: 'sa-east-1' } });
    const drStack = new Stack(app, 'D', {
      env: { account: '111111111111', region: 'us-east-1' },
      crossRegionReferences: true,
    });
    const lock = { minRetentionDays: 1, maxRetentionDays: 3000 };
    return {
      primary,
      vault: new SnapshotVault(primary, 'V', { lock }),
      drVault: new SnapshotVault(drStack, 'V', { lock }),
    };
  };
  const snapshots = (change: (p: DatabaseSnapshotsProps) => DatabaseSnapshotsProps) => {
    const { primary, vault, drVault } = bare();
    return () =>
      new DatabaseSnapshots(
        primary,
        'S',
        change({ databases: [{ id: 'db', rdsInstanceId: 'db' }], vault, drVault }),
      );
  };

  it('accepts the defaults', () => {
    expect(snapshots((p) => p)).not.toThrow();
  });
  it('refuses a copy into the same region', () => {
    const { primary, vault } = bare();
    const same = new SnapshotVault(primary, 'Same', {
      lock: { minRetentionDays: 1, maxRetentionDays: 3000 },
    });
    expect(
      () =>
        new DatabaseSnapshots(primary, 'S', {
          databases: [{ id: 'db', rdsInstanceId: 'db' }],
          vault,
          drVault: same,
        }),
    ).toThrow(/drVault must be in another region than the databases \(both are in sa-east-1\)/);
  });
  it('refuses continuousDays outside 1–35', () => {
    expect(snapshots((p) => ({ ...p, continuousDays: 0 }))).toThrow(
      /continuousDays must be .* between 1 and 35/,
    );
  });
  it('refuses a database that names both an instance and an Aurora cluster, or neither', () => {
    expect(
      snapshots((p) => ({ ...p, databases: [{ id: 'db', rdsInstanceId: 'a', rdsClusterId: 'b' }] })),
    ).toThrow(/database "db" must set exactly one of rdsInstanceId .* or rdsClusterId/);
    expect(snapshots((p) => ({ ...p, databases: [{ id: 'db' }] }))).toThrow(/exactly one of rdsInstanceId/);
  });
  it('refuses a rule whose retention the Vault Lock would reject', () => {
    expect(snapshots((p) => ({ ...p, snapshotDays: 3001 }))).toThrow(
      /the Daily rule of "db" keeps 3001 days, outside the Vault Lock of .* \(1–3000 days\)/,
    );
  });
  it('refuses a Vault Lock whose bounds AWS Backup refuses', () => {
    const app = new App();
    const stack = new Stack(app, 'S', { env: { account: '111111111111', region: 'sa-east-1' } });
    expect(
      () =>
        new SnapshotVault(stack, 'V', { lock: { graceDays: 2, minRetentionDays: 1, maxRetentionDays: 2 } }),
    ).toThrow(/lock\.graceDays must be a whole number of days between 3 and 36500/);
    expect(
      () => new SnapshotVault(stack, 'W', { lock: { minRetentionDays: 10, maxRetentionDays: 2 } }),
    ).toThrow(/lock\.minRetentionDays \(10\) must not exceed lock\.maxRetentionDays \(2\)/);
  });
});

describe('a configuration without RDS databases (or application buckets)', () => {
  it('creates no snapshot vault or plan', () => {
    const { primary, dr } = buildTestApp((c) => ({
      ...c,
      databases: c.databases!.filter((db) => db.host !== undefined),
      buckets: [],
    }));
    expect(primary.snapshots).toBeUndefined();
    expect(dr.snapshotVault).toBeUndefined();
    Template.fromStack(primary).resourceCountIs('AWS::Backup::BackupPlan', 0);
  }, 120_000);
});
