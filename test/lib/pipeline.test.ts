import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ContainerImage } from 'aws-cdk-lib/aws-ecs';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import { beforeAll, describe, expect, it } from 'vitest';
import { backupFolder, tenantBackupFolder } from '../../core/catalog/keys';
import { jobInputSchema } from '../../core/aws/job';
import { parseConfig, type CofreConfigInput } from '../../lib/config';
import {
  AslStateMachine,
  distributedMapLabelsOf,
  placeholdersOf,
  STATE_MACHINES_DIR,
} from '../../lib/constructs/asl-state-machine';
import { BackupHistory } from '../../lib/constructs/backup-history';
import {
  PIPELINE_FUNCTIONS,
  PIPELINE_JOBS,
  type BackupPipeline,
  type PipelineJob,
} from '../../lib/constructs/backup-pipeline';
import { BackupVault } from '../../lib/constructs/backup-vault';
import {
  DUMP_CONTAINER_NAME,
  DumpTask,
  vaultPrefixesOf,
  type DumpTaskProps,
} from '../../lib/constructs/dump-task';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { buildTestApp, exampleConfig, testAppProps } from '../helpers/cdk';
import { actionsOf, arnOf, logicalIdOf, resourceOf, statementsOf } from '../helpers/template';

interface Built {
  stack: CofrePrimaryStack;
  pipeline: BackupPipeline;
  template: Template;
  resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
}

function build(change?: (c: CofreConfigInput) => CofreConfigInput): Built {
  const { primary } = buildTestApp(change);
  const template = Template.fromStack(primary);
  return {
    stack: primary,
    pipeline: primary.pipeline,
    template,
    resources: (template.toJSON() as { Resources: Built['resources'] }).Resources,
  };
}

let byDefault: Built;
beforeAll(() => {
  byDefault = build();
});

const config = parseConfig(exampleConfig());
const DATABASE_IDS = config.databases.map((db) => db.id);

/** `Fn::Join` / `Ref` / `Fn::GetAtt` rendered as text with placeholders, so ARNs can be parsed and compared. */
function render(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as Record<string, unknown>;
  if ('Ref' in v) return `arn:aws:ecs:sa-east-1:111111111111:task-definition/${String(v.Ref)}:1`;
  if ('Fn::GetAtt' in v) return `<${(v['Fn::GetAtt'] as string[]).join('.')}>`;
  if ('Fn::Join' in v) {
    const [sep, parts] = v['Fn::Join'] as [string, unknown[]];
    return parts.map(render).join(sep);
  }
  throw new Error(`cannot render ${JSON.stringify(value)}`);
}

