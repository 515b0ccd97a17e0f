import { createGunzip, createGzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { IntegrityError, OperationalError, UsageError, messageOf } from '../util/errors';
import { BACKUP_ID, sha256 } from '../catalog/manifest';
import type { FilesVault } from './vault';

/**
 * The files vault's layout for one protected bucket (`<bucket>` URI-encoded, one segment):
 *
 *   files/<bucket>/objects/<source key>                  every copied version of each source object
 *                                                        (the bucket's versioning keeps them; a source
 *                                                        deletion is a small tombstone version)
 *   files/<bucket>/runs/<run id>/catalogue.ndjson.gz     the source as of that run: key → vault version
 *   files/<bucket>/runs/<run id>/manifest.json           written last: counts, bytes, errors, the
 *                                                        catalogue's SHA-256, the previous run's link
 *
 * A run without a manifest did not happen: readers only trust catalogues their manifest names and
 * hashes, so "the bucket as it was on date D" is one manifest and one catalogue read, no version scan.
 */
export const FILES_PREFIX = 'files';
export const RUN_MANIFEST = 'manifest.json';
export const RUN_CATALOGUE = 'catalogue.ndjson.gz';
export const FILES_RUN_FORMAT = 'cofre-files-run/1';
export const FILES_CATALOGUE_FORMAT = 'cofre-files-catalogue/1';
/** User metadata (`x-amz-meta-…`) on a vault version that records a deletion at the source. */
export const TOMBSTONE_META = 'cofre-deleted-at';
/** User metadata on a copied version: the source object's ETag and last-modified time. */
export const SOURCE_ETAG_META = 'cofre-source-etag';
export const SOURCE_MODIFIED_META = 'cofre-source-last-modified';

export function bucketFolder(bucket: string): string {
  return `${FILES_PREFIX}/${encodeURIComponent(bucket)}`;
}
export function objectKeyIn(bucket: string, key: string): string {
  return `${bucketFolder(bucket)}/objects/${key}`;
}
export function runsPrefix(bucket: string): string {
  return `${bucketFolder(bucket)}/runs/`;
}
export function runFolder(bucket: string, runId: string): string {
  return `${runsPrefix(bucket)}${runId}`;
}

/** One source object as of a run: which vault version holds its bytes. */
export interface CatalogueEntry {
  readonly key: string;
  /** The vault's version id of the copy (its key is `objects/<key>`). */
  readonly versionId: string;
  readonly size: number;
  /** The source's ETag (quotes removed), as the source reported it when the copy was made. */
  readonly etag: string;
  /** The source's Last-Modified of that object (ISO). */
  readonly lastModified: string;
  /** SHA-256 (hex) of the bytes copied, computed while they streamed. */
  readonly sha256: string;
}

const isoDate = z.iso.datetime({ offset: true });
const entrySchema = z.strictObject({
  key: z.string().min(1),
  versionId: z.string().min(1),
  size: z.number().int().nonnegative(),
  etag: z.string(),
  lastModified: isoDate,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const runManifestSchema = z.strictObject({
  format: z.literal(FILES_RUN_FORMAT),
  runId: z.string().regex(BACKUP_ID),
  bucket: z.string(),
  /** Where the source was read (no credentials), for people. */
  endpoint: z.string(),
  /** Prefixes protected (empty: the whole bucket). */
  prefixes: z.array(z.string()),
  /** `full`: every object copied again; `differential`: only new and changed ones. */
  kind: z.enum(['full', 'differential']),
  dataClass: z.string(),
  startedAt: isoDate,
  finishedAt: isoDate,
  counts: z.strictObject({
    /** Objects in the source (and so in the catalogue). */
    objects: z.number().int().nonnegative(),
    copied: z.number().int().nonnegative(),
    new: z.number().int().nonnegative(),
    changed: z.number().int().nonnegative(),
    unchanged: z.number().int().nonnegative(),
    /** Objects of the previous catalogue no longer at the source (a tombstone version each). */
    deleted: z.number().int().nonnegative(),
    /** Listed, then gone before they could be read (deleted during the run): not in the catalogue. */
    vanished: z.number().int().nonnegative(),
  }),
  bytes: z.strictObject({
    /** Sum of the sizes of the objects in the catalogue. */
    objects: z.number().int().nonnegative(),
    copied: z.number().int().nonnegative(),
  }),
  /** Problems that did not fail the run (an object that vanished mid-run), one per object. */
  errors: z.array(z.strictObject({ key: z.string(), message: z.string() })),
  catalogue: z.strictObject({
    name: z.literal(RUN_CATALOGUE),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    bytes: z.number().int().nonnegative(),
    entries: z.number().int().nonnegative(),
  }),
  lock: z.strictObject({ mode: z.enum(['COMPLIANCE', 'GOVERNANCE', 'none']), until: isoDate }),
  /** The previous good run of this bucket: a hash chain over the manifests. */
  previous: z.strictObject({ runId: z.string().regex(BACKUP_ID), sha256: z.string() }).nullable(),
});
export type RunManifest = z.infer<typeof runManifestSchema>;

/** A run manifest read from the vault, with the SHA-256 of its bytes (the next run's link). */
export interface StoredRun {
  readonly manifest: RunManifest;
  readonly sha256: string;
}

/** The catalogue's bytes: a header line, then one JSON line per entry sorted by key, gzip'd. */
export async function encodeCatalogue(
  header: { bucket: string; runId: string },
  entries: readonly CatalogueEntry[],
): Promise<Buffer> {
  const gzip = createGzip();
  const chunks: Buffer[] = [];
  gzip.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    gzip.once('end', resolve);
    gzip.once('error', reject);
  });
  const lines = (function* () {
    yield `${JSON.stringify({ format: FILES_CATALOGUE_FORMAT, ...header, entries: entries.length })}\n`;
    for (const e of entries) yield `${JSON.stringify(e)}\n`;
  })();
  Readable.from(lines).pipe(gzip);
  await done;
  return Buffer.concat(chunks);
}

/** Parses catalogue bytes, checking the header names this run and the entry count matches. */
export async function decodeCatalogue(
  bytes: Buffer,
  expected: { bucket: string; runId: string; entries: number },
  where: string,
): Promise<CatalogueEntry[]> {
  const text: string[] = [];
  try {
    for await (const chunk of Readable.from([bytes]).pipe(createGunzip()))
      text.push((chunk as Buffer).toString('utf8'));
  } catch (error) {
    throw new IntegrityError(`${where}: not a gzip'd catalogue: ${messageOf(error)}`);
  }
  const lines = text.join('').split('\n').filter(Boolean);
  const header = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
  if (
    header.format !== FILES_CATALOGUE_FORMAT ||
    header.bucket !== expected.bucket ||
    header.runId !== expected.runId ||
    header.entries !== expected.entries ||
    lines.length - 1 !== expected.entries
  )
    throw new IntegrityError(
      `${where}: the catalogue does not belong to run ${expected.runId} of ${expected.bucket} with ${expected.entries} entries`,
    );
  return lines.slice(1).map((line, i) => {
    const parsed = entrySchema.safeParse(JSON.parse(line));
    if (!parsed.success)
      throw new IntegrityError(`${where}: entry ${i + 1} is malformed: ${parsed.error.message}`);
    return parsed.data;
  });
}

/** Run ids of the bucket's runs that have a manifest, oldest first. */
export async function runIds(vault: FilesVault, bucket: string): Promise<string[]> {
  const prefix = runsPrefix(bucket);
  const keys = await vault.root.list(prefix);
  return keys
    .filter((k) => k.endsWith(`/${RUN_MANIFEST}`))
    .map((k) => k.slice(prefix.length, -RUN_MANIFEST.length - 1))
    .filter((id) => BACKUP_ID.test(id))
    .sort();
}

/** Reads and validates one run's manifest. */
export async function readRun(vault: FilesVault, bucket: string, runId: string): Promise<StoredRun> {
  const key = `${runFolder(bucket, runId)}/${RUN_MANIFEST}`;
  const bytes = await vault.root.readBytes(key);
  if (!bytes) throw new OperationalError(`${vault.url}: ${key} is gone`);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    throw new IntegrityError(`${vault.url}/${key}: not JSON: ${messageOf(error)}`);
  }
  const parsed = runManifestSchema.safeParse(json);
  if (!parsed.success)
    throw new IntegrityError(`${vault.url}/${key}: not a files run manifest: ${parsed.error.message}`);
  if (parsed.data.runId !== runId || parsed.data.bucket !== bucket)
    throw new IntegrityError(
      `${vault.url}/${key}: it is the manifest of run ${parsed.data.runId} of ${parsed.data.bucket}`,
    );
  return { manifest: parsed.data, sha256: sha256(bytes) };
}

