import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Annotations, ArnFormat, CfnElement, Duration, Fn, IgnoreMode, Stack, Token } from 'aws-cdk-lib';
import { SecurityGroup, Subnet, Vpc } from 'aws-cdk-lib/aws-ec2';
import { Platform } from 'aws-cdk-lib/aws-ecr-assets';
import { CfnCluster, ContainerImage } from 'aws-cdk-lib/aws-ecs';
import { type IRole, Policy, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct, type IConstruct } from 'constructs';
import type { CofreConfig, DatabaseConfig } from '../config';
import { acknowledge } from '../nag';
import { AslStateMachine, STATE_MACHINES_DIR } from './asl-state-machine';
import type { CofreAlerts } from './alerts';
import type { BackupHistory } from './backup-history';
import { BackupSchedules } from './backup-schedules';
import type { BackupVault } from './backup-vault';
import { CofreFunction } from './cofre-function';
import { DUMP_CONTAINER_NAME, DumpTask, vaultPrefixesOf } from './dump-task';
import { PipelineKey } from './pipeline-key';
import { IdempotencyTable } from './idempotency-table';
import { grantSecretKeyDecrypt } from './secret-key-grant';

/** The repository root: the build context of the dump-runner image (its Dockerfile bundles `core/`). */
export const REPOSITORY_ROOT = path.join(__dirname, '..', '..');
/** The dump runner's Dockerfile, relative to {@link REPOSITORY_ROOT}. */
export const DUMP_RUNNER_DOCKERFILE = 'tasks/dump-runner/Dockerfile';

/**
 * The dump-runner image, built by `cdk deploy` for linux/arm64 (synth only stages the build context
 * and hashes it; it needs no Docker). The context is the repository root, narrowed by the
 * Dockerfile's own ignore file (`Dockerfile.dockerignore`, BuildKit's per-Dockerfile ignore), so the
 * staged asset holds only what the build copies (package files, `core/`, `tasks/dump-runner/`).
 */
