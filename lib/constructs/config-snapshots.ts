import path from 'node:path';
import { Arn, ArnFormat, CfnElement, Duration, Stack, TimeZone } from 'aws-cdk-lib';
import { Rule, type EventPattern } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import type { Bucket } from 'aws-cdk-lib/aws-s3';
import { Schedule, ScheduleExpression, ScheduleTargetInput, TimeWindow } from 'aws-cdk-lib/aws-scheduler';
import { LambdaInvoke } from 'aws-cdk-lib/aws-scheduler-targets';
import { Construct } from 'constructs';
// Pure policy code only: event names and retention shared with the runtime.
import {
  CLOUDTRAIL_DETAIL_TYPE,
  PARAMETER_DETAIL_TYPE,
  PARAMETER_EVENT_SOURCE,
  SECRET_EVENT_NAMES,
  SECRET_EVENT_SOURCE,
} from '../../core/config/events';
import { CONFIG_TIER, configRetentionDays, type ConfigRetention } from '../../core/config/types';
import { CLASS_TAG, GENERAL_CLASS, TIER_TAG } from '../../core/policy/retention';
import { acknowledge } from '../nag';
import type { CofreAlerts } from './alerts';
import type { BackupHistory } from './backup-history';
import type { BackupVault } from './backup-vault';
import { CofreFunction } from './cofre-function';

const LAMBDA_ENTRY = path.join(__dirname, '..', '..', 'lambdas', 'config-snapshot', 'index.ts');
/** The vault prefix the snapshot function may write (and nothing else). */
export const CONFIG_VAULT_PREFIX = 'config/';

/** Properties of {@link ConfigSnapshots}. */
export interface ConfigSnapshotsProps {
  /** The vault the snapshots are written to (under `config/` only). */
  readonly vault: BackupVault;
  /** The history the weekly snapshot records itself in (kind `config`). */
  readonly history: BackupHistory;
  /** Alerts: the function's errors, its dead letters and the snapshot's age alarm. */
  readonly alerts: CofreAlerts;
  /** KMS key of the function's logs, environment and dead-letter queue. */
  readonly encryptionKey: IKey;
  /**
   * Secrets Manager secrets: full or partial ARNs, or ARNs ending in `*` (a name prefix).
   * @default [] (no secret is read)
   */
  readonly secretArns?: readonly string[];
  /**
   * SSM parameter paths, each covering itself and everything below it.
   * @default [] (no parameter is read)
   */
  readonly parameterPaths?: readonly string[];
  /**
   * Data class of the snapshots: `general` keeps them `retention.days`, another class its legal years.
   * @default 'general'
   */
  readonly dataClass?: string;
  /** How long snapshots are kept (Object Lock and the lifecycle rule agree). */
  readonly retention: ConfigRetention;
  /**
   * The weekly full snapshot, an EventBridge Scheduler expression in `timeZone`.
   * @default 'cron(0 3 ? * SUN *)'
   */
  readonly weeklySchedule?: string;
  /**
   * Time zone of `weeklySchedule`.
   * @default 'America/Sao_Paulo'
   */
  readonly timeZone?: string;
  /**
   * Hours after which the last good weekly snapshot is stale (the alarm's threshold).
   * @default 169 (a week and an hour)
   */
  readonly maxAgeHours?: number;
}

/**
 * Configuration snapshots: EventBridge rules for Secrets Manager API calls (CloudTrail) and Parameter
 * Store changes, and a weekly EventBridge Scheduler schedule, all invoking one Lambda that writes
 * encrypted snapshots under the vault's `config/`; a lifecycle rule per data class expiring them when
 * their Object Lock ends; alarms on the function, its dead letters and the weekly snapshot's age.
 *
 * Least privilege: the function reads only the configured secrets and parameters (and the KMS keys
 * that encrypt them only through Secrets Manager and SSM), and writes only `config/` in the vault.
 */
export class ConfigSnapshots extends Construct {
  /** The snapshot function. */
  public readonly snapshotFunction: CofreFunction;
  /** The rule for Secrets Manager API calls (present when secrets are configured). */
  public readonly secretRule?: Rule;
  /** The rule for Parameter Store changes (present when parameter paths are configured). */
  public readonly parameterRule?: Rule;
  /** The weekly full snapshot. */
  public readonly weeklySchedule: Schedule;