describe('the dump task definitions', () => {
  it('exist once per database, ARM64 Linux Fargate with the default size and 50 GiB of ephemeral storage', () => {
    for (const id of DATABASE_IDS) {
      const task = resourceOf(byDefault.template, byDefault.pipeline.dumpTasks.get(id)!.taskDefinition);
      expect(task.Properties).toMatchObject({
        RequiresCompatibilities: ['FARGATE'],
        NetworkMode: 'awsvpc',
        RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
        Cpu: '2048',
        Memory: '4096',
        EphemeralStorage: { SizeInGiB: 50 },
      });
    }
    // Beside them, only the files task of each S3-compatible bucket (lib/constructs/files-sync-jobs.ts).
    const filesTasks = [...(byDefault.stack.filesSyncJobs?.tasks.values() ?? [])];
    expect(filesTasks.map((t) => t.taskDefinition.node.id)).toHaveLength(
      config.buckets.filter((b) => b.source).length,
    );
    expect(
      Object.values(byDefault.resources).filter((r) => r.Type === 'AWS::ECS::TaskDefinition'),
    ).toHaveLength(DATABASE_IDS.length + filesTasks.length);
  });

  it('take CPU, memory and ephemeral storage from config.dumpTask', () => {
    const custom = build((c) => ({
      ...c,
      dumpTask: { cpu: 4096, memoryMiB: 12288, ephemeralStorageGiB: 120 },
    }));
    const task = resourceOf(custom.template, custom.pipeline.dumpTasks.get('app-prod')!.taskDefinition);
    expect(task.Properties).toMatchObject({
      Cpu: '4096',
      Memory: '12288',
      EphemeralStorage: { SizeInGiB: 120 },
    });
  });

  it('run the container with a read-only root filesystem, a writable /tmp scratch volume and the contract environment', () => {
    for (const db of config.databases) {
      const dump = byDefault.pipeline.dumpTasks.get(db.id)!;
      const task = resourceOf(byDefault.template, dump.taskDefinition).Properties;
      const [container, ...others] = task.ContainerDefinitions as Record<string, unknown>[];
      expect(others).toEqual([]);
      expect(container).toMatchObject({
        Name: DUMP_CONTAINER_NAME,
        Essential: true,
        ReadonlyRootFilesystem: true,
        MountPoints: [{ ContainerPath: '/tmp', SourceVolume: 'scratch', ReadOnly: false }],
        Secrets: [{ Name: 'COFRE_DB_SECRET', ValueFrom: db.credentialsSecretArn }],
      });
      expect(task.Volumes).toEqual([{ Name: 'scratch' }]);
      const env = Object.fromEntries(
        (container!.Environment as { Name: string; Value: unknown }[]).map((e) => [e.Name, e.Value]),
      );
      expect(env).toEqual({
        COFRE_VAULT_URL: { 'Fn::Join': ['', ['s3://', { Ref: logicalIdOf(byDefault.stack.vault.bucket) }]] },
        COFRE_KMS_KEY_ARN: arnOf(byDefault.stack.vault.key),
        COFRE_OBJECT_LOCK_MODE: 'COMPLIANCE',
        COFRE_HISTORY_TABLE: { Ref: logicalIdOf(byDefault.stack.history.table) },
        AWS_REGION: 'sa-east-1',
      });
    }
  });

  it("get the vault's configured Object Lock mode, so the writer never has to detect it", () => {
    const governance = build((c) => ({ ...c, objectLock: { mode: 'GOVERNANCE', days: 14 } }));
    for (const dump of governance.pipeline.dumpTasks.values()) {
      const [container] = resourceOf(governance.template, dump.taskDefinition).Properties
        .ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[];
      expect(container!.Environment).toContainEqual({ Name: 'COFRE_OBJECT_LOCK_MODE', Value: 'GOVERNANCE' });
    }
    const verify = resourceOf(governance.template, governance.pipeline.functions.verify.function);
    expect((verify.Properties.Environment as { Variables: Record<string, unknown> }).Variables).toMatchObject(
      {
        COFRE_OBJECT_LOCK_MODE: 'GOVERNANCE',
      },
    );
  });

  it('log with awslogs to their own KMS-encrypted log group, kept a year and retained', () => {
    const dump = byDefault.pipeline.dumpTasks.get('app-prod')!;
    const container = (
      resourceOf(byDefault.template, dump.taskDefinition).Properties.ContainerDefinitions as {
        LogConfiguration: unknown;
      }[]
    )[0]!;
    expect(container.LogConfiguration).toEqual({
      LogDriver: 'awslogs',
      Options: {
        'awslogs-group': { Ref: logicalIdOf(dump.logGroup) },
        'awslogs-stream-prefix': 'app-prod',
        'awslogs-region': 'sa-east-1',
      },
    });
    const logGroup = resourceOf(byDefault.template, dump.logGroup);
    expect(logGroup.Properties).toMatchObject({
      RetentionInDays: 365,
      KmsKeyId: arnOf(byDefault.pipeline.key.key),
    });
    expect(logGroup.DeletionPolicy).toBe('Retain');
  });

  it("let ECS read only that database's secret", () => {
    for (const db of config.databases) {
      const dump = byDefault.pipeline.dumpTasks.get(db.id)!;
      const policy = resourceOf(byDefault.template, dump.executionRole.node.findChild('DefaultPolicy'));
      const secretStatements = statementsOf(policy.Properties.PolicyDocument).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('secretsmanager:')),
      );
      expect(secretStatements.map((s) => s.Resource)).toEqual([db.credentialsSecretArn]);
      expect(secretStatements.flatMap(actionsOf).sort()).toEqual([
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
      ]);
    }
  });

  it('give the task role its own vault prefixes, the state machine callbacks, and no delete', () => {
    const dump = byDefault.pipeline.dumpTasks.get('app-prod')!;
    const statements = statementsOf(
      resourceOf(byDefault.template, dump.taskRole.node.findChild('DefaultPolicy')).Properties.PolicyDocument,
    );
    const actions = statements.flatMap(actionsOf);
    expect(actions).toEqual(
      expect.arrayContaining(['s3:PutObject', 's3:PutObjectTagging', 's3:PutObjectRetention']),
    );
    expect(actions).toEqual(
      expect.arrayContaining([
        'states:SendTaskSuccess',
        'states:SendTaskFailure',
        'states:SendTaskHeartbeat',
      ]),
    );
    expect(actions.filter((a) => /Delete|Bypass|PutBucket|PutLifecycle/.test(a))).toEqual([]);
    const bucket = logicalIdOf(byDefault.stack.vault.bucket);
    const s3Resources = statements
      .filter((s) =>
        actionsOf(s).some(
          (a) => a.startsWith('s3:') && a !== 's3:ListBucket' && a !== 's3:ListBucketVersions',
        ),
      )
      .flatMap((s): unknown[] => [s.Resource].flat())
      .map(render);
    expect([...new Set(s3Resources)].sort()).toEqual([
      `<${bucket}.Arn>/full/app-prod/*`,
      `<${bucket}.Arn>/tenants/app-prod/*`,
    ]);
    const list = statements.find((s) => actionsOf(s).includes('s3:ListBucket'))!;
    expect(list.Condition).toEqual({
      StringLike: { 's3:prefix': ['full/app-prod/*', 'tenants/app-prod/*'] },
    });
  });

  it('are named in the vault key policy: encrypt new data keys, decrypt for verification', () => {
    const dump = byDefault.pipeline.dumpTasks.get('app-prod')!;
    const keyPolicy = resourceOf(byDefault.template, byDefault.stack.vault.key).Properties.KeyPolicy;
    const role = JSON.stringify(arnOf(dump.taskRole));
    const forTask = statementsOf(keyPolicy).filter((s) =>
      [(s.Principal as { AWS: unknown }).AWS].flat().some((p) => JSON.stringify(p) === role),
    );
    expect([...new Set(forTask.flatMap(actionsOf))].sort()).toEqual([
      'kms:Decrypt',
      'kms:DescribeKey',
      'kms:Encrypt',
      'kms:GenerateDataKey',
    ]);
  });
});