export function dumpRunnerImage(): ContainerImage {
  const ignoreFile = path.join(REPOSITORY_ROOT, `${DUMP_RUNNER_DOCKERFILE}.dockerignore`);
  const exclude = readFileSync(ignoreFile, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  return ContainerImage.fromAsset(REPOSITORY_ROOT, {
    file: DUMP_RUNNER_DOCKERFILE,
    platform: Platform.LINUX_ARM64,
    exclude,
    ignoreMode: IgnoreMode.DOCKER,
  });
}
/** The folder of the Lambda handlers (`lambdas/<name>/index.ts`). */
export const LAMBDAS_DIR = path.join(__dirname, '..', '..', 'lambdas');

/** The jobs, each a state machine loaded from `state-machines/<job>.asl.json`. */
export const PIPELINE_JOBS = [
  'backup-database',
  'backup-tenants',
  'verify-integrity',
  'restore-test',
] as const;
export type PipelineJob = (typeof PIPELINE_JOBS)[number];

/** The pipeline's own Lambdas (handlers in `lambdas/<name>/`) and the ASL placeholder of each one's ARN. */
export const PIPELINE_FUNCTIONS = {
  prepare: 'PrepareFunctionArn',
  verify: 'VerifyFunctionArn',
  record: 'RecordFunctionArn',
  'list-tenants': 'ListTenantsFunctionArn',
  'list-backups': 'ListBackupsFunctionArn',
} as const;
export type PipelineFunctionName = keyof typeof PIPELINE_FUNCTIONS;

/** Properties of {@link BackupPipeline}. */
export interface BackupPipelineProps {
  /** The validated configuration: databases, schedules, time zone, retention, task size, thresholds. */
  readonly config: CofreConfig;
  /** The vault backups are written to. */
  readonly vault: BackupVault;
  /** The backup history table. */
  readonly history: BackupHistory;
  /** The notify Lambda (alerts), invoked by every state machine on success, skip and failure. */
  readonly notifyFunction: IFunction;
  /**
   * The dump-runner image.
   * @default dumpRunnerImage() - built from `tasks/dump-runner/Dockerfile` for linux/arm64 by `cdk deploy` (synth needs no Docker)
   */
  readonly image?: ContainerImage;
}

/**
 * The orchestration: an ECS cluster (Container Insights) with one Fargate dump task definition per
 * database, the pipeline Lambdas, the four state machines loaded from `state-machines/*.asl.json`
 * with an explicit grant for each integration, and the EventBridge Scheduler schedules that start
 * them. Operational data (logs, Lambda environments, dead-letter queues) is encrypted with the
 * pipeline key.
 */
export class BackupPipeline extends Construct {
  /** Key of the logs, Lambda environments and dead-letter queues. */
  public readonly key: PipelineKey;
  /** The ECS cluster the dump tasks run in. */
  public readonly cluster: CfnCluster;
  /** The dump-runner image (also the image of the files tasks of S3-compatible sources). */
  public readonly image: ContainerImage;
  /** One dump task per database, by database id. */
  public readonly dumpTasks: ReadonlyMap<string, DumpTask>;
  /** The pipeline Lambdas, by name. */
  public readonly functions: Readonly<Record<PipelineFunctionName, CofreFunction>>;
  /** The state machines, by job. */
  public readonly stateMachines: Readonly<Record<PipelineJob, AslStateMachine>>;
  /** The schedules that start them. */
  public readonly schedules: BackupSchedules;
  /** The idempotency records of `prepare` (a retried prepare returns its first result). */
  public readonly idempotency: IdempotencyTable;

  constructor(scope: Construct, id: string, props: BackupPipelineProps) {
    super(scope, id);
    const { config, vault, history } = props;
    this.key = new PipelineKey(this, 'Key');
    const key = this.key.key;

    this.cluster = new CfnCluster(this, 'Cluster', {
      clusterSettings: [{ name: 'containerInsights', value: 'enhanced' }],
    });
    const image = props.image ?? dumpRunnerImage();
    this.image = image;
    const dumpTasks = new Map<string, DumpTask>();
    for (const db of config.databases) {
      dumpTasks.set(
        db.id,
        new DumpTask(this, `DumpTask-${db.id}`, {
          databaseId: db.id,
          credentialsSecretArn: db.credentialsSecretArn,
          image,
          vault,
          history,
          logKey: key,
          cpu: config.dumpTask.cpu,
          memoryMiB: config.dumpTask.memoryMiB,
          ephemeralStorageGiB: config.dumpTask.ephemeralStorageGiB,
        }),
      );
    }
    this.dumpTasks = dumpTasks;

    const environment = {
      COFRE_VAULT_URL: `s3://${vault.bucket.bucketName}`,
      COFRE_KMS_KEY_ARN: vault.key.keyArn,
      COFRE_OBJECT_LOCK_MODE: vault.objectLock.mode,
      COFRE_HISTORY_TABLE: history.table.tableName,
      COFRE_MAX_DURATION_MINUTES: String(config.thresholds.maxDurationMinutes),
      COFRE_SIZE_ANOMALY_PERCENT: String(config.thresholds.sizeAnomalyPercent),
    };
    const fn = (
      name: PipelineFunctionName,
      description: string,
      extra: Partial<ConstructorParameters<typeof CofreFunction>[2]> = {},
    ) =>
      new CofreFunction(this, `Fn-${name}`, {
        entry: path.join(LAMBDAS_DIR, name, 'index.ts'),
        description,
        encryptionKey: key,
        environment,
        timeout: Duration.minutes(5),
        ...extra,
      });
    const tenantDatabases = config.databases.filter((db) => db.tenants !== undefined);
    this.idempotency = new IdempotencyTable(this, 'Idempotency', { encryptionKey: history.key });
    this.functions = {
      prepare: fn('prepare', 'Cofre: starts a job run (backup id, tier, job lock, running record)', {
        environment: { ...environment, COFRE_IDEMPOTENCY_TABLE: this.idempotency.table.tableName },
      }),
      verify: fn('verify', 'Cofre: quick verification of new backups, metrics and anomalies', {
        memorySize: 512,
      }),
      record: fn('record', 'Cofre: final history record of a job run'),
      'list-tenants': fn('list-tenants', 'Cofre: lists the tenants of a database in batches', {
        overrides: this.tenantNetwork(tenantDatabases),
      }),
      'list-backups': fn('list-backups', 'Cofre: lists recent backups of a database for deep verification'),
    };
    const f = this.functions;
    history.grantRecord(f.prepare.function);
    history.grantReadHistory(f.prepare.function);
    this.idempotency.grantIdempotency(f.prepare.function);
    history.grantRecord(f.record.function);
    history.grantReadHistory(f.record.function);
    history.grantReadHistory(f.verify.function);
    vault.grantRead(f.verify.function);
    for (const db of tenantDatabases)
      Secret.fromSecretCompleteArn(this, `TenantSecret-${db.id}`, db.credentialsSecretArn).grantRead(
        f['list-tenants'].function,
      );
    grantSecretKeyDecrypt(
      f['list-tenants'].function,
      tenantDatabases.map((db) => db.credentialsSecretArn),
    );
    vault.grantRead(f['list-backups'].function);

    const substitutions: Record<string, string> = {
      ...Object.fromEntries(
        Object.entries(PIPELINE_FUNCTIONS).map(([name, placeholder]) => [
          placeholder,
          f[name as PipelineFunctionName].function.functionArn,
        ]),
      ),
      NotifyFunctionArn: props.notifyFunction.functionArn,
      ClusterArn: this.cluster.attrArn,
      ContainerName: DUMP_CONTAINER_NAME,
    };
    const invocable: Record<string, IFunction> = {
      ...Object.fromEntries(
        Object.entries(PIPELINE_FUNCTIONS).map(([name, placeholder]) => [
          placeholder,
          f[name as PipelineFunctionName].function,
        ]),
      ),
      NotifyFunctionArn: props.notifyFunction,
    };
    const machines = {} as Record<PipelineJob, AslStateMachine>;
    for (const job of PIPELINE_JOBS) {
      const machine = new AslStateMachine(this, `Job-${job}`, {
        definitionFile: path.join(STATE_MACHINES_DIR, `${job}.asl.json`),
        substitutions,
        logKey: key,
        timeout: Duration.hours(24),
      });
      this.grantIntegrations(machine, invocable, [...dumpTasks.values()]);
      if (machine.distributedMapLabels.length > 0) this.grantDistributedMap(machine);
      machines[job] = machine;
    }
    this.stateMachines = machines;

    this.schedules = new BackupSchedules(this, 'Schedules', {
      config,
      key,
      targets: (db: DatabaseConfig) => {
        const task = dumpTasks.get(db.id)!;
        return {
          taskDefinitionArn: task.taskDefinition.taskDefinitionArn,
          fullBackup: machines['backup-database'].stateMachine,
          tenantExport: db.tenants ? machines['backup-tenants'].stateMachine : undefined,
          integrityVerification: machines['verify-integrity'].stateMachine,
          restoreTest: machines['restore-test'].stateMachine,
        };
      },
    });
    this.acknowledgeNagFindings(props, tenantDatabases.length > 0);
  }

  /**
   * Alarms through the alerts construct: state machine executions that time out, abort or fail, errors
   * of the pipeline Lambdas, and schedule starts that ended in the dead-letter queue (critical: a
   * backup did not even start).
   */
  public addAlarms(alerts: CofreAlerts): void {
    for (const job of PIPELINE_JOBS)
      alerts.alarmOnStateMachine(this.stateMachines[job].stateMachine, pascalCase(job));
    for (const [name, fn] of Object.entries(this.functions))
      alerts.alarmOnFunction(fn.function, `${pascalCase(name)}Function`);
    alerts.alarmOnQueue(this.schedules.deadLetterQueue, 'BackupScheduleDeadLetters', 'critical');
  }

  /** cdk-nag's id of an IAM5 finding for `<construct's ARN><suffix>` (v3 acknowledges each finding by its exact id). */
  private arnFinding(construct: IConstruct, suffix: string): string {
    return `AwsSolutions-IAM5[Resource::<${this.logicalIdOf(construct)}.Arn>${suffix}]`;
  }

  private logicalIdOf(construct: IConstruct): string {
    const element = construct.node.defaultChild ?? construct;
    if (!CfnElement.isCfnElement(element))
      throw new Error(`${construct.node.path} has no CloudFormation resource`);
    return Stack.of(this).resolve(element.logicalId) as string;
  }

  private acknowledgeNagFindings(props: BackupPipelineProps, hasTenantDatabases: boolean): void {
    const stack = Stack.of(this);
    const historyIndexes = {
      id: this.arnFinding(props.history.table, '/index/*'),
      reason:
        'The history table grants cover its global secondary indexes (latest run by database and kind, by status, by tenant), which the runtime queries; index/* names only the indexes of that one table.',
    };
    const inlinePolicy = (who: string) => ({
      id: 'HIPAA.Security-IAMNoInlinePolicy',
      reason: `This policy belongs to the ${who} alone and is generated from grants on named resources; a managed policy would only make it attachable to other principals.`,
    });
    const described: Record<PipelineFunctionName, string> = {
      prepare: 'prepare (history lock and running record)',
      verify: 'verify (reads manifests and stored checksums, emits EMF metrics)',
      record: 'record (final history record)',
      'list-tenants': 'list-tenants (reads the tenant table)',
      'list-backups': 'list-backups (reads the vault catalog)',
    };
    for (const [name, fn] of Object.entries(this.functions) as [PipelineFunctionName, CofreFunction][]) {
      const role = fn.function.role!;
      const inVpc = name === 'list-tenants' && hasTenantDatabases;
      acknowledge(
        role,
        {
          id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
          reason: `CDK attaches AWSLambdaBasicExecutionRole so the ${name} Lambda can write its logs: it allows only creating log streams and putting log events, into the function's explicit KMS-encrypted log group.`,
        },
        ...(inVpc
          ? [
              {
                id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
                reason:
                  "The list-tenants Lambda runs in the databases' VPC to query the tenant table; AWSLambdaVPCAccessExecutionRole only lets Lambda create and delete the network interfaces it needs there.",
              },
            ]
          : []),
      );
      const policy = role.node.findChild('DefaultPolicy');
      acknowledge(
        policy,
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: `Only the X-Ray actions of active tracing (xray:PutTraceSegments, xray:PutTelemetryRecords), which take no resource, are on *; the ${name} Lambda's data access names the table, bucket and keys.`,
        },
        ...(name === 'prepare' || name === 'verify' || name === 'record' ? [historyIndexes] : []),
        inlinePolicy(`${described[name]} Lambda role`),
      );
      if (name === 'verify' || name === 'list-backups')
        acknowledge(policy, {
          id: this.arnFinding(props.vault.bucket, '/*'),
          reason: `The ${name} Lambda serves every configured database, so it reads manifests and object metadata anywhere in the vault; it may not write, tag or delete, and S3 Object Lock protects every backup.`,
        });
      acknowledge(
        fn.function,
        {
          id: 'HIPAA.Security-LambdaDLQ',
          reason: `The state machines invoke the ${name} Lambda synchronously (lambda:invoke waits for the result and retries), so a failure becomes a state error that is recorded and notified; a DLQ only receives failed asynchronous events.`,
        },
        {
          id: 'Serverless-LambdaDLQ',
          reason: `The state machines invoke the ${name} Lambda synchronously (lambda:invoke waits for the result and retries), so a failure becomes a state error that is recorded and notified; a DLQ only receives failed asynchronous events.`,
        },
        ...(inVpc
          ? []
          : [
              {
                id: 'HIPAA.Security-LambdaInsideVPC',
                reason: `The ${name} Lambda calls only AWS APIs (DynamoDB, S3, KMS) over TLS with IAM authorization and never connects to a database; a VPC would add NAT or endpoints without narrowing what it can reach.`,
              },
            ]),
      );
    }

    for (const [id, task] of this.dumpTasks) {
      const taskPolicy = task.taskRole.node.findChild('DefaultPolicy');
      acknowledge(
        taskPolicy,
        ...vaultPrefixesOf(id).map((prefix) => ({
          id: this.arnFinding(props.vault.bucket, `/${prefix}*`),
          reason: `The dump task of ${id} writes, and reads back to verify, only the backups under its own vault prefix ${prefix}; it may not delete, and Object Lock keeps every version.`,
        })),
        inlinePolicy(`dump task role of ${id}`),
      );
      const executionPolicy = task.executionRole.node.findChild('DefaultPolicy');
      acknowledge(
        executionPolicy,
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: `ecr:GetAuthorizationToken takes no resource; the execution role of ${id} may pull only the dump-runner image repository, write only its log group and read only this database's secret.`,
        },
        inlinePolicy(`ECS execution role of the ${id} dump task`),
      );
    }

    for (const [job, machine] of Object.entries(this.stateMachines) as [PipelineJob, AslStateMachine][]) {
      const policy = machine.stateMachine.role.node.findChild('DefaultPolicy');
      acknowledge(
        policy,
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: `The ${job} state machine logs ALL to its own encrypted log group and traces with X-Ray: the log delivery and X-Ray APIs take no resource. Every integration (Lambda, ECS, PassRole) names its resources.`,
        },
        {
          id: `AwsSolutions-IAM5[Resource::arn:aws:ecs:${stack.region}:${stack.account}:task/<${this.logicalIdOf(this.cluster)}>/*]`,
          reason: `Task ARNs are not known before RunTask: the ${job} state machine may tag (at RunTask only), describe and stop only tasks of the Cofre cluster, which runs nothing but the dump tasks.`,
        },
        inlinePolicy(`${job} state machine role`),
      );
    }
    for (const [job, machine] of Object.entries(this.stateMachines) as [PipelineJob, AslStateMachine][]) {
      const policy = machine.node.tryFindChild('DistributedMapPolicy');
      if (!policy) continue;
      // formatArn gives the literal partition when the app knows it (cdk.json's feature flags), else the token.
      const partition = Token.isUnresolved(stack.partition) ? '<AWS::Partition>' : stack.partition;
      const executions = `arn:${partition}:states:${stack.region}:${stack.account}:execution:<${this.logicalIdOf(machine.stateMachine)}.Name>`;
      acknowledge(
        policy,
        {
          id: `AwsSolutions-IAM5[Resource::${executions}:*]`,
          reason: `The Distributed Map of ${job} starts child executions of this same state machine; their ids are generated, so it may describe and stop any execution of ${job} only.`,
        },
        ...machine.distributedMapLabels.map((label) => ({
          id: `AwsSolutions-IAM5[Resource::${executions}/${label}:*]`,
          reason: `Redriving the ${label} map run of ${job} needs its child executions, whose ids are generated; the ARN names this state machine and this map label only.`,
        })),
        inlinePolicy(`${job} state machine (Distributed Map child executions)`),
      );
    }
    acknowledge(
      this.schedules.role.node.findChild('DefaultPolicy'),
      inlinePolicy('EventBridge Scheduler role of the backup schedules'),
    );
  }

  /**
   * list-tenants queries the tenant table, so it runs in the databases' VPC with their security
   * groups. A Lambda has one VPC: every database with `tenants` must be in the same one.
   */
  private tenantNetwork(
    databases: DatabaseConfig[],
  ): ConstructorParameters<typeof CofreFunction>[2]['overrides'] {
    if (databases.length === 0) return undefined;
    const vpcId = databases[0]!.network.vpcId;
    const other = databases.find((db) => db.network.vpcId !== vpcId);
    if (other)
      throw new Error(
        `BackupPipeline ${this.node.path}: databases with tenants must share one VPC (the list-tenants Lambda runs in it); ${databases[0]!.id} is in ${vpcId}, ${other.id} in ${other.network.vpcId} (databases[].network.vpcId)`,
      );
    const subnetIds = [...new Set(databases.flatMap((db) => db.network.subnetIds))];
    const securityGroupIds = [...new Set(databases.map((db) => db.network.securityGroupId))];
    if (securityGroupIds.length > 5)
      throw new Error(
        `BackupPipeline ${this.node.path}: the list-tenants Lambda can have at most 5 security groups, the databases with tenants have ${securityGroupIds.length} (databases[].network.securityGroupId)`,
      );
    const vpc = Vpc.fromVpcAttributes(this, 'TenantVpc', {
      vpcId,
      // Only the subnets below are used; the zones are never looked up (synth needs no AWS account).
      availabilityZones: databases[0]!.network.availabilityZones ?? Fn.getAzs(),
    });
    Annotations.of(vpc).acknowledgeWarning(
      '@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones',
      'The imported VPC only carries the id for the list-tenants Lambda; its subnets are passed explicitly, so no construct needs the zone list at synth.',
    );
    return {
      vpc,
      vpcSubnets: {
        subnets: subnetIds.map((id) => {
          const subnet = Subnet.fromSubnetId(this, `TenantSubnet-${id}`, id);
          Annotations.of(subnet).acknowledgeWarning(
            '@aws-cdk/aws-ec2:noSubnetRouteTableId',
            'Only the subnet id is passed to the Lambda VPC configuration; nothing routes through this imported subnet, so its route table is not needed.',
          );
          return subnet;
        }),
      },
      securityGroups: securityGroupIds.map((id) =>
        SecurityGroup.fromSecurityGroupId(this, `TenantSecurityGroup-${id}`, id, { mutable: false }),
      ),
    };
  }

  /**
   * What each Task state of an ASL file needs, and nothing else: invoke the functions it names, run
   * the dump task definitions in the cluster (and tag, describe and stop those tasks), pass their two
   * roles to ECS tasks only.
   */
  private grantIntegrations(
    machine: AslStateMachine,
    invocable: Record<string, IFunction>,
    tasks: DumpTask[],
  ): void {
    const role = machine.stateMachine.role;
    const functions = machine.placeholders.filter((p) => invocable[p]).map((p) => invocable[p]!);
    if (functions.length > 0)
      role.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'InvokeTheFunctionsOfTheDefinition',
          actions: ['lambda:InvokeFunction'],
          // The definition invokes the unqualified ARNs, so no `:*` for versions and aliases.
          resources: functions.map((fn) => fn.functionArn),
        }),
      );
    if (!machine.placeholders.includes('ClusterArn') || tasks.length === 0) return;
    this.grantRunDumpTasks(role, tasks);
  }

  /**
   * Lets `role` (a state machine's) run the dump tasks in the Cofre cluster, tag and stop only tasks
   * of that cluster, and pass the tasks' roles to ECS: the Fargate steps of every state machine.
   */
  public grantRunDumpTasks(role: IRole, tasks: readonly DumpTask[]): void {
    const stack = Stack.of(this);
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'RunTheDumpTasksInTheCluster',
        actions: ['ecs:RunTask'],
        resources: tasks.map((t) => t.taskDefinition.taskDefinitionArn),
        conditions: { ArnEquals: { 'ecs:cluster': this.cluster.attrArn } },
      }),
    );
    const tasksInCluster = stack.formatArn({
      service: 'ecs',
      resource: 'task',
      resourceName: `${this.cluster.ref}/*`,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'TagTasksItStarts',
        actions: ['ecs:TagResource'],
        resources: [tasksInCluster],
        conditions: { StringEquals: { 'ecs:CreateAction': 'RunTask' } },
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'StopAndDescribeTasksInTheCluster',
        actions: ['ecs:StopTask', 'ecs:DescribeTasks'],
        resources: [tasksInCluster],
      }),
    );
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'PassTheDumpTaskRolesToEcsTasks',
        actions: ['iam:PassRole'],
        resources: tasks.flatMap((t) => [t.taskRole.roleArn, t.executionRole.roleArn]),
        conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
      }),
    );
  }

  /**
   * A Distributed Map starts child executions of its own state machine. Granted in a separate policy
   * attached after the state machine exists: through the role's default policy, which the state
   * machine depends on, the reference to its own ARN would be a cycle.
   */
  private grantDistributedMap(machine: AslStateMachine): void {
    const sm = machine.stateMachine;
    const stack = Stack.of(this);
    const executions = (name: string) =>
      stack.formatArn({
        service: 'states',
        resource: 'execution',
        resourceName: name,
        arnFormat: ArnFormat.COLON_RESOURCE_NAME,
      });
    const policy = new Policy(machine, 'DistributedMapPolicy', {
      statements: [
        new PolicyStatement({
          sid: 'StartChildExecutions',
          actions: ['states:StartExecution'],
          resources: [sm.stateMachineArn],
        }),
        new PolicyStatement({
          sid: 'WatchAndStopChildExecutions',
          actions: ['states:DescribeExecution', 'states:StopExecution'],
          resources: [executions(`${sm.stateMachineName}:*`)],
        }),
        new PolicyStatement({
          sid: 'RedriveTheMapRuns',
          actions: ['states:RedriveExecution'],
          resources: machine.distributedMapLabels.map((label) =>
            executions(`${sm.stateMachineName}/${label}:*`),
          ),
        }),
      ],
    });
    sm.role.attachInlinePolicy(policy);
  }
}

/** `backup-database` → `BackupDatabase`. */
function pascalCase(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, _dash: string, c: string) => c.toUpperCase());
}
