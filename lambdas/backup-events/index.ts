/**
 * Backup events: EventBridge sends every AWS Backup job state change of the protected RDS/Aurora
 * databases (backup, copy to the DR vault, restore) here. Each one updates the job's history record
 * (kinds `snapshot`, `pitr`, `snapshot-copy`, `restore`), and a job that ended is reported through the
 * same notify path as the pipeline (core/alerts/backup-events.ts): FAILED / ABORTED / EXPIRED page.
 *
 * Env: COFRE_HISTORY_TABLE, COFRE_TOPIC_ARN, COFRE_NOTIFY_ON_SUCCESS, COFRE_SNAPSHOT_DATABASES
 * (JSON [{"database","resourceArn"}]), AWS_REGION.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { recordBackupJobEvent } from '../../core/alerts/backup-events';
import { requiredEnv, schemaEnv } from '../../core/aws/env';
import { topicNotifier } from '../../core/alerts/notify';
import { DynamoHistoryStore, type HistoryStore } from '../../core/history/store';
import { lambdaHandler, powertools } from '../../core/aws/powertools';

const databasesSchema = z.array(
  z.strictObject({ database: z.string().min(1), resourceArn: z.string().startsWith('arn:') }),
);

export interface BackupEventsHandlerDeps {
  readonly history: Pick<HistoryStore, 'put'>;
  readonly sns: SNSClient;
  readonly logger: Logger;
}

/** The handler, with its clients and environment passed in (tests use the local AWS, moto). */
export function createBackupEventsHandler(deps: BackupEventsHandlerDeps) {
  const databases = schemaEnv('COFRE_SNAPSHOT_DATABASES', databasesSchema);
  const notifyTopic = topicNotifier(deps.sns);
  return async (event: unknown) => {
    const result = await recordBackupJobEvent(event, {
      history: deps.history,
      databases,
      notify: notifyTopic,
    });
    if (result.ignored) deps.logger.info('not a protected database: ignored');
    else
      deps.logger.info('recorded', {
        id: result.record.id,
        kind: result.record.kind,
        database: result.record.database,
        status: result.record.status,
        notified: result.notified,
      });
    return result;
  };
}

const pt = powertools('cofre-backup-events');

export const handler = lambdaHandler(pt, 'backup-events', () =>
  createBackupEventsHandler({
    history: new DynamoHistoryStore(
      DynamoDBDocumentClient.from(pt.traced(new DynamoDBClient({}))),
      requiredEnv('COFRE_HISTORY_TABLE'),
    ),
    sns: pt.traced(new SNSClient({})),
    logger: pt.logger,
  }),
);
