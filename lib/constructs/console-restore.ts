import path from 'node:path';
import { ArnFormat, CfnElement, CfnOutput, Duration, Stack, Token } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Construct, type IConstruct } from 'constructs';
import type { CofreConfig } from '../config';
import { acknowledge } from '../nag';
import { AslStateMachine, STATE_MACHINES_DIR } from './asl-state-machine';
import type { BackupHistory } from './backup-history';
import { LAMBDAS_DIR, type BackupPipeline } from './backup-pipeline';
import type { BackupVault } from './backup-vault';
import { CofreFunction } from './cofre-function';
import { DUMP_CONTAINER_NAME, vaultPrefixesOf } from './dump-task';
import { grantSecretKeyDecrypt } from './secret-key-grant';

/** The tag every resource a restore creates carries (core/aws/rds-restore.ts RESTORE_TAG). */
const RESTORE_TAG = 'cofre:restore';

/** Lambda environments are limited to 4 KiB; leave room for the other variables. */
const MAX_RESTORE_DATABASES_CHARS = 3500;
/** What an ECS task definition ARN takes in the environment at most (it is a token at synth). */
const TASK_DEFINITION_ARN_CHARS = 160;

/** Properties of {@link ConsoleRestore}. */
export interface ConsoleRestoreProps {
  /** The validated configuration: the databases the console may restore. */
  readonly config: CofreConfig;
  /** The pipeline: its ECS cluster and one dump task per database (the restore runs there), and its key. */
  readonly pipeline: BackupPipeline;
  /** The vault the backups are read from. */
  readonly vault: BackupVault;
  /** The history table (restores are recorded there, kind `restore`). */
  readonly history: BackupHistory;
  /** The notify Lambda (alerts): every restore that started is notified, success or failure. */
  readonly notifyFunction: IFunction;
}

/**
 * Restores from the Step Functions console: the `restore` state machine
 * (state-machines/restore.asl.json) with its two Lambdas (`restore-validate`, `restore-record`). The
 * restore itself runs on the dump task of the database being restored, so it has that task's
 * permissions and nothing more: its own database secret and network, and read access to its own
 * vault prefixes (never delete). The validation Lambda reads only the configured databases' vault
 * prefixes (the catalog) and writes the history; the record Lambda writes the history. The state
 * machine may invoke those two and notify, and run, describe and stop the dump tasks in the cluster.
 * It has no RDS, S3 or Secrets Manager permission of its own.
 */
export class ConsoleRestore extends Construct {
  /** The `restore` state machine. */
  public readonly stateMachine: AslStateMachine;
  /** Validates the console input against the live state. */
  public readonly validateFunction: CofreFunction;
  /** Writes the history record and builds the notification. */
  public readonly recordFunction: CofreFunction;
  /** Starts point-in-time restores (new, tagged resources only) and reports their status. */
  public readonly rdsFunction: CofreFunction;

