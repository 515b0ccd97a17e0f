import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { CofreConfig } from '../config';
import { BackupVault } from '../constructs/backup-vault';
import { addConfigSnapshotLifecycle } from '../constructs/config-snapshots';
import { awsBucketsOf, bucketRetentionDaysOf } from '../constructs/bucket-backups';
import { SnapshotVault, snapshotDatabasesOf, snapshotVaultLockOf } from '../constructs/database-snapshots';

/** Properties of {@link CofreDrStack}. */
export interface CofreDrStackProps extends StackProps {
  /** The validated deployment configuration. */
  readonly config: CofreConfig;
}

/**
 * The disaster-recovery region: receives the replicated vault (with its own KMS key, so an
 * incident with the primary key cannot lock the DR copies). Deployed before the primary stack.
 */
export class CofreDrStack extends Stack {
  public readonly config: CofreConfig;
  /** The DR vault: same protections and lifecycle as the primary, receives its replicas. */
  public readonly vault: BackupVault;
  /** The AWS Backup vault that receives the copies of RDS/Aurora recovery points (when the config has any). */
  public readonly snapshotVault?: SnapshotVault;

  constructor(scope: Construct, id: string, props: CofreDrStackProps) {
    super(scope, id, props);
    this.config = props.config;
    this.vault = new BackupVault(this, 'Vault', {
      retention: props.config.retention,
      objectLock: props.config.objectLock,
      breakGlassRoleArn: props.config.breakGlassRoleArn,
      acceptReplication: true,
    });
    // Replication brings the configuration snapshots (config/) here with their tags: the same expiry.
    const { secretArns, ssmParameterPaths } = props.config.configuration;
    if (secretArns.length || ssmParameterPaths.length)
      addConfigSnapshotLifecycle(this.vault.bucket, {
        days: props.config.retention.configSnapshotDays,
        classes: props.config.retention.classes,
      });
    if (snapshotDatabasesOf(props.config).length > 0 || awsBucketsOf(props.config).length > 0) {
      this.snapshotVault = new SnapshotVault(this, 'SnapshotVault', {
        lock: snapshotVaultLockOf(props.config, bucketRetentionDaysOf(props.config)),
      });
      new CfnOutput(this, 'SnapshotVaultName', {
        description:
          'AWS Backup vault with the DR-region copies of the RDS/Aurora and application bucket recovery points',
        value: this.snapshotVault.vault.backupVaultName,
      });
    }
    new CfnOutput(this, 'VaultBucketName', {
      description: 'DR vault bucket (replicas of the primary vault)',
      value: this.vault.bucket.bucketName,
    });
    new CfnOutput(this, 'VaultKeyArn', { description: 'DR vault KMS key', value: this.vault.key.keyArn });
    new CfnOutput(this, 'VaultAccessLogBucketName', {
      description: 'Server access logs of the DR vault',
      value: this.vault.logBucket.bucketName,
    });
    new CfnOutput(this, 'ReplicationRoleArn', {
      description: 'Role S3 replication assumes to copy the primary vault here',
      value: this.vault.replicationRole!.roleArn,
    });
  }
}
