import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { CofreConfig } from '../config';
import { BackupHistory } from '../constructs/backup-history';
import { BackupPipeline, PIPELINE_JOBS } from '../constructs/backup-pipeline';
import { alertsPropsFromConfig, CofreAlerts } from '../constructs/alerts';
import { BackupVault } from '../constructs/backup-vault';
import { awsBucketsOf, BucketBackups, bucketRetentionDaysOf } from '../constructs/bucket-backups';
import { BucketRestoreTests } from '../constructs/bucket-restore-tests';
import { FilesSyncJobs, syncedBucketsOf } from '../constructs/files-sync-jobs';
import {
  DatabaseSnapshots,
  SnapshotVault,
  snapshotDatabasesOf,
  snapshotVaultLockOf,
} from '../constructs/database-snapshots';
import { ConfigSnapshots } from '../constructs/config-snapshots';
import { restoreTestedInstancesOf, SnapshotRestoreTests } from '../constructs/snapshot-restore-tests';
import { ConsoleRestore } from '../constructs/console-restore';
import { RestoreStoppedEvents } from '../constructs/restore-stopped';
import type { CofreDrStack } from './dr-stack';

/** Properties of {@link CofrePrimaryStack}. */
export interface CofrePrimaryStackProps extends StackProps {
  /** The validated deployment configuration. */
  readonly config: CofreConfig;
  /** The DR-region stack whose resources (replica vault, key) this stack references. */
  readonly drStack: CofreDrStack;
}

/**
 * The primary region: vault, pipeline (schedules, state machines, tasks, Lambdas), history,
 * alerts and dashboard. References the DR stack across regions.
 */
export class CofrePrimaryStack extends Stack {
  public readonly config: CofreConfig;
  /** The primary vault, replicated to the DR vault. */
  public readonly vault: BackupVault;
  /** The backup history (audit log) table. */
  public readonly history: BackupHistory;
  /** Alerts: topics, notify / PagerDuty / freshness / monthly-report Lambdas, alarms, dashboard. */
  public readonly alerts: CofreAlerts;
  /** Orchestration: dump tasks, pipeline Lambdas, state machines, schedules. */
  public readonly pipeline: BackupPipeline;
  /** AWS Backup of the RDS instances and Aurora clusters (when the config has any). */
  public readonly snapshots?: { readonly vault: SnapshotVault; readonly plans: DatabaseSnapshots };
  /** The monthly AWS Backup restore test of the RDS instances (when the config has any). */
  public readonly snapshotRestoreTests?: SnapshotRestoreTests;
  /** AWS Backup of the application buckets (when the config has any). */
  public readonly bucketBackups?: BucketBackups;
  /** The weekly AWS Backup restore test of the AWS S3 buckets, when there are any. */
  public readonly bucketRestoreTests?: BucketRestoreTests;
  /** The files tasks and schedules of the S3-compatible buckets (`buckets[].source`), when there are any. */
  public readonly filesSyncJobs?: FilesSyncJobs;
  /** The `restore` state machine, started from the Step Functions console (when the config has databases). */
  public readonly consoleRestore?: ConsoleRestore;
  /** Marks stopped / timed-out console restores failed (their Catch does not run). */
  public readonly restoreStopped?: RestoreStoppedEvents;
  /** Configuration snapshots, when `configuration` names secrets or parameter paths. */
  public readonly configSnapshots?: ConfigSnapshots;

