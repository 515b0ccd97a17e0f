import { createHash } from 'node:crypto';
import { Logger } from '@aws-lambda-powertools/logger';
import { KMS } from '@aws-sdk/client-kms';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  CreateSecretCommand,
  DeleteSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
} from '@aws-sdk/client-secrets-manager';
import {
  DeleteParameterCommand,
  DescribeParametersCommand,
  GetParameterCommand,
  PutParameterCommand,
} from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadSnapshots } from '../../core/config/query';
import { buildKeys } from '../../core/vault/crypto';
import { openVault } from '../../core/vault';
import { createConfigSnapshotHandler } from '../../lambdas/config-snapshot';
import { parameterStoreEvent, secretsManagerEvent } from '../fixtures/config-events';
import { cofre } from '../helpers/cli';
import {
  clientConfig,
  createKmsKey,
  createVaultBucket,
  describeLocalAws,
  localAws,
  localAwsEnv,
  ssmClient,
  uniqueName,
  uniqueParameterPath,
} from '../helpers/local-aws';
import { withEnv } from '../helpers/env';

const sha = (v: string | Buffer) => createHash('sha256').update(v).digest('hex');
/** The change times t0…t4 (create, three changes, delete), an hour apart. */
const T = [0, 1, 2, 3, 4].map((h) => new Date(Date.UTC(2026, 3, 1, 10 + h)).toISOString());
/** Half an hour after change i: the point in time that must show version i. */
const after = (i: number) => new Date(Date.parse(T[i]!) + 30 * 60_000).toISOString();

