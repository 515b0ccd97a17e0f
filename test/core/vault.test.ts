import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient, type AwsClientStub } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileVault, openVault, readAll, S3Vault, type Vault } from '../../core/vault';
import { startLocalS3, type LocalS3 } from '../helpers/s3';

/** A body that sends `bytes` and then fails, as a dump that dies half-way does. */
function failingBody(bytes: number): Readable {
  const body = new PassThrough();
  body.write(randomBytes(bytes));
  setTimeout(() => body.destroy(new Error('dump died')), 50);
  return body;
}

function behavesAsAVault(name: string, make: () => Vault) {
  describe(`${name} vault`, () => {
    it('stores, stats, reads and lists objects', async () => {
      const vault = make();
      const data = randomBytes(6 * 1024 * 1024 + 5);
      const stored = await vault.write('full/src/db/ID1/a.bin', Readable.from([data]), {
        tags: { 'cofre:tier': 'daily' },
      });
      expect(stored.bytes).toBe(data.length);
      expect((await vault.stat('full/src/db/ID1/a.bin'))?.bytes).toBe(data.length);
      expect((await readAll(await vault.read('full/src/db/ID1/a.bin'))).equals(data)).toBe(true);
      await vault.write('full/src/db/ID1/manifest.json', Readable.from([Buffer.from('{}')]), { tags: {} });
      expect(await vault.list('full/src/')).toEqual([
        'full/src/db/ID1/a.bin',
        'full/src/db/ID1/manifest.json',
      ]);
      expect(await vault.stat('full/src/db/ID1/nope')).toBeUndefined();
      expect(await vault.readBytes('full/src/db/ID1/nope')).toBeUndefined();
    });

    it('leaves no object when the body fails half-way', async () => {
      const vault = make();
      await expect(
        vault.write('full/src/db/ID2/a.bin', failingBody(7 * 1024 * 1024), { tags: {} }),
      ).rejects.toThrow(/dump died/);
      expect(await vault.list('full/src/db/ID2/')).toEqual([]);
    });

    it('leaves no object when the signal aborts', async () => {
      const vault = make();
      const controller = new AbortController();
      const body = new PassThrough();
      body.write(randomBytes(6 * 1024 * 1024));
      setTimeout(() => {
        controller.abort(new Error('SIGTERM'));
      }, 50);
      await expect(
        vault.write('full/src/db/ID3/a.bin', body, { tags: {}, signal: controller.signal }),
      ).rejects.toThrow();
      expect(await vault.list('full/src/db/ID3/')).toEqual([]);
    });
  });
}

const root = mkdtempSync(path.join(os.tmpdir(), 'cofre-vault-'));
behavesAsAVault('file', () => new FileVault(root));

let s3: LocalS3;
beforeAll(async () => {
  s3 = await startLocalS3();
});
afterAll(async () => {
  await s3.dispose();
});
behavesAsAVault(
  'S3 (s3rver)',
  () => new S3Vault({ client: s3.client, bucket: s3.bucket, prefix: 'team/prod', partSize: 5 * 1024 * 1024 }),
);

describe('file vault atomicity', () => {
  it('never shows a temporary file and removes it on failure', async () => {
    const vault = new FileVault(mkdtempSync(path.join(os.tmpdir(), 'cofre-vault-')));
    await expect(vault.write('x/a.bin', failingBody(1024 * 1024), { tags: {} })).rejects.toThrow();
    expect(await vault.partials()).toEqual([]);
    expect(readdirSync(path.join(vault.root, 'x'))).toEqual([]);
  });
});

describe('openVault', () => {
  it.each([
    ['ftp://x', /--vault: expected s3:\/\/bucket\/prefix or file:\/\/\/absolute\/dir, got "ftp:\/\/x"/],
    ['file://relative/dir', /--vault: expected file:\/\/\/absolute\/dir/],
    ['file:///', /--vault: expected file:\/\/\/absolute\/dir \(an absolute directory, not \/\)/],
    ['s3://Bad_Bucket', /--vault: expected s3:\/\/bucket\/prefix/],
  ])('rejects %s, naming --vault', (url, message) => {
    expect(() => openVault(url)).toThrow(message);
  });

  it('uses AWS_ENDPOINT_URL_S3 with path-style addressing', async () => {
    const vault = openVault(`s3://${s3.bucket}/p`, { env: s3.env });
    expect(vault.kind).toBe('s3');
    await vault.write('k', Readable.from([Buffer.from('hi')]), { tags: {} });
    expect(await vault.list('')).toEqual(['k']);
  });
});

