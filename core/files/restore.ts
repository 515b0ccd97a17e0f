import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { IntegrityError, OperationalError, UsageError, messageOf } from '../util/errors';
import {
  objectKeyIn,
  readCatalogue,
  runAsOf,
  SOURCE_ETAG_META,
  SOURCE_MODIFIED_META,
  TOMBSTONE_META,
  type CatalogueEntry,
} from './catalogue';
import { TaskPool } from './pool';
import type { FilesVault } from './vault';

/** What to bring back: one key, a folder (a tenant's), or the whole bucket. */
export type FilesSelection = { readonly key: string } | { readonly prefix: string } | { readonly all: true };

/** Where it goes: a bucket on the source endpoint (the original one or another), or local files. */
export type FilesTarget =
  | { readonly kind: 'bucket'; readonly client: S3Client; readonly bucket: string; readonly endpoint: string }
  /** `--key`: the file; `--prefix` / `--all`: a directory, each object at `<dir>/<key>`. */
  | { readonly kind: 'download'; readonly path: string };

export interface FilesRestoreOptions {
  readonly vault: FilesVault;
  /** The protected bucket, as it is named in the vault. */
  readonly bucket: string;
  readonly selection: FilesSelection;
  readonly asOf: Date;
  readonly target: FilesTarget;
  /** Only say what would come back. */
  readonly dryRun?: boolean;
  /** Replace objects (or files) at the target that are newer than the version coming back. */
  readonly force?: boolean;
  /** Objects restored at once. @default 8 */
  readonly concurrency?: number;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: (p: { objects: number; bytes: number }) => void;
}

/** What happens to one object. */
export type FilesAction =
  /** Nothing there: it is written. */
  | 'restore'
  /** Something older (or unknown, for a download with --force) is there: it is replaced. */
  | 'replace'
  /** The same object (size and ETag) is already there: nothing to do. */
  | 'identical'
  /** Something newer is there: kept (without --force). */
  | 'kept-newer';

export interface FilesRestoreReport {
  readonly bucket: string;
  readonly asOf: string;
  /** The run whose catalogue answered, and when it finished. */
  readonly runId: string;
  readonly runFinishedAt: string;
  readonly target: string;
  readonly dryRun: boolean;
  /** Objects of the selection as of the date, and their bytes. */
  readonly selected: { readonly objects: number; readonly bytes: number };
  /** Written (or, in a dry run, that would be). */
  readonly restored: { readonly objects: number; readonly bytes: number };
  readonly identical: number;
  /** Keys left as they are because the target holds something newer (use --force). */
  readonly keptNewer: readonly string[];
  readonly items: ReadonlyArray<{
    readonly key: string;
    readonly size: number;
    readonly action: FilesAction;
  }>;
}

