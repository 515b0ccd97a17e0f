import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { PassThrough, Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FileVault, openVault, readAll, S3Vault, type Vault } from '../../../core/vault';
import {
  createKmsKey,
  createVaultBucket,
  describeLocalAws,
  localAws,
  s3Client,
  type LocalAws,
} from '../../helpers/local-aws';
import { startLocalS3, type LocalS3 } from '../../helpers/s3';
import { tempDir } from '../../helpers/temp';

/** A body that sends `bytes` and then fails, as a dump that dies half-way does. */
function failingBody(bytes: number): Readable {
  const body = new PassThrough();
  body.write(randomBytes(bytes));
  setTimeout(() => body.destroy(new Error('dump died')), 50);
  return body;
}

/**
 * `conditionalWrites`: the server honours `If-None-Match: *` (s3rver ignores it; moto honours it,
 * so the S3 path is proven by the moto block below).
 */
function behavesAsAVault(name: string, make: () => Vault, conditionalWrites = true) {
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
      // sha256 reads the stored object whole; each piece is shown to onChunk once.
      let seen = 0;
      expect(await vault.sha256('full/src/db/ID1/a.bin', (c) => (seen += c.length))).toBe(
        createHash('sha256').update(data).digest('hex'),
      );
      expect(seen).toBe(data.length);
      await vault.write('full/src/db/ID1/manifest.json', Readable.from([Buffer.from('{}')]), { tags: {} });
      expect(await vault.list('full/src/')).toEqual([
        'full/src/db/ID1/a.bin',
        'full/src/db/ID1/manifest.json',
      ]);
      expect(await vault.stat('full/src/db/ID1/nope')).toBeUndefined();
      expect(await vault.readBytes('full/src/db/ID1/nope')).toBeUndefined();
    });

    it.runIf(conditionalWrites)(
      'createExclusive: of writers racing for one key exactly one wins; release frees it',
      async () => {
        const vault = make();
        const key = 'full/src/db/=lock.json';
        const wins = await Promise.all(
          [1, 2, 3, 4].map((i) => vault.createExclusive(key, Buffer.from(`{"n":${i}}`))),
        );
        expect(wins.filter(Boolean)).toHaveLength(1);
        const winner = wins.indexOf(true) + 1;
        expect((await vault.readBytes(key))?.toString()).toBe(`{"n":${winner}}`);
        expect(await vault.createExclusive(key, Buffer.from('{}'))).toBe(false);
        await vault.release(key);
        await vault.release(key);
        expect(await vault.createExclusive(key, Buffer.from('{}'))).toBe(true);
        expect(await vault.createExclusive(key, Buffer.from('{}'))).toBe(false);
      },
    );

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

const root = tempDir('vault');
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
  () =>
    new S3Vault({
      objectLockMode: 'none',
      client: s3.client,
      bucket: s3.bucket,
      prefix: 'team/prod',
      partSize: 5 * 1024 * 1024,
    }),
  false,
);

describe('file vault atomicity', () => {
  it('never shows a temporary file and removes it on failure', async () => {
    const vault = new FileVault(tempDir('vault'));
    await expect(vault.write('x/a.bin', failingBody(1024 * 1024), { tags: {} })).rejects.toThrow();
    expect(await vault.partials()).toEqual([]);
    // The folder the failed write made is gone too; the vault root stays.
    expect(readdirSync(vault.root)).toEqual([]);
  });
});

describe('openVault', () => {
  it.each([
    ['ftp://x', /^vault: expected s3:\/\/bucket\/prefix or file:\/\/\/absolute\/dir, got "ftp:\/\/x"$/],
    ['file://relative/dir', /^vault: expected file:\/\/\/absolute\/dir/],
    ['file:///', /^vault: expected file:\/\/\/absolute\/dir \(an absolute directory, not \/\)/],
    ['s3://Bad_Bucket', /^vault: expected s3:\/\/bucket\/prefix/],
  ])('rejects %s, naming the vault field (the CLI says --vault: test/cli/flags.test.ts)', (url, message) => {
    expect(() => openVault(url)).toThrow(message);
    expect(() => openVault(url)).toThrow(expect.objectContaining({ field: 'vault', exitCode: 2 }));
  });

  it('uses AWS_ENDPOINT_URL_S3 with path-style addressing', async () => {
    const vault = openVault(`s3://${s3.bucket}/p`, { env: s3.env });
    expect(vault.kind).toBe('s3');
    await vault.write('k', Readable.from([Buffer.from('hi')]), { tags: {} });
    expect(await vault.list('')).toEqual(['k']);
  });
});

