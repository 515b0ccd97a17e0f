/** Lambda `verify`: quick verification and metrics of new backups (core/aws/steps.ts `verifyStep`). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { powertoolsSink } from '../../core/aws/lambda-support';
import { intEnv, requiredEnvs } from '../../core/aws/env';
import { verifyStep, type VerifyEvent, type VerifyResult } from '../../core/aws/steps';
import { openVault, parseLockMode } from '../../core/vault';
import { powertools, stepHandler } from '../../core/aws/powertools';

const env = requiredEnvs([
  'COFRE_HISTORY_TABLE',
  'COFRE_VAULT_URL',
  'COFRE_OBJECT_LOCK_MODE',
  'COFRE_MAX_DURATION_MINUTES',
  'COFRE_SIZE_ANOMALY_PERCENT',
]);
const pt = powertools('cofre-verify');
const { logger, metrics, traced } = pt;
const sink = powertoolsSink(metrics);
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(traced(new DynamoDBClient({}))),
  env.COFRE_HISTORY_TABLE,
);
// The lock the vault's objects must carry (verify compares it with what S3 reports): configuration.
const vault = openVault(env.COFRE_VAULT_URL, {
  s3: traced(new S3Client({ maxAttempts: 3 })),
  objectLockMode: parseLockMode(env.COFRE_OBJECT_LOCK_MODE, 'COFRE_OBJECT_LOCK_MODE'),
});
const maxDurationMinutes = intEnv('COFRE_MAX_DURATION_MINUTES');
const sizeAnomalyPercent = intEnv('COFRE_SIZE_ANOMALY_PERCENT');

export const handler = stepHandler(pt, 'verify', async (event: VerifyEvent): Promise<VerifyResult> => {
  logger.appendKeys({ job: event.job });
  const result = await verifyStep(event, {
    history,
    vault,
    metrics: sink,
    maxDurationMinutes,
    sizeAnomalyPercent,
  });
  if (result.anomalies?.length) logger.warn('backup anomalies', { anomalies: result.anomalies });
  return result;
});
