import { CfnElement, Duration, RemovalPolicy, Stack, TimeZone } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import {
  ContainerImage,
  CpuArchitecture,
  FargateTaskDefinition,
  LogDrivers,
  OperatingSystemFamily,
  Secret as EcsSecret,
  type ContainerDefinition,
} from 'aws-cdk-lib/aws-ecs';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Schedule, ScheduleExpression, ScheduleTargetInput, TimeWindow } from 'aws-cdk-lib/aws-scheduler';
import { Universal } from 'aws-cdk-lib/aws-scheduler-targets';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { CofreConfig } from '../config';
import { daysCoveringYears } from '../../core/policy/retention';
import { acknowledge } from '../nag';
import { pascal } from './alerts';
import type { BackupHistory } from './backup-history';
import type { BackupVault } from './backup-vault';
import { schedulerPlumbing } from './backup-schedules';
import { DUMP_CONTAINER_NAME, SCRATCH_PATH } from './dump-task';
import { grantSecretKeyDecrypt } from './secret-key-grant';
import { requireFargateSize, requireWholeNumber } from './prop-checks';

/** The task's commands (core/files/task.ts `FILES_TASK_COMMANDS`; lib/ imports no runtime code). */
type FilesTaskCommand = 'files-sync' | 'files-sync-full' | 'files-restore-test';

/** What the task reads from `COFRE_FILES_SOURCE` (core/files/task.ts `filesSourceSettingsSchema`). */
interface FilesSourceSettings {
  readonly bucket: string;
  readonly endpoint: string;
  readonly region: string;
  readonly forcePathStyle: boolean;
  readonly prefixes: readonly string[];
  readonly dataClass: string;
  readonly lockDays: { readonly differential: number; readonly full: number };
  readonly sample: number;
}

/** The files vault folder of a bucket (core/files/catalogue.ts `bucketFolder`), with its trailing `/`. */
export function filesVaultPrefixOf(bucketName: string): string {
  return `files/${encodeURIComponent(bucketName)}/`;
}

/** An S3-compatible bucket (`buckets[]` with `source`). */
export interface SyncedBucket {
  readonly bucketName: string;
  readonly dataClass: string;
  /** Only these prefixes; empty: the whole bucket. */
  readonly prefixes: readonly string[];
  readonly endpoint: string;
  readonly region: string;
  /** Complete ARN of the secret with `{"accessKeyId", "secretAccessKey"}`. */
  readonly credentialsSecretArn: string;
  readonly forcePathStyle: boolean;
  readonly subnetIds: readonly string[];
  readonly securityGroupId: string;
  /** Object Lock days of what a differential and a full run of this bucket write ({@link filesLockDaysOf}). */
  readonly lockDays: { readonly differential: number; readonly full: number };
}

/** The scheduled jobs of each source, and the command each runs. */
export const FILES_JOBS = {
  Differential: 'files-sync',
  Full: 'files-sync-full',
  RestoreTest: 'files-restore-test',
} as const satisfies Record<string, FilesTaskCommand>;
export type FilesJob = keyof typeof FILES_JOBS;

/** Properties of {@link FilesSyncJobs}. */
export interface FilesSyncJobsProps {
  /** The S3-compatible buckets (at least one). */
  readonly buckets: readonly SyncedBucket[];
  /** ARN of the ECS cluster the tasks run in (the pipeline's). */
  readonly clusterArn: string;
  /** The dump-runner image (`tasks/dump-runner`), which runs the files commands. */
  readonly image: ContainerImage;
  /** The vault: each source is copied under `files/<bucket>/` (the files vault). */
  readonly vault: BackupVault;
  /** The history table each run is recorded in. */
  readonly history: BackupHistory;
  /** KMS key of the log groups and the dead-letter queue. */
  readonly key: IKey;
  /** `cron(...)`/`rate(...)` of each job, in `timeZone`. */
  readonly schedules: Readonly<Record<FilesJob, string>>;
  /**
   * IANA time zone of the schedules.
   * @default 'America/Sao_Paulo'
   */
  readonly timeZone?: string;
  /**
   * Objects the weekly restore test samples.
   * @default 20
   */
  readonly sample?: number;
  /**
   * CPU of the task in vCPU units.
   * @default 1024
   */
  readonly cpu?: number;
  /**
   * Memory of the task in MiB (16 copies in flight, up to 8 MiB each).
   * @default 2048
   */
  readonly memoryMiB?: number;
  /**
   * Days the log groups keep the tasks' logs.
   * @default RetentionDays.ONE_YEAR
   */
  readonly logRetention?: RetentionDays;
}

