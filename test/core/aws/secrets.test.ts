/** Secret reads through Powertools Parameters (core/aws/secrets.ts) against the local AWS (moto). */
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import { secretReader } from '../../../core/aws/secrets';
import { clientConfig, createSecret, describeLocalAws, localAws } from '../../helpers/local-aws';

/** A client that counts its GetSecretValue calls. */
function countingClient(): { client: SecretsManagerClient; reads: () => number } {
  const client = new SecretsManagerClient(clientConfig());
  let reads = 0;
  client.middlewareStack.add(
    (next, context) => (args) => {
      if (context.commandName === 'GetSecretValueCommand') reads++;
      return next(args);
    },
    { step: 'initialize', name: 'countSecretReads' },
  );
  return { client, reads: () => reads };
}

describeLocalAws('secretReader (Parameters getSecret with maxAge, local AWS)', () => {
  it('reuses the cached value within maxAge and reads the new one after it', async () => {
    const secrets = localAws().secrets;
    const arn = await createSecret(secrets, { username: 'app', password: 'first' }, 'db-rotated');
    const { client, reads } = countingClient();
    const read = secretReader(client, 1);
    expect(JSON.parse(await read(arn))).toMatchObject({ password: 'first' });
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: arn,
        SecretString: JSON.stringify({ username: 'app', password: 'second' }),
      }),
    );
    expect(JSON.parse(await read(arn))).toMatchObject({ password: 'first' });
    expect(reads()).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    expect(JSON.parse(await read(arn))).toMatchObject({ password: 'second' });
    expect(reads()).toBe(2);
  });

  it('caches each secret on its own, and a missing secret fails naming it', async () => {
    const secrets = localAws().secrets;
    const [a, b] = await Promise.all([createSecret(secrets, 'A', 'one'), createSecret(secrets, 'B', 'two')]);
    const { client, reads } = countingClient();
    const read = secretReader(client, 60);
    expect([await read(a), await read(b), await read(a)]).toEqual(['A', 'B', 'A']);
    expect(reads()).toBe(2);
    await expect(read(`${a}-missing`)).rejects.toThrow(`secret ${a}-missing: `);
  });
});

describe('secretReader settings', () => {
  it('refuses a negative maxAge, naming it', () => {
    expect(() => secretReader(new SecretsManagerClient({ region: 'sa-east-1' }), -1)).toThrow(
      /secret maxAge: expected seconds \(0 or more\), got -1/,
    );
  });
});
