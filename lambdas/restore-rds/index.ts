/**
 * Lambda `restore-rds`: starts a point-in-time restore into a new RDS instance or Aurora cluster
 * (tagged `cofre:restore=<execution>`) and reports its status to the state machine's Wait/poll loop
 * (core/aws/rds-restore-step.ts).
 */
import { RDSClient } from '@aws-sdk/client-rds';
import { rdsRestoreStep, type RdsRestoreEvent } from '../../core/aws/rds-restore-step';
import { powertools, stepHandler } from '../../core/aws/powertools';

const pt = powertools('cofre-restore-rds');
const { logger, traced } = pt;
const clients = new Map<string, RDSClient>();
/** RDS in the pipeline's region, or in a recovery point's (the DR region), one client each. */
function rdsIn(region: string | undefined): RDSClient {
  const key = region ?? '';
  let client = clients.get(key);
  if (!client) {
    client = traced(new RDSClient({ maxAttempts: 5, ...(region ? { region } : {}) }));
    clients.set(key, client);
  }
  return client;
}

export const handler = stepHandler(pt, 'restore-rds', async (event: RdsRestoreEvent): Promise<unknown> => {
  logger.appendKeys({ action: event.action, executionId: event.executionId });
  const result = await rdsRestoreStep(event, { rdsIn });
  logger.info('restore-rds done', { result: 'status' in result ? result.status : 'started' });
  return result;
});