/** One source's task. */
export interface FilesTask {
  readonly taskDefinition: FargateTaskDefinition;
  readonly container: ContainerDefinition;
  readonly taskRole: Role;
  readonly executionRole: Role;
  readonly logGroup: LogGroup;
  /** The schedules, by job. */
  readonly schedules: Readonly<Record<FilesJob, Schedule>>;
}

/**
 * The files jobs of S3-compatible sources (MinIO, Supabase Storage, any S3 endpoint): per bucket, a
 * Fargate task definition running the dump-runner image with the bucket's settings
 * (`COFRE_FILES_SOURCE`) and its access key injected by ECS from Secrets Manager
 * (`COFRE_FILES_CREDENTIALS`), and three EventBridge Scheduler schedules that start it directly with
 * `ecs:RunTask` (no state machine: the task records its own history) — the differential sync, the
 * full sync and the weekly restore test — with retries and an encrypted dead-letter queue.
 *
 * The task role may write and read only `files/<bucket>/` of the vault (never delete; the key as
 * the dump tasks use it) and record runs in the history; the execution role may read only that
 * bucket's secret. The scheduler role may run only these task definitions in the cluster and pass
 * only their roles to ECS.
 */
export class FilesSyncJobs extends Construct {
  /** The task of each bucket, by bucket name. */
  public readonly tasks: ReadonlyMap<string, FilesTask>;
  /** The role the schedules start the tasks with. */
  public readonly schedulerRole: Role;
  /** Starts that failed after every retry. */
  public readonly deadLetterQueue: Queue;

  constructor(scope: Construct, id: string, props: FilesSyncJobsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const where = `FilesSyncJobs ${this.node.path}`;
    const cpu = props.cpu ?? 1024;
    const memoryMiB = props.memoryMiB ?? 2048;
    const sample = props.sample ?? 20;
    requireFargateSize(where, cpu, memoryMiB);
    requireWholeNumber(where, 'sample', sample, 1, 10_000);
    if (props.buckets.length === 0) throw new Error(`${where}: buckets must name at least one bucket`);
    const names = new Set<string>();
    for (const b of props.buckets) {
      if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(b.bucketName))
        throw new Error(`${where}: "${b.bucketName}" is not an S3 bucket name`);
      if (names.has(b.bucketName)) throw new Error(`${where}: bucket "${b.bucketName}" is listed twice`);
      names.add(b.bucketName);
      for (const [name, days] of Object.entries(b.lockDays))
        if (!Number.isInteger(days) || days < 1)
          throw new Error(
            `${where}: lockDays.${name} of "${b.bucketName}" must be a whole number of days of at least 1, got ${days}`,
          );
      if (
        !/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/.test(
          b.credentialsSecretArn,
        )
      )
        throw new Error(
          `${where}: credentialsSecretArn of "${b.bucketName}" must be the complete ARN of a Secrets Manager secret (ending in its 6-character suffix), got "${b.credentialsSecretArn}"`,
        );
      if (b.subnetIds.length === 0)
        throw new Error(`${where}: subnetIds of "${b.bucketName}" must not be empty`);
    }

    ({ deadLetterQueue: this.deadLetterQueue, role: this.schedulerRole } = schedulerPlumbing(
      this,
      'SchedulerRole',
      props.key,
      'EventBridge Scheduler starts the Cofre files tasks of the S3-compatible sources',
    ));

