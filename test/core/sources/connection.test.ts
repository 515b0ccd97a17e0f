import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describe, expect, it } from 'vitest';
import {
  parseDatabaseUrl,
  parseEngine,
  redactUrl,
  resolveCredentials,
} from '../../../core/sources/connection';
import { UsageError } from '../../../core/util/errors';
import { clientConfig, createSecret, describeLocalAws, localAws } from '../../helpers/local-aws';

describe('parseDatabaseUrl', () => {
  it('reads host, port, user, password, database and sslmode', () => {
    expect(
      parseDatabaseUrl('postgres', 'postgresql://app:p%40ss@db.internal:6543/clinic?sslmode=require'),
    ).toEqual({
      engine: 'postgres',
      host: 'db.internal',
      port: 6543,
      user: 'app',
      password: 'p@ss',
      database: 'clinic',
      sslMode: 'require',
    });
    expect(parseDatabaseUrl('mysql', 'mariadb://root@127.0.0.1/ledger')).toMatchObject({
      port: 3306,
      user: 'root',
    });
  });

  it.each([
    ['postgres', 'not a url', /--url: expected a URL like "postgres:\/\/user@host:5432\/dbname"/],
    ['postgres', 'mysql://root@h/db', /--url: the URL is for mysql but --engine is postgres/],
    [
      'mysql',
      'http://h/db',
      /--url: expected a postgres:\/\/, postgresql:\/\/, mysql:\/\/ or mariadb:\/\/ URL/,
    ],
  ] as const)('rejects %s %s with a message naming --url', (engine, url, message) => {
    expect(() => parseDatabaseUrl(engine, url)).toThrow(message);
    expect(() => parseDatabaseUrl(engine, url)).toThrow(UsageError);
  });

  it('never echoes a password in an error', () => {
    expect(() => parseDatabaseUrl('postgres', 'postgres://u:hunter2@')).toThrow(/^(?!.*hunter2)/);
  });
});

it('rejects an unknown engine, naming --engine', () => {
  expect(() => parseEngine('oracle')).toThrow(/--engine: expected "postgres" or "mysql", got "oracle"/);
});

it('redacts passwords from URLs', () => {
  expect(redactUrl('postgres://u:hunter2@h/db')).toBe('postgres://u:***@h/db');
  expect(redactUrl('postgres://u:hunter2@')).not.toContain('hunter2');
});

describe('resolveCredentials', () => {
  const base = parseDatabaseUrl('postgres', 'postgres://app@db:5432/clinic');

  it('takes the password from COFRE_DB_PASSWORD, then the tool’s own variable', async () => {
    expect(
      (await resolveCredentials(base, { env: { COFRE_DB_PASSWORD: 'a', PGPASSWORD: 'b' } })).password,
    ).toBe('a');
    expect((await resolveCredentials(base, { env: { PGPASSWORD: 'b' } })).password).toBe('b');
  });
});

describeLocalAws('credentials from Secrets Manager (local AWS)', () => {
  const base = parseDatabaseUrl('postgres', 'postgres://app@db:5432/clinic');
  it('reads an RDS-format secret from Secrets Manager', async () => {
    const secretArn = await createSecret(localAws().secrets, {
      username: 'backup',
      password: 's3cr3t',
      host: 'rds.internal',
      port: 5433,
      engine: 'postgres',
    });
    const resolved = await resolveCredentials(base, {
      secretArn,
      secrets: new SecretsManagerClient(clientConfig()),
    });
    expect(resolved).toMatchObject({
      user: 'backup',
      password: 's3cr3t',
      host: 'rds.internal',
      port: 5433,
      database: 'clinic',
    });
  });

  it('rejects a secret that is not in the RDS format, naming --secret and not echoing it', async () => {
    const secretArn = await createSecret(localAws().secrets, 'hunter2');
    const p = resolveCredentials(base, { secretArn, secrets: new SecretsManagerClient(clientConfig()) });
    await expect(p).rejects.toThrow(
      new RegExp(
        `--secret: expected ${secretArn.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} to hold JSON in the RDS format`,
      ),
    );
    await expect(p).rejects.not.toThrow(/hunter2/);
  });

  it('names the secret when Secrets Manager has no such secret', async () => {
    const p = resolveCredentials(base, {
      secretArn: 'arn:aws:secretsmanager:sa-east-1:123456789012:secret:cofre-no-such-AbCdEf',
      secrets: new SecretsManagerClient(clientConfig()),
    });
    await expect(p).rejects.toThrow(/cofre-no-such-AbCdEf/);
  });
});
