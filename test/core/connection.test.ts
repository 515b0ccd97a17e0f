import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { parseDatabaseUrl, parseEngine, redactUrl, resolveCredentials } from '../../core/connection';
import { UsageError } from '../../core/errors';

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

  it('reads an RDS-format secret from Secrets Manager', async () => {
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({
        username: 'backup',
        password: 's3cr3t',
        host: 'rds.internal',
        port: 5433,
        engine: 'postgres',
      }),
    });
    const resolved = await resolveCredentials(base, {
      secretArn: 'arn:aws:secretsmanager:sa-east-1:1:secret:x',
      secrets: new SecretsManagerClient({}),
    });
    expect(resolved).toMatchObject({
      user: 'backup',
      password: 's3cr3t',
      host: 'rds.internal',
      port: 5433,
      database: 'clinic',
    });
    sm.restore();
  });

  it('rejects a secret that is not in the RDS format, naming --secret and not echoing it', async () => {
    const sm = mockClient(SecretsManagerClient);
    sm.on(GetSecretValueCommand).resolves({ SecretString: 'hunter2' });
    const p = resolveCredentials(base, { secretArn: 'arn:x', secrets: new SecretsManagerClient({}) });
    await expect(p).rejects.toThrow(/--secret: expected arn:x to hold JSON in the RDS format/);
    await expect(p).rejects.not.toThrow(/hunter2/);
    sm.restore();
  });
});
