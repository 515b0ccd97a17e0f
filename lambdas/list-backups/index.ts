/** Lambda `list-backups`: recent backups of a database, in batches for deep verification. */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { S3Client } from '@aws-sdk/client-s3';
import { METRICS_NAMESPACE } from '../../core/policy/metrics';
import { requireEnv, runStep } from '../../core/aws/lambda-support';
import { listBackupsStep } from '../../core/aws/steps';
import type { ContainerJob } from '../../core/aws/job';
import { openVault } from '../../core/vault';

const env = requireEnv(process.env, ['COFRE_VAULT_URL']);
const logger = new Logger({ serviceName: 'cofre-list-backups' });
const metrics = new Metrics({ namespace: METRICS_NAMESPACE });
const vault = openVault(env.COFRE_VAULT_URL, { s3: new S3Client({ maxAttempts: 3 }) });

export async function handler(event: { job: unknown }): Promise<{ count: number; batches: ContainerJob[] }> {
  return runStep('list-backups', logger, metrics, async () => {
    const result = await listBackupsStep(event, { vault });
    logger.info('backups listed', { count: result.count, batches: result.batches.length });
    return result;
  });
}
