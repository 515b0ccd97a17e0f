import { ArnFormat, Duration, Stack, TimeZone } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Schedule, ScheduleExpression, ScheduleTargetInput, TimeWindow } from 'aws-cdk-lib/aws-scheduler';
import { StepFunctionsStartExecution } from 'aws-cdk-lib/aws-scheduler-targets';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { IStateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { CofreConfig, DatabaseConfig } from '../config';
import { acknowledge } from '../nag';
import { requireWholeNumber } from './prop-checks';

/** The scheduled jobs of a database: the `schedules` field that times each one. */
export const SCHEDULED_JOBS = ['fullBackup', 'tenantExport', 'integrityVerification', 'restoreTest'] as const;
export type ScheduledJob = (typeof SCHEDULED_JOBS)[number];

/** What a schedule starts for one database. */
export interface DatabaseScheduleTargets {
  /** ARN of the database's dump task definition, sent in the execution input. */
  readonly taskDefinitionArn: string;
  /** State machine of each job; a job without one (tenant export of a database without `tenants`) has no schedule. */
  readonly fullBackup: IStateMachine;
  readonly tenantExport?: IStateMachine;
  readonly integrityVerification: IStateMachine;
  /** The monthly restore test (restores the newest full backups into scratch databases on the same server). */
  readonly restoreTest: IStateMachine;
}

/**
 * The execution input a schedule sends (`state-machines/README.md`, validated by
 * `core/aws/job.ts`): the database's validated configuration entry as is, its task
 * definition, who started it, and the time zone and retention that decide the tier and the
 * retain-until dates.
 */
export function executionInputOf(
  database: DatabaseConfig,
  taskDefinitionArn: string,
  config: Pick<CofreConfig, 'timeZone' | 'retention'>,
): Record<string, unknown> {
  return {
    database,
    taskDefinitionArn,
    requestedBy: 'schedule',
    timeZone: config.timeZone,
    retention: config.retention,
  };
}

/** Properties of {@link BackupSchedules}. */
export interface BackupSchedulesProps {
  /** The validated configuration: databases, `schedules`, `timeZone`, `retention`. */
  readonly config: CofreConfig;
  /** KMS key of the dead-letter queue. */
  readonly key: IKey;
  /** The state machines and task definition of a database. */
  readonly targets: (database: DatabaseConfig) => DatabaseScheduleTargets;
  /**
   * Retries of a start that fails (throttling, a state machine being updated).
   * @default 2
   */
  readonly retryAttempts?: number;
  /**
   * How long the scheduler keeps retrying an event before it goes to the dead-letter queue.
   * @default Duration.hours(1)
   */
  readonly maxEventAge?: Duration;
}

/**
 * EventBridge Scheduler schedules, one per database and job (full backup; tenant export when the
 * database has `tenants`; integrity verification; restore test), in the configured time zone, flexible time window
 * off (a backup runs at its time, not within a window), with retries and an encrypted dead-letter
 * queue for starts that still fail. One role, assumable only by EventBridge Scheduler for this
 * account's default schedule group, may start only these state machines and write to that queue.
 */
export class BackupSchedules extends Construct {
  /** The schedules, by database id and job. */
  public readonly schedules: ReadonlyMap<string, Readonly<Partial<Record<ScheduledJob, Schedule>>>>;
  /** Where starts that failed after every retry go. */
  public readonly deadLetterQueue: Queue;
  /** The role the schedules start executions with. */
  public readonly role: Role;

  constructor(scope: Construct, id: string, props: BackupSchedulesProps) {
    super(scope, id);
    const retryAttempts = props.retryAttempts ?? 2;
    const maxEventAge = props.maxEventAge ?? Duration.hours(1);
    requireWholeNumber(`BackupSchedules ${this.node.path}`, 'retryAttempts', retryAttempts, 0, 185);
    if (maxEventAge.toSeconds() < 60 || maxEventAge.toSeconds() > 86_400)
      throw new Error(
        `BackupSchedules ${this.node.path}: maxEventAge must be between 1 minute and 24 hours, got ${maxEventAge.toHumanString()}`,
      );

    ({ deadLetterQueue: this.deadLetterQueue, role: this.role } = schedulerPlumbing(
      this,
      'Role',
      props.key,
      'EventBridge Scheduler starts the Cofre backup jobs',
    ));

    const timeZone = TimeZone.of(props.config.timeZone);
    const schedules = new Map<string, Partial<Record<ScheduledJob, Schedule>>>();
    for (const db of props.config.databases) {
      const targets = props.targets(db);
      const input = ScheduleTargetInput.fromObject(
        executionInputOf(db, targets.taskDefinitionArn, props.config),
      );
      const byJob: Partial<Record<ScheduledJob, Schedule>> = {};
      for (const job of SCHEDULED_JOBS) {
        const stateMachine = targets[job];
        if (!stateMachine) continue;
        byJob[job] = new Schedule(this, `${db.id}-${job}`, {
          description: `Cofre ${job} of ${db.id}`,
          schedule: ScheduleExpression.expression(props.config.schedules[job], timeZone),
          timeWindow: TimeWindow.off(),
          target: new StepFunctionsStartExecution(stateMachine, {
            input,
            role: this.role,
            deadLetterQueue: this.deadLetterQueue,
            retryAttempts,
            maxEventAge,
          }),
        });
      }
      schedules.set(db.id, byJob);
    }
    this.schedules = schedules;

    const isDeadLetterQueue =
      'This queue is itself the dead-letter queue of the backup schedules: it keeps, for 14 days, the starts that failed after every retry; a queue behind it would only move them again.';
    acknowledge(
      this.deadLetterQueue,
      { id: 'AwsSolutions-SQS3', reason: isDeadLetterQueue },
      { id: 'Serverless-SQSRedrivePolicy', reason: isDeadLetterQueue },
    );
  }
}

/**
 * What every Cofre schedule group needs beside its schedules: the dead-letter queue (encrypted with
 * `key`) for starts that failed after every retry, and the role EventBridge Scheduler assumes, only
 * for this account's default schedule group, allowed to encrypt what it sends to that queue.
 */
export function schedulerPlumbing(
  scope: Construct,
  roleId: string,
  key: IKey,
  description: string,
): { deadLetterQueue: Queue; role: Role } {
  const stack = Stack.of(scope);
  const deadLetterQueue = new Queue(scope, 'DeadLetterQueue', {
    encryption: QueueEncryption.KMS,
    encryptionMasterKey: key,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  const role = new Role(scope, roleId, {
    assumedBy: new ServicePrincipal('scheduler.amazonaws.com', {
      conditions: {
        StringEquals: {
          'aws:SourceAccount': stack.account,
          'aws:SourceArn': stack.formatArn({
            service: 'scheduler',
            resource: 'schedule-group',
            resourceName: 'default',
            arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
          }),
        },
      },
    }),
    description,
  });
  // SQS encrypts what the scheduler sends to the dead-letter queue with the caller's permissions.
  key.grant(role, 'kms:GenerateDataKey', 'kms:Decrypt');
  return { deadLetterQueue, role };
}
