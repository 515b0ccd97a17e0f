/**
 * Configuration snapshots (core/config/): invoked by EventBridge rules for Secrets Manager API
 * calls (via CloudTrail) and Parameter Store changes, it snapshots the changed secret or parameter
 * into the vault's `config/`; invoked by the weekly schedule with `{"cofre":"config-weekly"}`, it
 * snapshots everything configured and records kind `config` in the history. Values are never logged.
 *
 * Env: COFRE_VAULT_URL, COFRE_KMS_KEY_ARN, COFRE_OBJECT_LOCK_MODE, COFRE_CONFIG_TARGETS (JSON
 * {"secrets":[…],"parameterPaths":[…],"dataClass":"general"}), COFRE_CONFIG_RETENTION (JSON
 * {"days":90,"classes":{"health":{"years":7}}}), COFRE_HISTORY_TABLE.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { KMS } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { z } from 'zod';
import { requiredEnv, schemaEnv } from '../../core/aws/env';
import type { ConfigClients } from '../../core/config/aws';
import { parseConfigEvent } from '../../core/config/events';
import { snapshotAll, snapshotChange, type ConfigLog } from '../../core/config/snapshot';
import type { ConfigTargets } from '../../core/config/targets';
import type { ConfigRetention } from '../../core/config/types';
import { buildKeys, type Keys } from '../../core/vault/crypto';
import { DynamoHistoryStore, type HistoryStore } from '../../core/history/store';
import { openVault, parseLockMode, type Vault } from '../../core/vault';
import { lambdaHandler, powertools } from '../../core/aws/powertools';

/** The input the weekly schedule sends. */
export const WEEKLY_INPUT = { cofre: 'config-weekly' } as const;

const targetsSchema = z.strictObject({
  secrets: z.array(z.string().min(1)),
  parameterPaths: z.array(z.string().startsWith('/')),
  dataClass: z.string().min(1).optional(),
});
const retentionSchema = z.strictObject({
  days: z.number().int().positive(),
  classes: z.record(z.string(), z.strictObject({ years: z.number().int().positive() })),
});

/** The settings from the environment, or an error naming the variable. */
export function configSnapshotSettings(): {
  targets: ConfigTargets;
  retention: ConfigRetention;
} {
  return {
    targets: schemaEnv('COFRE_CONFIG_TARGETS', targetsSchema),
    retention: schemaEnv('COFRE_CONFIG_RETENTION', retentionSchema),
  };
}

export interface ConfigSnapshotHandlerDeps {
  readonly vault: Vault;
  readonly keys: Keys;
  readonly clients: ConfigClients;
  readonly logger: Logger;
  readonly history?: Pick<HistoryStore, 'put'> | undefined;
  readonly now?: () => Date;
}

export function createConfigSnapshotHandler(deps: ConfigSnapshotHandlerDeps) {
  const settings = configSnapshotSettings();
  const log: ConfigLog = (level, message, fields) => {
    deps.logger[level](message, fields ?? {});
  };
  const common = {
    ...settings,
    vault: deps.vault,
    keys: deps.keys,
    clients: deps.clients,
    log,
    now: deps.now,
  };
  return async (event: unknown) => {
    if (event && typeof event === 'object' && (event as { cofre?: unknown }).cofre === WEEKLY_INPUT.cofre) {
      const report = await snapshotAll({ ...common, history: deps.history });
      if (report.failures.length)
        throw new Error(
          `weekly configuration snapshot ${report.id}: ${report.failures.length} failed (see the log)`,
        );
      return { outcome: 'weekly', secrets: report.secrets, parameters: report.parameters };
    }
    const change = parseConfigEvent(event);
    if (!change) {
      deps.logger.info('not a configuration change event; nothing to do', {
        source: (event as { source?: unknown } | undefined)?.source,
      });
      return { outcome: 'ignored' as const, reason: 'not a configuration change event' };
    }
    const outcome = await snapshotChange(common, change);
    return outcome.outcome === 'written' ? { outcome: outcome.outcome, key: outcome.key } : outcome;
  };
}

const pt = powertools('cofre-config-snapshot');

async function build() {
  const kmsKeyArn = requiredEnv('COFRE_KMS_KEY_ARN');
  const kms = pt.traced(new KMS({ maxAttempts: 3 }));
  return createConfigSnapshotHandler({
    vault: openVault(requiredEnv('COFRE_VAULT_URL'), {
      s3: pt.traced(new S3Client({ maxAttempts: 3 })),
      sseKmsKeyId: kmsKeyArn,
      objectLockMode: parseLockMode(requiredEnv('COFRE_OBJECT_LOCK_MODE'), 'COFRE_OBJECT_LOCK_MODE'),
    }),
    keys: await buildKeys({ kmsKeyArn }, 'encrypt', () => kms),
    clients: {
      secrets: pt.traced(new SecretsManagerClient({ maxAttempts: 3 })),
      ssm: pt.traced(new SSMClient({ maxAttempts: 3 })),
    },
    logger: pt.logger,
    history: new DynamoHistoryStore(
      DynamoDBDocumentClient.from(pt.traced(new DynamoDBClient({}))),
      requiredEnv('COFRE_HISTORY_TABLE'),
    ),
  });
}

export const handler = lambdaHandler(pt, 'config-snapshot', build);
