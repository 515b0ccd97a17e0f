/**
 * Lambda `restore-validate`: the first state of the console restore (state-machines/restore.asl.json),
 * core/aws/restore-validate.ts `validateRestore`. Reads the vault's catalog (the configured
 * databases' prefixes) and writes the `running` history record; a rejected input fails with
 * `Cofre.BadInput` and one line per problem.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { requiredEnvs } from '../../core/aws/env';
import {
  parseRestoreDatabases,
  validateRestore,
  type ValidateRestoreEvent,
  type ValidatedRestore,
} from '../../core/aws/restore-validate';
import { openVault } from '../../core/vault';
import { powertools, stepHandler } from '../../core/aws/powertools';

const env = requiredEnvs([
  'COFRE_HISTORY_TABLE',
  'COFRE_VAULT_URL',
  'COFRE_RESTORE_DATABASES',
  'COFRE_ACCOUNT',
  'COFRE_PRIMARY_REGION',
  'COFRE_DR_REGION',
]);
const pt = powertools('cofre-restore-validate');
const { logger, traced } = pt;
const databases = parseRestoreDatabases(env.COFRE_RESTORE_DATABASES);
const vault = openVault(env.COFRE_VAULT_URL, { s3: traced(new S3Client({ maxAttempts: 3 })) });
const rds = traced(new RDSClient({ maxAttempts: 5 }));
const drRds = traced(new RDSClient({ maxAttempts: 5, region: env.COFRE_DR_REGION }));
const aws = {
  account: env.COFRE_ACCOUNT,
  primaryRegion: env.COFRE_PRIMARY_REGION,
  drRegion: env.COFRE_DR_REGION,
  rdsIn: (region: string) =>
    region === env.COFRE_DR_REGION && region !== env.COFRE_PRIMARY_REGION ? drRds : rds,
};
const history = new DynamoHistoryStore(
  DynamoDBDocumentClient.from(traced(new DynamoDBClient({}))),
  env.COFRE_HISTORY_TABLE,
);

export const handler = stepHandler(
  pt,
  'restore-validate',
  async (event: ValidateRestoreEvent): Promise<ValidatedRestore> => {
    logger.appendKeys({ executionId: event.executionId });
    const result = await validateRestore(event, { databases, vault, history, rds, aws });
    logger.info('restore validated', {
      kind: result.kind,
      database: result.database.id,
      runId: result.runId,
    });
    return result;
  },
);
