/**
 * Lambda `list-tenants`: the tenants of a database in batches (core/aws/steps.ts
 * `listTenantsStep`). Runs in the database's VPC and reads its Secrets Manager secret.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { listTenantsStep } from '../../core/aws/steps';
import { connectionFromSecret } from '../../core/aws/task';
import { listTenants } from '../../core/tenants/backup';
import type { ContainerJob } from '../../core/aws/job';
import { powertools, stepHandler } from '../../core/aws/powertools';
import { DATABASE_SECRET_MAX_AGE_SECONDS, secretReader } from '../../core/aws/secrets';

const pt = powertools('cofre-list-tenants');
const { logger, traced } = pt;
// Through Powertools Parameters, cached for a minute (a rotated password arrives within it).
const readSecret = secretReader(traced(new SecretsManagerClient({})), DATABASE_SECRET_MAX_AGE_SECONDS);

export const handler = stepHandler(
  pt,
  'list-tenants',
  async (event: { job: unknown }): Promise<{ count: number; batches: ContainerJob[] }> => {
    const result = await listTenantsStep(event, {
      connect: async (job) => connectionFromSecret(job, await readSecret(job.database.credentialsSecretArn)),
      listTenants,
    });
    logger.info('tenants listed', { count: result.count, batches: result.batches.length });
    return result;
  },
);