describe('S3 requests', () => {
  // Mocked only inside this block: the tests above talk to a real local S3.
  let s3mock: AwsClientStub<S3Client>;
  beforeAll(() => {
    s3mock = mockClient(S3Client);
  });
  afterAll(() => {
    s3mock.restore();
  });

  it('sends SSE-KMS, bucket keys, SHA-256 checksums, tags and the Object Lock date with the object', async () => {
    s3mock.reset();
    s3mock.on(GetObjectLockConfigurationCommand).resolves({
      ObjectLockConfiguration: {
        ObjectLockEnabled: 'Enabled',
        Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: 30 } },
      },
    });
    s3mock.on(PutObjectCommand).resolves({ ETag: '"e"', ChecksumSHA256: 'c2hh', VersionId: 'v1' });
    s3mock.on(HeadObjectCommand).resolves({ ContentLength: 2, ETag: '"e"', ChecksumSHA256: 'c2hh' });
    const vault = new S3Vault({
      client: new S3Client({ region: 'sa-east-1' }),
      bucket: 'vault',
      prefix: '',
      sseKmsKeyId: 'arn:aws:kms:sa-east-1:1:key/k',
    });
    const lockUntil = new Date('2027-01-01T00:00:00Z');
    const stored = await vault.write('full/a/b/ID/m.json', Readable.from([Buffer.from('{}')]), {
      tags: { 'cofre:tier': 'monthly', 'cofre:class': 'health' },
      lockUntil,
    });
    expect(stored).toMatchObject({ etag: 'e', checksumSha256: 'c2hh', versionId: 'v1' });
    const input = s3mock.commandCalls(PutObjectCommand)[0]!.args[0].input;
    expect(input).toMatchObject({
      Bucket: 'vault',
      Key: 'full/a/b/ID/m.json',
      ChecksumAlgorithm: 'SHA256',
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: 'arn:aws:kms:sa-east-1:1:key/k',
      BucketKeyEnabled: true,
      Tagging: 'cofre%3Atier=monthly&cofre%3Aclass=health',
      ObjectLockMode: 'COMPLIANCE',
      ObjectLockRetainUntilDate: lockUntil,
    });
  });

  it('aborts the multipart upload when the body fails', async () => {
    s3mock.reset();
    s3mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'up-1' });
    s3mock.on(UploadPartCommand).resolves({ ETag: '"p"' });
    s3mock.on(CompleteMultipartUploadCommand).resolves({});
    s3mock.on(AbortMultipartUploadCommand).resolves({});
    const vault = new S3Vault({
      client: new S3Client({ region: 'sa-east-1' }),
      bucket: 'vault',
      prefix: 'p',
      objectLockMode: 'off',
      partSize: 5 * 1024 * 1024,
    });
    await expect(vault.write('big', failingBody(12 * 1024 * 1024), { tags: {} })).rejects.toThrow(
      /upload of big failed, nothing was stored: dump died/,
    );
    expect(s3mock.commandCalls(CreateMultipartUploadCommand)[0]!.args[0].input).toMatchObject({
      Key: 'p/big',
      ChecksumAlgorithm: 'SHA256',
    });
    expect(s3mock.commandCalls(AbortMultipartUploadCommand).map((call) => call.args[0].input)).toEqual([
      {
        Bucket: 'vault',
        Key: 'p/big',
        UploadId: 'up-1',
        ExpectedBucketOwner: undefined,
        RequestPayer: undefined,
      },
    ]);
    expect(s3mock.commandCalls(CompleteMultipartUploadCommand)).toHaveLength(0);
  });

  it('says how to bring back a backup that the lifecycle moved to Glacier', async () => {
    s3mock.reset();
    s3mock.on(GetObjectCommand).rejects(
      Object.assign(new Error("The operation is not valid for the object's storage class"), {
        name: 'InvalidObjectState',
        StorageClass: 'DEEP_ARCHIVE',
      }),
    );
    const vault = new S3Vault({
      client: new S3Client({ region: 'sa-east-1' }),
      bucket: 'vault',
      prefix: 'p',
    });
    await expect(vault.read('full/a/b/ID/x.enc')).rejects.toThrow(
      /full\/a\/b\/ID\/x.enc is in DEEP_ARCHIVE and must be brought back .*aws s3api restore-object --bucket vault --key p\/full\/a\/b\/ID\/x.enc/,
    );
  });
});
