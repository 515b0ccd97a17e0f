import { createHash } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  PutObjectRetentionCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { withChainLock } from '../catalog/catalog';
import { OperationalError, UsageError, messageOf } from '../util/errors';
import { newBackupId, sha256 } from '../catalog/manifest';
import { lockProblem } from '../vault';
import {
  encodeCatalogue,
  FILES_RUN_FORMAT,
  latestRun,
  objectKeyIn,
  readCatalogue,
  RUN_CATALOGUE,
  RUN_MANIFEST,
  runFolder,
  runManifestSchema,
  runsPrefix,
  SOURCE_ETAG_META,
  SOURCE_MODIFIED_META,
  TOMBSTONE_META,
  type CatalogueEntry,
  type RunManifest,
} from './catalogue';
import { TaskPool } from './pool';
import type { FilesVault } from './vault';

/** An S3-compatible bucket to protect (MinIO, Supabase Storage, any S3 endpoint). */
export interface FilesSource {
  readonly client: S3Client;
  readonly bucket: string;
  /** Only these prefixes; empty: the whole bucket. */
  readonly prefixes: readonly string[];
  /** The endpoint, for messages and the manifest (never credentials). */
  readonly endpoint: string;
}

export interface SyncOptions {
  readonly source: FilesSource;
  readonly vault: FilesVault;
  /** `full` copies every object again; `differential` only new and changed ones (size + ETag). */
  readonly kind: 'full' | 'differential';
  readonly dataClass: string;
  /** Object Lock retention of everything this run writes, in days from the run's start. */
  readonly lockDays: number;
  /** The clock (tests inject days). */
  readonly now?: () => Date;
  /** Objects copied at once. @default 16 */
  readonly concurrency?: number;
  /** ListObjectsV2 page size. @default 1000 */
  readonly pageSize?: number;
  readonly signal?: AbortSignal | undefined;
  readonly log?: (line: string) => void;
  readonly onProgress?: (p: { objects: number; copied: number; bytes: number }) => void;
}

export interface SyncResult {
  readonly manifest: RunManifest;
  /** SHA-256 of the manifest's bytes as stored. */
  readonly sha256: string;
}

const PART_SIZE = 8 * 1024 * 1024;
/** Objects up to this size are copied with one PutObject. */
const SMALL_OBJECT = 1024 * 1024;

/**
 * One run: lists the source (ListObjectsV2, paged), copies new and changed objects (by size and
 * ETag against the previous catalogue; every object for `full`) into the files vault as new
 * versions of `objects/<key>`, streaming source → vault with no temporary file, writes a tombstone
 * version for each object deleted since, then the catalogue and, last, the manifest (chained to the
 * previous run's). Any failure — the source unreachable, the vault refusing a write, a lock not set —
 * ends the run before its catalogue and manifest are written: only the copies stay (versions no
 * catalogue names, harmless), and the last good run is still the newest.
 */