  constructor(scope: Construct, id: string, props: ConsoleRestoreProps) {
    super(scope, id);
    const { config, pipeline, vault, history } = props;
    const key = pipeline.key.key;
    if (config.databases.length === 0)
      throw new Error(
        `ConsoleRestore ${this.node.path}: config.databases is empty; there is nothing to restore`,
      );
    const databases = config.databases.map((db) => {
      const task = pipeline.dumpTasks.get(db.id);
      if (!task) throw new Error(`ConsoleRestore ${this.node.path}: no dump task for database ${db.id}`);
      return { database: db, taskDefinitionArn: task.taskDefinition.taskDefinitionArn };
    });
    const estimate = JSON.stringify(
      databases.map((d) => ({ ...d, taskDefinitionArn: 'x'.repeat(TASK_DEFINITION_ARN_CHARS) })),
    ).length;
    if (estimate > MAX_RESTORE_DATABASES_CHARS)
      throw new Error(
        `ConsoleRestore ${this.node.path}: the ${databases.length} databases take about ${estimate} characters in COFRE_RESTORE_DATABASES, more than the ${MAX_RESTORE_DATABASES_CHARS} a Lambda environment leaves room for (databases: fewer, or shorter entries)`,
      );

    const fn = (name: string, description: string, environment: Record<string, string>) =>
      new CofreFunction(this, `Fn-${name}`, {
        entry: path.join(LAMBDAS_DIR, name, 'index.ts'),
        description,
        encryptionKey: key,
        environment,
        timeout: Duration.minutes(5),
      });
    this.validateFunction = fn(
      'restore-validate',
      'Cofre: validates a console restore input against the vault and the configuration',
      {
        COFRE_HISTORY_TABLE: history.table.tableName,
        COFRE_VAULT_URL: `s3://${vault.bucket.bucketName}`,
        COFRE_RESTORE_DATABASES: Stack.of(this).toJsonString(databases),
        COFRE_ACCOUNT: Stack.of(this).account,
        COFRE_PRIMARY_REGION: config.regions.primary,
        COFRE_DR_REGION: config.regions.dr,
      },
    );
    this.recordFunction = fn(
      'restore-record',
      'Cofre: history record and notification of a console restore',
      {
        COFRE_HISTORY_TABLE: history.table.tableName,
      },
    );
    this.rdsFunction = fn(
      'restore-rds',
      'Cofre: point-in-time restores into new RDS instances and Aurora clusters, and their status',
      {},
    );
    this.grantRds([config.regions.primary, config.regions.dr]);
    const prefixes = config.databases.flatMap((db) => vaultPrefixesOf(db.id));
    vault.grantRead(this.validateFunction.function, prefixes);
    history.grantRecord(this.validateFunction.function);
    history.grantRecord(this.recordFunction.function);

    this.stateMachine = new AslStateMachine(this, 'StateMachine', {
      definitionFile: path.join(STATE_MACHINES_DIR, 'restore.asl.json'),
      substitutions: {
        RestoreValidateFunctionArn: this.validateFunction.function.functionArn,
        RestoreRecordFunctionArn: this.recordFunction.function.functionArn,
        RestoreRdsFunctionArn: this.rdsFunction.function.functionArn,
        NotifyFunctionArn: props.notifyFunction.functionArn,
        ClusterArn: pipeline.cluster.attrArn,
        ContainerName: DUMP_CONTAINER_NAME,
      },
      logKey: key,
      timeout: Duration.hours(24),
    });
    this.grantIntegrations(props);
    this.grantRestoreTargets(props);
    new CfnOutput(this, 'RestoreStateMachineArn', {
      description: 'State machine restore (start restores from the Step Functions console)',
      value: this.stateMachine.stateMachine.stateMachineArn,
    });
    this.acknowledgeNagFindings(props);
  }

