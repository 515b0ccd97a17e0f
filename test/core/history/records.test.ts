import { describe, expect, it } from 'vitest';
import {
  databaseKindKey,
  databaseKindStatusKey,
  databaseTenantKey,
  historyItem,
  NO_DATABASE,
  type HistoryRecord,
} from '../../../core/history/records';

const record: HistoryRecord = {
  id: '20240229T020000Z-app-prod-full',
  kind: 'full',
  database: 'app-prod',
  tier: 'monthly',
  status: 'succeeded',
  startedAt: '2024-02-29T02:00:00.000Z',
  finishedAt: '2024-02-29T02:14:09.512Z',
  bytes: 1_234_567,
  sha256: 'a'.repeat(64),
  location: 's3://vault/full/app-prod/20240229T020000Z-app-prod-full/',
  requestedBy: 'schedule',
};

describe('historyItem', () => {
  it('adds the index keys of a full backup', () => {
    expect(historyItem(record)).toEqual({
      ...record,
      databaseKind: 'app-prod#full',
      databaseKindStatus: 'app-prod#full#succeeded',
    });
  });

  it('adds the tenant key only to records with a tenant', () => {
    const item = historyItem({ ...record, kind: 'tenant', tier: 'tenant', tenant: 'clinic-42' });
    expect(item.databaseTenant).toBe('app-prod#clinic-42');
    expect('databaseTenant' in historyItem(record)).toBe(false);
  });

  it('keys records without a database (configuration snapshots) under a placeholder no id can take', () => {
    const { database: _omitted, ...config } = record;
    expect(historyItem({ ...config, kind: 'config' }).databaseKind).toBe(`${NO_DATABASE}#config`);
    expect(databaseKindKey(undefined, 'config')).toBe('-#config');
  });

  it('changes the status key when the status changes, so the latest good backup is one query', () => {
    expect(historyItem({ ...record, status: 'running' }).databaseKindStatus).toBe('app-prod#full#running');
    expect(databaseKindStatusKey('app-prod', 'full', 'failed')).toBe('app-prod#full#failed');
    expect(databaseTenantKey('ledger-prod', 't1')).toBe('ledger-prod#t1');
  });

  it.each([
    ['a local time', { startedAt: '2024-02-29T02:00:00' }, /startedAt must be an ISO-8601 UTC timestamp/],
    [
      'an offset',
      { finishedAt: '2024-02-29T02:00:00-03:00' },
      /finishedAt must be an ISO-8601 UTC timestamp/,
    ],
    ['an impossible date', { startedAt: '2023-02-30T02:00:00Z' }, /startedAt must be/],
    ['an unknown kind', { kind: 'dump' }, /unknown kind "dump"/],
    ['an unknown status', { status: 'done' }, /unknown status "done"/],
  ])('rejects %s', (_what, change, message) => {
    expect(() => historyItem({ ...record, ...change } as HistoryRecord)).toThrow(message);
  });

  it('sorts records by startedAt as text, as the indexes do', () => {
    const times = ['2024-02-29T02:00:00.000Z', '2023-12-31T23:59:59.999Z', '2024-03-01T00:00:00.000Z'];
    const sorted = [...times].sort();
    expect(sorted).toEqual([...times].sort((a, b) => Date.parse(a) - Date.parse(b)));
  });
});
