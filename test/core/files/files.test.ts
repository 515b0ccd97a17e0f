/**
 * Application files from S3-compatible sources (issue 21), against the local AWS: moto S3 is both
 * the source bucket and the files vault (versioned, Object Lock, SSE-KMS). Three days of changes
 * (uploads, overwrites, deletions across tenant folders) are synced with injected clocks; then
 * files, a tenant folder and the whole bucket come back as of each day and are compared with what
 * the test itself uploaded (not with anything Cofre wrote). A run that fails — the source
 * unreachable mid-listing, the vault refusing a write — leaves no catalogue.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { beforeAll, expect, it } from 'vitest';
import { latestRun, readCatalogue, runIds, runsPrefix } from '../../../core/files/catalogue';
import { listFileVersions, restoreFiles } from '../../../core/files/restore';
import { syncBucket, type FilesSource } from '../../../core/files/sync';
import { openFilesVault, type FilesVault } from '../../../core/files/vault';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { Readable } from 'node:stream';
import { DynamoHistoryStore } from '../../../core/history/store';
import { filesRestoreTestRecord, testFilesRestore } from '../../../core/files/restore-test';
import { tempDir } from '../../helpers/cli';
import {
  clientConfig,
  createHistoryTable,
  createKmsKey,
  createVaultBucket,
  describeLocalAws,
  localAws,
  REGION,
  s3Client,
  uniqueName,
} from '../../helpers/local-aws';

type State = Map<string, string>;
const DAY = 86_400_000;
const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

async function createBucket(s3: S3Client, label: string): Promise<string> {
  const bucket = uniqueName(label);
  await s3.send(
    new CreateBucketCommand({ Bucket: bucket, CreateBucketConfiguration: { LocationConstraint: REGION } }),
  );
  return bucket;
}

/** Every object of a bucket with its content (read back from S3). */
async function contents(s3: S3Client, bucket: string, prefix = ''): Promise<State> {
  const out: State = new Map();
  const list = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  for (const o of list.Contents ?? []) {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: o.Key }));
    out.set(o.Key!, await got.Body!.transformToString());
  }
  return out;
}

const under = (state: State, prefix: string): State =>
  new Map([...state].filter(([k]) => k.startsWith(prefix)));

