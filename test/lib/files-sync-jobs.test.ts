/**
 * The files jobs of S3-compatible sources (`buckets[].source`) as deployed: the task definition and
 * what it runs, the EventBridge Scheduler schedules that start it with ecs:RunTask, the IAM of the
 * task, execution and scheduler roles, and the freshness alarms.
 */
import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseFilesSourceSettings } from '../../core/files/task';
import type { CofreConfigInput } from '../../lib/config';
import { FILES_JOBS } from '../../lib/constructs/files-sync-jobs';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp } from '../helpers/cdk';
import { actionsOf, logicalIdOf, resourceOf, statementsOf } from '../helpers/template';

const SECRET = 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/supabase-XyZ123';

/** The example's MinIO bucket, plus a Supabase bucket with every field set away from its default. */
function twoSources(c: CofreConfigInput): CofreConfigInput {
  return {
    ...c,
    timeZone: 'America/Manaus',
    buckets: [
      ...(c.buckets ?? []),
      {
        bucketName: 'supabase-receipts',
        source: {
          endpoint: 'https://abcd.supabase.co/storage/v1/s3',
          region: 'sa-east-1',
          credentialsSecretArn: SECRET,
          forcePathStyle: false,
          network: { subnetIds: ['subnet-0aaaaaaaaaaaaaaaa'], securityGroupId: 'sg-0bbbbbbbbbbbbbbbb' },
        },
      },
    ],
    schedules: {
      filesDifferential: 'cron(10 1 ? * MON-SAT *)',
      filesFull: 'cron(20 1 ? * SUN *)',
      filesRestoreTest: 'cron(30 6 ? * WED *)',
    },
    retention: { filesDifferentialDays: 20, filesFullWeeks: 6 },
    filesTask: { cpu: 2048, memoryMiB: 8192 },
  };
}

type Json = Record<string, unknown>;