describe('the ECS cluster', () => {
  it('has Container Insights (enhanced) on and no physical name', () => {
    const cluster = resourceOf(byDefault.template, byDefault.pipeline.cluster);
    expect(cluster.Properties).toEqual({
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enhanced' }],
      Tags: expect.any(Array) as unknown,
    });
  });
});

/** Data actions: on these, `*` as a resource or a service-wide wildcard action is never acceptable. */
const DATA_ACTION =
  /^(s3|dynamodb|kms|secretsmanager|lambda:Invoke|ecs:RunTask|iam:PassRole|states:StartExecution|sqs:SendMessage)/;

/**
 * Actions that return names, not data, and take no resource: s3:ListAllMyBuckets is in AWS's
 * AWSBackupServiceRolePolicyForS3Backup, which the bucket backup role narrows (lib/constructs/bucket-backups.ts).
 */
const NAMES_ONLY = ['s3:ListAllMyBuckets'];

describe('every IAM policy of the primary stack', () => {
  const policies = () =>
    Object.entries(byDefault.resources).flatMap(([logicalId, r]) => {
      if (r.Type === 'AWS::IAM::Policy' || r.Type === 'AWS::IAM::ManagedPolicy')
        return [{ logicalId, document: r.Properties.PolicyDocument }];
      if (r.Type === 'AWS::IAM::Role')
        return ((r.Properties.Policies as { PolicyDocument: unknown }[] | undefined) ?? []).map((p) => ({
          logicalId,
          document: p.PolicyDocument,
        }));
      return [];
    });

  it('exists (the pipeline roles are in the stack)', () => {
    expect(policies().length).toBeGreaterThan(10);
  });

  it('has no wildcard action on a whole service: no *, s3:*, kms:*, dynamodb:*', () => {
    const wild = policies().flatMap(({ logicalId, document }) =>
      statementsOf(document)
        .flatMap(actionsOf)
        .filter((a) => a === '*' || /^(s3|kms|dynamodb|secretsmanager|states|ecs|lambda|iam):\*$/.test(a))
        .map((a) => `${logicalId}: ${a}`),
    );
    expect(wild).toEqual([]);
  });

  it('puts no data action on Resource *', () => {
    const onStar = policies().flatMap(({ logicalId, document }) =>
      statementsOf(document)
        .filter(
          (s) =>
            s.Effect === 'Allow' &&
            (s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*'))),
        )
        .flatMap(actionsOf)
        .filter((a) => DATA_ACTION.test(a) && !NAMES_ONLY.includes(a))
        .map((a) => `${logicalId}: ${a}`),
    );
    expect(onStar).toEqual([]);
  });

  it('never lets the pipeline delete objects from the vault', () => {
    // The one exception: AWS Backup restore testing removes the bucket it restored an application
    // bucket into (awsbackup-restore-test-*), and only that; every resource of those statements says so.
    const onlyRestoreTestBuckets = (statement: { Resource?: unknown }) =>
      [statement.Resource ?? []]
        .flat()
        .every((r) => /arn:[^"]*:s3:::awsbackup-restore-test-\*/.test(JSON.stringify(r)));
    const deletes = policies().flatMap(({ logicalId, document }) =>
      statementsOf(document)
        .filter((s) => s.Effect === 'Allow')
        .flatMap((s) =>
          actionsOf(s)
            .filter((a) => /^s3:(Delete|BypassGovernance)/.test(a))
            .map(
              (a) => `${logicalId}: ${a}${onlyRestoreTestBuckets(s) ? ' (restore-test buckets only)' : ''}`,
            ),
        ),
    );
    expect(deletes.filter((d) => !d.endsWith('(restore-test buckets only)'))).toEqual([]);
    expect(deletes.map((d) => d.replace(/^\S+: /, '')).sort()).toEqual([
      's3:DeleteBucket (restore-test buckets only)',
      's3:DeleteObject (restore-test buckets only)',
      's3:DeleteObjectVersion (restore-test buckets only)',
    ]);
  });
});

describe('the pipeline Lambdas', () => {
  it('are CofreFunctions (Node 24, ARM64, tracing) with the contract environment', () => {
    for (const name of Object.keys(PIPELINE_FUNCTIONS) as (keyof typeof PIPELINE_FUNCTIONS)[]) {
      const fn = resourceOf(byDefault.template, byDefault.pipeline.functions[name].function);
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        KmsKeyArn: arnOf(byDefault.pipeline.key.key),
      });
      expect((fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables).toMatchObject({
        COFRE_VAULT_URL: { 'Fn::Join': ['', ['s3://', { Ref: logicalIdOf(byDefault.stack.vault.bucket) }]] },
        COFRE_KMS_KEY_ARN: arnOf(byDefault.stack.vault.key),
        COFRE_OBJECT_LOCK_MODE: 'COMPLIANCE',
        COFRE_HISTORY_TABLE: { Ref: logicalIdOf(byDefault.stack.history.table) },
        COFRE_MAX_DURATION_MINUTES: '30',
        COFRE_SIZE_ANOMALY_PERCENT: '30',
      });
    }
  });

  it("put list-tenants in the databases' VPC with their security groups, the others outside any VPC", () => {
    const fn = resourceOf(byDefault.template, byDefault.pipeline.functions['list-tenants'].function);
    expect(fn.Properties.VpcConfig).toEqual({
      SubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
      SecurityGroupIds: ['sg-0123456789abcdef0', 'sg-0123456789abcdef1'],
    });
    expect(
      resourceOf(byDefault.template, byDefault.pipeline.functions.prepare.function).Properties.VpcConfig,
    ).toBeUndefined();
  });

  it('grant only what each one needs: record writes history, verify reads the vault, nobody deletes', () => {
    // The one delete: prepare's own idempotency records (Powertools deletes the record of a failed
    // attempt), on that table alone (test/lib/idempotency-table.test.ts); never history or backups.
    const idempotencyTable = JSON.stringify(arnOf(byDefault.pipeline.idempotency.table));
    const actionsFor = (name: keyof typeof PIPELINE_FUNCTIONS, o: { besideIdempotency?: boolean } = {}) =>
      statementsOf(
        resourceOf(
          byDefault.template,
          byDefault.pipeline.functions[name].function.role!.node.findChild('DefaultPolicy'),
        ).Properties.PolicyDocument,
      )
        .filter((st) => !o.besideIdempotency || JSON.stringify(st.Resource) !== idempotencyTable)
        .flatMap(actionsOf);
    expect(actionsFor('record')).toEqual(expect.arrayContaining(['dynamodb:PutItem', 'dynamodb:UpdateItem']));
    expect(actionsFor('verify')).toEqual(
      expect.arrayContaining(['s3:GetObject', 's3:ListBucket', 'dynamodb:Query']),
    );
    expect(actionsFor('verify').filter((a) => /^(s3|dynamodb):(Put|Update|Delete)/.test(a))).toEqual([]);
    expect(actionsFor('list-tenants')).toEqual(expect.arrayContaining(['secretsmanager:GetSecretValue']));
    expect(actionsFor('prepare').filter((a) => a.startsWith('s3:'))).toEqual([]);
    for (const name of Object.keys(PIPELINE_FUNCTIONS) as (keyof typeof PIPELINE_FUNCTIONS)[])
      expect(
        actionsFor(name, { besideIdempotency: true }).filter((a) =>
          /Delete|cloudwatch:PutMetricData/.test(a),
        ),
      ).toEqual([]);
  });
});

describe('the pipeline Lambda bundles', () => {
  it('are built by esbuild from lambdas/<name>/index.ts (what cdk deploy uploads)', () => {
    const { app, primary } = buildTestApp(undefined, { bundling: true });
    const assembly = app.synth();
    const template = assembly.getStackByName(primary.stackName).template as {
      Resources: Record<string, { Properties: { Code?: { S3Key?: string } } }>;
    };
    const assets = JSON.parse(
      readFileSync(path.join(assembly.directory, `${primary.stackName}.assets.json`), 'utf8'),
    ) as { files: Record<string, { source: { path: string } }> };
    for (const name of Object.keys(PIPELINE_FUNCTIONS) as (keyof typeof PIPELINE_FUNCTIONS)[]) {
      const key =
        template.Resources[logicalIdOf(primary.pipeline.functions[name].function)]!.Properties.Code!.S3Key!;
      const asset = assets.files[key.replace(/\.zip$/, '')]!;
      const bundle = readFileSync(path.join(assembly.directory, asset.source.path, 'index.js'), 'utf8');
      expect(bundle, name).toMatch(/handler/);
    }
  });
});

describe('the state machines', () => {
  const file = (job: PipelineJob) => readFileSync(path.join(STATE_MACHINES_DIR, `${job}.asl.json`), 'utf8');

  it.each(PIPELINE_JOBS)(
    '%s: the definition is the ASL file, with a substitution for every placeholder and none left over',
    (job) => {
      const machine = resourceOf(byDefault.template, byDefault.pipeline.stateMachines[job].stateMachine);
      const definition = machine.Properties.DefinitionString as string;
      expect(definition).toBe(file(job));
      const substitutions = machine.Properties.DefinitionSubstitutions as Record<string, unknown>;
      expect(Object.keys(substitutions).sort()).toEqual(placeholdersOf(definition));
      // What CloudFormation does: replace each ${Name}; the result must be JSON with no ${ left.
      const substituted = definition.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, name: string) =>
        render(substitutions[name]).replace(/"/g, ''),
      );
      expect(substituted).not.toContain('${');
      expect(() => JSON.parse(substituted) as unknown).not.toThrow();
    },
  );

  it('substitute each placeholder with the right resource', () => {
    const p = byDefault.pipeline;
    const machine = resourceOf(byDefault.template, p.stateMachines['backup-database'].stateMachine);
    expect(machine.Properties.DefinitionSubstitutions).toEqual({
      PrepareFunctionArn: arnOf(p.functions.prepare.function),
      VerifyFunctionArn: arnOf(p.functions.verify.function),
      RecordFunctionArn: arnOf(p.functions.record.function),
      NotifyFunctionArn: arnOf(byDefault.stack.alerts.notifyFunction.function),
      ClusterArn: arnOf(p.cluster),
      ContainerName: DUMP_CONTAINER_NAME,
    });
    const tenants = resourceOf(byDefault.template, p.stateMachines['backup-tenants'].stateMachine);
    expect(tenants.Properties.DefinitionSubstitutions).toMatchObject({
      ListTenantsFunctionArn: arnOf(p.functions['list-tenants'].function),
    });
    const verify = resourceOf(byDefault.template, p.stateMachines['verify-integrity'].stateMachine);
    expect(verify.Properties.DefinitionSubstitutions).toMatchObject({
      ListBackupsFunctionArn: arnOf(p.functions['list-backups'].function),
    });
  });

  it('restore-test: prepare, the restore task (COFRE_COMMAND=restore-test), record and notify, substituted', () => {
    const p = byDefault.pipeline;
    const machine = resourceOf(byDefault.template, p.stateMachines['restore-test'].stateMachine);
    expect(machine.Properties.DefinitionSubstitutions).toEqual({
      PrepareFunctionArn: arnOf(p.functions.prepare.function),
      RecordFunctionArn: arnOf(p.functions.record.function),
      NotifyFunctionArn: arnOf(byDefault.stack.alerts.notifyFunction.function),
      ClusterArn: arnOf(p.cluster),
      ContainerName: DUMP_CONTAINER_NAME,
    });
    const definition = JSON.parse(machine.Properties.DefinitionString as string) as {
      States: Record<
        string,
        { Parameters?: Record<string, unknown>; Retry?: { ErrorEquals: string[]; MaxAttempts: number }[] }
      >;
    };
    expect(JSON.stringify(definition.States.Prepare!.Parameters)).toContain('"job":"restore-test"');
    const task = definition.States.RestoreTest!;
    expect(JSON.stringify(task.Parameters)).toContain('{"Name":"COFRE_COMMAND","Value":"restore-test"}');
    expect(task.Retry![0]).toMatchObject({
      ErrorEquals: expect.arrayContaining(['Cofre.IntegrityFailed', 'Cofre.NothingToRestore']) as string[],
      MaxAttempts: 0,
    });
    expect(definition.States.Verify).toBeUndefined();
  });

  it.each(PIPELINE_JOBS)(
    '%s: logs ALL with execution data to its own encrypted, retained log group, with X-Ray on',
    (job) => {
      const m = byDefault.pipeline.stateMachines[job];
      const machine = resourceOf(byDefault.template, m.stateMachine);
      expect(machine.Properties).toMatchObject({
        StateMachineType: 'STANDARD',
        TracingConfiguration: { Enabled: true },
        LoggingConfiguration: {
          Level: 'ALL',
          IncludeExecutionData: true,
          Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: arnOf(m.logGroup) } }],
        },
      });
      expect(machine.Properties.StateMachineName).toBeUndefined();
      const logGroup = resourceOf(byDefault.template, m.logGroup);
      expect(logGroup.Properties).toMatchObject({
        RetentionInDays: 365,
        KmsKeyId: arnOf(byDefault.pipeline.key.key),
      });
      expect(logGroup.DeletionPolicy).toBe('Retain');
    },
  );

  it.each(PIPELINE_JOBS)(
    '%s: may invoke exactly the functions its definition names, and run only the dump tasks',
    (job) => {
      const m = byDefault.pipeline.stateMachines[job];
      const statements = statementsOf(
        resourceOf(byDefault.template, m.stateMachine.role.node.findChild('DefaultPolicy')).Properties
          .PolicyDocument,
      );
      const invoke = statements.find((s) => actionsOf(s).includes('lambda:InvokeFunction'))!;
      const substitutions = resourceOf(byDefault.template, m.stateMachine).Properties
        .DefinitionSubstitutions as Record<string, unknown>;
      const named = placeholdersOf(file(job))
        .filter((p) => p.endsWith('FunctionArn'))
        .map((p) => JSON.stringify(substitutions[p]))
        .sort();
      expect((invoke.Resource as unknown[]).map((r) => JSON.stringify(r)).sort()).toEqual(named);
      const run = statements.find((s) => actionsOf(s).includes('ecs:RunTask'))!;
      expect(run.Resource).toEqual(
        DATABASE_IDS.map((id) => ({
          Ref: logicalIdOf(byDefault.pipeline.dumpTasks.get(id)!.taskDefinition),
        })),
      );
      expect(run.Condition).toEqual({ ArnEquals: { 'ecs:cluster': arnOf(byDefault.pipeline.cluster) } });
      const pass = statements.find((s) => actionsOf(s).includes('iam:PassRole'))!;
      expect(pass.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } });
      expect((pass.Resource as unknown[]).length).toBe(2 * DATABASE_IDS.length);
    },
  );

  it('find the Distributed Map states of a definition, nested ones included', () => {
    expect(byDefault.pipeline.stateMachines['backup-tenants'].distributedMapLabels).toEqual([
      'ExportTenants',
    ]);
    expect(byDefault.pipeline.stateMachines['verify-integrity'].distributedMapLabels).toEqual([]);
    const distributed = { ProcessorConfig: { Mode: 'DISTRIBUTED' }, States: {} };
    expect(
      distributedMapLabelsOf({
        States: {
          Outer: {
            Type: 'Map',
            ItemProcessor: {
              ProcessorConfig: { Mode: 'INLINE' },
              States: { Inner: { Type: 'Map', ItemProcessor: distributed } },
            },
          },
          Both: {
            Type: 'Parallel',
            Branches: [
              { States: { Labelled: { Type: 'Map', Label: 'Tenants', ItemProcessor: distributed } } },
            ],
          },
        },
      }),
    ).toEqual(['Inner', 'Tenants']);
  });

  it('backup-tenants may start, watch and stop its own Distributed Map child executions', () => {
    const m = byDefault.pipeline.stateMachines['backup-tenants'];
    const policy = resourceOf(byDefault.template, m.node.findChild('DistributedMapPolicy'));
    const statements = statementsOf(policy.Properties.PolicyDocument);
    expect(statements.find((s) => actionsOf(s).includes('states:StartExecution'))!.Resource).toEqual({
      Ref: logicalIdOf(m.stateMachine),
    });
    expect(policy.Properties.Roles).toEqual([{ Ref: logicalIdOf(m.stateMachine.role) }]);
    for (const other of ['backup-database', 'verify-integrity', 'restore-test'] as const)
      expect(
        byDefault.pipeline.stateMachines[other].node.tryFindChild('DistributedMapPolicy'),
      ).toBeUndefined();
  });

  it('are stack outputs', () => {
    for (const job of PIPELINE_JOBS) {
      const output = Object.values(
        (byDefault.template.toJSON() as { Outputs: Record<string, { Value: unknown }> }).Outputs,
      ).find(
        (o) =>
          JSON.stringify(o.Value) ===
          JSON.stringify({ Ref: logicalIdOf(byDefault.pipeline.stateMachines[job].stateMachine) }),
      );
      expect(output, job).toBeDefined();
    }
  });
});

