/**
 * The scheduled files job of an S3-compatible source, through the Fargate task's entry
 * (tasks/dump-runner, `COFRE_COMMAND=files-*`), against the local AWS: a second moto bucket is the
 * S3-compatible source (reached with the access key of its secret, path-style, at the moto endpoint),
 * the vault bucket holds `files/<bucket>/`, and every run lands in the history table.
 */
import { createHash } from 'node:crypto';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { beforeAll, expect, it } from 'vitest';
import { readCatalogue, latestRun } from '../../core/files/catalogue';
import { sourceClientOf, type FilesSourceSettings } from '../../core/files/task';
import { openFilesVault } from '../../core/files/vault';
import { DynamoHistoryStore } from '../../core/history/store';
import { runDumpRunner } from '../../tasks/dump-runner/main';
import {
  clientConfig,
  createHistoryTable,
  createKmsKey,
  createVaultBucket,
  describeLocalAws,
  localAws,
  localAwsEnv,
  REGION,
  uniqueName,
} from '../helpers/local-aws';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

describeLocalAws('files task (S3-compatible source, scheduled by EventBridge Scheduler)', () => {
  const aws = localAws();
  let sourceBucket: string;
  let vaultBucket: string;
  let table: string;
  let kmsKey: string;
  let history: DynamoHistoryStore;
  const logs: string[] = [];

  beforeAll(async () => {
    sourceBucket = uniqueName('minio-docs');
    [vaultBucket, table, kmsKey] = await Promise.all([
      createVaultBucket(aws.s3),
      createHistoryTable(aws.dynamodb),
      createKmsKey(aws.kms, 'files vault'),
      aws.s3.send(
        new CreateBucketCommand({
          Bucket: sourceBucket,
          CreateBucketConfiguration: { LocationConstraint: REGION },
        }),
      ),
    ]);
    history = new DynamoHistoryStore(DynamoDBDocumentClient.from(aws.dynamodb), table);
    for (const [key, body] of [
      ['tenants/1/nfe-001.xml', '<nfe>1</nfe>'],
      ['tenants/1/receipt.pdf', '%PDF-1 receipt'],
      ['tenants/2/nfe-900.xml', '<nfe>900</nfe>'],
      ['readme.txt', 'not a tenant file'],
    ])
      await aws.s3.send(new PutObjectCommand({ Bucket: sourceBucket, Key: key, Body: body }));
  });

  const settings = (over: Partial<FilesSourceSettings> = {}): FilesSourceSettings => ({
    bucket: sourceBucket,
    endpoint: clientConfig().endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    prefixes: [],
    dataClass: 'accounting',
    lockDays: { differential: 3, full: 5 },
    sample: 10,
    ...over,
  });

  /** The task as ECS starts it: the container environment, the schedule's COFRE_COMMAND, the secret. */
  const run = (
    command: string,
    o: { settings?: FilesSourceSettings; credentials?: string; sourceClient?: typeof sourceClientOf } = {},
  ) =>
    runDumpRunner({
      env: {
        ...localAwsEnv(),
        COFRE_COMMAND: command,
        COFRE_FILES_SOURCE: JSON.stringify(o.settings ?? settings()),
        COFRE_FILES_CREDENTIALS:
          o.credentials ??
          JSON.stringify({
            accessKeyId: clientConfig().credentials.accessKeyId,
            secretAccessKey: clientConfig().credentials.secretAccessKey,
          }),
        COFRE_VAULT_URL: `s3://${vaultBucket}`,
        COFRE_KMS_KEY_ARN: kmsKey,
        COFRE_OBJECT_LOCK_MODE: 'GOVERNANCE',
        COFRE_HISTORY_TABLE: table,
      },
      // No task token and no Step Functions: the schedule starts the task directly.
      sfn: new SFNClient({ ...clientConfig(), endpoint: 'http://127.0.0.1:1' }),
      ...(o.sourceClient ? { filesSourceClient: o.sourceClient } : {}),
      log: (line) => logs.push(line),
    });

  const vaultKeys = async (prefix: string) =>
    (
      (await aws.s3.send(new ListObjectsV2Command({ Bucket: vaultBucket, Prefix: prefix }))).Contents ?? []
    ).map((o) => o.Key!);

  it('files-sync copies the source into files/<bucket>/ with the source secret and records a good files run', async () => {
    const used: FilesSourceSettings[] = [];
    const code = await run('files-sync', {
      sourceClient: (s, c) => {
        used.push(s);
        return sourceClientOf(s, c);
      },
    });
    expect(code, logs.join('\n')).toBe(0);
    // The client was built from COFRE_FILES_SOURCE: endpoint, region, path style.
    expect(used).toEqual([settings()]);
    const vault = openFilesVault(`s3://${vaultBucket}`, { client: aws.s3, objectLockMode: 'none' });
    const last = await latestRun(vault, sourceBucket);
    expect(last?.manifest).toMatchObject({
      kind: 'differential',
      dataClass: 'accounting',
      counts: { objects: 4 },
    });
    // lockDays.differential (3 days) is the retention of what the run wrote.
    const lockDays =
      (Date.parse(last!.manifest.lock.until) - Date.parse(last!.manifest.startedAt)) / 86_400_000;
    expect(lockDays).toBeCloseTo(3, 5);
    const entries = await readCatalogue(vault, last!.manifest);
    const copy = await aws.s3.send(
      new GetObjectCommand({
        Bucket: vaultBucket,
        Key: `files/${sourceBucket}/objects/tenants/1/nfe-001.xml`,
        VersionId: entries.find((e) => e.key === 'tenants/1/nfe-001.xml')!.versionId,
      }),
    );
    expect(sha(await copy.Body!.transformToString())).toBe(sha('<nfe>1</nfe>'));
    expect(copy.ServerSideEncryption).toBe('aws:kms');
    const record = await history.latest(`s3:${sourceBucket}`, 'files');
    expect(record).toMatchObject({
      kind: 'files',
      status: 'succeeded',
      requestedBy: 'schedule',
      location: `s3://${vaultBucket}/files/${sourceBucket}/runs/${last!.manifest.runId}/`,
      sha256: last!.sha256,
    });
  });

  it('files-sync-full copies every object again, with lockDays.full', async () => {
    expect(await run('files-sync-full'), logs.join('\n')).toBe(0);
    const vault = openFilesVault(`s3://${vaultBucket}`, { client: aws.s3, objectLockMode: 'none' });
    const last = await latestRun(vault, sourceBucket);
    expect(last?.manifest).toMatchObject({ kind: 'full', counts: { copied: 4, unchanged: 0 } });
    const lockDays =
      (Date.parse(last!.manifest.lock.until) - Date.parse(last!.manifest.startedAt)) / 86_400_000;
    expect(lockDays).toBeCloseTo(5, 5);
  });

  it('prefixes limit what is catalogued', async () => {
    const bucket = uniqueName('prefixed');
    await aws.s3.send(
      new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: REGION } }),
    );
    for (const key of ['tenants/1/a.xml', 'tenants/2/b.xml', 'other.txt'])
      await aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    expect(await run('files-sync', { settings: settings({ bucket, prefixes: ['tenants/1/'] }) })).toBe(0);
    const vault = openFilesVault(`s3://${vaultBucket}`, { client: aws.s3, objectLockMode: 'none' });
    const last = await latestRun(vault, bucket);
    expect((await readCatalogue(vault, last!.manifest)).map((e) => e.key)).toEqual(['tenants/1/a.xml']);
  });

  it('files-restore-test samples the newest run, compares with the source and records a good files-restore-test', async () => {
    expect(await run('files-restore-test'), logs.join('\n')).toBe(0);
    const record = await history.latest(`s3:${sourceBucket}`, 'files-restore-test');
    expect(record).toMatchObject({ status: 'succeeded', requestedBy: 'schedule' });
    expect(record?.message).toMatch(/^4 objects of run .*: 4 equal to the source \(SHA-256\)/);
  });

  it('a source that cannot be reached: exit 1, a failed files record, no new catalogue', async () => {
    const before = await vaultKeys(`files/${sourceBucket}/runs/`);
    const code = await run('files-sync', { settings: settings({ endpoint: 'http://127.0.0.1:1' }) });
    expect(code).toBe(1);
    // The run lock is released in place (=lock.json); no run folder was added.
    const runs = (keys: string[]) => keys.filter((k) => !k.endsWith('=lock.json'));
    expect(runs(await vaultKeys(`files/${sourceBucket}/runs/`))).toEqual(runs(before));
    const record = await history.latest(`s3:${sourceBucket}`, 'files');
    expect(record?.status).toBe('failed');
    expect(record?.message).toMatch(/cannot list source bucket .* at http:\/\/127\.0\.0\.1:1/);
  });

  it('wrong source credentials: the failure is recorded (the source refuses), exit 1', async () => {
    const code = await run('files-sync', {
      sourceClient: (s) =>
        new S3Client({
          endpoint: s.endpoint,
          region: s.region,
          forcePathStyle: true,
          credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
          // moto accepts any key: refuse like a real store would, at the listing.
          maxAttempts: 1,
          requestHandler: {
            handle: () =>
              Promise.reject(Object.assign(new Error('InvalidAccessKeyId'), { name: 'InvalidAccessKeyId' })),
          },
        }),
    });
    expect(code).toBe(1);
    expect((await history.latest(`s3:${sourceBucket}`, 'files'))?.message).toMatch(/InvalidAccessKeyId/);
  });

  it('a secret without the access key: exit 2, nothing recorded, the secret never echoed', async () => {
    const before = await history.latest(`s3:${sourceBucket}`, 'files');
    const code = await run('files-sync', {
      credentials: JSON.stringify({ username: 'u', password: 'SECRET-PW' }),
    });
    expect(code).toBe(2);
    expect(logs.at(-1)).toMatch(/COFRE_FILES_CREDENTIALS: expected the secret as JSON \{"accessKeyId"/);
    expect(logs.join('\n')).not.toContain('SECRET-PW');
    expect(await history.latest(`s3:${sourceBucket}`, 'files')).toEqual(before);
  });

  it('bad settings name the field: exit 2', async () => {
    const code = await run('files-sync', {
      settings: { ...settings(), lockDays: { differential: 0, full: 5 } },
    });
    expect(code).toBe(2);
    expect(logs.at(-1)).toMatch(/COFRE_FILES_SOURCE: lockDays\.differential: /);
  });
});
