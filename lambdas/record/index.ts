/** Lambda `record`: the final history record of a run (core/aws/steps.ts `recordStep`). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { powertoolsSink, requireEnv, runStep } from '../../core/aws/lambda-support';
import { recordStep, type RecordEvent, type RecordResult } from '../../core/aws/steps';
import { powertools } from '../../core/aws/powertools';

const env = requireEnv(process.env, ['COFRE_HISTORY_TABLE', 'COFRE_VAULT_URL']);
const { logger, metrics, traced } = powertools('cofre-record');
const sink = powertoolsSink(metrics);
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(traced(new DynamoDBClient({}))),
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