describe('the schedules', () => {
  /** The schedules whose target is one of the pipeline's state machines. */
  const schedulesOf = (built: Built) => {
    const machines = PIPELINE_JOBS.map((job) => logicalIdOf(built.pipeline.stateMachines[job].stateMachine));
    return Object.values(built.resources).filter(
      (r) =>
        r.Type === 'AWS::Scheduler::Schedule' &&
        machines.includes((r.Properties.Target as { Arn: { Ref?: string } }).Arn.Ref ?? ''),
    );
  };
  const scheduleOf = (
    built: Built,
    id: string,
    job: 'fullBackup' | 'tenantExport' | 'integrityVerification' | 'restoreTest',
  ) => resourceOf(built.template, built.pipeline.schedules.schedules.get(id)![job]!).Properties;

  it('exist per database and job: full backup, tenant export (databases with tenants), integrity verification, restore test', () => {
    expect(schedulesOf(byDefault)).toHaveLength(8);
    const noTenants = build((c) => {
      delete c.databases![1]!.tenants;
      return c;
    });
    expect(schedulesOf(noTenants)).toHaveLength(7);
    expect(noTenants.pipeline.schedules.schedules.get('ledger-prod')!.tenantExport).toBeUndefined();
  });

  it('use the configured expressions and time zone, flexible window off, retries and the dead-letter queue', () => {
    const p = byDefault.pipeline;
    const jobs = {
      fullBackup: ['cron(0 2 * * ? *)', 'backup-database'],
      tenantExport: ['cron(0 1 * * ? *)', 'backup-tenants'],
      integrityVerification: ['cron(0 3 ? * WED *)', 'verify-integrity'],
      restoreTest: ['cron(0 4 ? * SUN#1 *)', 'restore-test'],
    } as const;
    for (const id of DATABASE_IDS) {
      for (const [job, [expression, machine]] of Object.entries(jobs) as [
        keyof typeof jobs,
        (typeof jobs)[keyof typeof jobs],
      ][]) {
        const schedule = scheduleOf(byDefault, id, job);
        expect(schedule).toMatchObject({
          ScheduleExpression: expression,
          ScheduleExpressionTimezone: 'America/Sao_Paulo',
          FlexibleTimeWindow: { Mode: 'OFF' },
          State: 'ENABLED',
          Target: {
            Arn: { Ref: logicalIdOf(p.stateMachines[machine].stateMachine) },
            RoleArn: arnOf(p.schedules.role),
            DeadLetterConfig: { Arn: arnOf(p.schedules.deadLetterQueue) },
            RetryPolicy: { MaximumRetryAttempts: 2, MaximumEventAgeInSeconds: 3600 },
          },
        });
        expect(schedule.Name).toBeUndefined();
      }
    }
  });

  it('follow a changed time zone and schedule', () => {
    const custom = build((c) => ({
      ...c,
      timeZone: 'America/Manaus',
      schedules: { fullBackup: 'cron(30 23 * * ? *)' },
    }));
    expect(scheduleOf(custom, 'app-prod', 'fullBackup')).toMatchObject({
      ScheduleExpression: 'cron(30 23 * * ? *)',
      ScheduleExpressionTimezone: 'America/Manaus',
    });
  });

  it.each(['fullBackup', 'restoreTest'] as const)(
    '%s: sends the execution input of the contract, which the runtime job schema accepts',
    (job) => {
      for (const db of config.databases) {
        const input = JSON.parse(
          render((scheduleOf(byDefault, db.id, job).Target as { Input: unknown }).Input),
        ) as Record<string, unknown>;
        expect(input).toEqual({
          database: JSON.parse(JSON.stringify(db)) as unknown,
          taskDefinitionArn: `arn:aws:ecs:sa-east-1:111111111111:task-definition/${logicalIdOf(byDefault.pipeline.dumpTasks.get(db.id)!.taskDefinition)}:1`,
          requestedBy: 'schedule',
          timeZone: 'America/Sao_Paulo',
          retention: JSON.parse(JSON.stringify(config.retention)) as unknown,
        });
        const parsed = jobInputSchema.safeParse(input);
        expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
        expect(parsed.data!.database.id).toBe(db.id);
      }
    },
  );

  it('start the monthly restore test of each database: first Sunday 04:00 in the configured time zone', () => {
    const p = byDefault.pipeline;
    for (const id of DATABASE_IDS)
      expect(scheduleOf(byDefault, id, 'restoreTest')).toMatchObject({
        Description: `Cofre restoreTest of ${id}`,
        ScheduleExpression: 'cron(0 4 ? * SUN#1 *)',
        ScheduleExpressionTimezone: 'America/Sao_Paulo',
        FlexibleTimeWindow: { Mode: 'OFF' },
        Target: { Arn: { Ref: logicalIdOf(p.stateMachines['restore-test'].stateMachine) } },
      });
    const custom = build((c) => ({
      ...c,
      timeZone: 'America/Manaus',
      schedules: { restoreTest: 'cron(30 5 ? * SAT#2 *)' },
    }));
    expect(scheduleOf(custom, 'ledger-prod', 'restoreTest')).toMatchObject({
      ScheduleExpression: 'cron(30 5 ? * SAT#2 *)',
      ScheduleExpressionTimezone: 'America/Manaus',
    });
  });

  it('keep failed starts in a KMS-encrypted queue that the scheduler role can write to', () => {
    const p = byDefault.pipeline;
    expect(resourceOf(byDefault.template, p.schedules.deadLetterQueue).Properties).toMatchObject({
      KmsMasterKeyId: arnOf(p.key.key),
      MessageRetentionPeriod: 1_209_600,
    });
    const statements = statementsOf(
      resourceOf(byDefault.template, p.schedules.role.node.findChild('DefaultPolicy')).Properties
        .PolicyDocument,
    );
    expect(statements.flatMap(actionsOf).sort()).toEqual(
      ['kms:Decrypt', 'kms:GenerateDataKey', 'sqs:SendMessage', 'states:StartExecution'].sort(),
    );
    const start = statements.find((s) => actionsOf(s).includes('states:StartExecution'))!;
    expect((start.Resource as unknown[]).map((r) => JSON.stringify(r)).sort()).toEqual(
      PIPELINE_JOBS.map((job) =>
        JSON.stringify({ Ref: logicalIdOf(p.stateMachines[job].stateMachine) }),
      ).sort(),
    );
  });

  it('start executions with a role only EventBridge Scheduler of this account can assume', () => {
    const role = resourceOf(byDefault.template, byDefault.pipeline.schedules.role);
    expect(statementsOf(role.Properties.AssumeRolePolicyDocument)).toEqual([
      {
        Action: 'sts:AssumeRole',
        Effect: 'Allow',
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: {
          StringEquals: {
            'aws:SourceAccount': '111111111111',
            'aws:SourceArn': 'arn:aws:scheduler:sa-east-1:111111111111:schedule-group/default',
          },
        },
      },
    ]);
  });
});