const unquote = (etag: string | undefined) => (etag ?? '').replace(/"/g, '');

function selected(entries: readonly CatalogueEntry[], selection: FilesSelection): CatalogueEntry[] {
  if ('key' in selection) return entries.filter((e) => e.key === selection.key);
  if ('prefix' in selection) return entries.filter((e) => e.key.startsWith(selection.prefix));
  return [...entries];
}

function describeSelection(selection: FilesSelection): string {
  return 'key' in selection
    ? `key ${selection.key}`
    : 'prefix' in selection
      ? `prefix ${selection.prefix}`
      : 'the whole bucket';
}

/**
 * Brings objects back as they were at `asOf`: the newest run that had finished by then names, in
 * its catalogue, the vault version of each object; those versions are streamed to the target and
 * their SHA-256 is checked against the catalogue on the way. An object at the target that is newer
 * than the one coming back is kept unless `force`; the same object is left alone. A prefix or the
 * whole bucket brings back exactly the objects that existed then; objects made later are not
 * touched (restore into a new bucket for an exact copy).
 */
export async function restoreFiles(options: FilesRestoreOptions): Promise<FilesRestoreReport> {
  const { vault, bucket, selection, target } = options;
  const run = await runAsOf(vault, bucket, options.asOf);
  const entries = selected(await readCatalogue(vault, run.manifest), selection);
  if (!entries.length)
    throw new UsageError(
      'key' in selection
        ? `--key: "${selection.key}" was not in bucket "${bucket}" as of ${options.asOf.toISOString()} (catalogue of run ${run.manifest.runId}); "cofre files list --key" shows the versions kept`
        : `${'prefix' in selection ? '--prefix' : '--all'}: no object of ${describeSelection(selection)} in bucket "${bucket}" as of ${options.asOf.toISOString()}`,
    );
  if (target.kind === 'download' && !('key' in selection)) await mkdir(target.path, { recursive: true });
  if (target.kind === 'bucket') await requireBucket(target);
  const items: { key: string; size: number; action: FilesAction; entry: CatalogueEntry }[] = [];
  for (const entry of entries)
    items.push({ key: entry.key, size: entry.size, entry, action: await actionFor(entry, options) });

  const toWrite = items.filter((i) => i.action === 'restore' || i.action === 'replace');
  let done = 0;
  let doneBytes = 0;
  if (!options.dryRun) {
    const pool = new TaskPool(options.concurrency ?? 8, options.signal);
    try {
      for (const item of toWrite)
        await pool.add(async (signal) => {
          await restoreOne(item.entry, options, signal);
          done++;
          doneBytes += item.size;
          options.onProgress?.({ objects: done, bytes: doneBytes });
        });
      await pool.drain();
    } catch (error) {
      await pool.settle(error);
      if (error instanceof IntegrityError) throw error;
      throw new OperationalError(
        `files restore stopped after ${done} of ${toWrite.length} objects: ${messageOf(error)}`,
        { cause: error },
      );
    }
  }
  const sum = (list: typeof items) => list.reduce((n, i) => n + i.size, 0);
  return {
    bucket,
    asOf: options.asOf.toISOString(),
    runId: run.manifest.runId,
    runFinishedAt: run.manifest.finishedAt,
    target: target.kind === 'bucket' ? `s3://${target.bucket} (${target.endpoint})` : target.path,
    dryRun: options.dryRun ?? false,
    selected: { objects: items.length, bytes: sum(items) },
    restored: { objects: toWrite.length, bytes: sum(toWrite) },
    identical: items.filter((i) => i.action === 'identical').length,
    keptNewer: items.filter((i) => i.action === 'kept-newer').map((i) => i.key),
    items: items.map(({ key, size, action }) => ({ key, size, action })),
  };
}

/** A target bucket that does not exist is bad input (exit 2), found before anything is read or written. */
async function requireBucket(target: Extract<FilesTarget, { kind: 'bucket' }>): Promise<void> {
  try {
    await target.client.send(new HeadBucketCommand({ Bucket: target.bucket }));
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.name === 'NoSuchBucket' || e.$metadata?.httpStatusCode === 404)
      throw new UsageError(
        `--to-bucket: bucket ${target.bucket} does not exist at ${target.endpoint}; create it first (Cofre restores into it, it does not create buckets on the source)`,
      );
    throw new OperationalError(
      `cannot reach bucket ${target.bucket} at ${target.endpoint}: ${messageOf(error)}`,
      {
        cause: error,
      },
    );
  }
}

/** The local path of one object of a download (refusing keys that would leave the directory). */
function downloadPath(target: { path: string }, selection: FilesSelection, key: string): string {
  if ('key' in selection) return target.path;
  const root = path.resolve(target.path);
  const file = path.resolve(root, key);
  if (!file.startsWith(`${root}${path.sep}`) || key.endsWith('/'))
    throw new UsageError(
      `--download: the key "${key}" cannot be a file under ${root}; restore it to a bucket instead`,
    );
  return file;
}

async function actionFor(entry: CatalogueEntry, options: FilesRestoreOptions): Promise<FilesAction> {
  const { target } = options;
  if (target.kind === 'download') {
    // A "folder" marker (an empty key ending in "/") is the directory the files go into.
    if (!('key' in options.selection) && entry.key.endsWith('/') && entry.size === 0) return 'identical';
    const file = downloadPath(target, options.selection, entry.key);
    const exists = await stat(file).then(
      () => true,
      () => false,
    );
    if (!exists) return 'restore';
    return options.force ? 'replace' : 'kept-newer';
  }
  let head;
  try {
    head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: entry.key }), {
      abortSignal: options.signal,
    });
  } catch (error) {
    const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
    if (e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404) return 'restore';
    throw new OperationalError(
      `cannot check ${entry.key} in bucket ${target.bucket} at ${target.endpoint}: ${messageOf(error)}`,
      { cause: error },
    );
  }
  if (head.ContentLength === entry.size && unquote(head.ETag) === entry.etag) return 'identical';
  // Replaced only when provably older (S3 times are to the second: the same second counts as newer).
  const older = (head.LastModified?.getTime() ?? Infinity) < Date.parse(entry.lastModified);
  if (older) return 'replace';
  return options.force ? 'replace' : 'kept-newer';
}

