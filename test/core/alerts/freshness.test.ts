import { describe, expect, it } from 'vitest';
import { FileHistoryStore } from '../../../core/history-store';
import type { HistoryRecord } from '../../../core/history';
import { checkFreshness, DEFAULT_FRESHNESS_LIMITS } from '../../../core/alerts/freshness';
import { tempDir } from '../../helpers/cli';

const NOW = new Date('2026-11-24T05:00:00.000Z');
const hoursBefore = (h: number, m = 0) => new Date(NOW.getTime() - (h * 60 + m) * 60_000).toISOString();

let n = 0;
function record(o: Partial<HistoryRecord> & Pick<HistoryRecord, 'kind' | 'status'>): HistoryRecord {
  n++;
  const finishedAt = o.finishedAt ?? hoursBefore(1);
  return {
    id: `run-${n}`,
    database: 'app-prod',
    startedAt: new Date(Date.parse(finishedAt) - 10 * 60_000).toISOString(),
    finishedAt,
    requestedBy: 'schedule',
    ...o,
  };
}

async function storeWith(...records: HistoryRecord[]) {
  const store = new FileHistoryStore(tempDir('freshness'));
  for (const r of records) await store.put(r);
  return store;
}

const exact = { fullBackupHours: 24, tenantExportHours: 24, restoreTestDays: 30 };

describe('freshness', () => {
  it('a good full backup that finished 23 h 59 min ago is fresh; 24 h 01 min ago is stale (24 h limit)', async () => {
    const fresh = await checkFreshness(
      await storeWith(record({ kind: 'full', status: 'succeeded', finishedAt: hoursBefore(23, 59) })),
      [{ database: 'app-prod', tenants: false }],
      NOW,
      exact,
    );
    expect(fresh.findings[0]).toMatchObject({ check: 'full', state: 'fresh', age: 23.983, limit: 24 });
    expect(fresh.metrics).toContainEqual({
      name: 'HoursSinceLastGoodBackup',
      dimensions: { Database: 'app-prod', Kind: 'full' },
      value: 23.983,
      unit: 'None',
    });

    const stale = await checkFreshness(
      await storeWith(record({ kind: 'full', status: 'succeeded', finishedAt: hoursBefore(24, 1) })),
      [{ database: 'app-prod', tenants: false }],
      NOW,
      exact,
    );
    expect(stale.findings[0]).toMatchObject({ state: 'stale', age: 24.017 });
    expect(stale.metrics[0]).toMatchObject({ name: 'HoursSinceLastGoodBackup', value: 24.017 });
  });

  it('the default limit gives a running backup its 30 minutes: 24 h 29 min is fresh, 24 h 31 min stale', async () => {
    const at = async (m: number) =>
      (
        await checkFreshness(
          await storeWith(record({ kind: 'full', status: 'succeeded', finishedAt: hoursBefore(24, m) })),
          [{ database: 'app-prod', tenants: false }],
          NOW,
        )
      ).findings[0]!.state;
    expect(DEFAULT_FRESHNESS_LIMITS.fullBackupHours).toBe(24.5);
    expect(await at(29)).toBe('fresh');
    expect(await at(31)).toBe('stale');
  });

  it('no history at all: no datapoint (the alarm treats missing data as breaching)', async () => {
    const result = await checkFreshness(await storeWith(), [{ database: 'app-prod', tenants: true }], NOW);
    expect(result.metrics).toEqual([]);
    expect(result.findings.map((f) => [f.check, f.state])).toEqual([
      ['full', 'no-history'],
      ['tenant', 'no-history'],
      ['restore-test', 'no-history'],
    ]);
  });

  it('only failed runs: no good backup, so no datapoint either; the finding names the last failed run', async () => {
    const result = await checkFreshness(
      await storeWith(
        record({ kind: 'full', status: 'failed', finishedAt: hoursBefore(2) }),
        record({ kind: 'full', status: 'failed', finishedAt: hoursBefore(26) }),
      ),
      [{ database: 'app-prod', tenants: false }],
      NOW,
    );
    expect(result.metrics.filter((m) => m.name === 'HoursSinceLastGoodBackup')).toEqual([]);
    expect(result.findings[0]).toMatchObject({
      state: 'no-good-run',
      lastRun: { status: 'failed' },
    });
  });

  it('the newest good run counts, not a newer failure; other databases do not count', async () => {
    const result = await checkFreshness(
      await storeWith(
        record({ kind: 'full', status: 'succeeded', finishedAt: hoursBefore(30) }),
        record({ kind: 'full', status: 'failed', finishedAt: hoursBefore(5) }),
        record({ kind: 'full', status: 'succeeded', finishedAt: hoursBefore(1), database: 'ledger-prod' }),
      ),
      [{ database: 'app-prod', tenants: false }],
      NOW,
    );
    expect(result.findings[0]).toMatchObject({ state: 'stale', age: 30, lastRun: { status: 'failed' } });
  });

  it('tenant exports (only where tenants are configured) and restore tests: age, measured RTO, last result', async () => {
    const result = await checkFreshness(
      await storeWith(
        record({ kind: 'tenant', tenant: 'clinic-1', status: 'succeeded', finishedAt: hoursBefore(3) }),
        record({
          kind: 'restore-test',
          status: 'succeeded',
          startedAt: hoursBefore(24 * 31 + 1),
          finishedAt: hoursBefore(24 * 31),
        }),
      ),
      [
        { database: 'app-prod', tenants: true },
        { database: 'ledger-prod', tenants: false },
      ],
      NOW,
      exact,
    );
    expect(result.metrics).toEqual([
      {
        name: 'HoursSinceLastVerifiedTenantExport',
        dimensions: { Database: 'app-prod' },
        value: 3,
        unit: 'None',
      },
      { name: 'DaysSinceLastGoodRestoreTest', dimensions: { Database: 'app-prod' }, value: 31, unit: 'None' },
      {
        name: 'LastRestoreTestDurationSeconds',
        dimensions: { Database: 'app-prod' },
        value: 3600,
        unit: 'Seconds',
      },
      { name: 'LastRestoreTestPassed', dimensions: { Database: 'app-prod' }, value: 1, unit: 'Count' },
    ]);
    expect(
      result.findings.find((f) => f.check === 'restore-test' && f.database === 'app-prod'),
    ).toMatchObject({
      state: 'stale',
      limit: 30,
    });
    expect(result.findings.filter((f) => f.database === 'ledger-prod').map((f) => f.check)).toEqual([
      'full',
      'restore-test',
    ]);
  });
});