describeLocalAws('S3 vault against the local AWS (moto)', () => {
  let aws: LocalAws;
  let keyArn: string;
  beforeAll(async () => {
    aws = localAws();
    keyArn = await createKmsKey(aws.kms);
  });
  const lockUntil = new Date(Date.now() + 7 * 365 * 86_400_000);

  const pending: string[] = [];
  beforeEach(async () => {
    pending.push(await createVaultBucket(aws.s3));
  });
  behavesAsAVault('S3 (moto, Object Lock)', () => {
    // A new Object-Lock bucket for each test (beforeEach).
    const vault = new S3Vault({
      objectLockMode: 'COMPLIANCE',
      client: aws.s3,
      bucket: pending.shift()!,
      prefix: 'team/prod',
      partSize: 5 * 1024 * 1024,
    });
    return vault;
  });

  it('stores the object with SSE-KMS under our key, a SHA-256 checksum, its tags and its Object Lock', async () => {
    const bucket = await createVaultBucket(aws.s3, { mode: 'COMPLIANCE', days: 30 });
    const vault = new S3Vault({
      client: aws.s3,
      bucket,
      prefix: '',
      sseKmsKeyId: keyArn,
      objectLockMode: 'COMPLIANCE',
    });
    const body = Buffer.from('{"a":1}');
    const stored = await vault.write('full/a/b/ID/m.json', Readable.from([body]), {
      tags: { 'cofre:tier': 'yearly', 'cofre:class': 'health' },
      lockUntil,
    });
    const head = await aws.s3.send(
      new HeadObjectCommand({ Bucket: bucket, Key: 'full/a/b/ID/m.json', ChecksumMode: 'ENABLED' }),
    );
    expect(head).toMatchObject({
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: keyArn,
      ObjectLockMode: 'COMPLIANCE',
      ChecksumSHA256: createHash('sha256').update(body).digest('base64'),
      VersionId: stored.versionId,
    });
    expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThanOrEqual(lockUntil.getTime() - 1000);
    expect(stored.lock?.mode).toBe('COMPLIANCE');
    const tags = await aws.s3.send(
      new GetObjectTaggingCommand({ Bucket: bucket, Key: 'full/a/b/ID/m.json' }),
    );
    expect(tags.TagSet).toEqual(
      expect.arrayContaining([
        { Key: 'cofre:tier', Value: 'yearly' },
        { Key: 'cofre:class', Value: 'health' },
      ]),
    );
    // Object Lock at work: the version cannot be deleted.
    await expect(
      aws.s3.send(
        new DeleteObjectCommand({ Bucket: bucket, Key: 'full/a/b/ID/m.json', VersionId: stored.versionId }),
      ),
    ).rejects.toThrow(/Access Denied/);
  });

  it('fails the write, naming the bucket, when the bucket has no Object Lock', async () => {
    const bucket = await createVaultBucket(aws.s3, { objectLock: false });
    const vault = new S3Vault({ client: aws.s3, bucket, prefix: '', objectLockMode: 'COMPLIANCE' });
    await expect(
      vault.write('full/a/b/ID/x', Readable.from([Buffer.from('x')]), { tags: {}, lockUntil }),
    ).rejects.toThrow(/upload of full\/a\/b\/ID\/x failed, nothing was stored: .*ObjectLockConfiguration/);
    expect(await vault.list('')).toEqual([]);
  });

  it('fails the write when S3 does not report the lock it asked for (a role without s3:GetObjectRetention)', async () => {
    const bucket = await createVaultBucket(aws.s3, { mode: 'COMPLIANCE', days: 1 });
    // AWS leaves the Object Lock headers out of HeadObject for a caller without s3:GetObjectRetention.
    const client = s3Client();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === 'HeadObjectCommand') {
          const output = out.output as { ObjectLockMode?: string; ObjectLockRetainUntilDate?: Date };
          delete output.ObjectLockMode;
          delete output.ObjectLockRetainUntilDate;
        }
        return out;
      },
      { step: 'initialize', name: 'noGetObjectRetention' },
    );
    const vault = new S3Vault({ client, bucket, prefix: '', objectLockMode: 'COMPLIANCE' });
    await expect(
      vault.write('k', Readable.from([Buffer.from('x')]), { tags: {}, lockUntil }),
    ).rejects.toThrow(
      /k was written, but its Object Lock is not what the backup needs: no Object Lock, where COMPLIANCE until .* was expected\. Is Object Lock enabled on bucket .*s3:GetObjectRetention/,
    );
  });

  it('aborts the multipart upload when the body fails: no object, no upload left', async () => {
    const bucket = await createVaultBucket(aws.s3);
    const vault = new S3Vault({
      client: aws.s3,
      bucket,
      prefix: 'p',
      objectLockMode: 'none',
      partSize: 5 * 1024 * 1024,
    });
    await expect(vault.write('big', failingBody(12 * 1024 * 1024), { tags: {} })).rejects.toThrow(
      /upload of big failed, nothing was stored: dump died/,
    );
    const uploads = await aws.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    expect(uploads.Uploads ?? []).toEqual([]);
    const versions = await aws.s3.send(new ListObjectVersionsCommand({ Bucket: bucket }));
    expect(versions.Versions ?? []).toEqual([]);
  });

  it('says how to bring back a backup that the lifecycle moved to Deep Archive', async () => {
    const bucket = await createVaultBucket(aws.s3, { objectLock: false });
    await aws.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'p/full/a/b/ID/x.enc',
        Body: 'x',
        StorageClass: 'DEEP_ARCHIVE',
      }),
    );
    const vault = new S3Vault({ client: aws.s3, bucket, prefix: 'p', objectLockMode: 'none' });
    await expect(vault.read('full/a/b/ID/x.enc')).rejects.toThrow(
      new RegExp(
        `full/a/b/ID/x.enc is in DEEP_ARCHIVE and must be brought back .*aws s3api restore-object --bucket ${bucket} --key p/full/a/b/ID/x.enc`,
      ),
    );
  });
});
