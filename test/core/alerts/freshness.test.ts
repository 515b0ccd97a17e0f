import {
  CreateDBClusterCommand,
  CreateDBInstanceCommand,
  DeleteDBClusterCommand,
  DeleteDBInstanceCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileHistoryStore } from '../../../core/history/store';
import type { HistoryRecord } from '../../../core/history/records';
import {
  assessRecoveryPointLag,
  checkConfigFreshness,
  checkFreshness,
  DEFAULT_CONFIG_SNAPSHOT_HOURS,
  DEFAULT_FRESHNESS_LIMITS,
  rdsLatestRestorableTime,
} from '../../../core/alerts/freshness';
import { clientConfig, describeLocalAws, uniqueName } from '../../helpers/local-aws';
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

describe('RecoveryPointLagMinutes (point-in-time lag against the RPO)', () => {
  const at = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000);

  it('59 minutes behind is fresh, 61 minutes behind is stale (RPO 60)', () => {
    expect(
      assessRecoveryPointLag({
        database: 'app-prod',
        latestRestorableTime: at(59),
        now: NOW,
        rpoMinutes: 60,
      }),
    ).toMatchObject({ check: 'recovery-point', state: 'fresh', age: 59, limit: 60 });
    expect(
      assessRecoveryPointLag({
        database: 'app-prod',
        latestRestorableTime: at(61),
        now: NOW,
        rpoMinutes: 60,
      }),
    ).toMatchObject({ state: 'stale', age: 61 });
  });

  it('publishes the lag in minutes for an RDS target, and no datapoint when LatestRestorableTime is missing', async () => {
    const store = await storeWith();
    const target = { database: 'app-prod', tenants: false, rds: { rdsInstanceId: 'app-prod' } };
    const lagging = await checkFreshness(store, [target], NOW, { ...exact, rpoMinutes: 60 }, () =>
      Promise.resolve(at(61)),
    );
    expect(lagging.metrics).toContainEqual({
      name: 'RecoveryPointLagMinutes',
      dimensions: { Database: 'app-prod' },
      value: 61,
      unit: 'None',
    });
    const missing = await checkFreshness(store, [target], NOW, exact, () => Promise.resolve(undefined));
    expect(missing.findings.find((f) => f.check === 'recovery-point')).toMatchObject({ state: 'no-history' });
    expect(missing.metrics.map((m) => m.name)).not.toContain('RecoveryPointLagMinutes');
  });

  it('publishes HoursSinceLastGoodSnapshot from the last completed AWS Backup snapshot only for RDS targets', async () => {
    const store = await storeWith(
      record({ kind: 'snapshot', status: 'succeeded', finishedAt: hoursBefore(25) }),
      record({ kind: 'snapshot', status: 'failed', finishedAt: hoursBefore(1) }),
    );
    const rds = await checkFreshness(
      store,
      [{ database: 'app-prod', tenants: false, rds: { rdsInstanceId: 'app-prod' } }],
      NOW,
      exact,
      () => Promise.resolve(at(5)),
    );
    expect(rds.findings.find((f) => f.check === 'snapshot')).toMatchObject({
      state: 'fresh',
      age: 25,
      limit: 26,
    });
    expect(rds.metrics).toContainEqual({
      name: 'HoursSinceLastGoodSnapshot',
      dimensions: { Database: 'app-prod' },
      value: 25,
      unit: 'None',
    });
    const selfManaged = await checkFreshness(store, [{ database: 'app-prod', tenants: false }], NOW, exact);
    expect(selfManaged.metrics.map((m) => m.name)).not.toContain('HoursSinceLastGoodSnapshot');
  });
});