describe('files jobs of S3-compatible sources', () => {
  let primary: CofrePrimaryStack;
  let template: Template;
  beforeAll(() => {
    ({ primary } = buildTestApp(twoSources));
    template = Template.fromStack(primary);
  }, 180_000);

  const taskOf = (bucket: string) => primary.filesSyncJobs!.tasks.get(bucket)!;
  const container = (bucket: string) =>
    (resourceOf(template, taskOf(bucket).taskDefinition).Properties.ContainerDefinitions as Json[])[0]!;
  const env = (bucket: string) =>
    Object.fromEntries(
      (container(bucket).Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
    );

  it('a task per S3-compatible bucket runs the dump-runner image with the bucket settings the task parses', () => {
    expect([...primary.filesSyncJobs!.tasks.keys()]).toEqual(['clinic-attachments', 'supabase-receipts']);
    expect(parseFilesSourceSettings(env('supabase-receipts').COFRE_FILES_SOURCE as string)).toEqual({
      bucket: 'supabase-receipts',
      endpoint: 'https://abcd.supabase.co/storage/v1/s3',
      region: 'sa-east-1',
      forcePathStyle: false,
      prefixes: [],
      dataClass: 'general',
      lockDays: { differential: 20, full: 42 },
      sample: 20,
    });
    expect(parseFilesSourceSettings(env('clinic-attachments').COFRE_FILES_SOURCE as string)).toMatchObject({
      endpoint: 'https://minio.internal.example.com:9000',
      region: 'us-east-1',
      forcePathStyle: true,
      prefixes: ['tenants/'],
      dataClass: 'health',
      // A legal class: every copy is locked its legal years (health: 7).
      lockDays: { differential: 7 * 365 + 2, full: 7 * 365 + 2 },
    });
    // The same image as the dump tasks, the same container name the schedule overrides.
    const dump = resourceOf(template, primary.pipeline.dumpTasks.get('app-prod')!.taskDefinition);
    expect(container('supabase-receipts').Image).toEqual(
      (dump.Properties.ContainerDefinitions as Json[])[0]!.Image,
    );
    expect(container('supabase-receipts')).toMatchObject({
      Name: 'dump-runner',
      ReadonlyRootFilesystem: true,
      Secrets: [{ Name: 'COFRE_FILES_CREDENTIALS', ValueFrom: SECRET }],
    });
    expect(env('supabase-receipts')).toMatchObject({
      COFRE_VAULT_URL: { 'Fn::Join': ['', ['s3://', { Ref: logicalIdOf(primary.vault.bucket) }]] },
      COFRE_KMS_KEY_ARN: { 'Fn::GetAtt': [logicalIdOf(primary.vault.key), 'Arn'] },
      COFRE_OBJECT_LOCK_MODE: 'COMPLIANCE',
      COFRE_HISTORY_TABLE: { Ref: logicalIdOf(primary.history.table) },
    });
    for (const bucket of ['clinic-attachments', 'supabase-receipts'])
      expect(resourceOf(template, taskOf(bucket).taskDefinition).Properties).toMatchObject({
        RequiresCompatibilities: ['FARGATE'],
        RuntimePlatform: { CpuArchitecture: 'ARM64' },
        // `filesTask` sizes every bucket's task.
        Cpu: '2048',
        Memory: '8192',
      });
    // The heap may use the task's memory (Node alone would stop at about a quarter of it).
    for (const bucket of ['clinic-attachments', 'supabase-receipts'])
      expect(
        (
          resourceOf(template, taskOf(bucket).taskDefinition).Properties.ContainerDefinitions as {
            Environment: { Name: string; Value: unknown }[];
          }[]
        )[0]!.Environment.find((e) => e.Name === 'NODE_OPTIONS')?.Value,
      ).toBe('--enable-source-maps --max-old-space-size=7680');
  });

  it('three schedules per bucket start the task with ecs:RunTask, the command as an override, in the bucket network and the time zone', () => {
    const expressions = {
      Differential: 'cron(10 1 ? * MON-SAT *)',
      Full: 'cron(20 1 ? * SUN *)',
      RestoreTest: 'cron(30 6 ? * WED *)',
    };
    for (const [job, command] of Object.entries(FILES_JOBS) as [keyof typeof FILES_JOBS, string][]) {
      const schedule = resourceOf(template, taskOf('supabase-receipts').schedules[job]);
      expect(schedule.Properties).toMatchObject({
        ScheduleExpression: expressions[job],
        ScheduleExpressionTimezone: 'America/Manaus',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: {
          Arn: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':scheduler:::aws-sdk:ecs:runTask']] },
          RoleArn: { 'Fn::GetAtt': [logicalIdOf(primary.filesSyncJobs!.schedulerRole), 'Arn'] },
          DeadLetterConfig: {
            Arn: { 'Fn::GetAtt': [logicalIdOf(primary.filesSyncJobs!.deadLetterQueue), 'Arn'] },
          },
          RetryPolicy: { MaximumRetryAttempts: 2 },
        },
      });
      const input = JSON.stringify((schedule.Properties.Target as { Input: unknown }).Input);
      expect(input).toContain(`\\"Name\\":\\"COFRE_COMMAND\\",\\"Value\\":\\"${command}\\"`);
      expect(input).toContain('\\"Subnets\\":[\\"subnet-0aaaaaaaaaaaaaaaa\\"]');
      expect(input).toContain('\\"SecurityGroups\\":[\\"sg-0bbbbbbbbbbbbbbbb\\"]');
      expect(input).toContain('\\"AssignPublicIp\\":\\"DISABLED\\"');
      expect(input).toContain(logicalIdOf(taskOf('supabase-receipts').taskDefinition));
    }
  });

  it("the task role writes and reads only the vault's files/<bucket>/ (never deletes) and records in the history", () => {
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: logicalIdOf(taskOf('supabase-receipts').taskRole) }] },
    });
    const statements = Object.values(policies).flatMap((p) =>
      statementsOf((p as { Properties: { PolicyDocument: unknown } }).Properties.PolicyDocument),
    );
    const s3 = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    const vault = logicalIdOf(primary.vault.bucket);
    for (const s of s3) {
      expect(actionsOf(s)).not.toContain('s3:DeleteObject');
      expect(actionsOf(s)).not.toContain('s3:DeleteObjectVersion');
      const text = JSON.stringify(s.Resource);
      if (actionsOf(s).includes('s3:ListBucket'))
        expect(s.Condition).toEqual({ StringLike: { 's3:prefix': ['files/supabase-receipts/*'] } });
      else
        expect(text).toBe(
          JSON.stringify({
            'Fn::Join': ['', [{ 'Fn::GetAtt': [vault, 'Arn'] }, '/files/supabase-receipts/*']],
          }),
        );
    }
    expect(s3.flatMap(actionsOf)).toEqual(
      expect.arrayContaining(['s3:PutObject', 's3:GetObjectVersion', 's3:ListBucketVersions']),
    );
    expect(statements.flatMap(actionsOf)).toContain('dynamodb:PutItem');
    expect(statements.flatMap(actionsOf).filter((a) => a.startsWith('secretsmanager:'))).toEqual([]);
  });

  it("the execution role reads only that bucket's secret", () => {
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: logicalIdOf(taskOf('supabase-receipts').executionRole) }] },
    });
    const secretReads = Object.values(policies)
      .flatMap((p) =>
        statementsOf((p as { Properties: { PolicyDocument: unknown } }).Properties.PolicyDocument),
      )
      .filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')));
    expect(secretReads.map((s) => s.Resource)).toEqual([SECRET]);
  });

  it('the scheduler role runs only the files task definitions in the Cofre cluster and passes only their roles to ECS', () => {
    const policies = template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: logicalIdOf(primary.filesSyncJobs!.schedulerRole) }] },
    });
    const statements = Object.values(policies).flatMap((p) =>
      statementsOf((p as { Properties: { PolicyDocument: unknown } }).Properties.PolicyDocument),
    );
    const runTask = statements.filter((s) => actionsOf(s).includes('ecs:RunTask'));
    const defs = [...primary.filesSyncJobs!.tasks.values()].map((t) => ({
      Ref: logicalIdOf(t.taskDefinition),
    }));
    const runnable = runTask.flatMap((s): unknown[] =>
      Array.isArray(s.Resource) ? s.Resource : [s.Resource],
    );
    expect(runnable).toEqual(expect.arrayContaining(defs));
    expect(runnable).toHaveLength(defs.length);
    for (const s of runTask)
      expect(s.Condition).toEqual({
        ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [logicalIdOf(primary.pipeline.cluster), 'Arn'] } },
      });
    const passRole = statements.filter((s) => actionsOf(s).includes('iam:PassRole'));
    const roles = [...primary.filesSyncJobs!.tasks.values()].flatMap((t) => [
      { 'Fn::GetAtt': [logicalIdOf(t.taskRole), 'Arn'] },
      { 'Fn::GetAtt': [logicalIdOf(t.executionRole), 'Arn'] },
    ]);
    expect(passRole.flatMap((s) => s.Resource as unknown[])).toEqual(expect.arrayContaining(roles));
    expect(passRole.flatMap((s) => s.Resource as unknown[])).toHaveLength(roles.length);
    for (const s of passRole)
      expect(s.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
    expect(new Set(statements.flatMap(actionsOf).filter((a) => a.startsWith('ecs:')))).toEqual(
      new Set(['ecs:RunTask']),
    );
  });

  it('S3-compatible buckets get no AWS Backup plan; their freshness alarms watch the sync and the weekly restore test', () => {
    expect([...primary.bucketBackups!.plans.keys()]).toEqual(['app-prod-documents']);
    for (const [suffix, metric, threshold] of [
      ['FilesSyncStale', 'HoursSinceLastGoodFilesBackup', 26],
      ['FilesRestoreTestStale', 'DaysSinceLastGoodFilesRestoreTest', 8],
    ] as const)
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        AlarmDescription: Match.stringLikeRegexp(
          suffix === 'FilesSyncStale'
            ? '^\\[critical\\] supabase-receipts: no good files sync'
            : '^\\[critical\\] supabase-receipts: no good weekly files restore test',
        ),
        MetricName: metric,
        Namespace: 'Cofre',
        Dimensions: [{ Name: 'Bucket', Value: 'supabase-receipts' }],
        Threshold: threshold,
        TreatMissingData: 'breaching',
      });
    const freshness = resourceOf(template, primary.alerts.freshnessFunction.function);
    const vars = (freshness.Properties.Environment as { Variables: Record<string, string> }).Variables;
    expect(JSON.parse(vars.COFRE_FILES_SYNCED_BUCKETS!)).toEqual(['clinic-attachments', 'supabase-receipts']);
    expect(JSON.parse(vars.COFRE_FILES_BUCKETS!)).toEqual(['app-prod-documents']);
  });
});
