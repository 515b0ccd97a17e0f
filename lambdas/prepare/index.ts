/** Lambda `prepare`: starts a job run (see core/aws/steps.ts `prepare`). */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { METRICS_NAMESPACE } from '../../core/policy/metrics';
import { requireEnv, runStep } from '../../core/aws/lambda-support';
import { prepare, type PrepareEvent, type PrepareResult } from '../../core/aws/steps';

const env = requireEnv(process.env, ['COFRE_HISTORY_TABLE']);
const logger = new Logger({ serviceName: 'cofre-prepare' });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE });
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(new DynamoDBClient({})),
  env.COFRE_HISTORY_TABLE,
);

export async function handler(event: PrepareEvent): Promise<PrepareResult> {
  logger.appendKeys({ job: event.job, executionId: event.executionId });
  return runStep('prepare', logger, metrics, () => prepare(event, { history }));
}