  constructor(scope: Construct, id: string, props: ConfigSnapshotsProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const secretArns = props.secretArns ?? [];
    const parameterPaths = props.parameterPaths ?? [];
    const dataClass = props.dataClass ?? GENERAL_CLASS;
    if (secretArns.length === 0 && parameterPaths.length === 0)
      throw new Error(
        `ConfigSnapshots ${this.node.path}: secretArns or parameterPaths must name at least one secret or parameter path`,
      );
    for (const p of parameterPaths)
      if (!p.startsWith('/'))
        throw new Error(`ConfigSnapshots ${this.node.path}: parameterPaths must start with "/", got "${p}"`);
    if (dataClass !== GENERAL_CLASS && !(dataClass in props.retention.classes))
      throw new Error(
        `ConfigSnapshots ${this.node.path}: dataClass must be "general" or a class of retention.classes, got "${dataClass}"`,
      );
    const maxAgeHours = props.maxAgeHours ?? 7 * 24 + 1;

    this.snapshotFunction = new CofreFunction(this, 'Snapshot', {
      entry: LAMBDA_ENTRY,
      description:
        'Cofre: encrypted snapshots of configured secrets and SSM parameters (on change and weekly)',
      encryptionKey: props.encryptionKey,
      asyncInvocation: true,
      timeout: Duration.minutes(10),
      memorySize: 512,
      // One at a time is enough (changes are rare) and keeps a burst of 300 changes from throttling SSM.
      reservedConcurrentExecutions: 2,
      environment: {
        COFRE_VAULT_URL: `s3://${props.vault.bucket.bucketName}`,
        COFRE_KMS_KEY_ARN: props.vault.key.keyArn,
        COFRE_OBJECT_LOCK_MODE: props.vault.objectLock.mode,
        COFRE_HISTORY_TABLE: props.history.table.tableName,
        COFRE_CONFIG_TARGETS: JSON.stringify({ secrets: secretArns, parameterPaths, dataClass }),
        COFRE_CONFIG_RETENTION: JSON.stringify(props.retention),
      },
    });
    const fn = this.snapshotFunction.function;

    // Vault: write config/ only; HeadObject on config/ (idempotency check and the lock read-back).
    props.vault.grantWrite(fn, [CONFIG_VAULT_PREFIX]);
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['s3:GetObject', 's3:GetObjectRetention'],
        resources: [props.vault.bucket.arnForObjects(`${CONFIG_VAULT_PREFIX}*`)],
      }),
    );
    props.history.grantRecord(fn);

    // Secrets: read only the configured ones.
    if (secretArns.length) {
      fn.addToRolePolicy(
        new PolicyStatement({
          actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
          resources: secretArns.map((arn) =>
            arn.endsWith('*') ? arn : /-[A-Za-z0-9]{6}$/.test(arn) ? arn : `${arn}-??????`,
          ),
        }),
      );
      // Name prefixes (`…*`) are found by listing (metadata only); ListSecrets has no resource scope.
      if (secretArns.some((arn) => arn.endsWith('*')))
        fn.addToRolePolicy(
          new PolicyStatement({ actions: ['secretsmanager:ListSecrets'], resources: ['*'] }),
        );
    }
    if (parameterPaths.length) {
      const parameterArn = (p: string) =>
        Arn.format(
          {
            service: 'ssm',
            resource: 'parameter',
            resourceName: p.slice(1),
            arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
          },
          stack,
        );
      fn.addToRolePolicy(
        new PolicyStatement({
          actions: ['ssm:GetParameter', 'ssm:GetParameters', 'ssm:GetParametersByPath'],
          resources: parameterPaths.flatMap((p) => {
            const base = p.replace(/\/+$/, '');
            return base === '' ? [parameterArn('/*')] : [parameterArn(base), parameterArn(`${base}/*`)];
          }),
        }),
      );
      // The KMS key of a SecureString is read from DescribeParameters, which has no resource scope.
      fn.addToRolePolicy(new PolicyStatement({ actions: ['ssm:DescribeParameters'], resources: ['*'] }));
    }
    // Values encrypted with customer keys are decrypted by Secrets Manager / SSM on the function's behalf.
    fn.addToRolePolicy(
      new PolicyStatement({
        actions: ['kms:Decrypt'],
        resources: [Arn.format({ service: 'kms', resource: 'key', resourceName: '*' }, stack)],
        conditions: {
          StringEquals: {
            'kms:ViaService': [
              `secretsmanager.${stack.region}.amazonaws.com`,
              `ssm.${stack.region}.amazonaws.com`,
            ],
          },
        },
      }),
    );

    // Lifecycle: snapshots expire exactly when their Object Lock ends (configRetentionDays per class).
    addConfigSnapshotLifecycle(props.vault.bucket, props.retention);

    // On change.
    const target = new LambdaFunction(fn, {
      deadLetterQueue: this.snapshotFunction.deadLetterQueue,
      retryAttempts: 8,
      maxEventAge: Duration.hours(24),
    });
    if (secretArns.length) {
      // Every secret change call: the ARN key differs between calls ("arn", "aRN", or only the
      // request's secretId), so the function filters on the configured set (and can read no other).
      const pattern: EventPattern = {
        source: [SECRET_EVENT_SOURCE],
        detailType: [CLOUDTRAIL_DETAIL_TYPE],
        detail: { eventSource: ['secretsmanager.amazonaws.com'], eventName: [...SECRET_EVENT_NAMES] },
      };
      this.secretRule = new Rule(this, 'SecretChanges', {
        description:
          'Cofre: Secrets Manager calls that change a secret (via CloudTrail) → configuration snapshot',
        eventPattern: pattern,
        targets: [target],
      });
    }
    if (parameterPaths.length) {
      const names = parameterPaths.flatMap((p) => {
        const base = p.replace(/\/+$/, '');
        return base === '' ? [{ prefix: '/' }] : [base, { prefix: `${base}/` }];
      });
      this.parameterRule = new Rule(this, 'ParameterChanges', {
        description: 'Cofre: Parameter Store changes under the configured paths → configuration snapshot',
        eventPattern: {
          source: [PARAMETER_EVENT_SOURCE],
          detailType: [PARAMETER_DETAIL_TYPE],
          detail: { name: names },
        },
        targets: [target],
      });
    }

    // Weekly full snapshot.
    const scheduleRole = new Role(this, 'ScheduleRole', {
      description: 'EventBridge Scheduler invokes the Cofre configuration snapshot Lambda weekly',
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    });
    this.weeklySchedule = new Schedule(this, 'Weekly', {
      description: 'Cofre: weekly full configuration snapshot',
      schedule: ScheduleExpression.expression(
        props.weeklySchedule ?? 'cron(0 3 ? * SUN *)',
        TimeZone.of(props.timeZone ?? 'America/Sao_Paulo'),
      ),
      target: new LambdaInvoke(fn, {
        role: scheduleRole,
        input: ScheduleTargetInput.fromObject({ cofre: 'config-weekly' }),
        deadLetterQueue: this.snapshotFunction.deadLetterQueue,
        retryAttempts: 2,
        maxEventAge: Duration.hours(1),
      }),
      timeWindow: TimeWindow.off(),
    });

    props.alerts.alarmOnFunction(fn, 'ConfigSnapshot', 'critical');
    props.alerts.alarmOnQueue(
      this.snapshotFunction.deadLetterQueue!,
      'ConfigSnapshotDeadLetters',
      'critical',
    );
    props.alerts.alarmOnConfigSnapshotAge(maxAgeHours);
    this.acknowledgeNagFindings(props, scheduleRole, secretArns, parameterPaths);
  }

  private acknowledgeNagFindings(
    props: ConfigSnapshotsProps,
    scheduleRole: Role,
    secretArns: readonly string[],
    parameterPaths: readonly string[],
  ): void {
    const stack = Stack.of(this);
    const logicalId = (c: Construct) =>
      stack.resolve((c.node.defaultChild as CfnElement).logicalId) as string;
    const fn = this.snapshotFunction;
    const role = fn.function.role!;
    acknowledge(role, {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason:
        'CDK attaches AWSLambdaBasicExecutionRole so the configuration snapshot Lambda can write its logs: only creating log streams and putting log events, into its explicit KMS-encrypted log group.',
    });
    const parameterWildcards = parameterPaths
      .map((p) => p.replace(/\/+$/, ''))
      .map((base) => ({
        id: `AwsSolutions-IAM5[Resource::arn:aws:ssm:${stack.region}:${stack.account}:parameter${base}/*]`,
        reason: `The configuration names the SSM path ${base || '/'} to protect recursively: reading every parameter below it (and none elsewhere) is the point of the snapshot.`,
      }));
    acknowledge(
      role.node.findChild('DefaultPolicy'),
      {
        id: 'HIPAA.Security-IAMNoInlinePolicy',
        reason:
          'This policy belongs to the configuration snapshot Lambda role alone and names the configured secrets, parameter paths, the vault config/ prefix and the history table; a managed policy would only make it attachable elsewhere.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'secretsmanager:ListSecrets (only for name prefixes), ssm:DescribeParameters and the X-Ray actions have no resource-level permissions; every read of a value names the configured secrets and paths.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${logicalId(props.vault.bucket)}.Arn>/config/*]`,
        reason:
          'The snapshot Lambda writes one object per change under config/ (keys derived from names and times), and reads back only their lock: config/* is exactly its share of the vault.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${logicalId(props.history.table)}.Arn>/index/*]`,
        reason:
          'Recording the weekly configuration snapshot uses the history grant, which includes querying the indexes of the one history table (index/*), never another table.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::arn:aws:kms:${stack.region}:${stack.account}:key/*]`,
        reason:
          "The keys that encrypt the configured secrets and SecureStrings are theirs, not Cofre's; kms:Decrypt on this account's keys is limited by kms:ViaService to Secrets Manager and SSM reading those values.",
      },
      ...parameterWildcards,
      ...secretArns
        .filter((arn) => arn.endsWith('*') || !/-[A-Za-z0-9]{6}$/.test(arn))
        .map((arn) => ({
          id: `AwsSolutions-IAM5[Resource::${arn.endsWith('*') ? arn : `${arn}-??????`}]`,
          reason: `The configuration names ${arn} (a name prefix or a partial ARN); the wildcard covers the random suffix Secrets Manager adds, or exactly the named prefix.`,
        })),
    );
    acknowledge(fn.function, {
      id: 'HIPAA.Security-LambdaInsideVPC',
      reason:
        'The configuration snapshot Lambda calls only AWS APIs (Secrets Manager, SSM, S3, KMS, DynamoDB) over TLS with IAM authorization; a VPC would need NAT or endpoints without narrowing what it can reach.',
    });
    acknowledge(fn.deadLetterQueue!, {
      id: 'Serverless-SQSRedrivePolicy',
      reason:
        'This queue is itself the dead-letter queue of the configuration snapshot Lambda, its rules and its schedule (kept 14 days, alarmed on depth); a queue behind it would only move the events again.',
    });
    acknowledge(
      scheduleRole.node.findChild('DefaultPolicy'),
      {
        id: 'HIPAA.Security-IAMNoInlinePolicy',
        reason:
          'This policy belongs to the weekly configuration snapshot schedule role alone (invoke one named Lambda, send to its dead-letter queue); a managed policy would only make it attachable elsewhere.',
      },
      {
        id: `AwsSolutions-IAM5[Resource::<${logicalId(fn.function)}.Arn>:*]`,
        reason:
          'lambda:InvokeFunction on the configuration snapshot function and its versions (<arn>:*), as the scheduler target grant writes it; no other function.',
      },
    );
  }
}

/**
 * The lifecycle rules of configuration snapshots on a vault bucket, one per data class on the config
 * tier, expiring each snapshot when its Object Lock ends: on the primary vault, and on the DR vault,
 * where replication puts the replicas with the same tags (without a rule there they would be kept
 * forever).
 */
export function addConfigSnapshotLifecycle(bucket: Bucket, retention: ConfigRetention): void {
  for (const c of [GENERAL_CLASS, ...Object.keys(retention.classes)]) {
    bucket.addLifecycleRule({
      id: `cofre-config-${c}`,
      tagFilters: { [TIER_TAG]: CONFIG_TIER, [CLASS_TAG]: c },
      expiration: Duration.days(configRetentionDays(c, retention)),
    });
  }
}
