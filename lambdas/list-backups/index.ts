/** Lambda `list-backups`: recent backups of a database, in batches for deep verification. */
import { S3Client } from '@aws-sdk/client-s3';
import { requiredEnvs } from '../../core/aws/env';
import { listBackupsStep } from '../../core/aws/steps';
import type { ContainerJob } from '../../core/aws/job';
import { openVault } from '../../core/vault';
import { powertools, stepHandler } from '../../core/aws/powertools';

const env = requiredEnvs(['COFRE_VAULT_URL']);
const pt = powertools('cofre-list-backups');
const { logger, traced } = pt;
const vault = openVault(env.COFRE_VAULT_URL, { s3: traced(new S3Client({ maxAttempts: 3 })) });

export const handler = stepHandler(
  pt,
  'list-backups',
  async (event: { job: unknown }): Promise<{ count: number; batches: ContainerJob[] }> => {
    const result = await listBackupsStep(event, { vault });
    logger.info('backups listed', { count: result.count, batches: result.batches.length });
    return result;
  },
);
