import { Names } from 'aws-cdk-lib';
import { CfnRestoreTestingPlan } from 'aws-cdk-lib/aws-backup';
import type { Construct } from 'constructs';

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
