import type { Template as TemplateType } from 'aws-cdk-lib/assertions';
import { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import { RESTORE_FAILED_STATES } from '../../core/rds/restore-validation';
import { RESTORE_ENDED_IN_FAILURE } from '../../lib/constructs/snapshot-restore-tests';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp, exampleConfig } from '../helpers/cdk';
import { actionsOf, arnOf, logicalIdOf, resourceOf, statementsOf } from '../helpers/template';

type Db = NonNullable<CofreConfigInput['databases']>[number];

/**
 * A non-default configuration: restore tests on the second Sunday at 05:30 in Manaus, a second RDS
 * instance (MySQL) with its own subnet group and two security groups, and an Aurora cluster (which
 * AWS Backup restores without instances: no restore test).
 */
function nonDefault(c: CofreConfigInput): CofreConfigInput {
  const billing: Db = {
    ...structuredClone(c.databases![0]!),
    id: 'billing-prod',
    engine: 'mysql',
    rdsInstanceId: 'billing-prod',
    databases: ['billing'],
    excludeDatabases: [],
    credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/billing-AbCdEf',
    network: { ...c.databases![0]!.network, securityGroupId: 'sg-0aaaaaaaaaaaaaaa1' },
    snapshotRestoreTest: {
      dbSubnetGroupName: 'billing subnets',
      vpcSecurityGroupIds: ['sg-0bbbbbbbbbbbbbbb1', 'sg-0bbbbbbbbbbbbbbb2'],
    },
    dataClass: 'accounting',
    tenants: undefined,
  };
  const aurora: Db = { ...structuredClone(c.databases![0]!), id: 'ledger-aurora', tenants: undefined };
  delete aurora.rdsInstanceId;
  delete aurora.snapshotRestoreTest;
  aurora.rdsClusterId = 'ledger-aurora-cluster';
  return {
    ...c,
    timeZone: 'America/Manaus',
    databases: [...c.databases!, billing, aurora],
    schedules: { restoreTest: 'cron(30 5 ? * SUN#2 *)' },
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

describe('monthly AWS Backup restore test of the RDS instances (non-default configuration)', () => {
  let primary: CofrePrimaryStack;
  let template: TemplateType;
  beforeAll(() => {
    const built = buildTestApp(nonDefault);
    primary = built.primary;
    // cdk-nag (AwsSolutions, HIPAA, Serverless) runs in synth: an unacknowledged finding throws.
    built.app.synth();
    template = Template.fromStack(primary);
  }, 180_000);

  const tests = () => primary.snapshotRestoreTests!;

  it('has a restore testing plan on the restore test schedule: the latest snapshot of the primary snapshot vault', () => {
    const plan = resourceOf(template, tests().plan).Properties;
    expect(plan).toMatchObject({
      ScheduleExpression: 'cron(30 5 ? * SUN#2 *)',
      ScheduleExpressionTimezone: 'America/Manaus',
      StartWindowHours: 8,
      RecoveryPointSelection: {
        Algorithm: 'LATEST_WITHIN_WINDOW',
        IncludeVaults: [{ 'Fn::GetAtt': [logicalIdOf(primary.snapshots!.vault.vault), 'BackupVaultArn'] }],
        RecoveryPointTypes: ['SNAPSHOT'],
        SelectionWindowDays: 7,
      },
    });
    expect(plan.RestoreTestingPlanName).toMatch(/^[A-Za-z0-9_]{1,50}$/);
  });

  it('restores each RDS instance into its own subnet group and security groups, set explicitly (no default VPC)', () => {
    expect([...tests().selections.keys()]).toEqual(['app-prod', 'billing-prod']);
    const expected: Record<string, { arn: string; overrides: Record<string, string> }> = {
      'app-prod': {
        arn: 'arn:aws:rds:sa-east-1:111111111111:db:app-prod',
        overrides: {
          dbSubnetGroupName: 'app-prod-subnets',
          vpcSecurityGroupIds: '["sg-0123456789abcdef2"]',
          publiclyAccessible: 'false',
        },
      },
      'billing-prod': {
        arn: 'arn:aws:rds:sa-east-1:111111111111:db:billing-prod',
        overrides: {
          dbSubnetGroupName: 'billing subnets',
          vpcSecurityGroupIds: '["sg-0bbbbbbbbbbbbbbb1","sg-0bbbbbbbbbbbbbbb2"]',
          publiclyAccessible: 'false',
        },
      },
    };
    const planName = resourceOf(template, tests().plan).Properties.RestoreTestingPlanName;
    for (const [id, selection] of tests().selections) {
      const props = resourceOf(template, selection).Properties;
      expect(props).toEqual({
        RestoreTestingPlanName: planName,
        RestoreTestingSelectionName: id.replace('-', '_'),
        ProtectedResourceType: 'RDS',
        ProtectedResourceArns: [expected[id]!.arn],
        IamRoleArn: arnOf(tests().restoreRole),
        ValidationWindowHours: 4,
        RestoreMetadataOverrides: expected[id]!.overrides,
      });
    }
  });

  it('tests no Aurora cluster (AWS Backup restores a cluster without instances)', () => {
    expect(tests().selections.has('ledger-aurora')).toBe(false);
    // (The example's AWS S3 bucket has its own selection, of type S3: bucket-restore-tests.test.ts.)
    expect(
      Object.keys(
        template.findResources('AWS::Backup::RestoreTestingSelection', {
          Properties: { ProtectedResourceType: 'RDS' },
        }),
      ),
    ).toHaveLength(2);
  });

  it('lets only AWS Backup of this account assume the restore role, with the restore policy and the vault key', () => {
    const role = resourceOf(template, tests().restoreRole).Properties;
    expect(statementsOf(role.AssumeRolePolicyDocument)).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { Service: 'backup.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': '111111111111' } },
      },
    ]);
    expect(JSON.stringify(role.ManagedPolicyArns)).toContain(
      ':iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores',
    );
    const policy = resourceOf(template, tests().restoreRole.node.findChild('DefaultPolicy')).Properties
      .PolicyDocument;
    expect(statementsOf(policy)).toEqual([
      {
        Effect: 'Allow',
        Action: ['kms:CreateGrant', 'kms:Decrypt', 'kms:DescribeKey'],
        Resource: arnOf(primary.snapshots!.vault.key),
      },
    ]);
  });

  it('runs the validation Lambda in the databases VPC (their subnets, the client security groups), 15 minutes', () => {
    const fn = resourceOf(template, tests().validationFunction.function).Properties;
    expect(fn.VpcConfig).toEqual({
      SubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
      SecurityGroupIds: ['sg-0123456789abcdef0', 'sg-0aaaaaaaaaaaaaaa1'],
    });
    expect(fn.Timeout).toBe(900);
    const env = (fn.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env.COFRE_RESTORE_TESTING_PLAN_ARN).toEqual({
      'Fn::GetAtt': [logicalIdOf(tests().plan), 'RestoreTestingPlanArn'],
    });
    expect(JSON.parse(env.COFRE_RESTORE_TEST_DATABASES as string)).toEqual([
      {
        database: 'app-prod',
        engine: 'postgres',
        resourceArn: 'arn:aws:rds:sa-east-1:111111111111:db:app-prod',
        credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/app-prod-AbCdEf',
        databases: 'all',
        excludeDatabases: ['rdsadmin'],
      },
      {
        database: 'billing-prod',
        engine: 'mysql',
        resourceArn: 'arn:aws:rds:sa-east-1:111111111111:db:billing-prod',
        credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/billing-AbCdEf',
        databases: ['billing'],
        excludeDatabases: [],
      },
    ]);
    expect(env.COFRE_TOPIC_ARN).toEqual({ Ref: logicalIdOf(primary.alerts.topic) });
  });

  it('gives the validation Lambda least privilege: read its manifests and secrets, record, publish, describe and report restore jobs, nothing that writes a backup', () => {
    const policy = resourceOf(
      template,
      tests().validationFunction.function.role!.node.findChild('DefaultPolicy'),
    ).Properties.PolicyDocument;
    const statements = statementsOf(policy);
    const actions = statements.flatMap(actionsOf);
    for (const forbidden of [
      /^s3:Put/,
      /^s3:Delete/,
      /Delete/,
      /^rds:(Create|Modify|Restore|Delete)/,
      /^backup:Start/,
    ])
      expect(actions.filter((a) => forbidden.test(a))).toEqual([]);
    const backup = statements.find((s) => s.Sid === 'ReadAndReportRestoreJobs')!;
    expect(actionsOf(backup).sort()).toEqual([
      'backup:DescribeRestoreJob',
      'backup:PutRestoreValidationResult',
    ]);
    const rds = statements.find((s) => s.Sid === 'EndpointOfTheRestoredInstance')!;
    expect(rds.Resource).toBe('arn:aws:rds:sa-east-1:111111111111:db:*');
    expect(actionsOf(rds)).toEqual(['rds:DescribeDBInstances']);
    const secrets = statements.filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'));
    expect(
      secrets
        .map((s) => s.Resource)
        .flat()
        .sort(),
    ).toEqual([
      'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/app-prod-AbCdEf',
      'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/billing-AbCdEf',
    ]);
    const objects = statements.find((s) => actionsOf(s).includes('s3:GetObject'))!;
    expect(JSON.stringify(objects.Resource)).toContain('/full/app-prod/*');
    expect(JSON.stringify(objects.Resource)).toContain('/full/billing-prod/*');
    const list = statements.find((s) => actionsOf(s).includes('s3:ListBucket'))!;
    expect(list.Condition).toEqual({
      StringLike: { 's3:prefix': ['full/app-prod/*', 'full/billing-prod/*'] },
    });
  });

  it('triggers the validation on ended RDS restore jobs (completed, failed, aborted), with a dead-letter queue and critical alarms', () => {
    expect([...RESTORE_ENDED_IN_FAILURE]).toEqual([...RESTORE_FAILED_STATES]);
    const rule = resourceOf(template, tests().rule).Properties;
    expect(rule.EventPattern).toEqual({
      source: ['aws.backup'],
      'detail-type': ['Restore Job State Change'],
      detail: { resourceType: ['RDS'], status: ['COMPLETED', 'FAILED', 'ABORTED'] },
    });
    const targets = rule.Targets as { Arn: unknown; DeadLetterConfig: unknown }[];
    expect(targets[0]!.Arn).toEqual(arnOf(tests().validationFunction.function));
    expect(targets[0]!.DeadLetterConfig).toEqual({ Arn: arnOf(tests().validationFunction.deadLetterQueue!) });
    for (const id of ['RestoreValidationErrors', 'RestoreValidationDeadLettersDepth']) {
      const alarm = resourceOf(template, primary.alerts.alarms.get(id)!).Properties;
      expect(alarm.AlarmDescription).toMatch(/^\[critical\]/);
    }
  });
});