    const ecsTasks = () =>
      new ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'ecs', resource: '*' }) },
        },
      });
    const zone = TimeZone.of(props.timeZone ?? 'America/Sao_Paulo');
    const tasks = new Map<string, FilesTask>();
    for (const bucket of props.buckets) {
      const key = pascal(bucket.bucketName);
      const scope = new Construct(this, key);
      const logGroup = new LogGroup(scope, 'LogGroup', {
        retention: props.logRetention ?? RetentionDays.ONE_YEAR,
        encryptionKey: props.key,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      const executionRole = new Role(scope, 'ExecutionRole', {
        assumedBy: ecsTasks(),
        description: `ECS starts the Cofre files task of ${bucket.bucketName}: image, logs, its access key secret`,
      });
      const taskRole = new Role(scope, 'TaskRole', {
        assumedBy: ecsTasks(),
        description: `Cofre files task of ${bucket.bucketName}: copies it into the vault's files/${bucket.bucketName}/`,
      });
      const taskDefinition = new FargateTaskDefinition(scope, 'TaskDefinition', {
        cpu,
        memoryLimitMiB: memoryMiB,
        runtimePlatform: {
          cpuArchitecture: CpuArchitecture.ARM64,
          operatingSystemFamily: OperatingSystemFamily.LINUX,
        },
        taskRole,
        executionRole,
        volumes: [{ name: 'scratch' }],
      });
      const settings: FilesSourceSettings = {
        bucket: bucket.bucketName,
        endpoint: bucket.endpoint,
        region: bucket.region,
        forcePathStyle: bucket.forcePathStyle,
        prefixes: [...bucket.prefixes],
        dataClass: bucket.dataClass,
        lockDays: { differential: bucket.lockDays.differential, full: bucket.lockDays.full },
        sample,
      };
      const secret = Secret.fromSecretCompleteArn(scope, 'CredentialsSecret', bucket.credentialsSecretArn);
      grantSecretKeyDecrypt(executionRole, [bucket.credentialsSecretArn]);
      const container = taskDefinition.addContainer('Container', {
        containerName: DUMP_CONTAINER_NAME,
        image: props.image,
        essential: true,
        readonlyRootFilesystem: true,
        environment: {
          COFRE_FILES_SOURCE: JSON.stringify(settings),
          COFRE_VAULT_URL: `s3://${props.vault.bucket.bucketName}`,
          COFRE_KMS_KEY_ARN: props.vault.key.keyArn,
          COFRE_OBJECT_LOCK_MODE: props.vault.objectLock.mode,
          COFRE_HISTORY_TABLE: props.history.table.tableName,
          AWS_REGION: stack.region,
          // A run holds the previous and the new catalogue in the JavaScript heap (~2 KiB per object).
          // Left to itself, Node caps the heap at about a quarter of the task's memory, so a bucket
          // would fail with "heap out of memory" long before the task's memory is used; the heap may
          // take all but 512 MiB (Node itself, the bundle, the copies in flight).
          NODE_OPTIONS: `--enable-source-maps --max-old-space-size=${filesTaskHeapMiB(memoryMiB)}`,
        },
        secrets: { COFRE_FILES_CREDENTIALS: EcsSecret.fromSecretsManager(secret) },
        logging: LogDrivers.awsLogs({ logGroup, streamPrefix: `files-${bucket.bucketName}` }),
      });
      container.addMountPoints({ containerPath: SCRATCH_PATH, sourceVolume: 'scratch', readOnly: false });
      const prefix = filesVaultPrefixOf(bucket.bucketName);
      props.vault.grantWrite(taskRole, [prefix]);
      props.vault.grantRead(taskRole, [prefix]);
      props.history.grantRecord(taskRole);

      // The scheduler runs exactly this task definition in the cluster, and passes exactly its roles.
      const runTask = [
        new PolicyStatement({
          actions: ['ecs:RunTask'],
          resources: [taskDefinition.taskDefinitionArn],
          conditions: { ArnEquals: { 'ecs:cluster': props.clusterArn } },
        }),
        new PolicyStatement({
          actions: ['iam:PassRole'],
          resources: [taskRole.roleArn, executionRole.roleArn],
          conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
        }),
      ];
      const schedules = {} as Record<FilesJob, Schedule>;
      for (const [job, command] of Object.entries(FILES_JOBS) as [FilesJob, FilesTaskCommand][])
        schedules[job] = new Schedule(scope, job, {
          description: `Cofre ${command} of ${bucket.bucketName}`,
          schedule: ScheduleExpression.expression(props.schedules[job], zone),
          timeWindow: TimeWindow.off(),
          target: new Universal({
            service: 'ecs',
            action: 'runTask',
            policyStatements: runTask,
            role: this.schedulerRole,
            deadLetterQueue: this.deadLetterQueue,
            retryAttempts: 2,
            maxEventAge: Duration.hours(1),
            input: ScheduleTargetInput.fromObject(
              runTaskInput({
                clusterArn: props.clusterArn,
                taskDefinitionArn: taskDefinition.taskDefinitionArn,
                command,
                subnetIds: bucket.subnetIds,
                securityGroupId: bucket.securityGroupId,
              }),
            ),
          }),
        });
      tasks.set(bucket.bucketName, {
        taskDefinition,
        container,
        taskRole,
        executionRole,
        logGroup,
        schedules,
      });
      const inlinePolicy = (who: string) => ({
        id: 'HIPAA.Security-IAMNoInlinePolicy',
        reason: `This policy belongs to the ${who} alone and is generated from grants on named resources; a managed policy would only make it attachable to other principals.`,
      });
      acknowledge(
        taskRole.node.findChild('DefaultPolicy'),
        inlinePolicy(`files task role of ${bucket.bucketName}`),
        {
          id: `AwsSolutions-IAM5[Resource::<${logicalIdOf(props.vault.bucket)}.Arn>/${prefix}*]`,
          reason: `The files task of ${bucket.bucketName} writes, and reads back (catalogues, restore test), only its own vault folder ${prefix}; it may not delete, and Object Lock keeps every version.`,
        },
        {
          id: `AwsSolutions-IAM5[Resource::<${logicalIdOf(props.history.table)}.Arn>/index/*]`,
          reason:
            'The history grant covers the indexes of that one table (recordRun puts items; the indexes are written by DynamoDB itself).',
        },
      );
      acknowledge(
        executionRole.node.findChild('DefaultPolicy'),
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: `ecr:GetAuthorizationToken takes no resource; the execution role of the ${bucket.bucketName} files task may pull only the dump-runner image repository, write only its log group and read only the access key secret of ${bucket.bucketName}.`,
        },
        inlinePolicy(`ECS execution role of the ${bucket.bucketName} files task`),
      );
      acknowledge(taskDefinition, {
        id: 'AwsSolutions-ECS2',
        reason: `The environment holds the settings of ${bucket.bucketName} (endpoint, region, prefixes, lock days) and resource identifiers; its access key comes from Secrets Manager through the secrets field.`,
      });
    }
    this.tasks = tasks;
    acknowledge(this.schedulerRole.node.findChild('DefaultPolicy'), {
      id: 'HIPAA.Security-IAMNoInlinePolicy',
      reason:
        "This policy belongs to the files schedules' role alone: ecs:RunTask of the files task definitions in the Cofre cluster, iam:PassRole of their two roles to ECS, and the dead-letter queue.",
    });
    const isDeadLetterQueue =
      'This queue is itself the dead-letter queue of the files schedules: it keeps, for 14 days, the starts that failed after every retry; a queue behind it would only move them again.';
    acknowledge(
      this.deadLetterQueue,
      { id: 'AwsSolutions-SQS3', reason: isDeadLetterQueue },
      { id: 'Serverless-SQSRedrivePolicy', reason: isDeadLetterQueue },
    );
  }
}

