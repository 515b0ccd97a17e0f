import { RemovalPolicy, Stack } from 'aws-cdk-lib';
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
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledge } from '../nag';
import type { BackupHistory } from './backup-history';
import type { BackupVault } from './backup-vault';
import { grantSecretKeyDecrypt } from './secret-key-grant';
import { requireFargateSize, requireWholeNumber } from './prop-checks';

/** Name of the dump-runner container in every task definition (`${ContainerName}` in the ASL files). */
export const DUMP_CONTAINER_NAME = 'dump-runner';

/** Where the container's scratch volume is mounted (the only writable path: the root filesystem is read-only). */
export const SCRATCH_PATH = '/tmp';

/**
 * The vault key prefixes a database's task writes and reads: its full backups
 * (`full/<id>/…`, `core/catalog/catalog.ts`) and its per-tenant exports (`tenants/<id>/…`).
 */
export function vaultPrefixesOf(databaseId: string): string[] {
  const id = encodeURIComponent(databaseId);
  return [`full/${id}/`, `tenants/${id}/`];
}

/** Properties of {@link DumpTask}. */
export interface DumpTaskProps {
  /** Id of the database (`databases[].id`): names the log stream prefix and the vault prefixes. */
  readonly databaseId: string;
  /** Complete ARN of the database's Secrets Manager secret (`databases[].credentialsSecretArn`), injected as `COFRE_DB_SECRET`. */
  readonly credentialsSecretArn: string;
  /** The dump-runner image (`tasks/dump-runner`, built by `cdk deploy`). */
  readonly image: ContainerImage;
  /** The vault the task writes backups to (and reads its own back from, to verify). */
  readonly vault: BackupVault;
  /** The backup history table (named in the environment; the task itself reports through the state machine). */
  readonly history: BackupHistory;
  /** KMS key that encrypts the task's log group. */
  readonly logKey: IKey;
  /**
   * CPU in vCPU units (1024 = 1 vCPU).
   * @default 2048
   */
  readonly cpu?: number;
  /**
   * Memory in MiB; a size Fargate allows for `cpu`.
   * @default 4096
   */
  readonly memoryMiB?: number;
  /**
   * Ephemeral storage in GiB (21–200), the writable `/tmp` where a restore may spill a dump.
   * @default 50
   */
  readonly ephemeralStorageGiB?: number;
  /**
   * Days the log group keeps the task's logs.
   * @default RetentionDays.ONE_YEAR
   */
  readonly logRetention?: RetentionDays;
}

/**
 * The Fargate task that dumps, exports and deep-verifies one database: ARM64 (Graviton), read-only
 * root filesystem with a scratch volume on `/tmp` (backed by the task's ephemeral storage), the
 * database secret injected by ECS as `COFRE_DB_SECRET`, `awslogs` into an explicit KMS-encrypted log
 * group kept a year and `RETAIN`ed.
 *
 * Two roles, each with only what it needs. The execution role (used by ECS before the container
 * starts) pulls the image, writes the log group and reads this database's secret, nothing else. The
 * task role (the container's credentials) may write and read back only this database's prefixes of
 * the vault (never delete), use the vault key to encrypt new data keys and to decrypt (the backup
 * reads earlier manifests to pick the tier, and deep verification decrypts artifacts to re-hash
 * them), and answer the state machine (`states:SendTask*`, which has no resource-level permissions).
 *
 * Network placement (subnets, security group) is not part of the task definition: the state machine
 * passes `databases[].network` from the execution input to `ecs:RunTask`.
 */
export class DumpTask extends Construct {
  /** The task definition (its ARN goes into the execution input as `taskDefinitionArn`). */
  public readonly taskDefinition: FargateTaskDefinition;
  /** The dump-runner container. */
  public readonly container: ContainerDefinition;
  /** The container's credentials. */
  public readonly taskRole: Role;
  /** What ECS uses to start the task: image pull, logs, the database secret. */
  public readonly executionRole: Role;
  /** The task's log group. */
  public readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: DumpTaskProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const cpu = props.cpu ?? 2048;
    const memoryMiB = props.memoryMiB ?? 4096;
    const ephemeralStorageGiB = props.ephemeralStorageGiB ?? 50;
    this.validate(props, cpu, memoryMiB, ephemeralStorageGiB);

