/** Lambda `prepare`: starts a job run (see core/aws/steps.ts `prepare`). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { requireEnv, runStep } from '../../core/aws/lambda-support';
import { prepare, type PrepareEvent, type PrepareResult } from '../../core/aws/steps';
import { powertools } from '../../core/aws/powertools';

const env = requireEnv(process.env, ['COFRE_HISTORY_TABLE']);
const { logger, metrics, traced } = powertools('cofre-prepare');
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(traced(new DynamoDBClient({}))),
  env.COFRE_HISTORY_TABLE,
);

export async function handler(event: PrepareEvent): Promise<PrepareResult> {
  logger.appendKeys({ job: event.job, executionId: event.executionId });
  return runStep('prepare', logger, metrics, () => prepare(event, { history }));
}