describe('restore test configuration, checked at synth', () => {
  it('rejects an RDS instance without snapshotRestoreTest, naming the field', () => {
    expect(
      problemsOf((c) => {
        delete c.databases![0]!.snapshotRestoreTest;
        return c;
      }),
    ).toEqual([
      expect.stringMatching(/^databases\[0\]\.snapshotRestoreTest: is required with rdsInstanceId/),
    ]);
  });

  it('rejects snapshotRestoreTest on an Aurora cluster and on a self-managed server', () => {
    expect(
      problemsOf((c) => {
        delete c.databases![0]!.rdsInstanceId;
        c.databases![0]!.rdsClusterId = 'app-cluster';
        return c;
      }),
    ).toEqual([
      expect.stringMatching(/^databases\[0\]\.snapshotRestoreTest: applies only to an RDS instance .*Aurora/),
    ]);
    expect(
      problemsOf((c) => {
        c.databases![1]!.snapshotRestoreTest = {
          dbSubnetGroupName: 'x',
          vpcSecurityGroupIds: ['sg-0123456789abcdef0'],
        };
        return c;
      }),
    ).toEqual([
      expect.stringMatching(/^databases\[1\]\.snapshotRestoreTest: applies only to an RDS instance/),
    ]);
  });

  it.each([
    [
      { dbSubnetGroupName: 'default', vpcSecurityGroupIds: ['sg-0123456789abcdef0'] },
      /dbSubnetGroupName: expected the name of the source instance's DB subnet group/,
    ],
    [
      { dbSubnetGroupName: 'ok', vpcSecurityGroupIds: [] },
      /vpcSecurityGroupIds: expected at least one security group id/,
    ],
    [
      { dbSubnetGroupName: 'ok', vpcSecurityGroupIds: ['sg-1'] },
      /vpcSecurityGroupIds\[0\]: expected a security group id/,
    ],
  ])('rejects %j naming the field', (value, message) => {
    expect(
      problemsOf((c) => {
        c.databases![0]!.snapshotRestoreTest = value;
        return c;
      }),
    ).toEqual([expect.stringMatching(message)]);
  });

  it('rejects a restore test schedule AWS Backup cannot take (rate/at) when an RDS instance is tested', () => {
    expect(problemsOf((c) => ({ ...c, schedules: { restoreTest: 'rate(30 days)' } }))).toEqual([
      expect.stringMatching(
        /^schedules\.restoreTest: expected a cron expression .*AWS Backup restore testing plan/,
      ),
    ]);
  });

  it('refuses RDS instances in different VPCs (one validation Lambda, one VPC)', () => {
    expect(() =>
      buildTestApp((c) => {
        const other = structuredClone(c.databases![0]!);
        other.id = 'other-prod';
        other.rdsInstanceId = 'other-prod';
        other.network.vpcId = 'vpc-0fedcba9876543210';
        delete other.tenants;
        return { ...c, databases: [...c.databases!, other] };
      }),
    ).toThrow(/the RDS instances must share one VPC .* \(databases\[\]\.network\.vpcId\)/);
  }, 60_000);
});