    this.logGroup = new LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? RetentionDays.ONE_YEAR,
      encryptionKey: props.logKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    // Only ECS tasks of this account may assume the roles (confused-deputy protection).
    const ecsTasks = () =>
      new ServicePrincipal('ecs-tasks.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': stack.account },
          ArnLike: { 'aws:SourceArn': stack.formatArn({ service: 'ecs', resource: '*' }) },
        },
      });
    this.executionRole = new Role(this, 'ExecutionRole', {
      assumedBy: ecsTasks(),
      description: `ECS starts the Cofre dump task of ${props.databaseId}: image, logs, its database secret`,
    });
    this.taskRole = new Role(this, 'TaskRole', {
      assumedBy: ecsTasks(),
      description: `Cofre dump task of ${props.databaseId}: writes and verifies its backups in the vault`,
    });

    this.taskDefinition = new FargateTaskDefinition(this, 'TaskDefinition', {
      cpu,
      memoryLimitMiB: memoryMiB,
      ephemeralStorageGiB,
      runtimePlatform: {
        cpuArchitecture: CpuArchitecture.ARM64,
        operatingSystemFamily: OperatingSystemFamily.LINUX,
      },
      taskRole: this.taskRole,
      executionRole: this.executionRole,
      volumes: [{ name: 'scratch' }],
    });

    const secret = Secret.fromSecretCompleteArn(this, 'DatabaseSecret', props.credentialsSecretArn);
    // ECS reads it with the execution role at start; a secret under a customer managed key needs its key.
    grantSecretKeyDecrypt(this.executionRole, [props.credentialsSecretArn]);
    this.container = this.taskDefinition.addContainer('Container', {
      containerName: DUMP_CONTAINER_NAME,
      image: props.image,
      essential: true,
      readonlyRootFilesystem: true,
      environment: {
        COFRE_VAULT_URL: `s3://${props.vault.bucket.bucketName}`,
        COFRE_KMS_KEY_ARN: props.vault.key.keyArn,
        // The writer's Object Lock mode is configuration, never detected (the role may not read it).
        COFRE_OBJECT_LOCK_MODE: props.vault.objectLock.mode,
        COFRE_HISTORY_TABLE: props.history.table.tableName,
        AWS_REGION: stack.region,
      },
      // The whole secret JSON (username, password, host, ...) as one variable; ECS reads it at start.
      secrets: { COFRE_DB_SECRET: EcsSecret.fromSecretsManager(secret) },
      logging: LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: props.databaseId }),
    });
    this.container.addMountPoints({ containerPath: SCRATCH_PATH, sourceVolume: 'scratch', readOnly: false });

    const prefixes = vaultPrefixesOf(props.databaseId);
    props.vault.grantWrite(this.taskRole, prefixes);
    props.vault.grantRead(this.taskRole, prefixes);
    // The task reports its outcome and heartbeats with the task token it gets in COFRE_TASK_TOKEN.
    // These actions have no resource-level permissions: the token itself names the execution.
    this.taskRole.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
        resources: ['*'],
      }),
    );
    this.acknowledgeNagFindings(props);
  }

  private validate(props: DumpTaskProps, cpu: number, memoryMiB: number, ephemeralStorageGiB: number): void {
    const where = `DumpTask ${this.node.path}`;
    if (!/^[a-z][a-z0-9-]{0,39}$/.test(props.databaseId))
      throw new Error(
        `${where}: databaseId must be lowercase letters, digits and "-" (at most 40), got "${props.databaseId}"`,
      );
    if (
      !/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/.test(
        props.credentialsSecretArn,
      )
    )
      throw new Error(
        `${where}: credentialsSecretArn must be the complete ARN of a Secrets Manager secret (ending in its 6-character suffix), got "${props.credentialsSecretArn}"`,
      );
    requireFargateSize(where, cpu, memoryMiB);
    requireWholeNumber(where, 'ephemeralStorageGiB', ephemeralStorageGiB, 21, 200);
  }

  private acknowledgeNagFindings(props: DumpTaskProps): void {
    acknowledge(this.taskDefinition, {
      id: 'AwsSolutions-ECS2',
      reason: `The environment holds only resource identifiers (vault URL, vault key ARN, history table name, region); the credentials of ${props.databaseId} come from Secrets Manager through the secrets field.`,
    });
    acknowledge(this.taskRole.node.findChild('DefaultPolicy'), {
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: `Only states:SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat are on *: they take no resource (the task token names the execution). The vault access of ${props.databaseId} names its prefixes.`,
    });
  }
}