  constructor(scope: Construct, id: string, props: CofrePrimaryStackProps) {
    super(scope, id, props);
    this.config = props.config;
    this.addStackDependency(props.drStack, 'the DR vault must exist before replication to it is configured');
    this.vault = new BackupVault(this, 'Vault', {
      retention: props.config.retention,
      objectLock: props.config.objectLock,
      breakGlassRoleArn: props.config.breakGlassRoleArn,
      replicateTo: { destination: props.drStack.vault, storageClass: props.config.replication.storageClass },
    });
    this.history = new BackupHistory(this, 'History');
    const snapshotDatabases = snapshotDatabasesOf(props.config);
    const buckets = awsBucketsOf(props.config);
    const snapshotVault =
      snapshotDatabases.length > 0 || buckets.length > 0
        ? new SnapshotVault(this, 'SnapshotVault', {
            lock: snapshotVaultLockOf(props.config, bucketRetentionDaysOf(props.config)),
          })
        : undefined;
    if (snapshotVault && !props.drStack.snapshotVault)
      throw new Error('CofrePrimary: the DR stack has no snapshot vault for the AWS Backup copies');
    if (buckets.length > 0)
      this.bucketBackups = new BucketBackups(this, 'BucketBackups', {
        buckets,
        vault: snapshotVault!,
        drVault: props.drStack.snapshotVault!,
        continuousDays: props.config.snapshots.continuousDays,
        differentialSchedule: props.config.schedules.filesDifferential,
        fullSchedule: props.config.schedules.filesFull,
        differentialDays: props.config.retention.filesDifferentialDays,
        fullWeeks: props.config.retention.filesFullWeeks,
        timeZone: props.config.timeZone,
        retention: props.config.retention,
      });
    if (snapshotDatabases.length > 0) {
      const vault = snapshotVault!;
      const plans = new DatabaseSnapshots(this, 'Snapshots', {
        databases: snapshotDatabases,
        vault,
        drVault: props.drStack.snapshotVault!,
        continuousDays: props.config.snapshots.continuousDays,
        snapshotDays: props.config.retention.rdsSnapshotDays,
        schedule: props.config.schedules.rdsSnapshot,
        timeZone: props.config.timeZone,
        retention: props.config.retention,
      });
      this.snapshots = { vault, plans };
    }
    if (this.bucketBackups)
      new CfnOutput(this, 'BucketBackupRoleArn', {
        description:
          'Role AWS Backup backs up and restores the application buckets with (cofre files restore --role-arn)',
        value: this.bucketBackups.role.roleArn,
      });
    if (snapshotVault)
      new CfnOutput(this, 'SnapshotVaultName', {
        description: 'AWS Backup vault with the RDS/Aurora and application bucket recovery points',
        value: snapshotVault.vault.backupVaultName,
      });
    this.alerts = new CofreAlerts(
      this,
      'Alerts',
      alertsPropsFromConfig(props.config, {
        vault: this.vault,
        history: this.history,
        replicaBucketName: props.drStack.vault.bucket.bucketName,
        ...(this.snapshots ? { snapshotResourceArns: this.snapshots.plans.resourceArns } : {}),
        ...(this.bucketBackups ? { bucketArns: this.bucketBackups.bucketArns } : {}),
      }),
    );
    const restoreTested = this.snapshots
      ? restoreTestedInstancesOf(props.config, this.snapshots.plans.resourceArns)
      : [];
    if (this.snapshots && restoreTested.length > 0)
      this.snapshotRestoreTests = new SnapshotRestoreTests(this, 'SnapshotRestoreTests', {
        databases: restoreTested,
        snapshotVault: this.snapshots.vault,
        vault: this.vault,
        history: this.history,
        alerts: this.alerts,
        schedule: props.config.schedules.restoreTest,
        timeZone: props.config.timeZone,
        notifyOnSuccess: props.config.alerts.notifyOnSuccess,
      });
    if (this.bucketBackups)
      this.bucketRestoreTests = new BucketRestoreTests(this, 'BucketRestoreTests', {
        buckets: [...this.bucketBackups.bucketArns].map(([bucketName, resourceArn]) => ({
          bucketName,
          resourceArn,
        })),
        snapshotVault: snapshotVault!,
        restoreRole: this.bucketBackups.role,
        history: this.history,
        alerts: this.alerts,
        schedule: props.config.schedules.filesRestoreTest,
        timeZone: props.config.timeZone,
        notifyOnSuccess: props.config.alerts.notifyOnSuccess,
      });
    this.pipeline = new BackupPipeline(this, 'Pipeline', {
      config: props.config,
      vault: this.vault,
      history: this.history,
      notifyFunction: this.alerts.notifyFunction.function,
    });
    this.pipeline.addAlarms(this.alerts);
    const syncedBuckets = syncedBucketsOf(props.config);
    if (syncedBuckets.length > 0)
      this.filesSyncJobs = new FilesSyncJobs(this, 'FilesSyncJobs', {
        buckets: syncedBuckets,
        clusterArn: this.pipeline.cluster.attrArn,
        image: this.pipeline.image,
        vault: this.vault,
        history: this.history,
        key: this.pipeline.key.key,
        schedules: {
          Differential: props.config.schedules.filesDifferential,
          Full: props.config.schedules.filesFull,
          RestoreTest: props.config.schedules.filesRestoreTest,
        },
        timeZone: props.config.timeZone,
        cpu: props.config.filesTask.cpu,
        memoryMiB: props.config.filesTask.memoryMiB,
      });
    if (props.config.databases.length > 0) {
      this.consoleRestore = new ConsoleRestore(this, 'ConsoleRestore', {
        config: props.config,
        pipeline: this.pipeline,
        vault: this.vault,
        history: this.history,
        notifyFunction: this.alerts.notifyFunction.function,
      });
      this.restoreStopped = new RestoreStoppedEvents(this, 'RestoreStopped', {
        stateMachine: this.consoleRestore.stateMachine.stateMachine,
        history: this.history,
        alerts: this.alerts,
      });
    }
    const { secretArns, ssmParameterPaths, dataClass } = props.config.configuration;
    if (secretArns.length || ssmParameterPaths.length)
      this.configSnapshots = new ConfigSnapshots(this, 'ConfigSnapshots', {
        vault: this.vault,
        history: this.history,
        alerts: this.alerts,
        encryptionKey: this.alerts.key,
        secretArns,
        parameterPaths: ssmParameterPaths,
        dataClass,
        retention: {
          days: props.config.retention.configSnapshotDays,
          classes: props.config.retention.classes,
        },
        weeklySchedule: props.config.schedules.configSnapshot,
        timeZone: props.config.timeZone,
      });
    this.alerts.alarmOnTaskFailures(this.pipeline.cluster.attrArn);
    for (const job of PIPELINE_JOBS) {
      const name = job.replace(/(^|-)([a-z])/g, (_, _dash: string, c: string) => c.toUpperCase());
      new CfnOutput(this, `${name}StateMachineArn`, {
        description: `State machine ${job}`,
        value: this.pipeline.stateMachines[job].stateMachine.stateMachineArn,
      });
    }
    new CfnOutput(this, 'DumpClusterArn', {
      description: 'ECS cluster of the dump tasks',
      value: this.pipeline.cluster.attrArn,
    });
    new CfnOutput(this, 'VaultBucketName', {
      description: 'Primary vault bucket',
      value: this.vault.bucket.bucketName,
    });
    new CfnOutput(this, 'VaultKeyArn', {
      description: 'Primary vault KMS key',
      value: this.vault.key.keyArn,
    });
    new CfnOutput(this, 'VaultAccessLogBucketName', {
      description: 'Server access logs of the primary vault',
      value: this.vault.logBucket.bucketName,
    });
    new CfnOutput(this, 'HistoryTableName', {
      description: 'Backup history (audit log) table',
      value: this.history.table.tableName,
    });
    new CfnOutput(this, 'HistoryKeyArn', {
      description: 'KMS key of the history table',
      value: this.history.key.keyArn,
    });
  }
}
