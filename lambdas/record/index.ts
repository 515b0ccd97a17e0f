/** Lambda `record`: the final history record of a run (core/aws/steps.ts `recordStep`). */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { METRICS_NAMESPACE } from '../../core/policy/metrics';
import { powertoolsSink, requireEnv, runStep } from '../../core/aws/lambda-support';
import { recordStep, type RecordEvent, type RecordResult } from '../../core/aws/steps';

const env = requireEnv(process.env, ['COFRE_HISTORY_TABLE', 'COFRE_VAULT_URL']);
const logger = new Logger({ serviceName: 'cofre-record' });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE });
const sink = powertoolsSink(metrics);
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(new DynamoDBClient({})),
  env.COFRE_HISTORY_TABLE,
);

export async function handler(event: RecordEvent): Promise<RecordResult> {
  logger.appendKeys({ job: event.job, outcome: event.outcome, executionId: event.executionId });
  return runStep('record', logger, metrics, async () => {
    const result = await recordStep(event, {
      history,
      metrics: sink,
      vaultUrl: env.COFRE_VAULT_URL,
    });
    logger.info('recorded', {
      status: result.status,
      id: result.record.id,
      database: result.record.database,
    });
    return result;
  });
}
