/** Lambda `prepare`: starts a job run (see core/aws/steps.ts `prepare`). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { requireEnv } from '../../core/aws/lambda-support';
import { prepare, type PrepareEvent, type PrepareResult } from '../../core/aws/steps';
import { powertools, stepHandler } from '../../core/aws/powertools';

const env = requireEnv(process.env, ['COFRE_HISTORY_TABLE']);
const pt = powertools('cofre-prepare');
const { logger, traced } = pt;
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(traced(new DynamoDBClient({}))),
  env.COFRE_HISTORY_TABLE,
);

export const handler = stepHandler(pt, 'prepare', async (event: PrepareEvent): Promise<PrepareResult> => {
  logger.appendKeys({ job: event.job, executionId: event.executionId });
  return prepare(event, { history });
});
