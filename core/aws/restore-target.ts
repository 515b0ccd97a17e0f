/**
 * Named restore targets: the other servers a console restore of kind `database` may restore a
 * database into (`databases[].restoreTargets` of cofre.config.ts, mirrored here: runtime code does not
 * import lib/). Opt-in per database; the console input names one by `target`, the validation rejects
 * any other name, and the restore task reads only that target's secret (its task role may read the
 * listed targets' secrets and nothing else) and restores there with the same engine as `cofre restore`.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import type { Connection } from '../sources/connection';
import { OperationalError, UsageError, messageOf } from '../util/errors';
import type { JobDatabase } from './job';

/** One restore target as the validation Lambda and the restore task see it. */
export const restoreTargetSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/),
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  credentialsSecretArn: z.string().regex(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/),
  network: z
    .object({
      subnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/)).min(1),
      securityGroupId: z.string().regex(/^sg-[0-9a-f]{8,17}$/),
    })
    .optional(),
});
export type RestoreTarget = z.infer<typeof restoreTargetSchema>;

/** The configured restore targets of a database (none when the field is absent). */
export function restoreTargetsOf(db: JobDatabase): RestoreTarget[] {
  const raw = (db as { restoreTargets?: unknown }).restoreTargets;
  if (raw === undefined) return [];
  const parsed = z.array(restoreTargetSchema).safeParse(raw);
  if (!parsed.success)
    throw new UsageError(
      `databases[${db.id}].restoreTargets: ${parsed.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/**
 * The target the input names, or a problem line naming the field `target` and the allowed names.
 */
export function findRestoreTarget(
  db: JobDatabase,
  name: string,
  problems: string[],
): RestoreTarget | undefined {
  const targets = restoreTargetsOf(db);
  const found = targets.find((t) => t.name === name);
  if (found) return found;
  problems.push(
    `target: expected one of the restore targets of ${db.id} (${targets.length ? targets.map((t) => t.name).join(', ') : 'none configured: databases[].restoreTargets in cofre.config.ts'}), or nothing for its own server, got "${name}"`,
  );
  return undefined;
}

const rdsSecretSchema = z.looseObject({
  username: z.string().min(1),
  password: z.string(),
  host: z.string().min(1).optional(),
  port: z.union([z.number(), z.string()]).optional(),
});

/** `restore target <name> (host:port)`: how messages name a target server. */
export function describeTarget(target: RestoreTarget, c: Pick<Connection, 'host' | 'port'>): string {
  return `restore target ${target.name} (${c.host}:${c.port})`;
}

/**
 * The connection to a restore target: its secret (RDS JSON) read with the task's own credentials, its
 * `host`/`port` winning over the secret's, the source's engine. Never echoes the secret.
 */
export async function targetConnection(
  engine: Connection['engine'],
  target: RestoreTarget,
  secrets: SecretsManagerClient | undefined,
): Promise<Connection> {
  if (!secrets)
    throw new UsageError(
      `restore target ${target.name}: no Secrets Manager client to read ${target.credentialsSecretArn}`,
    );
  let text: string | undefined;
  try {
    const out = await secrets.send(new GetSecretValueCommand({ SecretId: target.credentialsSecretArn }));
    text = out.SecretString;
  } catch (error) {
    throw new OperationalError(
      `restore target ${target.name}: could not read its secret ${target.credentialsSecretArn}: ${messageOf(error)}`,
    );
  }
  let secret: z.infer<typeof rdsSecretSchema>;
  try {
    secret = rdsSecretSchema.parse(JSON.parse(text ?? ''));
  } catch {
    throw new UsageError(
      `restore target ${target.name}: expected its secret ${target.credentialsSecretArn} to hold the RDS secret JSON ({"username": …, "password": …, "host": …})`,
    );
  }
  const host = target.host ?? secret.host;
  if (!host)
    throw new UsageError(
      `restore target ${target.name}: no "host" in its secret, and restoreTargets[].host is not set`,
    );
  const port =
    target.port ?? (secret.port !== undefined ? Number(secret.port) : engine === 'postgres' ? 5432 : 3306);
  return {
    engine,
    host,
    port,
    user: secret.username,
    password: secret.password,
    database: engine === 'postgres' ? 'postgres' : undefined,
    sslMode: undefined,
  };
}
