/** Lambda `record`: the final history record of a run (core/aws/steps.ts `recordStep`). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { powertoolsSink } from '../../core/aws/lambda-support';
import { requiredEnvs } from '../../core/aws/env';
import { recordStep, type RecordEvent, type RecordResult } from '../../core/aws/steps';
import { powertools, stepHandler } from '../../core/aws/powertools';

const env = requiredEnvs(['COFRE_HISTORY_TABLE', 'COFRE_VAULT_URL']);
const pt = powertools('cofre-record');
const { logger, metrics, traced } = pt;
const sink = powertoolsSink(metrics);
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(traced(new DynamoDBClient({}))),
  env.COFRE_HISTORY_TABLE,
);

export const handler = stepHandler(pt, 'record', async (event: RecordEvent): Promise<RecordResult> => {
  logger.appendKeys({ job: event.job, outcome: event.outcome, executionId: event.executionId });
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
