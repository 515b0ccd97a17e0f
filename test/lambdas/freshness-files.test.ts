/**
 * The freshness handler with `COFRE_FILES_SYNCED_BUCKETS` (the S3-compatible buckets CDK lists): it
 * publishes HoursSinceLastGoodFilesBackup and DaysSinceLastGoodFilesRestoreTest with the Bucket
 * dimension the alarms select, as EMF.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { describe, expect, it, vi } from 'vitest';
import { FileHistoryStore } from '../../core/history/store';
import { createFreshnessHandler } from '../../lambdas/freshness';
import { tempDir } from '../helpers/cli';
import { withEnv } from '../helpers/env';

describe('freshness handler: S3-compatible buckets', () => {
  it('publishes the sync and restore test ages of each synced bucket', async () => {
    const store = new FileHistoryStore(tempDir('fresh-synced'));
    for (const [id, kind, finishedAt] of [
      ['s', 'files', '2026-11-28T02:00:00.000Z'],
      ['t', 'files-restore-test', '2026-11-26T12:00:00.000Z'],
    ] as const)
      await store.put({
        id,
        kind,
        database: 's3:minio-docs',
        status: 'succeeded',
        startedAt: finishedAt,
        finishedAt,
        requestedBy: 'schedule',
      });
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    let result;
    try {
      const env = {
        COFRE_DATABASES: '[]',
        COFRE_MAX_DURATION_MINUTES: '30',
        COFRE_RESTORE_TEST_MAX_AGE_DAYS: '36',
        COFRE_FILES_SYNCED_BUCKETS: JSON.stringify(['minio-docs']),
      };
      const handle = withEnv(env, () =>
        createFreshnessHandler({
          store,
          logger: new Logger({ serviceName: 'test', logLevel: 'SILENT' }),
          metrics: new Metrics({ namespace: 'Cofre', serviceName: 'cofre-freshness' }),
          now: () => new Date('2026-11-28T12:00:00.000Z'),
        }),
      );
      result = await handle();
    } finally {
      spy.mockRestore();
    }
    expect(result).toEqual({ findings: 2, datapoints: 2, stale: 0 });
    const emf = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(
      emf.map((e) => [e.Bucket, e.HoursSinceLastGoodFilesBackup ?? e.DaysSinceLastGoodFilesRestoreTest]),
    ).toEqual([
      ['minio-docs', 10],
      ['minio-docs', 2],
    ]);
    for (const e of emf)
      expect(e).toMatchObject({
        _aws: { CloudWatchMetrics: [{ Namespace: 'Cofre', Dimensions: [['Bucket']] }] },
      });
  });
});