describe('construct validation names the prop', () => {
  function standaloneTask(props: Partial<DumpTaskProps>) {
    const stack = new Stack(new App(testAppProps()), 'Test', {
      env: { account: '111111111111', region: 'sa-east-1' },
    });
    const vault = new BackupVault(stack, 'Vault', { retention: config.retention });
    return new DumpTask(stack, 'Task', {
      databaseId: 'app-prod',
      credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/app-prod-AbCdEf',
      image: ContainerImage.fromRegistry('public.ecr.aws/docker/library/busybox:latest'),
      vault,
      history: new BackupHistory(stack, 'History'),
      logKey: new Key(stack, 'Key', { enableKeyRotation: true }),
      ...props,
    });
  }

  it.each([
    [{ cpu: 3000 }, /cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384, got 3000/],
    [{ cpu: 512, memoryMiB: 512 }, /memoryMiB must be 1024–4096 in steps of 1024 for cpu 512, got 512/],
    [{ ephemeralStorageGiB: 10 }, /ephemeralStorageGiB must be a whole number between 21 and 200, got 10/],
    [
      { credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre' },
      /credentialsSecretArn must be the complete ARN/,
    ],
    [{ databaseId: 'App_Prod' }, /databaseId must be lowercase letters/],
  ])('DumpTask rejects %o', (props, message) => {
    expect(() => standaloneTask(props)).toThrow(message);
  });

  it('BackupVault grants refuse key prefixes with wildcards or without a trailing "/"', () => {
    const stack = new Stack(new App(testAppProps()), 'Test', {
      env: { account: '111111111111', region: 'sa-east-1' },
    });
    const vault = new BackupVault(stack, 'Vault', { retention: config.retention });
    const role = new Role(stack, 'Role', { assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com') });
    expect(() => vault.grantWrite(role, ['full/*'])).toThrow(
      /keyPrefixes must be key prefixes ending in "\/" without wildcards, got "full\/\*"/,
    );
    expect(() => vault.grantRead(role, ['full/app-prod'])).toThrow(
      /keyPrefixes must be key prefixes ending in "\/"/,
    );
    expect(() => vault.grantRead(role, [])).toThrow(/keyPrefixes must not be empty/);
  });

  it('AslStateMachine refuses a definition with a placeholder that has no substitution', () => {
    const stack = new Stack(new App(testAppProps()), 'Test', {
      env: { account: '111111111111', region: 'sa-east-1' },
    });
    expect(
      () =>
        new AslStateMachine(stack, 'Machine', {
          definitionFile: path.join(STATE_MACHINES_DIR, 'backup-database.asl.json'),
          substitutions: { PrepareFunctionArn: 'arn:aws:lambda:sa-east-1:111111111111:function:x' },
          logKey: new Key(stack, 'Key', { enableKeyRotation: true }),
        }),
    ).toThrow(
      /substitutions lacks \$\{ClusterArn\}, \$\{ContainerName\}, .*used in backup-database\.asl\.json/,
    );
  });

  it('the pipeline refuses tenant databases in two VPCs (list-tenants runs in one)', () => {
    expect(() =>
      build((c) => {
        c.databases![1]!.network.vpcId = 'vpc-0fedcba9876543210';
        return c;
      }),
    ).toThrow(
      /databases with tenants must share one VPC .*app-prod is in vpc-0123456789abcdef0, ledger-prod in vpc-0fedcba9876543210 \(databases\[\]\.network\.vpcId\)/,
    );
  });
});

describe('a deployment without databases', () => {
  it('still synthesizes the pipeline, nag clean, with no dump task and no schedule', () => {
    const { app, primary } = buildTestApp((c) => ({ ...c, databases: [] }));
    const assembly = app.synth();
    const reportPath = path.join(assembly.directory, 'validation-report.json');
    const violations = existsSync(reportPath)
      ? (
          JSON.parse(readFileSync(reportPath, 'utf8')) as { pluginReports: { violations: unknown[] }[] }
        ).pluginReports.flatMap((r) => r.violations)
      : [];
    expect(violations).toEqual([]);
    expect(primary.pipeline.dumpTasks.size).toBe(0);
    expect(primary.pipeline.schedules.schedules.size).toBe(0);
    const template = Template.fromStack(primary);
    // No dump task; the example's S3-compatible bucket keeps its files task.
    template.resourceCountIs('AWS::ECS::TaskDefinition', primary.filesSyncJobs?.tasks.size ?? 0);
    expect(primary.filesSyncJobs?.tasks.size).toBe(config.buckets.filter((b) => b.source).length);
    template.resourceCountIs('AWS::StepFunctions::StateMachine', PIPELINE_JOBS.length);
    expect(
      resourceOf(template, primary.pipeline.functions['list-tenants'].function).Properties.VpcConfig,
    ).toBeUndefined();
  });
});

describe('the vault prefixes of a dump task', () => {
  it("are where the runtime writes that database's full backups and tenant exports (core/catalog/catalog.ts)", () => {
    const [full, tenants] = vaultPrefixesOf('app-prod');
    expect(backupFolder('app-prod', 'clinic', '20260101T020000000Z').startsWith(full!)).toBe(true);
    expect(tenantBackupFolder('app-prod', 'clinic', 't-1', '20260101T020000000Z').startsWith(tenants!)).toBe(
      true,
    );
    expect(backupFolder('app-prod-2', 'clinic', '20260101T020000000Z').startsWith(full!)).toBe(false);
  });
});

describe('README.md, Pipeline section', () => {
  it('shows the default schedule of each job', () => {
    const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    const begin = readme.indexOf('<!-- pipeline-schedules:begin');
    const end = readme.indexOf('<!-- pipeline-schedules:end -->');
    expect(begin, 'pipeline-schedules markers').toBeGreaterThan(0);
    const table = readme.slice(begin, end);
    const defaults = parseConfig({
      account: '123456789012',
      regions: { primary: 'sa-east-1', dr: 'us-east-1' },
      alerts: { emails: ['ops@example.com'] },
    });
    const rows = [
      ['backup-database', 'fullBackup'],
      ['backup-tenants', 'tenantExport'],
      ['verify-integrity', 'integrityVerification'],
      ['restore-test', 'restoreTest'],
    ] as const;
    for (const [job, field] of rows)
      expect(table).toContain(`| \`${job}\` | \`${field}\` | \`${defaults.schedules[field]}\``);
    expect(table).toContain(`in \`timeZone\` (${defaults.timeZone})`);
  });
});