/** The `ecs:RunTask` request a schedule sends (EventBridge Scheduler universal target). */
export function runTaskInput(o: {
  readonly clusterArn: string;
  readonly taskDefinitionArn: string;
  readonly command: FilesTaskCommand;
  readonly subnetIds: readonly string[];
  readonly securityGroupId: string;
}): Record<string, unknown> {
  return {
    Cluster: o.clusterArn,
    TaskDefinition: o.taskDefinitionArn,
    LaunchType: 'FARGATE',
    Count: 1,
    NetworkConfiguration: {
      AwsvpcConfiguration: {
        Subnets: [...o.subnetIds],
        SecurityGroups: [o.securityGroupId],
        AssignPublicIp: 'DISABLED',
      },
    },
    Overrides: {
      ContainerOverrides: [
        { Name: DUMP_CONTAINER_NAME, Environment: [{ Name: 'COFRE_COMMAND', Value: o.command }] },
      ],
    },
  };
}

/** The S3-compatible buckets of a configuration (`buckets[]` with `source`). */
export function syncedBucketsOf(config: CofreConfig): SyncedBucket[] {
  return config.buckets.flatMap((b) =>
    b.source
      ? [
          {
            bucketName: b.bucketName,
            dataClass: b.dataClass,
            prefixes: b.prefixes,
            endpoint: b.source.endpoint,
            region: b.source.region,
            credentialsSecretArn: b.source.credentialsSecretArn,
            forcePathStyle: b.source.forcePathStyle,
            subnetIds: b.source.network.subnetIds,
            securityGroupId: b.source.network.securityGroupId,
            lockDays: filesLockDaysOf(config, b.dataClass),
          },
        ]
      : [],
  );
}

/**
 * Object Lock days of the copies a files run of a bucket of `dataClass` writes: a legal class
 * (`retention.classes`) locks every copy its legal years, so a document deleted or replaced at the
 * source stays in the vault that long; `general` files lock a differential run's copies
 * `retention.filesDifferentialDays` and a full run's `retention.filesFullWeeks` weeks, as the AWS
 * Backup rules of AWS S3 buckets keep theirs.
 */
export function filesLockDaysOf(
  config: CofreConfig,
  dataClass: string,
): { differential: number; full: number } {
  const legal = config.retention.classes[dataClass];
  if (legal) return { differential: daysCoveringYears(legal.years), full: daysCoveringYears(legal.years) };
  return {
    differential: config.retention.filesDifferentialDays,
    full: config.retention.filesFullWeeks * 7,
  };
}

function logicalIdOf(construct: IConstruct): string {
  const element = construct.node.defaultChild ?? construct;
  if (!CfnElement.isCfnElement(element))
    throw new Error(`${construct.node.path} has no CloudFormation resource`);
  return Stack.of(construct).resolve(element.logicalId) as string;
}

/** The JavaScript heap limit of a files task of `memoryMiB`: all but 512 MiB, at least 256 MiB. */
export function filesTaskHeapMiB(memoryMiB: number): number {
  return Math.max(256, memoryMiB - 512);
}