export async function syncBucket(options: SyncOptions): Promise<SyncResult> {
  const { source, vault } = options;
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => undefined);
  if (!Number.isInteger(options.lockDays) || options.lockDays < 1)
    throw new UsageError(`lockDays: expected a whole number of days of at least 1, got ${options.lockDays}`);
  return withChainLock(
    vault.root,
    runsPrefix(source.bucket),
    async () => {
      const previous = await latestRun(vault, source.bucket);
      const before = new Map<string, CatalogueEntry>();
      if (previous) for (const e of await readCatalogue(vault, previous.manifest)) before.set(e.key, e);
      const started = now();
      const runId = newBackupId(started);
      const lockUntil = new Date(started.getTime() + options.lockDays * 86_400_000);
      const lockMode = vault.objectLockMode;
      const copier = new Copier(options, lockUntil);
      const pool = new TaskPool(options.concurrency ?? 16, options.signal);
      const entries: CatalogueEntry[] = [];
      const errors: { key: string; message: string }[] = [];
      const counts = { objects: 0, copied: 0, new: 0, changed: 0, unchanged: 0, deleted: 0, vanished: 0 };
      const bytes = { objects: 0, copied: 0 };
      const seen = new Set<string>();
      const progress = () =>
        options.onProgress?.({ objects: seen.size, copied: counts.copied, bytes: bytes.copied });
      try {
        for await (const listed of listSource(source, options.pageSize ?? 1000, pool.signal)) {
          if (seen.has(listed.key)) continue; // overlapping prefixes
          seen.add(listed.key);
          const old = before.get(listed.key);
          if (
            options.kind === 'differential' &&
            old &&
            old.size === listed.size &&
            old.etag === listed.etag
          ) {
            entries.push(old);
            counts.unchanged++;
            bytes.objects += old.size;
            continue;
          }
          await pool.add(async (signal) => {
            const entry = await copier.copy(listed.key, signal);
            if (entry === undefined) {
              counts.vanished++;
              errors.push({
                key: listed.key,
                message: 'deleted at the source during the run (listed, then gone)',
              });
              if (old) await copier.tombstone(listed.key, started, signal);
              return;
            }
            entries.push(entry);
            counts.copied++;
            if (old) counts.changed++;
            else counts.new++;
            bytes.copied += entry.size;
            bytes.objects += entry.size;
            progress();
          });
        }
        for (const key of before.keys()) {
          if (seen.has(key) || !inScope(key, source.prefixes)) continue;
          await pool.add(async (signal) => {
            await copier.tombstone(key, started, signal);
            counts.deleted++;
          });
        }
        await pool.drain();
      } catch (caught) {
        await pool.settle(caught);
        // A copy that failed aborts the listing: report the copy's failure, not the abort.
        const error = pool.firstFailure ?? caught;
        throw new OperationalError(
          `files sync of ${source.bucket} (${source.endpoint}) failed, no catalogue was written${previous ? ` (the newest good run is still ${previous.manifest.runId})` : ''}: ${messageOf(error)}`,
          { cause: error },
        );
      }
      counts.objects = entries.length;
      entries.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const catalogue = await encodeCatalogue({ bucket: source.bucket, runId }, entries);
      const folder = runFolder(source.bucket, runId);
      const tags = { 'cofre:kind': 'files', 'cofre:class': options.dataClass };
      await vault.root.write(`${folder}/${RUN_CATALOGUE}`, Readable.from([catalogue]), {
        tags,
        lockUntil,
        contentType: 'application/gzip',
        signal: options.signal,
      });
      const manifest: RunManifest = runManifestSchema.parse({
        format: FILES_RUN_FORMAT,
        runId,
        bucket: source.bucket,
        endpoint: source.endpoint,
        prefixes: [...source.prefixes],
        kind: options.kind,
        dataClass: options.dataClass,
        startedAt: started.toISOString(),
        finishedAt: now().toISOString(),
        counts,
        bytes,
        errors,
        catalogue: {
          name: RUN_CATALOGUE,
          sha256: sha256(catalogue),
          bytes: catalogue.length,
          entries: entries.length,
        },
        lock: { mode: lockMode, until: lockUntil.toISOString() },
        previous: previous ? { runId: previous.manifest.runId, sha256: previous.sha256 } : null,
      });
      const manifestBytes = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
      await vault.root.write(`${folder}/${RUN_MANIFEST}`, Readable.from([manifestBytes]), {
        tags,
        lockUntil,
        contentType: 'application/json',
        signal: options.signal,
      });
      log(
        `files run ${runId} of ${source.bucket}: ${counts.objects} objects (${counts.new} new, ${counts.changed} changed, ${counts.unchanged} unchanged, ${counts.deleted} deleted), ${bytes.copied} bytes copied`,
      );
      return { manifest, sha256: sha256(manifestBytes) };
    },
    log,
  );
}

/** Whether `key` is one of the protected prefixes (every key when there are none). */
export function inScope(key: string, prefixes: readonly string[]): boolean {
  return prefixes.length === 0 || prefixes.some((p) => key.startsWith(p));
}

interface Listed {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
}

