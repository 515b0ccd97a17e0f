import { randomInt } from 'node:crypto';
import type { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { OperationalError, messageOf } from '../util/errors';
import type { HistoryRecord } from '../history/records';
import { latestRun, objectKeyIn, readCatalogue, type CatalogueEntry } from './catalogue';
import type { FilesSource } from './sync';
import type { FilesVault } from './vault';
import { sha256Of } from '../util/sha256';

/** What happened to one sampled object. */
export interface SampleResult {
  readonly key: string;
  readonly size: number;
  /**
   * `match`: the copy's SHA-256 equals the source's (read now, unchanged since the run) and the
   * catalogue's; `changed-at-source`: the source changed or deleted it since the run, so the copy is
   * compared with the catalogue only; `mismatch`: the copy differs from the source or the catalogue.
   */
  readonly outcome: 'match' | 'changed-at-source' | 'mismatch';
  readonly detail?: string | undefined;
}

export interface FilesRestoreTestReport {
  readonly bucket: string;
  readonly runId: string;
  readonly sampled: number;
  readonly matched: number;
  readonly changedAtSource: number;
  readonly mismatches: readonly SampleResult[];
  readonly results: readonly SampleResult[];
  readonly ok: boolean;
}

/**
 * The weekly proof for an S3-compatible source: a random sample of the newest catalogue is restored
 * (read back from the vault versions it names, in memory, hashed) and each SHA-256 compared with the
 * source's own object when the source still holds the same one (same ETag: an independent source),
 * and always with the SHA-256 the catalogue recorded when the copy was made. One mismatch fails it.
 */
export async function testFilesRestore(options: {
  readonly vault: FilesVault;
  readonly source: FilesSource;
  /** Objects to sample. @default 20 */
  readonly sample?: number;
  /** Picks indexes (tests make the sample deterministic). @default crypto.randomInt */
  readonly pick?: (n: number) => number;
  readonly signal?: AbortSignal | undefined;
}): Promise<FilesRestoreTestReport> {
  const { vault, source } = options;
  const run = await latestRun(vault, source.bucket);
  if (!run)
    throw new OperationalError(
      `files restore test of ${source.bucket}: the files vault ${vault.url} holds no run of it yet`,
    );
  const catalogue = await readCatalogue(vault, run.manifest);
  const pick = options.pick ?? ((n: number) => randomInt(n));
  const pool = [...catalogue];
  const chosen: CatalogueEntry[] = [];
  const wanted = Math.min(options.sample ?? 20, pool.length);
  while (chosen.length < wanted) chosen.push(pool.splice(pick(pool.length), 1)[0]!);
  const results: SampleResult[] = [];
  for (const entry of chosen) {
    let copy;
    try {
      const got = await vault.client.send(
        new GetObjectCommand({
          Bucket: vault.bucket,
          Key: vault.keyOf(objectKeyIn(source.bucket, entry.key)),
          VersionId: entry.versionId,
        }),
        { abortSignal: options.signal },
      );
      copy = await sha256Of(got.Body as Readable);
    } catch (error) {
      results.push({
        key: entry.key,
        size: entry.size,
        outcome: 'mismatch',
        detail: `the copy cannot be read: ${messageOf(error)}`,
      });
      continue;
    }
    if (copy.sha256 !== entry.sha256 || copy.bytes !== entry.size) {
      results.push({
        key: entry.key,
        size: entry.size,
        outcome: 'mismatch',
        detail: 'the copy differs from the catalogue (SHA-256 or size)',
      });
      continue;
    }
    let now;
    try {
      const got = await source.client.send(new GetObjectCommand({ Bucket: source.bucket, Key: entry.key }), {
        abortSignal: options.signal,
      });
      if ((got.ETag ?? '').replace(/"/g, '') !== entry.etag) {
        (got.Body as Readable | undefined)?.destroy();
        results.push({
          key: entry.key,
          size: entry.size,
          outcome: 'changed-at-source',
          detail: 'changed at the source since the run',
        });
        continue;
      }
      now = await sha256Of(got.Body as Readable);
    } catch (error) {
      const e = error as { name?: string };
      if (e.name === 'NoSuchKey') {
        results.push({
          key: entry.key,
          size: entry.size,
          outcome: 'changed-at-source',
          detail: 'deleted at the source since the run',
        });
        continue;
      }
      throw new OperationalError(
        `files restore test: cannot read ${entry.key} from ${source.endpoint}: ${messageOf(error)}`,
        {
          cause: error,
        },
      );
    }
    results.push(
      now.sha256 === copy.sha256
        ? { key: entry.key, size: entry.size, outcome: 'match' }
        : {
            key: entry.key,
            size: entry.size,
            outcome: 'mismatch',
            detail: 'the copy differs from the object at the source (same ETag)',
          },
    );
  }
  const mismatches = results.filter((r) => r.outcome === 'mismatch');
  return {
    bucket: source.bucket,
    runId: run.manifest.runId,
    sampled: results.length,
    matched: results.filter((r) => r.outcome === 'match').length,
    changedAtSource: results.filter((r) => r.outcome === 'changed-at-source').length,
    mismatches,
    results,
    ok: mismatches.length === 0 && results.length > 0,
  };
}

/** The history record of a files restore test (kind `files-restore-test`, database `s3:<bucket>`). */
export function filesRestoreTestRecord(
  report: FilesRestoreTestReport,
  times: { startedAt: Date; finishedAt: Date },
  requestedBy: string,
): HistoryRecord {
  return {
    id: `files-restore-test-${report.bucket}-${times.startedAt.toISOString()}`,
    kind: 'files-restore-test',
    database: `s3:${report.bucket}`,
    status: report.ok ? 'succeeded' : 'failed',
    startedAt: times.startedAt.toISOString(),
    finishedAt: times.finishedAt.toISOString(),
    bytes: report.results.reduce((n, r) => n + r.size, 0),
    message: report.ok
      ? `${report.sampled} objects of run ${report.runId} restored: ${report.matched} equal to the source (SHA-256), ${report.changedAtSource} changed at the source since (equal to the catalogue)`
      : report.sampled === 0
        ? `run ${report.runId} catalogues no object: nothing to test`
        : `${report.mismatches.length} of ${report.sampled} restored objects differ: ${report.mismatches.map((m) => `${m.key} (${m.detail ?? ''})`).join('; ')}`,
    requestedBy,
  };
}