/** Streams one vault version to the target, checking its SHA-256 against the catalogue. */
async function restoreOne(
  entry: CatalogueEntry,
  options: FilesRestoreOptions,
  signal: AbortSignal,
): Promise<void> {
  const { vault, target } = options;
  const vaultKey = vault.keyOf(objectKeyIn(options.bucket, entry.key));
  let got;
  try {
    got = await vault.client.send(
      new GetObjectCommand({ Bucket: vault.bucket, Key: vaultKey, VersionId: entry.versionId }),
      { abortSignal: signal },
    );
  } catch (error) {
    throw new OperationalError(
      `cannot read version ${entry.versionId} of ${entry.key} from the files vault ${vault.url}: ${messageOf(error)}`,
      { cause: error },
    );
  }
  const hash = createHash('sha256');
  const meter = new Transform({
    transform(chunk: Buffer, _e, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const mismatch = () =>
    new IntegrityError(
      `${entry.key}: version ${entry.versionId} in the files vault does not have the SHA-256 its catalogue records; it was not restored`,
    );
  if (target.kind === 'download') {
    const file = downloadPath(target, options.selection, entry.key);
    await mkdir(path.dirname(file), { recursive: true });
    const partial = `${file}.cofre-partial`;
    try {
      await pipeline(got.Body as Readable, meter, createWriteStream(partial, { mode: 0o600 }), { signal });
      if (hash.digest('hex') !== entry.sha256) throw mismatch();
      await rename(partial, file);
    } finally {
      await rm(partial, { force: true });
    }
    return;
  }
  const upload = new Upload({
    client: target.client,
    partSize: 8 * 1024 * 1024,
    queueSize: 1,
    leavePartsOnError: false,
    params: {
      Bucket: target.bucket,
      Key: entry.key,
      Body: meter,
      ContentType: got.ContentType ?? 'application/octet-stream',
    },
  });
  try {
    await Promise.all([pipeline(got.Body as Readable, meter, { signal }), upload.done()]);
  } catch (error) {
    meter.destroy();
    throw new OperationalError(
      `cannot write ${entry.key} to bucket ${target.bucket} at ${target.endpoint}: ${messageOf(error)}`,
      { cause: error },
    );
  }
  if (hash.digest('hex') !== entry.sha256) throw mismatch();
}

/** One kept version of a file in the files vault. */
export interface FileVersion {
  readonly versionId: string;
  /** When the vault stored it (the run that copied it, or noticed the deletion). */
  readonly storedAt: string;
  /** `deleted`: the source no longer had the object at that run. */
  readonly state: 'present' | 'deleted';
  readonly size: number;
  readonly sourceEtag?: string | undefined;
  readonly sourceLastModified?: string | undefined;
  readonly lockMode?: string | undefined;
  readonly lockUntil?: string | undefined;
}

/**
 * The versions of one file the vault keeps, newest first, read from the bucket's own version list
 * (independent of the catalogues): its copies and the deletions noticed.
 */
export async function listFileVersions(
  vault: FilesVault,
  bucket: string,
  key: string,
): Promise<FileVersion[]> {
  const vaultKey = vault.keyOf(objectKeyIn(bucket, key));
  const versions: { id: string; at: Date }[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  try {
    do {
      const out = await vault.client.send(
        new ListObjectVersionsCommand({
          Bucket: vault.bucket,
          Prefix: vaultKey,
          KeyMarker: keyMarker,
          VersionIdMarker: versionMarker,
        }),
      );
      for (const v of out.Versions ?? [])
        if (v.Key === vaultKey && v.VersionId)
          versions.push({ id: v.VersionId, at: v.LastModified ?? new Date(0) });
      keyMarker = out.IsTruncated ? out.NextKeyMarker : undefined;
      versionMarker = out.IsTruncated ? out.NextVersionIdMarker : undefined;
    } while (keyMarker);
  } catch (error) {
    throw new OperationalError(`cannot list the versions of ${key} in ${vault.url}: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const out: FileVersion[] = [];
  for (const v of versions) {
    const head = await vault.client.send(
      new HeadObjectCommand({ Bucket: vault.bucket, Key: vaultKey, VersionId: v.id }),
    );
    const meta = head.Metadata ?? {};
    const deleted = meta[TOMBSTONE_META] !== undefined;
    out.push({
      versionId: v.id,
      storedAt: v.at.toISOString(),
      state: deleted ? 'deleted' : 'present',
      size: deleted ? 0 : (head.ContentLength ?? 0),
      sourceEtag: meta[SOURCE_ETAG_META],
      sourceLastModified: meta[SOURCE_MODIFIED_META],
      lockMode: head.ObjectLockMode,
      lockUntil: head.ObjectLockRetainUntilDate?.toISOString(),
    });
  }
  return out; // S3 lists versions newest first
}
