/**
 * Restore validation: EventBridge sends the completed AWS Backup restore jobs of RDS instances here.
 * For a job of Cofre's restore testing plan, the temporary instance is compared with the latest
 * Cofre manifests taken before the snapshot (row counts), the result and the measured restore time
 * are recorded (history kind `restore-test`, method `snapshot`), reported to AWS Backup
 * (PutRestoreValidationResult) and, on failure, alerted (core/rds/restore-validation.ts). Runs in
 * the databases' VPC, to reach the temporary instance.
 *
 * Env: COFRE_HISTORY_TABLE, COFRE_TOPIC_ARN, COFRE_NOTIFY_ON_SUCCESS, COFRE_VAULT_URL,
 * COFRE_OBJECT_LOCK_MODE, COFRE_RESTORE_TESTING_PLAN_ARN, COFRE_RESTORE_TEST_DATABASES (JSON
 * [{"database","engine","resourceArn","credentialsSecretArn","databases","excludeDatabases"}]), AWS_REGION.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { BackupClient } from '@aws-sdk/client-backup';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { RDSClient } from '@aws-sdk/client-rds';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { requiredEnv, schemaEnv } from '../../core/aws/env';
import { topicNotifier } from '../../core/alerts/notify';
import { ENGINES } from '../../core/sources/connection';
import { DynamoHistoryStore, type HistoryStore } from '../../core/history/store';
import {
  describeRestoreJobWith,
  handleRestoreTestEvent,
  instanceEndpointWith,
  putValidationResultWith,
  secretCredentialsWith,
} from '../../core/rds/restore-validation';
import { openVault, parseLockMode } from '../../core/vault';
import { lambdaHandler, powertools } from '../../core/aws/powertools';

const databasesSchema = z.array(
  z.strictObject({
    database: z.string().min(1),
    engine: z.enum(ENGINES),
    resourceArn: z.string().startsWith('arn:'),
    credentialsSecretArn: z.string().startsWith('arn:'),
    databases: z.union([z.literal('all'), z.array(z.string().min(1))]),
    excludeDatabases: z.array(z.string()),
  }),
);

export interface RestoreValidationHandlerDeps {
  readonly history: Pick<HistoryStore, 'put'>;
  readonly backup: BackupClient;
  readonly rds: RDSClient;
  readonly secrets: SecretsManagerClient;
  readonly s3: S3Client;
  readonly sns: SNSClient;
  readonly logger: Logger;
  /** PostgreSQL sslMode for the restored instance (default `require`; tests against a local server without TLS pass `disable`). */
  readonly postgresSslMode?: string;
}

/** The handler, with its clients and environment passed in (tests use the local AWS and databases). */
export function createRestoreValidationHandler(deps: RestoreValidationHandlerDeps) {
  const databases = schemaEnv('COFRE_RESTORE_TEST_DATABASES', databasesSchema);
  const notifyTopic = topicNotifier(deps.sns);
  const vault = openVault(requiredEnv('COFRE_VAULT_URL'), {
    s3: deps.s3,
    objectLockMode: parseLockMode(requiredEnv('COFRE_OBJECT_LOCK_MODE'), 'COFRE_OBJECT_LOCK_MODE'),
  });
  const restoreTestingPlanArn = requiredEnv('COFRE_RESTORE_TESTING_PLAN_ARN');
  return async (event: unknown) => {
    const result = await handleRestoreTestEvent(event, {
      restoreTestingPlanArn,
      databases,
      describeRestoreJob: describeRestoreJobWith(deps.backup),
      putValidationResult: putValidationResultWith(deps.backup),
      endpointOf: instanceEndpointWith(deps.rds),
      credentialsOf: secretCredentialsWith(deps.secrets),
      vault,
      history: deps.history,
      notify: notifyTopic,
      postgresSslMode: deps.postgresSslMode ?? 'require',
      log: (line) => {
        deps.logger.info(line);
      },
    });
    if (result.ignored) deps.logger.info('ignored', { reason: result.reason });
    else
      deps.logger.info('validated', {
        id: result.record.id,
        database: result.record.database,
        status: result.record.status,
        restoreSeconds: result.validation.restoreSeconds,
      });
    return result;
  };
}

const pt = powertools('cofre-restore-validation');

export const handler = lambdaHandler(pt, 'restore-validation', () =>
  createRestoreValidationHandler({
    history: new DynamoHistoryStore(
      DynamoDBDocumentClient.from(pt.traced(new DynamoDBClient({}))),
      requiredEnv('COFRE_HISTORY_TABLE'),
    ),
    backup: pt.traced(new BackupClient({})),
    rds: pt.traced(new RDSClient({})),
    secrets: pt.traced(new SecretsManagerClient({})),
    s3: pt.traced(new S3Client({ maxAttempts: 3 })),
    sns: pt.traced(new SNSClient({})),
    logger: pt.logger,
  }),
);