/** Every object under the source's prefixes, page by page (ListObjectsV2). */
async function* listSource(
  source: FilesSource,
  pageSize: number,
  signal: AbortSignal,
): AsyncGenerator<Listed> {
  let listed = 0;
  for (const prefix of source.prefixes.length ? source.prefixes : ['']) {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await source.client.send(
          new ListObjectsV2Command({
            Bucket: source.bucket,
            ...(prefix ? { Prefix: prefix } : {}),
            MaxKeys: pageSize,
            ContinuationToken: token,
          }),
          { abortSignal: signal },
        );
      } catch (error) {
        throw new OperationalError(
          `cannot list source bucket ${source.bucket} at ${source.endpoint} (after ${listed} objects): ${messageOf(error)}`,
          { cause: error },
        );
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        listed++;
        yield { key: o.Key, size: o.Size ?? 0, etag: unquote(o.ETag) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
      if (page.IsTruncated && !token)
        throw new OperationalError(
          `source bucket ${source.bucket} at ${source.endpoint} said its listing goes on but gave no continuation token`,
        );
    } while (token);
  }
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');

function isNoSuchKey(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** Copies source objects into the vault and writes tombstones, with the run's lock. */
class Copier {
  private lockChecked = false;

  constructor(
    private readonly options: SyncOptions,
    private readonly lockUntil: Date,
  ) {}

  private get lockParams() {
    const mode = this.options.vault.objectLockMode;
    return mode === 'none' ? {} : { ObjectLockMode: mode, ObjectLockRetainUntilDate: this.lockUntil };
  }

  private get sseParams() {
    const key = this.options.vault.sseKmsKeyId;
    return key ? { ServerSideEncryption: 'aws:kms' as const, SSEKMSKeyId: key, BucketKeyEnabled: true } : {};
  }

  /** Streams one object into the vault; `undefined` when it is gone from the source. */
  async copy(key: string, signal: AbortSignal): Promise<CatalogueEntry | undefined> {
    const { source, vault } = this.options;
    let got;
    try {
      got = await source.client.send(new GetObjectCommand({ Bucket: source.bucket, Key: key }), {
        abortSignal: signal,
      });
    } catch (error) {
      if (isNoSuchKey(error)) return undefined;
      throw new OperationalError(
        `cannot read ${key} from source bucket ${source.bucket} at ${source.endpoint}: ${messageOf(error)}`,
        { cause: error },
      );
    }
    const hash = createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const lastModified = (got.LastModified ?? new Date(0)).toISOString();
    const etag = unquote(got.ETag);
    const params = {
      Bucket: vault.bucket,
      Key: vault.keyOf(objectKeyIn(source.bucket, key)),
      ContentType: got.ContentType ?? 'application/octet-stream',
      Metadata: { [SOURCE_ETAG_META]: etag, [SOURCE_MODIFIED_META]: lastModified },
      ChecksumAlgorithm: 'SHA256' as const,
      ...this.sseParams,
      ...this.lockParams,
    };
    const onAbort = () => meter.destroy(new Error('copy aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    let out: { VersionId?: string | undefined };
    const multipart = !(got.ContentLength !== undefined && got.ContentLength <= SMALL_OBJECT);
    try {
      if (!multipart) {
        // A small object is read whole (in memory, never to disk) and stored with one PutObject:
        // a multipart Upload per object would cost a part buffer each.
        const chunks: Buffer[] = [];
        await pipeline(got.Body as Readable, meter, async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) chunks.push(chunk);
          yield* [];
        });
        out = await vault.client.send(new PutObjectCommand({ ...params, Body: Buffer.concat(chunks) }), {
          abortSignal: signal,
        });
      } else {
        const upload = new Upload({
          client: vault.client,
          partSize: PART_SIZE,
          queueSize: 1,
          leavePartsOnError: false,
          params: { ...params, Body: meter },
        });
        [, out] = await Promise.all([pipeline(got.Body as Readable, meter), upload.done()]);
      }
    } catch (error) {
      meter.destroy();
      throw new OperationalError(
        `cannot copy ${key} into the files vault ${vault.url}: ${messageOf(error)}`,
        { cause: error },
      );
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    if (got.ContentLength !== undefined && size !== got.ContentLength)
      throw new OperationalError(
        `${key}: the source sent ${size} bytes where it announced ${got.ContentLength}; the copy is not trusted`,
      );
    if (!out.VersionId)
      throw new OperationalError(
        `the files vault ${vault.url} returned no version id for ${key}: is versioning enabled on bucket ${vault.bucket}?`,
      );
    await this.checkLock(objectKeyIn(source.bucket, key), out.VersionId, multipart);
    return { key, versionId: out.VersionId, size, etag, lastModified, sha256: hash.digest('hex') };
  }

  /** A deletion at the source, recorded as a small version (Cofre never deletes in the vault). */
  async tombstone(key: string, at: Date, signal: AbortSignal): Promise<void> {
    const { source, vault } = this.options;
    try {
      await vault.client.send(
        new PutObjectCommand({
          Bucket: vault.bucket,
          Key: vault.keyOf(objectKeyIn(source.bucket, key)),
          Body: Buffer.alloc(0),
          Metadata: { [TOMBSTONE_META]: at.toISOString() },
          ChecksumAlgorithm: 'SHA256',
          ...this.sseParams,
          ...this.lockParams,
        }),
        { abortSignal: signal },
      );
    } catch (error) {
      throw new OperationalError(
        `cannot record the deletion of ${key} in the files vault ${vault.url}: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }

  /**
   * The first copy of a run is read back: S3 must report the configured lock on it (a bucket that
   * accepted the request without Object Lock would otherwise keep unlocked copies all run long).
   * Multipart copies are each read back, and their retention set on the version when the upload did
   * not carry it (S3-compatible vaults that drop the lock headers of CreateMultipartUpload).
   */
  private async checkLock(key: string, versionId: string, multipart: boolean): Promise<void> {
    const { vault } = this.options;
    if ((this.lockChecked && !multipart) || vault.objectLockMode === 'none') return;
    this.lockChecked = true;
    const mode = vault.objectLockMode;
    const where = { Bucket: vault.bucket, Key: vault.keyOf(key), VersionId: versionId };
    const problemNow = async () => {
      const head = await vault.client.send(new HeadObjectCommand(where));
      return lockProblem(
        head.ObjectLockMode && head.ObjectLockRetainUntilDate
          ? { mode: head.ObjectLockMode, until: head.ObjectLockRetainUntilDate }
          : undefined,
        mode,
        this.lockUntil,
      );
    };
    let problem = await problemNow();
    if (problem && multipart) {
      await vault.client.send(
        new PutObjectRetentionCommand({
          ...where,
          Retention: { Mode: mode, RetainUntilDate: this.lockUntil },
        }),
      );
      problem = await problemNow();
    }
    if (problem)
      throw new OperationalError(
        `the files vault ${vault.url} did not lock ${key} as configured: ${problem}`,
      );
  }
}
