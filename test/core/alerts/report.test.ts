import { describe, expect, it } from 'vitest';
import {
  buildMonthlyReport,
  DEFAULT_PRICES,
  formatMonthlyReport,
  monthRange,
  previousMonth,
  runsFromHistory,
} from '../../../core/alerts/report';
import type { HistoryRecord } from '../../../core/history/records';
import { parseConfig } from '../../../lib/config';
import { exampleConfig } from '../../helpers/cdk';

const GIB = 1024 ** 3;
let n = 0;
function rec(
  o: Partial<HistoryRecord> & Pick<HistoryRecord, 'kind' | 'status' | 'startedAt'>,
): HistoryRecord {
  return { id: `r${++n}`, database: 'app-prod', requestedBy: 'schedule', ...o };
}
const minutesAfter = (iso: string, m: number) => new Date(Date.parse(iso) + m * 60_000).toISOString();

describe('monthly report calculations', () => {
  it('months are whole UTC calendar months; a bad month is a usage error naming --month', () => {
    expect(monthRange('2024-02')).toEqual({
      from: '2024-02-01T00:00:00.000Z',
      to: '2024-02-29T23:59:59.999Z',
    });
    expect(previousMonth(new Date('2027-01-01T08:00:00Z'))).toBe('2026-12');
    for (const bad of ['2026-13', '2026-1', 'october', '2026-10-01'])
      expect(() => monthRange(bad)).toThrow(/^--month: expected a month as YYYY-MM/);
  });

  it('counts runs per database and kind, success rate, average size and duration of the good runs', () => {
    const start = '2026-10-0XT05:00:00.000Z';
    const day = (d: number) => start.replace('0X', String(d).padStart(2, '0'));
    const records = [
      rec({
        kind: 'full',
        status: 'succeeded',
        startedAt: day(1),
        finishedAt: minutesAfter(day(1), 10),
        bytes: 1 * GIB,
      }),
      rec({
        kind: 'full',
        status: 'succeeded',
        startedAt: day(2),
        finishedAt: minutesAfter(day(2), 20),
        bytes: 3 * GIB,
      }),
      rec({ kind: 'full', status: 'failed', startedAt: day(3), finishedAt: minutesAfter(day(3), 1) }),
      rec({ kind: 'full', status: 'skipped', startedAt: day(4) }),
      rec({
        kind: 'tenant',
        tenant: 'c1',
        status: 'succeeded',
        startedAt: day(1),
        finishedAt: minutesAfter(day(1), 2),
        bytes: 1000,
      }),
      rec({
        kind: 'full',
        status: 'succeeded',
        startedAt: day(1),
        finishedAt: minutesAfter(day(1), 5),
        bytes: GIB,
        database: 'ledger-prod',
      }),
      // outside the month
      rec({ kind: 'full', status: 'failed', startedAt: '2026-09-30T23:59:59.999Z' }),
      rec({ kind: 'full', status: 'failed', startedAt: '2026-11-01T00:00:00.000Z' }),
      // restore tests: measured RTO
      rec({
        kind: 'restore-test',
        status: 'succeeded',
        startedAt: day(5),
        finishedAt: minutesAfter(day(5), 42),
        message: 'row counts match',
      }),
    ];
    const report = buildMonthlyReport({ month: '2026-10', runs: runsFromHistory(records), source: 'test' });
    expect(report.groups).toEqual([
      {
        database: 'app-prod',
        kind: 'full',
        runs: 4,
        succeeded: 2,
        failed: 1,
        skipped: 1,
        unfinished: 0,
        successRatePercent: 50,
        averageStoredBytes: 2 * GIB,
        averageDurationSeconds: 900,
      },
      expect.objectContaining({ database: 'app-prod', kind: 'tenant', runs: 1, successRatePercent: 100 }),
      expect.objectContaining({
        database: 'ledger-prod',
        kind: 'full',
        runs: 1,
        averageDurationSeconds: 300,
      }),
    ]);
    expect(report.totals).toEqual({ runs: 6, succeeded: 4, successRatePercent: 66.7 });
    expect(report.restoreTests).toEqual([
      expect.objectContaining({
        database: 'app-prod',
        status: 'succeeded',
        durationSeconds: 2520,
        message: 'row counts match',
      }),
    ]);
    expect(formatMonthlyReport(report)).toMatch(
      /2026-10-05 app-prod: SUCCEEDED, RTO 42 min 00 s \(row counts match\)/,
    );
  });

  it('compression savings from raw and stored sizes; storage cost by class from S3 storage types', () => {
    const report = buildMonthlyReport({
      month: '2026-10',
      source: 'test',
      runs: [
        {
          id: 'a',
          database: 'db',
          kind: 'full',
          status: 'succeeded',
          startedAt: '2026-10-01T05:00:00.000Z',
          rawBytes: 3000,
          storedBytes: 1000,
        },
        {
          id: 'b',
          database: 'db',
          kind: 'full',
          status: 'succeeded',
          startedAt: '2026-10-02T05:00:00.000Z',
          rawBytes: 5000,
          storedBytes: 1000,
        },
      ],
      storageBytes: {
        StandardStorage: 100 * GIB,
        GlacierInstantRetrievalStorage: 0,
        GlacierStorage: 1000 * GIB,
        GlacierObjectOverhead: 1 * GIB,
        GlacierS3ObjectOverhead: 1 * GIB,
        DeepArchiveStorage: 10_000 * GIB,
        SomethingElse: 5 * GIB,
      },
      prices: DEFAULT_PRICES,
    });
    expect(report.groups[0]).toMatchObject({ compressionSavedBytes: 6000, compressionRatio: 4 });
    expect(report.storage).toEqual({
      currency: 'USD',
      basis: 'vault size by storage class',
      lines: [
        { storageClass: 'STANDARD', bytes: 101 * GIB, pricePerGbMonth: 0.0405, monthlyCost: 4.09 },
        { storageClass: 'GLACIER', bytes: 1001 * GIB, pricePerGbMonth: 0.0072, monthlyCost: 7.21 },
        { storageClass: 'DEEP_ARCHIVE', bytes: 10_000 * GIB, pricePerGbMonth: 0.0032, monthlyCost: 32 },
      ],
      totalBytes: 11_102 * GIB,
      monthlyCost: 43.3,
    });
  });

  it('the default prices are the config schema’s defaults', () => {
    expect(parseConfig(exampleConfig()).prices).toEqual(DEFAULT_PRICES);
  });
});
