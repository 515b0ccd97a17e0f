/**
 * Lambda `list-tenants`: the tenants of a database in batches (core/aws/steps.ts
 * `listTenantsStep`). Runs in the database's VPC and reads its Secrets Manager secret.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { listTenantsStep } from '../../core/aws/steps';
import { connectionFromSecret } from '../../core/aws/task';
import { listTenants } from '../../core/tenants/backup';
import type { ContainerJob } from '../../core/aws/job';
import { powertools, stepHandler } from '../../core/aws/powertools';

const pt = powertools('cofre-list-tenants');
const { logger, traced } = pt;
const secrets = traced(new SecretsManagerClient({}));

export const handler = stepHandler(
  pt,
  'list-tenants',
  async (event: { job: unknown }): Promise<{ count: number; batches: ContainerJob[] }> => {
    const result = await listTenantsStep(event, {
      connect: async (job) => {
        const out = await secrets.send(
          new GetSecretValueCommand({ SecretId: job.database.credentialsSecretArn }),
        );
        return connectionFromSecret(job, out.SecretString);
      },
      listTenants,
    });
    logger.info('tenants listed', { count: result.count, batches: result.batches.length });
    return result;
  },
);
