/**
 * Lambda `restore-stopped`: EventBridge sends here the ABORTED and TIMED_OUT status changes of the
 * console `restore` state machine; the execution's `running` history record is marked failed with
 * the reason and the failure is notified (core/aws/restore-stopped.ts).
 *
 * Env: COFRE_HISTORY_TABLE, COFRE_TOPIC_ARN, AWS_REGION.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { requiredEnv } from '../../core/aws/env';
import { notify, snsPublisher } from '../../core/alerts/notify';
import { recordStoppedRestore } from '../../core/aws/restore-stopped';
import { DynamoHistoryStore } from '../../core/history/store';
import { lambdaHandler, powertools } from '../../core/aws/powertools';

export interface RestoreStoppedHandlerDeps {
  readonly history: DynamoHistoryStore;
  readonly sns: SNSClient;
  readonly logger: Logger;
}

/** The handler, with its clients and environment passed in (tests use the local AWS, moto). */
export function createRestoreStoppedHandler(deps: RestoreStoppedHandlerDeps) {
  const publish = snsPublisher(deps.sns, requiredEnv('COFRE_TOPIC_ARN'));
  const region = requiredEnv('AWS_REGION');
  return async (event: unknown) => {
    const result = await recordStoppedRestore(event, {
      history: deps.history,
      notify: (e) => notify(e, { publish, notifyOnSuccess: false, region }),
    });
    deps.logger.info('stopped restore recorded', {
      database: result.database,
      id: result.record?.id,
      reason: result.reason,
    });
    return result;
  };
}

const pt = powertools('cofre-restore-stopped');

export const handler = lambdaHandler(pt, 'restore-stopped', () =>
  createRestoreStoppedHandler({
    history: new DynamoHistoryStore(
      DynamoDBDocumentClient.from(pt.traced(new DynamoDBClient({}))),
      requiredEnv('COFRE_HISTORY_TABLE'),
    ),
    sns: pt.traced(new SNSClient({})),
    logger: pt.logger,
  }),
);