describe('cofre config: bad usage exits 2 and names the flag', () => {
  it.each([
    [
      ['config', 'show', '--vault', 'file:///tmp/x', '--name', 'a', '--as-of', 'yesterday'],
      /--as-of: expected a date \(2026-03-01/,
    ],
    [
      ['config', 'show', '--vault', 'file:///tmp/x', '--name', 'a', '--as-of', '2026-02-30'],
      /--as-of: expected a date/,
    ],
    [
      ['config', 'list', '--vault', 'file:///tmp/x', '--as-of', '2026-03-01T10:00:00'],
      /--as-of: expected a date .* with a zone/,
    ],
    [
      ['config', 'list', '--vault', 'file:///tmp/x', '--kind', 'queue'],
      /--kind: expected secret or parameter, got "queue"/,
    ],
    [
      ['config', 'diff', '--vault', 'file:///tmp/x', '--from', '2026-03-02', '--to', '2026-03-01'],
      /--from: expected a point in time before --to/,
    ],
    [
      ['config', 'restore', '--vault', 'file:///tmp/x', '--name', 'a'],
      /required option '--as-of <date>' not specified/,
    ],
  ])('%j', async (args, message) => {
    const r = await cofre(args);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
  });
});

describeLocalAws('cofre config on the local AWS: create, change three times, delete, restore by date', () => {
  const aws = localAws();
  const ssm = ssmClient();
  const env = localAwsEnv();
  const prefix = uniqueName('e2e');
  const path = uniqueParameterPath('e2e');
  const secretName = `${prefix}-db`;
  const binaryName = `${prefix}-cert`;
  const paramName = `${path}/fiscal/token`;
  let vaultUrl: string;
  let bucket: string;
  let kmsKeyArn: string;
  let paramKey: string;
  const values: string[] = [];
  const binaries: Buffer[] = [];
  const params: string[] = [];
  const cliOutput: string[] = [];

  const run = async (args: string[]) => {
    const r = await cofre(args, env);
    cliOutput.push(r.stderr, args.includes('--reveal') ? '' : r.stdout);
    return r;
  };

  beforeAll(async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    bucket = await createVaultBucket(aws.s3);
    kmsKeyArn = await createKmsKey(aws.kms);
    paramKey = await createKmsKey(aws.kms, 'parameter key');
    vaultUrl = `s3://${bucket}/cofre`;
    const vault = openVault(vaultUrl, { s3: aws.s3, sseKmsKeyId: kmsKeyArn, objectLockMode: 'COMPLIANCE' });
    const keys = await buildKeys({ kmsKeyArn }, 'encrypt', () => new KMS(clientConfig()));
    const handler = withEnv(
      {
        COFRE_CONFIG_TARGETS: JSON.stringify({ secrets: [`${prefix}*`], parameterPaths: [path] }),
        COFRE_CONFIG_RETENTION: JSON.stringify({ days: 90, classes: {} }),
      },
      () =>
        createConfigSnapshotHandler({
          vault,
          keys,
          clients: { secrets: aws.secrets, ssm },
          logger: new Logger({ serviceName: 'cofre-config-snapshot' }),
        }),
    );
    for (let i = 0; i < 4; i++) {
      values.push(`db-password-${i}-${uniqueName('v')}`);
      binaries.push(Buffer.from([i, 0, 255, 10, 13, i * 7]));
      params.push(`fiscal-token-${i}-${uniqueName('p')}`);
    }
    // t0: create; t1..t3: three changes, each followed by its event, as EventBridge delivers it.
    const created = await aws.secrets.send(
      new CreateSecretCommand({ Name: secretName, SecretString: values[0] }),
    );
    await handler(
      secretsManagerEvent({
        eventName: 'CreateSecret',
        arn: created.ARN!,
        name: secretName,
        time: T[0]!,
        versionId: created.VersionId,
      }),
    );
    const bin = await aws.secrets.send(
      new CreateSecretCommand({ Name: binaryName, SecretBinary: binaries[0] }),
    );
    await handler(
      secretsManagerEvent({
        eventName: 'CreateSecret',
        arn: bin.ARN!,
        name: binaryName,
        time: T[0]!,
        versionId: bin.VersionId,
      }),
    );
    await ssm.send(
      new PutParameterCommand({ Name: paramName, Value: params[0], Type: 'SecureString', KeyId: paramKey }),
    );
    await handler(
      parameterStoreEvent({ operation: 'Create', name: paramName, type: 'SecureString', time: T[0]! }),
    );
    for (let i = 1; i <= 3; i++) {
      const put = await aws.secrets.send(
        new PutSecretValueCommand({ SecretId: secretName, SecretString: values[i] }),
      );
      await handler(
        secretsManagerEvent({
          eventName: i === 2 ? 'UpdateSecret' : 'PutSecretValue',
          arn: created.ARN!,
          name: secretName,
          time: T[i]!,
          versionId: put.VersionId,
        }),
      );
      const putBin = await aws.secrets.send(
        new PutSecretValueCommand({ SecretId: binaryName, SecretBinary: binaries[i] }),
      );
      await handler(
        secretsManagerEvent({
          eventName: 'PutSecretValue',
          arn: bin.ARN!,
          name: binaryName,
          time: T[i]!,
          versionId: putBin.VersionId,
        }),
      );
      await ssm.send(
        new PutParameterCommand({
          Name: paramName,
          Value: params[i],
          Type: 'SecureString',
          KeyId: paramKey,
          Overwrite: true,
        }),
      );
      await handler(
        parameterStoreEvent({ operation: 'Update', name: paramName, type: 'SecureString', time: T[i]! }),
      );
    }
    // t4: delete the secret (scheduled) and the parameter.
    await aws.secrets.send(new DeleteSecretCommand({ SecretId: secretName, RecoveryWindowInDays: 7 }));
    await handler(
      secretsManagerEvent({ eventName: 'DeleteSecret', arn: created.ARN!, name: secretName, time: T[4]! }),
    );
    await ssm.send(new DeleteParameterCommand({ Name: paramName }));
    await handler(
      parameterStoreEvent({ operation: 'Delete', name: paramName, type: 'SecureString', time: T[4]! }),
    );
  });

  afterAll(() => {
    vi.restoreAllMocks();
  });

  it('show --as-of gives the version in effect at each point in time; the value only with --reveal', async () => {
    for (let i = 0; i < 4; i++) {
      const hidden = await run([
        'config',
        'show',
        '--vault',
        vaultUrl,
        '--name',
        secretName,
        '--as-of',
        after(i),
        '--json',
      ]);
      expect(hidden.code, hidden.stderr).toBe(0);
      expect(JSON.parse(hidden.stdout)).toMatchObject({
        name: secretName,
        state: 'present',
        sha256: sha(values[i]!),
      });
      expect(hidden.stdout + hidden.stderr).not.toContain(values[i]);
      expect(hidden.stderr).toMatch(/value hidden: add --reveal/);
      const shown = await run([
        'config',
        'show',
        '--vault',
        vaultUrl,
        '--name',
        secretName,
        '--as-of',
        after(i),
        '--reveal',
        '--kms-key',
        kmsKeyArn,
      ]);
      expect(shown.code, shown.stderr).toBe(0);
      expect(shown.stdout).toBe(`${values[i]}\n`);
      const param = await run([
        'config',
        'show',
        '--vault',
        vaultUrl,
        '--name',
        paramName,
        '--as-of',
        after(i),
        '--reveal',
        '--kms-key',
        kmsKeyArn,
        '--json',
      ]);
      expect(JSON.parse(param.stdout)).toMatchObject({
        value: params[i],
        valueType: 'SecureString',
        versionId: String(i + 1),
      });
      const binary = await run([
        'config',
        'show',
        '--vault',
        vaultUrl,
        '--name',
        binaryName,
        '--as-of',
        after(i),
        '--reveal',
        '--kms-key',
        kmsKeyArn,
        '--json',
      ]);
      expect(
        Buffer.from((JSON.parse(binary.stdout) as { valueBase64: string }).valueBase64, 'base64'),
      ).toEqual(binaries[i]);
    }
    const gone = await run([
      'config',
      'show',
      '--vault',
      vaultUrl,
      '--name',
      secretName,
      '--as-of',
      after(4),
    ]);
    expect(gone.code).toBe(0);
    expect(gone.stderr).toMatch(/DELETED/);
    const before = await run([
      'config',
      'show',
      '--vault',
      vaultUrl,
      '--name',
      secretName,
      '--as-of',
      '2026-03-31',
    ]);
    expect(before.code).toBe(2);
    expect(before.stderr).toMatch(/--as-of: the first snapshot of .* is from 2026-04-01T10:00:00.000Z/);
  });

  it("list: a name's history up to --as-of, or what every name held at --as-of", async () => {
    const history = await run([
      'config',
      'list',
      '--vault',
      vaultUrl,
      '--name',
      secretName,
      '--as-of',
      after(2),
      '--json',
    ]);
    const rows = (JSON.parse(history.stdout) as { snapshots: { sha256: string; eventName: string }[] })
      .snapshots;
    expect(rows.map((r) => r.sha256)).toEqual([sha(values[0]!), sha(values[1]!), sha(values[2]!)]);
    expect(rows.map((r) => r.eventName)).toEqual(['CreateSecret', 'PutSecretValue', 'UpdateSecret']);
    const all = await run(['config', 'list', '--vault', vaultUrl, '--as-of', after(1), '--json']);
    const state = (JSON.parse(all.stdout) as { snapshots: { name: string; sha256: string }[] }).snapshots;
    expect(Object.fromEntries(state.map((s) => [s.name, s.sha256]))).toEqual({
      [secretName]: sha(values[1]!),
      [binaryName]: sha(binaries[1]!),
      [paramName]: sha(params[1]!),
    });
  });

  it('diff: names and hashes of what changed between two dates, never values', async () => {
    const r = await run([
      'config',
      'diff',
      '--vault',
      vaultUrl,
      '--from',
      after(0),
      '--to',
      after(2),
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const changes = (
      JSON.parse(r.stdout) as {
        changes: { name: string; change: string; from: { sha256: string }; to: { sha256: string } }[];
      }
    ).changes;
    expect(changes.map((c) => [c.name, c.change, c.from.sha256, c.to.sha256]).sort()).toEqual(
      [
        [secretName, 'changed', sha(values[0]!), sha(values[2]!)],
        [binaryName, 'changed', sha(binaries[0]!), sha(binaries[2]!)],
        [paramName, 'changed', sha(params[0]!), sha(params[2]!)],
      ].sort(),
    );
    const deleted = await run([
      'config',
      'diff',
      '--vault',
      vaultUrl,
      '--from',
      after(3),
      '--to',
      after(4),
      '--json',
    ]);
    expect(
      (JSON.parse(deleted.stdout) as { changes: { name: string; change: string }[] }).changes
        .map((c) => [c.name, c.change])
        .sort(),
    ).toEqual(
      [
        [secretName, 'removed'],
        [paramName, 'removed'],
      ].sort(),
    );
  });

  it('restore --dry-run changes nothing; restore writes the chosen version back as a new version (a deleted secret comes back)', async () => {
    const deletedAt = await run([
      'config',
      'restore',
      '--vault',
      vaultUrl,
      '--name',
      secretName,
      '--as-of',
      after(4),
      '--kms-key',
      kmsKeyArn,
    ]);
    expect(deletedAt.code).toBe(2);
    expect(deletedAt.stderr).toMatch(/was deleted at that time .* choose an earlier date/);

    const dry = await run([
      'config',
      'restore',
      '--vault',
      vaultUrl,
      '--name',
      secretName,
      '--as-of',
      after(1),
      '--kms-key',
      kmsKeyArn,
      '--dry-run',
      '--json',
    ]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toMatch(/DRY RUN .* now deleted; nothing changed/);
    expect(
      (await aws.secrets.send(new DescribeSecretCommand({ SecretId: secretName }))).DeletedDate,
    ).toBeDefined();

    const r = await run([
      'config',
      'restore',
      '--vault',
      vaultUrl,
      '--name',
      secretName,
      '--as-of',
      after(1),
      '--kms-key',
      kmsKeyArn,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as {
      newVersionId: string;
      snapshot: { versionId: string };
      steps: string[];
    };
    expect(report.steps).toEqual(['cancelled its scheduled deletion']);
    const now = await aws.secrets.send(new GetSecretValueCommand({ SecretId: secretName }));
    expect(now.SecretString).toBe(values[1]);
    expect(now.VersionId).toBe(report.newVersionId);
    expect(now.VersionId).not.toBe(report.snapshot.versionId); // a new version, not a relabel

    const rp = await run([
      'config',
      'restore',
      '--vault',
      vaultUrl,
      '--name',
      paramName,
      '--as-of',
      after(2),
      '--kms-key',
      kmsKeyArn,
      '--json',
    ]);
    expect(rp.code, rp.stderr).toBe(0);
    const param = (await ssm.send(new GetParameterCommand({ Name: paramName, WithDecryption: true })))
      .Parameter!;
    expect(param).toMatchObject({ Value: params[2], Type: 'SecureString' });
    const described = await ssm.send(
      new DescribeParametersCommand({
        ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [paramName] }],
      }),
    );
    expect(described.Parameters![0]!.KeyId).toBe(paramKey);

    // A secret deleted for good (no recovery window) is created again under its name.
    await aws.secrets.send(
      new DeleteSecretCommand({ SecretId: binaryName, ForceDeleteWithoutRecovery: true }),
    );
    const rb = await run([
      'config',
      'restore',
      '--vault',
      vaultUrl,
      '--name',
      binaryName,
      '--as-of',
      after(0),
      '--kms-key',
      kmsKeyArn,
    ]);
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.stderr).toMatch(/created the secret again/);
    const binary = await aws.secrets.send(new GetSecretValueCommand({ SecretId: binaryName }));
    expect(Buffer.from(binary.SecretBinary!)).toEqual(binaries[0]);
    const again = await run([
      'config',
      'restore',
      '--vault',
      vaultUrl,
      '--name',
      binaryName,
      '--as-of',
      after(0),
      '--kms-key',
      kmsKeyArn,
    ]);
    expect(again.stderr).toMatch(/already holds .* nothing written/);
  });

  it('a snapshot that does not match its manifest is an integrity failure (exit 3), and restore writes nothing', async () => {
    const vault = openVault(vaultUrl, { s3: aws.s3, objectLockMode: 'none' });
    const [first] = await loadSnapshots(vault, { name: paramName });
    const forged = { ...first!.manifest, sha256: sha('something else') };
    // A new version of the manifest key (the locked original stays, as Object Lock guarantees).
    await aws.s3.send(
      new PutObjectCommand({ Bucket: bucket, Key: `cofre/${first!.key}`, Body: JSON.stringify(forged) }),
    );
    const show = await run([
      'config',
      'show',
      '--vault',
      vaultUrl,
      '--name',
      paramName,
      '--as-of',
      after(0),
      '--reveal',
      '--kms-key',
      kmsKeyArn,
    ]);
    expect(show.code).toBe(3);
    expect(show.stderr).toMatch(/SHA-256 [0-9a-f]{64} differs from the manifest's/);
    expect(show.stdout).toBe('');
    const before = (await ssm.send(new GetParameterCommand({ Name: paramName }))).Parameter!.Version;
    const restore = await run([
      'config',
      'restore',
      '--vault',
      vaultUrl,
      '--name',
      paramName,
      '--as-of',
      after(0),
      '--kms-key',
      kmsKeyArn,
    ]);
    expect(restore.code).toBe(3);
    expect((await ssm.send(new GetParameterCommand({ Name: paramName }))).Parameter!.Version).toBe(before);
  });

  it('no value appears in any CLI output other than --reveal', () => {
    const text = cliOutput.join('');
    expect(text.length).toBeGreaterThan(1000);
    for (const v of [...values, ...params]) expect(text.includes(v), v).toBe(false);
  });
});
