import { Duration, Names } from 'aws-cdk-lib';
import { CfnRestoreTestingPlan, CfnRestoreTestingSelection } from 'aws-cdk-lib/aws-backup';
import { Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { Construct } from 'constructs';
import type { CofreAlerts } from './alerts';
import type { CofreFunction } from './cofre-function';

/**
 * Restore job states that end a restore test without a restored resource (the validations record
 * them as failed tests); equal to `RESTORE_FAILED_STATES` of core/aws/restore-jobs.ts (a test checks),
 * not imported, so the CDK app does not load runtime code.
 */
export const RESTORE_ENDED_IN_FAILURE = ['FAILED', 'ABORTED'] as const;

/** Properties of {@link latestSnapshotTestingPlan}. */
export interface LatestSnapshotTestingPlanProps {
  /** When the plan starts: a `cron(...)` expression in `timeZone`. */
  readonly schedule: string;
  /** IANA time zone of the schedule. */
  readonly timeZone: string;
  /** Hours after the scheduled time within which AWS Backup must start the restore. */
  readonly startWindowHours: number;
  /** The AWS Backup vault whose latest snapshot recovery points are restored. */
  readonly vaultArn: string;
  /** Days back the plan looks for the latest recovery point. */
  readonly selectionWindowDays: number;
}

/**
 * The AWS Backup restore testing plan the RDS and the S3 restore tests share the shape of: the
 * latest snapshot recovery point of one vault within a window, as construct `Plan` of `scope`,
 * named after `scope`'s path (restore testing plan names allow letters, digits and `_` only).
 */
export function latestSnapshotTestingPlan(
  scope: Construct,
  props: LatestSnapshotTestingPlanProps,
): CfnRestoreTestingPlan {
  const planName = Names.uniqueResourceName(scope, { maxLength: 50, separator: '_' }).replace(
    /[^A-Za-z0-9_]/g,
    '_',
  );
  return new CfnRestoreTestingPlan(scope, 'Plan', {
    restoreTestingPlanName: planName,
    scheduleExpression: props.schedule,
    scheduleExpressionTimezone: props.timeZone,
    startWindowHours: props.startWindowHours,
    recoveryPointSelection: {
      algorithm: 'LATEST_WITHIN_WINDOW',
      includeVaults: [props.vaultArn],
      recoveryPointTypes: ['SNAPSHOT'],
      selectionWindowDays: props.selectionWindowDays,
    },
  });
}

/** Properties of {@link endedRestoreJobsRule}. */
export interface EndedRestoreJobsRuleProps {
  readonly description: string;
  /** AWS Backup's `resourceType` of the restored resources (`RDS`, `S3`). */
  readonly resourceType: string;
  /** The validation Lambda the ended jobs go to (with its dead-letter queue). */
  readonly validation: CofreFunction;
  readonly alerts: CofreAlerts;
  /** Name of the alarms on the Lambda's errors and on its dead letters (`<name>DeadLetters`). */
  readonly alarmName: string;
}

/**
 * The EventBridge rule that sends every ended (completed, failed, aborted) AWS Backup restore job of
 * `resourceType` to a restore test's validation Lambda (retried 4 times within 6 h, then its
 * dead-letter queue), and the critical alarms on that Lambda's errors and dead letters.
 */
export function endedRestoreJobsRule(scope: Construct, id: string, props: EndedRestoreJobsRuleProps): Rule {
  const fn = props.validation;
  const rule = new Rule(scope, id, {
    description: props.description,
    eventPattern: {
      source: ['aws.backup'],
      detailType: ['Restore Job State Change'],
      detail: { resourceType: [props.resourceType], status: ['COMPLETED', ...RESTORE_ENDED_IN_FAILURE] },
    },
    targets: [
      new LambdaFunction(fn.function, {
        deadLetterQueue: fn.deadLetterQueue,
        retryAttempts: 4,
        maxEventAge: Duration.hours(6),
      }),
    ],
  });
  props.alerts.alarmOnFunction(fn.function, props.alarmName, 'critical');
  props.alerts.alarmOnQueue(fn.deadLetterQueue!, `${props.alarmName}DeadLetters`, 'critical');
  return rule;
}

/** Properties of {@link restoreTestingSelection}. */
export interface RestoreTestingSelectionProps {
  /** Source of the selection's name: letters, digits and `_` are kept, anything else becomes `_`. */
  readonly name: string;
  /** AWS Backup's `ProtectedResourceType` (`RDS`, `S3`). */
  readonly resourceType: string;
  /** The one protected resource the selection restores. */
  readonly resourceArn: string;
  /** The role AWS Backup restores (and deletes the restored resource) with. */
  readonly roleArn: string;
  /** Hours the restored resource is kept for validation. */
  readonly validationWindowHours: number;
  readonly restoreMetadataOverrides: Record<string, string>;
}

/** One resource of a restore testing plan, created after the plan (construct `id` of `scope`). */
export function restoreTestingSelection(
  scope: Construct,
  id: string,
  plan: CfnRestoreTestingPlan,
  props: RestoreTestingSelectionProps,
): CfnRestoreTestingSelection {
  const selection = new CfnRestoreTestingSelection(scope, id, {
    restoreTestingPlanName: plan.restoreTestingPlanName,
    restoreTestingSelectionName: props.name.replace(/[^A-Za-z0-9]/g, '_').slice(0, 50),
    protectedResourceType: props.resourceType,
    protectedResourceArns: [props.resourceArn],
    iamRoleArn: props.roleArn,
    validationWindowHours: props.validationWindowHours,
    restoreMetadataOverrides: props.restoreMetadataOverrides,
  });
  selection.addResourceDependency(plan);
  return selection;
}
