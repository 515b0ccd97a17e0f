/**
 * Secrets Manager reads of the Lambdas through Powertools Parameters: each secret's value is cached
 * in the container for `maxAge` seconds, then fetched again (so a rotated secret arrives within
 * `maxAge`, without one API call per event). The provider uses the client it is given, so a Lambda's
 * reads are traced like its other SDK calls (`traced(new SecretsManagerClient(...))`).
 */
import { SecretsProvider } from '@aws-lambda-powertools/parameters/secrets';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';

/** How long the PagerDuty relay keeps its routing key: a rotated key is used within 5 minutes. */
export const PAGERDUTY_KEY_MAX_AGE_SECONDS = 300;
/**
 * How long `list-tenants` keeps a database's credentials: short, so a rotated password is picked up
 * before the next run's retry would fail on it, long enough for the retries of one run.
 */
export const DATABASE_SECRET_MAX_AGE_SECONDS = 60;

/** Reads a secret's text (`SecretString`), cached for `maxAgeSeconds`; a binary secret is an error naming it. */
export function secretReader(
  client: SecretsManagerClient,
  maxAgeSeconds: number,
): (secretId: string) => Promise<string> {
  if (!Number.isFinite(maxAgeSeconds) || maxAgeSeconds < 0)
    throw new Error(`secret maxAge: expected seconds (0 or more), got ${maxAgeSeconds}`);
  const provider = new SecretsProvider({ awsSdkV3Client: client });
  return async (secretId) => {
    let value: Awaited<ReturnType<typeof provider.get>>;
    try {
      value = await provider.get(secretId, { maxAge: maxAgeSeconds });
    } catch (error) {
      // Parameters' GetParameterError does not say which secret: add it.
      throw new Error(`secret ${secretId}: ${(error as Error).message}`, { cause: error });
    }
    if (typeof value !== 'string')
      throw new Error(
        `secret ${secretId}: expected a text value (SecretString), got ${value === undefined ? 'none' : 'binary'}`,
      );
    return value;
  };
}