/** The newest run of `bucket`, or `undefined` when it has none. */
export async function latestRun(vault: FilesVault, bucket: string): Promise<StoredRun | undefined> {
  const ids = await runIds(vault, bucket);
  const last = ids.at(-1);
  return last === undefined ? undefined : readRun(vault, bucket, last);
}

/**
 * The newest run that had finished at `asOf` (its catalogue is the bucket as of then). Reads
 * manifests from the newest back, so a recent date costs one or two reads.
 */
export async function runAsOf(vault: FilesVault, bucket: string, asOf: Date): Promise<StoredRun> {
  const ids = await runIds(vault, bucket);
  if (!ids.length)
    throw new UsageError(
      `--bucket: the files vault ${vault.url} holds no run of bucket "${bucket}" (has it been synced?)`,
    );
  let oldest: StoredRun | undefined;
  for (let i = ids.length - 1; i >= 0; i--) {
    const run = await readRun(vault, bucket, ids[i]!);
    if (Date.parse(run.manifest.finishedAt) <= asOf.getTime()) return run;
    oldest = run;
  }
  throw new UsageError(
    `--as-of: the first run of bucket "${bucket}" finished at ${oldest!.manifest.finishedAt}, after ${asOf.toISOString()}; nothing is kept from before it`,
  );
}

/** The run's catalogue, checked against the SHA-256, size and entry count its manifest records. */
export async function readCatalogue(vault: FilesVault, run: RunManifest): Promise<CatalogueEntry[]> {
  const key = `${runFolder(run.bucket, run.runId)}/${RUN_CATALOGUE}`;
  const bytes = await vault.root.readBytes(key);
  if (!bytes) throw new IntegrityError(`${vault.url}/${key}: the catalogue of run ${run.runId} is missing`);
  if (bytes.length !== run.catalogue.bytes || sha256(bytes) !== run.catalogue.sha256)
    throw new IntegrityError(
      `${vault.url}/${key}: the catalogue does not match its manifest (SHA-256 or size differs): it was changed or replaced`,
    );
  return decodeCatalogue(
    bytes,
    { bucket: run.bucket, runId: run.runId, entries: run.catalogue.entries },
    `${vault.url}/${key}`,
  );
}
