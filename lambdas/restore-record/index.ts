/**
 * Lambda `restore-record`: the history record (kind `restore`, measured duration) and the notify event
 * of a console restore, or the formatted error of a rejected input
 * (core/aws/restore-record.ts `recordRestore`).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { requiredEnvs } from '../../core/aws/env';
import {
  recordRestore,
  type RestoreRecordEvent,
  type RestoreRecordResult,
} from '../../core/aws/restore-record';
import { powertools, stepHandler } from '../../core/aws/powertools';

const env = requiredEnvs(['COFRE_HISTORY_TABLE']);
const pt = powertools('cofre-restore-record');
const { logger, traced } = pt;
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(traced(new DynamoDBClient({}))),
  env.COFRE_HISTORY_TABLE,
);

export const handler = stepHandler(
  pt,
  'restore-record',
  async (event: RestoreRecordEvent): Promise<RestoreRecordResult> => {
    logger.appendKeys({ outcome: event.outcome, executionId: event.executionId });
    const result = await recordRestore(event, { history });
    logger.info('restore recorded', { status: result.status, id: result.record?.id });
    return result;
  },
);
