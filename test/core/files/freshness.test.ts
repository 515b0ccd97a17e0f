/**
 * Freshness of the application buckets under AWS Backup: the age of the last completed periodic
 * recovery point (history kind `snapshot`, database `s3:<bucket>`, recorded from the job events),
 * published as HoursSinceLastGoodFilesBackup{Bucket}, and of the last good weekly AWS Backup restore
 * test (kind `files-restore-test`) as DaysSinceLastGoodFilesRestoreTest{Bucket}; none good, no
 * datapoint (the alarm's missing data breaches).
 */
import { describe, expect, it } from 'vitest';
import { checkFilesFreshness, checkSyncedFilesFreshness } from '../../../core/alerts/freshness';
import { FileHistoryStore } from '../../../core/history/store';
import { tempDir } from '../../helpers/cli';

describe('files backup freshness', () => {
  it('publishes the hours since the last good recovery point and the days since the last good AWS Backup restore test per bucket, and nothing for a bucket with only failures', async () => {
    const store = new FileHistoryStore(tempDir('files-freshness'));
    const record = (
      id: string,
      database: string,
      status: 'succeeded' | 'failed',
      finishedAt: string,
      kind: 'snapshot' | 'files-restore-test' = 'snapshot',
    ) =>
      store.put({
        id,
        kind,
        database,
        status,
        startedAt: finishedAt,
        finishedAt,
        requestedBy: 'aws-backup',
        ...(kind === 'files-restore-test' ? { method: 'aws-backup' as const } : {}),
      });
    await record('a1', 's3:docs', 'succeeded', '2026-11-27T06:00:00.000Z');
    await record('a2', 's3:docs', 'failed', '2026-11-28T06:00:00.000Z');
    await record('b1', 's3:attachments', 'failed', '2026-11-28T06:00:00.000Z');
    // The weekly restore tests (files restore validation Lambda): docs passed 3 days ago, attachments failed.
    await record('r1', 's3:docs', 'succeeded', '2026-11-25T12:00:00.000Z', 'files-restore-test');
    await record('r2', 's3:attachments', 'failed', '2026-11-28T08:00:00.000Z', 'files-restore-test');
    const now = new Date('2026-11-28T12:00:00.000Z');
    const { findings, metrics } = await checkFilesFreshness(
      store,
      ['docs', 'attachments', 'new-bucket'],
      now,
      26,
    );
    expect(metrics).toEqual([
      { name: 'HoursSinceLastGoodFilesBackup', dimensions: { Bucket: 'docs' }, value: 30, unit: 'None' },
      { name: 'DaysSinceLastGoodFilesRestoreTest', dimensions: { Bucket: 'docs' }, value: 3, unit: 'None' },
    ]);
    expect(findings.map((f) => [f.database, f.check, f.state, f.limit])).toEqual([
      ['s3:docs', 'files', 'stale', 26],
      ['s3:docs', 'files-restore-test', 'fresh', 8],
      ['s3:attachments', 'files', 'no-good-run', 26],
      ['s3:attachments', 'files-restore-test', 'no-good-run', 8],
      ['s3:new-bucket', 'files', 'no-history', 26],
      ['s3:new-bucket', 'files-restore-test', 'no-history', 8],
    ]);
  });
});

describe('S3-compatible files freshness (sync runs and weekly restore tests)', () => {
  it('publishes the hours since the last good sync and the days since the last good restore test; nothing when none is good', async () => {
    const store = new FileHistoryStore(tempDir('synced-freshness'));
    const record = (
      id: string,
      kind: 'files' | 'files-restore-test' | 'snapshot',
      database: string,
      status: 'succeeded' | 'failed',
      finishedAt: string,
    ) =>
      store.put({ id, kind, database, status, startedAt: finishedAt, finishedAt, requestedBy: 'schedule' });
    await record('s1', 'files', 's3:minio-docs', 'succeeded', '2026-11-28T06:00:00.000Z');
    await record('t1', 'files-restore-test', 's3:minio-docs', 'succeeded', '2026-11-19T12:00:00.000Z');
    await record('t2', 'files-restore-test', 's3:minio-docs', 'failed', '2026-11-26T12:00:00.000Z');
    // An AWS Backup recovery point (kind snapshot) is not a sync: it does not count for a synced bucket.
    await record('x1', 'snapshot', 's3:supabase', 'succeeded', '2026-11-28T06:00:00.000Z');
    await record('x2', 'files', 's3:supabase', 'failed', '2026-11-28T06:00:00.000Z');
    const now = new Date('2026-11-28T12:00:00.000Z');
    const { findings, metrics } = await checkSyncedFilesFreshness(store, ['minio-docs', 'supabase'], now);
    expect(metrics).toEqual([
      { name: 'HoursSinceLastGoodFilesBackup', dimensions: { Bucket: 'minio-docs' }, value: 6, unit: 'None' },
      {
        name: 'DaysSinceLastGoodFilesRestoreTest',
        dimensions: { Bucket: 'minio-docs' },
        value: 9,
        unit: 'None',
      },
    ]);
    expect(findings.map((f) => [f.database, f.check, f.state, f.limit])).toEqual([
      ['s3:minio-docs', 'files', 'fresh', 26],
      ['s3:minio-docs', 'files-restore-test', 'stale', 8],
      ['s3:supabase', 'files', 'no-good-run', 26],
      ['s3:supabase', 'files-restore-test', 'no-history', 8],
    ]);
  });
});