describeLocalAws('files: S3-compatible source synced into the files vault, restored as of a date', () => {
  const aws = localAws();
  let sourceBucket: string;
  let vault: FilesVault;
  let source: FilesSource;
  const days: Date[] = [];
  const states: State[] = [];
  const live: State = new Map();
  let kmsKey: string;

  const put = async (key: string, body: string) => {
    await aws.s3.send(
      new PutObjectCommand({ Bucket: sourceBucket, Key: key, Body: body, ContentType: 'application/pdf' }),
    );
    live.set(key, body);
  };
  const del = async (key: string) => {
    await aws.s3.send(new DeleteObjectCommand({ Bucket: sourceBucket, Key: key }));
    live.delete(key);
  };
  const sync = (day: number, overrides: Partial<Parameters<typeof syncBucket>[0]> = {}) =>
    syncBucket({
      source,
      vault,
      kind: 'differential',
      dataClass: 'accounting',
      lockDays: 10,
      now: () => days[day]!,
      pageSize: 2,
      ...overrides,
    });
  const asOf = (day: number) => new Date(days[day]!.getTime() + 3600_000);

  beforeAll(async () => {
    sourceBucket = await createBucket(aws.s3, 'src');
    const vaultBucket = await createVaultBucket(aws.s3, { mode: 'COMPLIANCE', days: 1 });
    kmsKey = await createKmsKey(aws.kms);
    vault = openFilesVault(`s3://${vaultBucket}/cofre`, {
      client: aws.s3,
      sseKmsKeyId: kmsKey,
      objectLockMode: 'COMPLIANCE',
    });
    source = { client: aws.s3, bucket: sourceBucket, prefixes: [], endpoint: clientConfig().endpoint };
    const start = Date.now() - 4 * DAY;
    for (let d = 0; d < 4; d++) days.push(new Date(start + d * DAY));

    // Day 1 (index 0): two tenants' documents and a shared file.
    await put('tenants/1/a.pdf', 'a: version 1');
    await put('tenants/1/b.xml', '<b>1</b>');
    await put('tenants/2/c.pdf', 'c: version 1');
    await put('tenants/2/d.xml', '<d>1</d>');
    await put('shared/logo.png', 'logo');
    await sync(0);
    states.push(new Map(live));
    // Day 2: an overwrite, a deletion, two new files.
    await put('tenants/1/a.pdf', 'a: version 2');
    await del('tenants/2/d.xml');
    await put('tenants/2/e.pdf', 'e: version 1');
    await put('tenants/1/new.txt', 'new on day 2');
    await sync(1);
    states.push(new Map(live));
    // Day 3: more overwrites and deletions in both tenants.
    await put('tenants/1/a.pdf', 'a: version 3, longer than the others');
    await del('tenants/1/b.xml');
    await put('tenants/2/c.pdf', 'c: version 2');
    await del('tenants/1/new.txt');
    await sync(2);
    states.push(new Map(live));
  }, 120_000);

  it('each run records what changed, its catalogue is the source as listed, and the manifests form a chain', async () => {
    const ids = await runIds(vault, sourceBucket);
    expect(ids).toHaveLength(3);
    const runs = [];
    for (const id of ids) {
      const bytes = (await vault.root.readBytes(`${runsPrefix(sourceBucket)}${id}/manifest.json`))!;
      runs.push({
        manifest: JSON.parse(bytes.toString()) as Awaited<ReturnType<typeof latestRun>> & object,
        sha: sha(bytes),
      });
    }
    const m = runs.map(
      (r) =>
        r.manifest as unknown as {
          counts: Record<string, number>;
          previous: unknown;
          bytes: Record<string, number>;
        },
    );
    expect(m[0]!.counts).toMatchObject({
      objects: 5,
      copied: 5,
      new: 5,
      changed: 0,
      unchanged: 0,
      deleted: 0,
    });
    expect(m[1]!.counts).toMatchObject({
      objects: 6,
      copied: 3,
      new: 2,
      changed: 1,
      unchanged: 3,
      deleted: 1,
    });
    expect(m[2]!.counts).toMatchObject({
      objects: 4,
      copied: 2,
      new: 0,
      changed: 2,
      unchanged: 2,
      deleted: 2,
    });
    expect(m[1]!.bytes.copied).toBe(['a: version 2', 'e: version 1', 'new on day 2'].join('').length);
    expect(m[0]!.previous).toBeNull();
    expect(m[1]!.previous).toEqual({ runId: ids[0], sha256: runs[0]!.sha });
    expect(m[2]!.previous).toEqual({ runId: ids[1], sha256: runs[1]!.sha });
    // The catalogue of day 3 is what the source holds (its own listing and ETags), key by key.
    const catalogue = await readCatalogue(vault, (await latestRun(vault, sourceBucket))!.manifest);
    const listing = await aws.s3.send(new ListObjectsV2Command({ Bucket: sourceBucket }));
    expect(catalogue.map((e) => [e.key, e.size, e.etag])).toEqual(
      (listing.Contents ?? []).map((o) => [o.Key, o.Size, o.ETag!.replace(/"/g, '')]),
    );
    expect(catalogue.map((e) => e.sha256)).toEqual(catalogue.map((e) => sha(states[2]!.get(e.key)!)));
  });

  it('every copy is an Object-Locked, KMS-encrypted version in the vault, as configured', async () => {
    const catalogue = await readCatalogue(vault, (await latestRun(vault, sourceBucket))!.manifest);
    const a = catalogue.find((e) => e.key === 'tenants/1/a.pdf')!;
    const head = await aws.s3.send(
      new HeadObjectCommand({
        Bucket: vault.bucket,
        Key: `cofre/files/${encodeURIComponent(sourceBucket)}/objects/tenants/1/a.pdf`,
        VersionId: a.versionId,
      }),
    );
    expect(head.ObjectLockMode).toBe('COMPLIANCE');
    expect(
      Math.abs(head.ObjectLockRetainUntilDate!.getTime() - (days[2]!.getTime() + 10 * DAY)),
    ).toBeLessThan(2000);
    expect(head.ServerSideEncryption).toBe('aws:kms');
    expect(head.SSEKMSKeyId).toContain(kmsKey.split('/').at(-1));
  });

  it("one file as of each day comes back with that day's content", async () => {
    const dir = tempDir('files-one');
    for (let d = 0; d < 3; d++) {
      const file = path.join(dir, `a-day${d + 1}.pdf`);
      const report = await restoreFiles({
        vault,
        bucket: sourceBucket,
        selection: { key: 'tenants/1/a.pdf' },
        asOf: asOf(d),
        target: { kind: 'download', path: file },
      });
      expect(report.restored.objects).toBe(1);
      expect(readFileSync(file, 'utf8')).toBe(states[d]!.get('tenants/1/a.pdf'));
    }
  });

  it('a file deleted on day 3 is brought back into the original bucket as of day 2', async () => {
    expect(live.has('tenants/1/b.xml')).toBe(false);
    const report = await restoreFiles({
      vault,
      bucket: sourceBucket,
      selection: { key: 'tenants/1/b.xml' },
      asOf: asOf(1),
      target: { kind: 'bucket', client: aws.s3, bucket: sourceBucket, endpoint: 'moto' },
    });
    expect(report.items).toEqual([{ key: 'tenants/1/b.xml', size: 8, action: 'restore' }]);
    const got = await aws.s3.send(new GetObjectCommand({ Bucket: sourceBucket, Key: 'tenants/1/b.xml' }));
    expect(await got.Body!.transformToString()).toBe('<b>1</b>');
    live.set('tenants/1/b.xml', '<b>1</b>');
  });

  it('a tenant folder as of day 2: exactly the objects that existed then, with their then-content', async () => {
    const target = await createBucket(aws.s3, 'tenant');
    const report = await restoreFiles({
      vault,
      bucket: sourceBucket,
      selection: { prefix: 'tenants/2/' },
      asOf: asOf(1),
      target: { kind: 'bucket', client: aws.s3, bucket: target, endpoint: 'moto' },
    });
    expect(await contents(aws.s3, target)).toEqual(under(states[1]!, 'tenants/2/'));
    expect(report.selected.objects).toBe(2);
    // and the other tenant as of day 2 too (a deleted-later file and an overwritten one)
    const other = await createBucket(aws.s3, 'tenant1');
    await restoreFiles({
      vault,
      bucket: sourceBucket,
      selection: { prefix: 'tenants/1/' },
      asOf: asOf(1),
      target: { kind: 'bucket', client: aws.s3, bucket: other, endpoint: 'moto' },
    });
    expect(await contents(aws.s3, other)).toEqual(under(states[1]!, 'tenants/1/'));
  });

  it('the whole bucket as of day 1, into a new bucket, and downloaded into a directory', async () => {
    const target = await createBucket(aws.s3, 'whole');
    const report = await restoreFiles({
      vault,
      bucket: sourceBucket,
      selection: { all: true },
      asOf: asOf(0),
      target: { kind: 'bucket', client: aws.s3, bucket: target, endpoint: 'moto' },
    });
    expect(await contents(aws.s3, target)).toEqual(states[0]);
    expect(report.restored).toEqual({
      objects: 5,
      bytes: [...states[0]!.values()].reduce((n, v) => n + v.length, 0),
    });
    const dir = tempDir('files-all');
    await restoreFiles({
      vault,
      bucket: sourceBucket,
      selection: { all: true },
      asOf: asOf(0),
      target: { kind: 'download', path: dir },
    });
    for (const [key, body] of states[0]!) expect(readFileSync(path.join(dir, key), 'utf8')).toBe(body);
  });

  it('never overwrites a newer object at the source unless forced; a dry run changes nothing', async () => {
    const target = { kind: 'bucket' as const, client: aws.s3, bucket: sourceBucket, endpoint: 'moto' };
    const dry = await restoreFiles({
      vault,
      bucket: sourceBucket,
      selection: { prefix: 'tenants/' },
      asOf: asOf(0),
      target,
      dryRun: true,
    });
    expect(dry.items).toEqual([
      { key: 'tenants/1/a.pdf', size: 12, action: 'kept-newer' },
      { key: 'tenants/1/b.xml', size: 8, action: 'identical' },
      { key: 'tenants/2/c.pdf', size: 12, action: 'kept-newer' },
      { key: 'tenants/2/d.xml', size: 8, action: 'restore' },
    ]);
    expect(dry.restored).toEqual({ objects: 1, bytes: 8 });
    expect(await contents(aws.s3, sourceBucket)).toEqual(live);

    const kept = await restoreFiles({
      vault,
      bucket: sourceBucket,
      selection: { key: 'tenants/1/a.pdf' },
      asOf: asOf(0),
      target,
    });
    expect(kept.keptNewer).toEqual(['tenants/1/a.pdf']);
    expect(await contents(aws.s3, sourceBucket)).toEqual(live);

    await restoreFiles({
      vault,
      bucket: sourceBucket,
      selection: { key: 'tenants/1/a.pdf' },
      asOf: asOf(0),
      target,
      force: true,
    });
    live.set('tenants/1/a.pdf', states[0]!.get('tenants/1/a.pdf')!);
    expect(await contents(aws.s3, sourceBucket)).toEqual(live);
  });

  it('lists the kept versions of a file, the deletion noticed included', async () => {
    const versions = await listFileVersions(vault, sourceBucket, 'tenants/1/b.xml');
    expect(versions.map((v) => v.state)).toEqual(['deleted', 'present']);
    expect(versions[1]).toMatchObject({ size: 8, lockMode: 'COMPLIANCE' });
    const a = await listFileVersions(vault, sourceBucket, 'tenants/1/a.pdf');
    expect(a.map((v) => v.size)).toEqual([
      states[2]!.get('tenants/1/a.pdf')!.length,
      states[1]!.get('tenants/1/a.pdf')!.length,
      states[0]!.get('tenants/1/a.pdf')!.length,
    ]);
  });

  it('the source unreachable in the middle of the listing: the run fails and leaves no catalogue', async () => {
    // A TCP relay in front of the local S3 that goes away after the first listing page.
    const sockets = new Set<net.Socket>();
    const upstream = new URL(clientConfig().endpoint);
    const relay = net.createServer((client) => {
      const server = net.connect(Number(upstream.port), upstream.hostname);
      sockets.add(client).add(server);
      client.pipe(server).pipe(client);
      const close = () => (client.destroy(), server.destroy());
      client.on('error', close);
      server.on('error', close);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const port = (relay.address() as net.AddressInfo).port;
    const client = new S3Client({
      ...clientConfig(),
      endpoint: `http://127.0.0.1:${port}`,
      forcePathStyle: true,
    });
    let lists = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'ListObjectsV2Command' && ++lists === 2) {
          relay.close();
          for (const s of sockets) s.destroy();
        }
        return next(args);
      },
      { step: 'initialize', name: 'relayGoesAway' },
    );
    await put('tenants/3/late.pdf', 'arrived on day 4');
    const before = await vault.root.list(runsPrefix(sourceBucket));
    await expect(sync(3, { source: { ...source, client } })).rejects.toThrow(
      /files sync of .* failed, no catalogue was written \(the newest good run is still .*\): (cannot list source bucket .* \(after 2 objects\)|cannot read .* from source bucket)/,
    );
    expect(lists).toBeGreaterThanOrEqual(2);
    expect(
      (await vault.root.list(runsPrefix(sourceBucket))).filter((k) => !k.endsWith('=lock.json')),
    ).toEqual(before.filter((k) => !k.endsWith('=lock.json')));
    const latest = await latestRun(vault, sourceBucket);
    expect(latest!.manifest.finishedAt).toBe(days[2]!.toISOString());
  });

  it('the vault refusing a write in the middle of a run: the run fails and leaves no catalogue', async () => {
    const client = s3Client();
    let puts = 0;
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const key = (args.input as { Key?: string }).Key ?? '';
        if (context.commandName === 'PutObjectCommand' && key.includes('/objects/') && ++puts === 2) {
          throw Object.assign(new Error('Access Denied'), {
            name: 'AccessDenied',
            $metadata: { httpStatusCode: 403 },
          });
        }
        return next(args);
      },
      { step: 'initialize', name: 'vaultRefuses' },
    );
    const refusing = openFilesVault(`s3://${vault.bucket}/cofre`, {
      client,
      sseKmsKeyId: kmsKey,
      objectLockMode: 'COMPLIANCE',
    });
    await put('tenants/3/more.pdf', 'also on day 4');
    const before = await vault.root.list(runsPrefix(sourceBucket));
    await expect(sync(3, { vault: refusing, concurrency: 1 })).rejects.toThrow(
      /no catalogue was written.*Access Denied/,
    );
    expect(
      (await vault.root.list(runsPrefix(sourceBucket))).filter((k) => !k.endsWith('=lock.json')),
    ).toEqual(before.filter((k) => !k.endsWith('=lock.json')));
    expect((await latestRun(vault, sourceBucket))!.manifest.finishedAt).toBe(days[2]!.toISOString());
    // The same run against the working vault then succeeds and sees the day's changes.
    const ok = await sync(3);
    expect(ok.manifest.counts).toMatchObject({
      objects: live.size,
      new: [...live.keys()].filter((k) => !states[2]!.has(k)).length,
    });
    const catalogue = await readCatalogue(vault, ok.manifest);
    expect(new Map(catalogue.map((e) => [e.key, e.sha256]))).toEqual(
      new Map([...live].map(([k, v]) => [k, sha(v)])),
    );
  });

  it('a vault bucket without Object Lock refuses the locked copies: no catalogue, nothing that looks like a run', async () => {
    const plain = await createVaultBucket(aws.s3, { objectLock: false });
    const unlocked = openFilesVault(`s3://${plain}`, { client: aws.s3, objectLockMode: 'COMPLIANCE' });
    await expect(sync(0, { vault: unlocked })).rejects.toThrow(
      /no catalogue was written.*ObjectLockConfiguration/,
    );
    expect(await runIds(unlocked, sourceBucket)).toEqual([]);
    const keys = await unlocked.root.list('');
    expect(keys.filter((k) => k.includes('/runs/') && !k.endsWith('=lock.json'))).toEqual([]);
  });

  it('an object larger than a part (9 MiB) is streamed in parts and comes back byte-identical', async () => {
    const bucket = await createBucket(aws.s3, 'big');
    const body = randomBytes(9 * 1024 * 1024 + 17);
    await aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'scans/big.pdf', Body: body }));
    // a "folder" marker, as consoles and some S3-compatible stores make them
    await aws.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'scans/', Body: '' }));
    const run = await syncBucket({
      source: { ...source, bucket },
      vault,
      kind: 'full',
      dataClass: 'general',
      lockDays: 1,
    });
    expect(run.manifest.counts).toMatchObject({ objects: 2, copied: 2 });
    expect(run.manifest.bytes.copied).toBe(body.length);
    const file = path.join(tempDir('files-big'), 'big.pdf');
    await restoreFiles({
      vault,
      bucket,
      selection: { key: 'scans/big.pdf' },
      asOf: new Date(),
      target: { kind: 'download', path: file },
    });
    expect(sha(readFileSync(file))).toBe(sha(body));
    // the whole bucket into a directory: the marker is the directory, the file goes inside it
    const dir = tempDir('files-big-all');
    const all = await restoreFiles({
      vault,
      bucket,
      selection: { all: true },
      asOf: new Date(),
      target: { kind: 'download', path: dir },
    });
    expect(all.items.map((i) => [i.key, i.action])).toEqual([
      ['scans/', 'identical'],
      ['scans/big.pdf', 'restore'],
    ]);
    expect(sha(readFileSync(path.join(dir, 'scans', 'big.pdf')))).toBe(sha(body));
  });

  it('the weekly proof restores a sample and compares its SHA-256 with the source, recorded as files-restore-test', async () => {
    // changed at the source after the last run: its copy can only be compared with the catalogue
    await put('shared/logo.png', 'a new logo');
    const report = await testFilesRestore({ vault, source, sample: 50 });
    const latest = await readCatalogue(vault, (await latestRun(vault, sourceBucket))!.manifest);
    expect(report.sampled).toBe(latest.length);
    expect(report.ok).toBe(true);
    expect(report.results.filter((r) => r.outcome !== 'match')).toEqual([
      {
        key: 'shared/logo.png',
        size: 4,
        outcome: 'changed-at-source',
        detail: 'changed at the source since the run',
      },
    ]);
    expect(report.matched).toBe(latest.length - 1);
    const table = await createHistoryTable(aws.dynamodb);
    const store = new DynamoHistoryStore(DynamoDBDocumentClient.from(aws.dynamodb), table);
    const record = filesRestoreTestRecord(report, { startedAt: days[3]!, finishedAt: new Date() }, 'test');
    await store.put(record);
    expect(await store.latest(`s3:${sourceBucket}`, 'files-restore-test')).toMatchObject({
      status: 'succeeded',
      kind: 'files-restore-test',
    });
  });

  it('the weekly proof fails when a restored copy differs from what was copied', async () => {
    const client = s3Client();
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (
          context.commandName === 'GetObjectCommand' &&
          (args.input as { Key?: string }).Key?.includes('/objects/')
        ) {
          const body = await (
            out.output as { Body: { transformToByteArray(): Promise<Uint8Array> } }
          ).Body.transformToByteArray();
          const flipped = Buffer.from(body);
          if (flipped.length) flipped[0] = flipped[0]! ^ 1;
          (out.output as { Body: unknown }).Body = Readable.from([flipped]);
        }
        return out;
      },
      { step: 'initialize', name: 'bitRot' },
    );
    const rotten = openFilesVault(`s3://${vault.bucket}/cofre`, { client, objectLockMode: 'COMPLIANCE' });
    const report = await testFilesRestore({ vault: rotten, source, sample: 3 });
    expect(report.ok).toBe(false);
    expect(report.mismatches).toHaveLength(3);
    expect(
      filesRestoreTestRecord(report, { startedAt: new Date(), finishedAt: new Date() }, 'test'),
    ).toMatchObject({
      status: 'failed',
      message: expect.stringMatching(
        /^3 of 3 restored objects differ: .*the copy differs from the catalogue/,
      ) as unknown,
    });
  });

  it('a full run copies every object again as a new version, even the unchanged ones, and chains to the last run', async () => {
    const before = await latestRun(vault, sourceBucket);
    const full = await syncBucket({ source, vault, kind: 'full', dataClass: 'accounting', lockDays: 10 });
    expect(full.manifest.counts).toMatchObject({ objects: live.size, copied: live.size, unchanged: 0 });
    expect(full.manifest.previous).toEqual({ runId: before!.manifest.runId, sha256: before!.sha256 });
    const [previous, now] = [
      await readCatalogue(vault, before!.manifest),
      await readCatalogue(vault, full.manifest),
    ];
    const unchanged = now.filter((e) => previous.some((p) => p.key === e.key && p.etag === e.etag));
    expect(unchanged.length).toBeGreaterThan(0);
    for (const e of unchanged) {
      const old = previous.find((p) => p.key === e.key)!;
      expect(e.versionId).not.toBe(old.versionId);
      expect(e.sha256).toBe(old.sha256);
    }
  });
});