  /**
   * RDS for point-in-time restores. Reading: describe instances and clusters (the source, its window,
   * whether a target name is free). Creating: only with the `cofre:restore` tag in the request and no
   * other tag (aws:RequestTag, aws:TagKeys), so the role can make new, tagged instances and clusters
   * and nothing else; it has no Delete*, Modify*, Stop*, Reboot* or Failover* action at all, so it
   * cannot delete or change the source (or anything else).
   */
  private grantRds(regions: readonly string[]): void {
    const stack = Stack.of(this);
    const arn = (resource: string) =>
      [...new Set(regions)].map((region) =>
        stack.formatArn({
          service: 'rds',
          region,
          resource,
          resourceName: '*',
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      );
    const describe = new PolicyStatement({
      sid: 'DescribeInstancesClustersAndRecoveryPoints',
      actions: [
        'rds:DescribeDBInstances',
        'rds:DescribeDBClusters',
        'rds:DescribeDBSnapshots',
        'rds:DescribeDBClusterSnapshots',
      ],
      resources: ['db', 'cluster', 'snapshot', 'cluster-snapshot'].flatMap(arn),
    });
    this.validateFunction.function.addToRolePolicy(describe);
    const fn = this.rdsFunction.function;
    fn.addToRolePolicy(describe);
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'CreateOnlyNewResourcesTaggedCofreRestore',
        actions: [
          'rds:RestoreDBInstanceToPointInTime',
          'rds:RestoreDBClusterToPointInTime',
          'rds:RestoreDBInstanceFromDBSnapshot',
          'rds:RestoreDBClusterFromSnapshot',
          'rds:CreateDBInstance',
          'rds:AddTagsToResource',
        ],
        resources: [
          'db',
          'cluster',
          'snapshot',
          'cluster-snapshot',
          'subgrp',
          'secgrp',
          'pg',
          'cluster-pg',
          'og',
        ].flatMap(arn),
        conditions: {
          StringLike: { [`aws:RequestTag/${RESTORE_TAG}`]: '?*' },
          'ForAllValues:StringEquals': { 'aws:TagKeys': [RESTORE_TAG] },
        },
      }),
    );
    // An encrypted copy: RDS creates a grant on the source's (or the recovery point's) key for the new
    // resource, on the caller's behalf; only through RDS, only keys of this account.
    fn.addToRolePolicy(
      new PolicyStatement({
        sid: 'LetRdsUseTheKeysOfTheCopies',
        actions: ['kms:CreateGrant', 'kms:DescribeKey'],
        resources: [...new Set(regions)].map((region) =>
          stack.formatArn({ service: 'kms', region, resource: 'key', resourceName: '*' }),
        ),
        conditions: {
          StringEquals: { 'kms:ViaService': [...new Set(regions)].map((r) => `rds.${r}.amazonaws.com`) },
        },
      }),
    );
  }

  /**
   * A database with restore targets (`databases[].restoreTargets`): its dump task reads the secret of
   * a target it restores into, at run time; exactly those secrets, nothing else (GetSecretValue only,
   * no DescribeSecret or ListSecrets). A database without targets gets no Secrets Manager permission
   * here (ECS injects its own secret with the execution role).
   */
  private grantRestoreTargets(props: ConsoleRestoreProps): void {
    for (const db of props.config.databases) {
      if (db.restoreTargets.length === 0) continue;
      const task = props.pipeline.dumpTasks.get(db.id)!;
      task.taskRole.addToPrincipalPolicy(
        new PolicyStatement({
          sid: 'ReadTheRestoreTargetSecrets',
          actions: ['secretsmanager:GetSecretValue'],
          resources: [...new Set(db.restoreTargets.map((t) => t.credentialsSecretArn))],
        }),
      );
      grantSecretKeyDecrypt(
        task.taskRole,
        db.restoreTargets.map((t) => t.credentialsSecretArn),
      );
    }
  }

  /** Exactly what the Task states of restore.asl.json call. */
  private grantIntegrations(props: ConsoleRestoreProps): void {
    const role = this.stateMachine.stateMachine.role;
    const tasks = [...props.pipeline.dumpTasks.values()];
    role.addToPrincipalPolicy(
      new PolicyStatement({
        sid: 'InvokeTheRestoreFunctionsAndNotify',
        actions: ['lambda:InvokeFunction'],
        resources: [
          this.validateFunction.function.functionArn,
          this.recordFunction.function.functionArn,
          this.rdsFunction.function.functionArn,
          props.notifyFunction.functionArn,
        ],
      }),
    );
    props.pipeline.grantRunDumpTasks(role, tasks);
  }

  private logicalIdOf(construct: IConstruct): string {
    const element = construct.node.defaultChild ?? construct;
    if (!CfnElement.isCfnElement(element))
      throw new Error(`${construct.node.path} has no CloudFormation resource`);
    return Stack.of(this).resolve(element.logicalId) as string;
  }

  private acknowledgeNagFindings(props: ConsoleRestoreProps): void {
    const stack = Stack.of(this);
    const inlinePolicy = (who: string) => ({
      id: 'HIPAA.Security-IAMNoInlinePolicy',
      reason: `This policy belongs to the ${who} alone and is generated from grants on named resources; a managed policy would only make it attachable to other principals.`,
    });
    const functions: [string, CofreFunction, string][] = [
      [
        'restore-rds',
        this.rdsFunction,
        'creates only new RDS resources tagged cofre:restore and describes them',
      ],
      [
        'restore-validate',
        this.validateFunction,
        'reads the catalog of the configured databases and writes the running record',
      ],
      ['restore-record', this.recordFunction, 'writes the final restore record'],
    ];
    for (const [name, fn, what] of functions) {
      const role = fn.function.role!;
      acknowledge(role, {
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        reason: `CDK attaches AWSLambdaBasicExecutionRole so the ${name} Lambda can write its logs: it allows only creating log streams and putting log events, into the function's explicit KMS-encrypted log group.`,
      });
      const policy = role.node.findChild('DefaultPolicy');
      acknowledge(
        policy,
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason: `Only the X-Ray actions of active tracing (xray:PutTraceSegments, xray:PutTelemetryRecords), which take no resource, are on *; the ${name} Lambda (${what}) names the table, bucket prefixes and keys.`,
        },
        ...(name === 'restore-rds'
          ? []
          : [
              {
                id: `AwsSolutions-IAM5[Resource::<${this.logicalIdOf(props.history.table)}.Arn>/index/*]`,
                reason: `The history grants cover the table's global secondary indexes; the ${name} Lambda only puts and updates restore records, and index/* names only the indexes of that one table.`,
              },
            ]),
        inlinePolicy(`${name} Lambda role`),
      );
      const dlq = `The restore state machine invokes the ${name} Lambda synchronously (lambda:invoke waits for the result), so a failure becomes a state error that is shown in the console and notified; a DLQ only receives failed asynchronous events.`;
      acknowledge(
        fn.function,
        { id: 'HIPAA.Security-LambdaDLQ', reason: dlq },
        { id: 'Serverless-LambdaDLQ', reason: dlq },
        {
          id: 'HIPAA.Security-LambdaInsideVPC',
          reason: `The ${name} Lambda calls only AWS APIs (S3, KMS, DynamoDB, RDS) over TLS with IAM authorization and never connects to a database (the restore task checks the target on the database's network); a VPC would add NAT or endpoints without narrowing what it can reach.`,
        },
      );
    }
    acknowledge(
      this.validateFunction.function.role!.node.findChild('DefaultPolicy'),
      ...props.config.databases.flatMap((db) =>
        vaultPrefixesOf(db.id).map((prefix) => ({
          id: `AwsSolutions-IAM5[Resource::<${this.logicalIdOf(props.vault.bucket)}.Arn>/${prefix}*]`,
          reason: `The restore-validate Lambda reads the manifests under ${prefix} to find the backup a console restore of ${db.id} names (and to tell a backup of another database from one of this one); it may not write, tag or delete.`,
        })),
      ),
    );
    const partition = Token.isUnresolved(stack.partition) ? '<AWS::Partition>' : stack.partition;
    const regions = [...new Set([props.config.regions.primary, props.config.regions.dr])];
    const rdsArns = (resource: string) =>
      regions.map((region) => `arn:${partition}:rds:${region}:${stack.account}:${resource}:*`);
    const rdsReason = (who: string) =>
      `${who} must name a restored copy before it exists and reads sources and recovery points (primary and DR region) by identifier: describe is read-only, and creating (point-in-time or snapshot restore, the Aurora cluster's first instance, tagging them) is allowed only with the cofre:restore tag and no other tag; no action can delete or modify an instance or cluster.`;
    for (const [fn, who] of [
      [this.rdsFunction, 'The restore-rds Lambda'],
      [this.validateFunction, 'The restore-validate Lambda'],
    ] as const)
      acknowledge(
        fn.function.role!.node.findChild('DefaultPolicy'),
        ...(fn === this.rdsFunction
          ? ['db', 'cluster', 'snapshot', 'cluster-snapshot', 'subgrp', 'secgrp', 'pg', 'cluster-pg', 'og']
          : ['db', 'cluster', 'snapshot', 'cluster-snapshot']
        )
          .flatMap(rdsArns)
          .map((r) => ({ id: `AwsSolutions-IAM5[Resource::${r}]`, reason: rdsReason(who) })),
        ...(fn === this.rdsFunction
          ? regions.map((region) => ({
              id: `AwsSolutions-IAM5[Resource::arn:${partition}:kms:${region}:${stack.account}:key/*]`,
              reason: `RDS creates a grant on the KMS key of the source or recovery point (not known at synth) for the restored copy; the restore-rds Lambda may do it only through RDS in ${region} (kms:ViaService), on keys of this account.`,
            }))
          : []),
      );
    const policy = this.stateMachine.stateMachine.role.node.findChild('DefaultPolicy');
    acknowledge(
      policy,
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'The restore state machine logs ALL to its own encrypted log group and traces with X-Ray: the log delivery and X-Ray APIs take no resource. Its Lambda, ECS and PassRole grants name their resources.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:aws:ecs:${stack.region}:${stack.account}:task/<${this.logicalIdOf(props.pipeline.cluster)}>/*]`,
        reason:
          'Task ARNs are not known before RunTask: the restore state machine may tag (at RunTask only), describe and stop only tasks of the Cofre cluster, which runs nothing but the dump tasks.',
      },
      inlinePolicy('restore state machine role'),
    );
  }
}
