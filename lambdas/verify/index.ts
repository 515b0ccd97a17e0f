/** Lambda `verify`: quick verification and metrics of new backups (core/aws/steps.ts `verifyStep`). */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { METRICS_NAMESPACE } from '../../core/policy/metrics';
import { intEnv, powertoolsSink, requireEnv, runStep } from '../../core/aws/lambda-support';
import { verifyStep, type VerifyEvent, type VerifyResult } from '../../core/aws/steps';
import { openVault, parseLockMode } from '../../core/vault';

const env = requireEnv(process.env, [
  'COFRE_HISTORY_TABLE',
  'COFRE_VAULT_URL',
  'COFRE_OBJECT_LOCK_MODE',
  'COFRE_MAX_DURATION_MINUTES',
  'COFRE_SIZE_ANOMALY_PERCENT',
]);
const logger = new Logger({ serviceName: 'cofre-verify' });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE });
const sink = powertoolsSink(metrics);
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(new DynamoDBClient({})),
  env.COFRE_HISTORY_TABLE,
);
// The lock the vault's objects must carry (verify compares it with what S3 reports): configuration.
const vault = openVault(env.COFRE_VAULT_URL, {
  s3: new S3Client({ maxAttempts: 3 }),
  objectLockMode: parseLockMode(env.COFRE_OBJECT_LOCK_MODE, 'COFRE_OBJECT_LOCK_MODE'),
});
const maxDurationMinutes = intEnv(env, 'COFRE_MAX_DURATION_MINUTES');
const sizeAnomalyPercent = intEnv(env, 'COFRE_SIZE_ANOMALY_PERCENT');

export async function handler(event: VerifyEvent): Promise<VerifyResult> {
  logger.appendKeys({ job: event.job });
  return runStep('verify', logger, metrics, async () => {
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
}
