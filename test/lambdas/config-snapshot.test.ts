import { createHash } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { KMS } from '@aws-sdk/client-kms';
import { GetObjectTaggingCommand, HeadObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
} from '@aws-sdk/client-secrets-manager';
import { DeleteParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { loadSnapshots, readSnapshotValue } from '../../core/config/query';
import type { ConfigSnapshotManifest } from '../../core/config/types';
import { buildKeys, type Keys } from '../../core/vault/crypto';
import { DynamoHistoryStore } from '../../core/history/store';
import { openVault, type Vault } from '../../core/vault';
import { createConfigSnapshotHandler, WEEKLY_INPUT } from '../../lambdas/config-snapshot';
import { parameterStoreEvent, secretsManagerEvent } from '../fixtures/config-events';
import {
  clientConfig,
  createHistoryTable,
  createKmsKey,
  createVaultBucket,
  describeLocalAws,
  localAws,
  ssmClient,
  uniqueName,
  uniqueParameterPath,
} from '../helpers/local-aws';
import { withEnv } from '../helpers/env';

/** Every value written in these tests: none may appear in a log line, history record or manifest. */
const SECRET_VALUES: string[] = [];
const secretValue = (label: string) => {
  const v = `${label}-S3cr3t-${createHash('sha256').update(uniqueName(label)).digest('hex').slice(0, 20)}`;
  SECRET_VALUES.push(v);
  return v;
};

describeLocalAws('config-snapshot Lambda on the local AWS', () => {
  const aws = localAws();
  const ssm = ssmClient();
  const prefix = uniqueName('cfg');
  const otherName = uniqueName('other');
  const path = uniqueParameterPath('params');
  let bucket: string;
  let kmsKeyArn: string;
  let keys: Keys;
  let vault: Vault;
  let table: string;
  let handler: ReturnType<typeof createConfigSnapshotHandler>;
  const output: string[] = [];
  const now = new Date();

  beforeAll(async () => {
    bucket = await createVaultBucket(aws.s3);
    kmsKeyArn = await createKmsKey(aws.kms);
    table = await createHistoryTable(aws.dynamodb);
    keys = await buildKeys({ kmsKeyArn }, 'encrypt', () => new KMS(clientConfig()));
    vault = openVault(`s3://${bucket}/vault`, {
      s3: aws.s3,
      sseKmsKeyId: kmsKeyArn,
      objectLockMode: 'COMPLIANCE',
    });
    const capture = (text: string | Uint8Array) => {
      output.push(typeof text === 'string' ? text : Buffer.from(text).toString('utf8'));
      return true;
    };
    vi.spyOn(process.stdout, 'write').mockImplementation(capture);
    vi.spyOn(process.stderr, 'write').mockImplementation(capture);
    handler = withEnv(
      {
        COFRE_CONFIG_TARGETS: JSON.stringify({ secrets: [`${prefix}*`], parameterPaths: [path] }),
        COFRE_CONFIG_RETENTION: JSON.stringify({ days: 90, classes: { health: { years: 7 } } }),
      },
      () =>
        createConfigSnapshotHandler({
          vault,
          keys,
          clients: { secrets: aws.secrets, ssm },
          logger: new Logger({ serviceName: 'cofre-config-snapshot', logLevel: 'DEBUG' }),
          history: new DynamoHistoryStore(DynamoDBDocumentClient.from(aws.dynamodb), table),
        }),
    );
  });

  afterAll(() => {
    vi.restoreAllMocks();
  });

  async function manifestOf(key: string): Promise<ConfigSnapshotManifest> {
    return JSON.parse((await vault.readBytes(key))!.toString('utf8')) as ConfigSnapshotManifest;
  }

  it('PutSecretValue: the new value, encrypted under the vault key with kind/name/version context, tagged, locked 90 days, with a manifest', async () => {
    const name = `${prefix}-db`;
    const created = await aws.secrets.send(
      new CreateSecretCommand({ Name: name, SecretString: secretValue('v1') }),
    );
    const value = secretValue('v2');
    const put = await aws.secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: value }));
    const result = (await handler(
      secretsManagerEvent({
        eventName: 'PutSecretValue',
        arn: created.ARN!,
        name,
        time: '2026-03-01T10:00:00Z',
        versionId: put.VersionId,
      }),
    )) as { outcome: string; key: string };
    expect(result.outcome).toBe('written');
    const m = await manifestOf(result.key);
    expect(m).toMatchObject({
      kind: 'secret',
      name,
      arn: created.ARN,
      state: 'present',
      versionId: put.VersionId,
      valueType: 'string',
      at: '2026-03-01T10:00:00.000Z',
      trigger: 'event',
      eventName: 'PutSecretValue',
      changedBy: 'arn:aws:sts::123456789012:assumed-role/Ops/ops-person',
      sha256: createHash('sha256').update(value).digest('hex'),
      bytes: Buffer.byteLength(value),
      dataClass: 'general',
      keyIds: [`kms:${kmsKeyArn}`],
    });
    expect(result.key).toMatch(/^config\/secret\/[^/]+\/20260301T100000000Z_[0-9a-f]{16}\.json$/);
    // Object Lock: COMPLIANCE until 90 days after the snapshot (rounded up to midnight UTC).
    const head = await aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `vault/${m.object!}` }));
    expect(head.ObjectLockMode).toBe('COMPLIANCE');
    const days = (head.ObjectLockRetainUntilDate!.getTime() - now.getTime()) / 86_400_000;
    expect(days).toBeGreaterThan(89.9);
    expect(days).toBeLessThan(91.1);
    expect(head.ServerSideEncryption).toBe('aws:kms');
    const tags = await aws.s3.send(
      new GetObjectTaggingCommand({ Bucket: bucket, Key: `vault/${m.object!}` }),
    );
    expect(Object.fromEntries(tags.TagSet!.map((t) => [t.Key, t.Value]))).toEqual({
      'cofre:tier': 'config',
      'cofre:class': 'general',
    });
    // The stored object is ciphertext; it opens with the vault key and the right context only.
    const stored = await (
      await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: `vault/${m.object!}` }))
    ).Body!.transformToByteArray();
    expect(Buffer.from(stored).includes(Buffer.from(value))).toBe(false);
    const [snapshot] = await loadSnapshots(vault, { name });
    expect((await readSnapshotValue(vault, keys, snapshot!)).toString('utf8')).toBe(value);
    await expect(
      readSnapshotValue(vault, keys, {
        ...snapshot!,
        manifest: { ...snapshot!.manifest, versionId: 'another-version' },
      }),
    ).rejects.toThrow(/encryption context mismatch: cofre:version/);
  });

  it('UpdateSecret, RotateSecret and RestoreSecret events each snapshot the current value; a redelivered event is written once', async () => {
    const name = `${prefix}-api`;
    const created = await aws.secrets.send(
      new CreateSecretCommand({ Name: name, SecretString: secretValue('a1') }),
    );
    const values: string[] = [];
    for (const [i, eventName] of (['UpdateSecret', 'RotateSecret'] as const).entries()) {
      const v = secretValue(`a${i + 2}`);
      values.push(v);
      const put = await aws.secrets.send(new PutSecretValueCommand({ SecretId: name, SecretString: v }));
      const r = (await handler(
        secretsManagerEvent({
          eventName,
          arn: created.ARN!,
          name,
          time: `2026-03-02T1${i}:00:00Z`,
          versionId: put.VersionId,
          legacyArnKey: eventName === 'RotateSecret',
        }),
      )) as { outcome: string; key: string };
      expect(r.outcome).toBe('written');
      expect((await manifestOf(r.key)).sha256).toBe(createHash('sha256').update(v).digest('hex'));
    }
    await aws.secrets.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7 }));
    await aws.secrets.send(new RestoreSecretCommand({ SecretId: name }));
    const event = secretsManagerEvent({
      eventName: 'RestoreSecret',
      arn: created.ARN!,
      name,
      time: '2026-03-02T13:00:00Z',
      legacyArnKey: true,
    });
    const restored = (await handler(event)) as { outcome: string; key: string };
    expect(restored.outcome).toBe('written');
    expect((await manifestOf(restored.key)).sha256).toBe(
      createHash('sha256').update(values[1]!).digest('hex'),
    );
    expect(await handler(event)).toMatchObject({ outcome: 'duplicate', key: restored.key });
    expect((await loadSnapshots(vault, { name })).length).toBe(3);
  });

  it('DeleteSecret is recorded as a deletion; an event that arrives after the secret was deleted is recorded, not failed', async () => {
    const name = `${prefix}-gone`;
    const created = await aws.secrets.send(
      new CreateSecretCommand({ Name: name, SecretString: secretValue('g1') }),
    );
    const put = await aws.secrets.send(
      new PutSecretValueCommand({ SecretId: name, SecretString: secretValue('g2') }),
    );
    await aws.secrets.send(new DeleteSecretCommand({ SecretId: name, RecoveryWindowInDays: 7 }));
    const late = (await handler(
      secretsManagerEvent({
        eventName: 'PutSecretValue',
        arn: created.ARN!,
        name,
        time: '2026-03-03T10:00:00Z',
        versionId: put.VersionId,
      }),
    )) as { outcome: string; key: string };
    expect(late.outcome).toBe('written');
    const lateManifest = await manifestOf(late.key);
    expect(lateManifest).toMatchObject({ state: 'deleted', name, eventName: 'PutSecretValue' });
    expect(lateManifest.note).toMatch(/arrived after the secret was deleted/);
    expect(lateManifest.object).toBeUndefined();
    const deleted = (await handler(
      secretsManagerEvent({
        eventName: 'DeleteSecret',
        arn: created.ARN!,
        name,
        time: '2026-03-03T10:00:05Z',
        legacyArnKey: true,
      }),
    )) as { outcome: string; key: string };
    expect(await manifestOf(deleted.key)).toMatchObject({
      state: 'deleted',
      name,
      eventName: 'DeleteSecret',
    });
  });

  it('an event for a secret or parameter outside the configured set is ignored (nothing read, nothing written); so is a failed call', async () => {
    const created = await aws.secrets.send(
      new CreateSecretCommand({ Name: otherName, SecretString: secretValue('other') }),
    );
    const before = await vault.list('config/');
    expect(
      await handler(
        secretsManagerEvent({
          eventName: 'PutSecretValue',
          arn: created.ARN!,
          name: otherName,
          time: '2026-03-04T10:00:00Z',
        }),
      ),
    ).toMatchObject({
      outcome: 'ignored',
      reason: expect.stringMatching(/not in the configured set/) as unknown,
    });
    expect(
      await handler(
        parameterStoreEvent({
          operation: 'Update',
          name: `${path}x/sibling`,
          type: 'String',
          time: '2026-03-04T10:00:00Z',
        }),
      ),
    ).toMatchObject({ outcome: 'ignored' });
    expect(
      await handler(
        secretsManagerEvent({
          eventName: 'PutSecretValue',
          arn: created.ARN!.replace(otherName, `${prefix}-x`),
          name: `${prefix}-x`,
          time: '2026-03-04T10:00:00Z',
          errorCode: 'AccessDenied',
        }),
      ),
    ).toMatchObject({ outcome: 'ignored', reason: 'not a configuration change event' });
    expect(await vault.list('config/')).toEqual(before);
  });

  it('a binary secret is kept byte for byte', async () => {
    const name = `${prefix}-cert`;
    const bytes = Buffer.from([0, 1, 2, 250, 251, 252, 13, 10, 0, 255]);
    const created = await aws.secrets.send(new CreateSecretCommand({ Name: name, SecretBinary: bytes }));
    const r = (await handler(
      secretsManagerEvent({
        eventName: 'CreateSecret',
        arn: created.ARN!,
        name,
        time: '2026-03-05T10:00:00Z',
        versionId: created.VersionId,
      }),
    )) as { key: string };
    expect(await manifestOf(r.key)).toMatchObject({ valueType: 'binary', bytes: bytes.length });
    const [snapshot] = await loadSnapshots(vault, { name });
    expect(await readSnapshotValue(vault, keys, snapshot!)).toEqual(bytes);
  });

  it('Parameter Store Create, Update and Delete of a SecureString: decrypted value, its KMS key and version recorded; the deletion too', async () => {
    const name = `${path}/db/password`;
    const paramKey = await createKmsKey(aws.kms, 'parameter key');
    const v1 = secretValue('p1');
    await ssm.send(new PutParameterCommand({ Name: name, Value: v1, Type: 'SecureString', KeyId: paramKey }));
    const r1 = (await handler(
      parameterStoreEvent({ operation: 'Create', name, type: 'SecureString', time: '2026-03-06T10:00:00Z' }),
    )) as { key: string };
    expect(await manifestOf(r1.key)).toMatchObject({
      kind: 'parameter',
      name,
      versionId: '1',
      valueType: 'SecureString',
      parameterKeyId: paramKey,
      sha256: createHash('sha256').update(v1).digest('hex'),
    });
    const v2 = secretValue('p2');
    await ssm.send(
      new PutParameterCommand({
        Name: name,
        Value: v2,
        Type: 'SecureString',
        KeyId: paramKey,
        Overwrite: true,
      }),
    );
    const r2 = (await handler(
      parameterStoreEvent({ operation: 'Update', name, type: 'SecureString', time: '2026-03-06T11:00:00Z' }),
    )) as { key: string };
    expect(await manifestOf(r2.key)).toMatchObject({
      versionId: '2',
      sha256: createHash('sha256').update(v2).digest('hex'),
    });
    await ssm.send(new DeleteParameterCommand({ Name: name }));
    const r3 = (await handler(
      parameterStoreEvent({ operation: 'Delete', name, type: 'SecureString', time: '2026-03-06T12:00:00Z' }),
    )) as { key: string };
    expect(await manifestOf(r3.key)).toMatchObject({ state: 'deleted', eventName: 'Delete' });
    // An Update event for a parameter deleted since: recorded.
    const r4 = (await handler(
      parameterStoreEvent({ operation: 'Update', name, type: 'SecureString', time: '2026-03-06T11:30:00Z' }),
    )) as { key: string };
    expect(await manifestOf(r4.key)).toMatchObject({
      state: 'deleted',
      note: expect.stringMatching(/arrived after the parameter was deleted/) as unknown,
    });
  });

  it('the weekly full snapshot covers every configured secret and parameter (none outside) and records kind config in the history', async () => {
    const plain = `${path}/app/url`;
    await ssm.send(new PutParameterCommand({ Name: plain, Value: 'https://example.test', Type: 'String' }));
    await ssm.send(
      new PutParameterCommand({ Name: `${path}/app/hosts`, Value: 'a,b,c', Type: 'StringList' }),
    );
    const result = await handler(WEEKLY_INPUT);
    expect(result).toMatchObject({ outcome: 'weekly', parameters: 2 });
    const weekly = (await loadSnapshots(vault)).filter((s) => s.manifest.trigger === 'weekly');
    const names = weekly.map((s) => s.manifest.name);
    expect(names).toEqual(
      expect.arrayContaining([plain, `${path}/app/hosts`, `${prefix}-db`, `${prefix}-api`, `${prefix}-cert`]),
    );
    expect(names).not.toContain(otherName);
    expect(names).not.toContain(`${prefix}-gone`); // scheduled for deletion: not listed
    const items = (
      await DynamoDBDocumentClient.from(aws.dynamodb).send(new ScanCommand({ TableName: table }))
    ).Items!;
    const done = items.find((i) => i.kind === 'config' && i.status === 'succeeded');
    expect(done).toMatchObject({
      kind: 'config',
      databaseKindStatus: '-#config#succeeded',
      requestedBy: 'schedule',
    });
    expect(String(done!.message)).toMatch(/3 secrets and 2 parameters snapshotted/);
  });

  it('no secret value appears in any log line, history record or manifest written by these tests', async () => {
    expect(SECRET_VALUES.length).toBeGreaterThan(8);
    const logs = output.join('');
    expect(logs).toMatch(/PutSecretValue secret/); // the handler did log
    const history = JSON.stringify(
      (await DynamoDBDocumentClient.from(aws.dynamodb).send(new ScanCommand({ TableName: table }))).Items,
    );
    const manifests: string[] = [];
    const objects: Buffer[] = [];
    for (const key of await vault.list('config/')) {
      const bytes = (await vault.readBytes(key))!;
      if (key.endsWith('.json')) manifests.push(bytes.toString('utf8'));
      else objects.push(bytes);
    }
    for (const value of SECRET_VALUES) {
      expect(logs.includes(value), `log contains ${value}`).toBe(false);
      expect(history.includes(value), `history contains ${value}`).toBe(false);
      for (const m of manifests) expect(m.includes(value), `manifest contains ${value}`).toBe(false);
      for (const o of objects)
        expect(o.includes(Buffer.from(value)), `object contains ${value} in clear`).toBe(false);
    }
    // Sanity: the values are really in AWS (so the grep would have found a leak).
    const current = await aws.secrets.send(new GetSecretValueCommand({ SecretId: `${prefix}-db` }));
    expect(SECRET_VALUES).toContain(current.SecretString);
  });
});