describeLocalAws('LatestRestorableTime from the RDS API (local AWS: moto)', () => {
  const rds = new RDSClient(clientConfig());
  const instance = uniqueName('pitr');
  const cluster = uniqueName('aurora');
  beforeAll(async () => {
    await rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: instance,
        Engine: 'postgres',
        DBInstanceClass: 'db.t3.micro',
        AllocatedStorage: 20,
        MasterUsername: 'cofre',
        MasterUserPassword: 'not-a-real-password-1',
        BackupRetentionPeriod: 7,
      }),
    );
    await rds.send(
      new CreateDBClusterCommand({
        DBClusterIdentifier: cluster,
        Engine: 'aurora-postgresql',
        MasterUsername: 'cofre',
        MasterUserPassword: 'not-a-real-password-1',
      }),
    );
  });
  afterAll(async () => {
    await rds.send(new DeleteDBInstanceCommand({ DBInstanceIdentifier: instance, SkipFinalSnapshot: true }));
    await rds.send(new DeleteDBClusterCommand({ DBClusterIdentifier: cluster, SkipFinalSnapshot: true }));
  });

  it('reads an instance and a cluster, and 61 minutes later their lag is stale', async () => {
    const read = rdsLatestRestorableTime(rds);
    for (const target of [{ rdsInstanceId: instance }, { rdsClusterId: cluster }]) {
      const time = await read(target);
      expect(time).toBeInstanceOf(Date);
      const later = new Date(time!.getTime() + 61 * 60_000);
      const { findings, metrics } = await checkFreshness(
        await storeWith(),
        [{ database: 'db', tenants: false, rds: target }],
        later,
        { ...exact, rpoMinutes: 60 },
        read,
      );
      // moto reports "now" as LatestRestorableTime, so allow the seconds between the two reads.
      expect(findings.find((f) => f.check === 'recovery-point')).toMatchObject({ state: 'stale' });
      expect(metrics.find((m) => m.name === 'RecoveryPointLagMinutes')!.value).toBeGreaterThan(60);
    }
  });

  it('a database RDS does not know has no LatestRestorableTime (so the alarm fires on missing data)', async () => {
    const read = rdsLatestRestorableTime(rds);
    expect(await read({ rdsInstanceId: uniqueName('gone') })).toBeUndefined();
    expect(await read({ rdsClusterId: uniqueName('gone') })).toBeUndefined();
  });
});

describe('configuration snapshot freshness', () => {
  const config = (o: Partial<HistoryRecord> & Pick<HistoryRecord, 'status'>): HistoryRecord => {
    const { database: _omit, ...rest } = record({ kind: 'config', ...o });
    return rest;
  };

  it('the last good weekly snapshot 168 h ago is fresh, 170 h ago stale (169 h limit); its age is the datapoint, without dimensions', async () => {
    const fresh = await checkConfigFreshness(
      await storeWith(config({ status: 'succeeded', finishedAt: hoursBefore(168) })),
      NOW,
    );
    expect(fresh.finding).toMatchObject({
      check: 'config',
      state: 'fresh',
      age: 168,
      limit: DEFAULT_CONFIG_SNAPSHOT_HOURS,
    });
    expect(fresh.metric).toEqual({
      name: 'HoursSinceLastGoodConfigSnapshot',
      dimensions: {},
      value: 168,
      unit: 'None',
    });
    const stale = await checkConfigFreshness(
      await storeWith(config({ status: 'succeeded', finishedAt: hoursBefore(170) })),
      NOW,
    );
    expect(stale.finding).toMatchObject({ state: 'stale', age: 170 });
  });

  it('only failed weekly snapshots, or none at all: no datapoint, so the alarm (missing data = breaching) fires', async () => {
    const failed = await checkConfigFreshness(await storeWith(config({ status: 'failed' })), NOW);
    expect(failed.finding.state).toBe('no-good-run');
    expect(failed.metric).toBeUndefined();
    const none = await checkConfigFreshness(
      await storeWith(record({ kind: 'full', status: 'succeeded' })),
      NOW,
    );
    expect(none.finding.state).toBe('no-history');
    expect(none.metric).toBeUndefined();
  });
});
