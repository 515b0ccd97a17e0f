/**
 * Files restore validation: EventBridge sends the ended AWS Backup restore jobs of S3 buckets here.
 * For a job of Cofre's S3 restore testing plan, a random sample of the restored bucket is compared
 * (SHA-256) with the source bucket's versions current at the recovery point; the result is recorded
 * (history kind `files-restore-test`, method `aws-backup`, database `s3:<bucket>`), reported to AWS
 * Backup (PutRestoreValidationResult) and alerted (core/files/aws-restore-validation.ts). A small
 * Lambda outside any VPC: it only talks to S3, AWS Backup, DynamoDB and SNS.
 *
 * Env: COFRE_HISTORY_TABLE, COFRE_TOPIC_ARN, COFRE_NOTIFY_ON_SUCCESS, COFRE_RESTORE_TESTING_PLAN_ARN,
 * COFRE_RESTORE_TEST_BUCKETS (JSON [{"bucketName","resourceArn"}]), COFRE_RESTORE_TEST_SAMPLE, AWS_REGION.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { BackupClient } from '@aws-sdk/client-backup';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { topicNotifier } from '../../core/alerts/notify';
import { intEnv, requiredEnv, schemaEnv } from '../../core/aws/env';
import { lambdaHandler, powertools } from '../../core/aws/powertools';
import { describeRestoreJobWith, putValidationResultWith } from '../../core/aws/restore-jobs';
import { handleBucketRestoreTestEvent } from '../../core/files/aws-restore-validation';
import { DynamoHistoryStore, type HistoryStore } from '../../core/history/store';

const bucketsSchema = z
  .array(z.strictObject({ bucketName: z.string().min(3), resourceArn: z.string().startsWith('arn:') }))
  .min(1);

export interface FilesRestoreValidationHandlerDeps {
  readonly history: Pick<HistoryStore, 'put'>;
  readonly backup: BackupClient;
  readonly s3: S3Client;
  readonly sns: SNSClient;
  readonly logger: Logger;
  /** Picks sample indexes (tests). @default crypto.randomInt */
  readonly pick?: (n: number) => number;
}

/** The handler, with its clients and environment passed in (tests use the local AWS). */
export function createFilesRestoreValidationHandler(deps: FilesRestoreValidationHandlerDeps) {
  const buckets = schemaEnv('COFRE_RESTORE_TEST_BUCKETS', bucketsSchema);
  const sample = intEnv('COFRE_RESTORE_TEST_SAMPLE');
  const notifyTopic = topicNotifier(deps.sns);
  const restoreTestingPlanArn = requiredEnv('COFRE_RESTORE_TESTING_PLAN_ARN');
  return async (event: unknown) => {
    const result = await handleBucketRestoreTestEvent(event, {
      restoreTestingPlanArn,
      buckets,
      describeRestoreJob: describeRestoreJobWith(deps.backup),
      putValidationResult: putValidationResultWith(deps.backup),
      s3: deps.s3,
      history: deps.history,
      notify: notifyTopic,
      sample,
      ...(deps.pick ? { pick: deps.pick } : {}),
      log: (line) => {
        deps.logger.info(line);
      },
    });
    if (result.ignored) deps.logger.info('ignored', { reason: result.reason });
    else
      deps.logger.info('validated', {
        id: result.record.id,
        database: result.record.database,
        status: result.record.status,
        restoredObjects: result.validation.restoredObjects,
      });
    return result;
  };
}

const pt = powertools('cofre-files-restore-validation');

export const handler = lambdaHandler(pt, 'files-restore-validation', () =>
  createFilesRestoreValidationHandler({
    history: new DynamoHistoryStore(
      DynamoDBDocumentClient.from(pt.traced(new DynamoDBClient({}))),
      requiredEnv('COFRE_HISTORY_TABLE'),
    ),
    backup: pt.traced(new BackupClient({})),
    s3: pt.traced(new S3Client({ maxAttempts: 3 })),
    sns: pt.traced(new SNSClient({})),
    logger: pt.logger,
  }),
);
