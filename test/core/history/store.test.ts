/**
 * The backup history stores: one behaviour, two stores. DynamoDB runs on the local AWS (moto), in
 * a table built from the CDK construct's own key schema and indexes, so the conditional job lock,
 * the index queries and the scan's paging are DynamoDB's, not a mock's.
 */
import { rmSync } from 'node:fs';
import { DynamoDBClient, GetItemCommand, ScanCommand as RawScanCommand } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HistoryRecord } from '../../../core/history/records';
import { DynamoHistoryStore, FileHistoryStore } from '../../../core/history/store';
import { tempDir } from '../../helpers/cli';
import { clientConfig, createHistoryTable, describeLocalAws } from '../../helpers/local-aws';

const base: HistoryRecord = {
  id: '20261123T050000123Z-1a2b3c4d',
  kind: 'full',
  database: 'app-prod',
  tier: 'daily',
  status: 'running',
  startedAt: '2026-11-23T05:00:00.123Z',
  requestedBy: 'schedule',
};

type Store = FileHistoryStore | DynamoHistoryStore;

function behavesAsAHistory(name: string, make: () => Promise<Store>, cleanup: () => void = () => undefined) {
  describe(name, () => {
    let store: Store;
    beforeEach(async () => {
      store = await make();
    });
    afterEach(cleanup);

    it('replaces a running record by its final one, and finds the latest by status', async () => {
      await store.put({ ...base, id: 'old', status: 'succeeded', startedAt: '2026-11-22T05:00:00.000Z' });
      await store.put(base);
      expect((await store.latest('app-prod', 'full'))?.status).toBe('running');
      expect((await store.latest('app-prod', 'full', 'succeeded'))?.id).toBe('old');
      await store.put({ ...base, status: 'succeeded', finishedAt: '2026-11-23T05:10:00.000Z' });
      expect(await store.latest('app-prod', 'full', 'running')).toBeUndefined();
      expect(await store.latest('app-prod', 'full', 'succeeded')).toEqual({
        ...base,
        status: 'succeeded',
        finishedAt: '2026-11-23T05:10:00.000Z',
      });
      expect((await store.recent('app-prod', 'full', 'succeeded', 5)).map((r) => r.id)).toEqual([
        base.id,
        'old',
      ]);
      expect((await store.recent('app-prod', 'full', 'succeeded', 1)).map((r) => r.id)).toEqual([base.id]);
      expect(await store.latest('other', 'full')).toBeUndefined();
      expect(await store.latest(undefined, 'config')).toBeUndefined();
      expect(
        (await store.between('2026-11-23T00:00:00.000Z', '2026-11-24T00:00:00.000Z')).map((r) => r.id),
      ).toEqual([base.id]);
    });

    it('refuses a record with an unknown status, storing nothing', async () => {
      await expect(store.put({ ...base, status: 'paused' as never })).rejects.toThrow(
        /unknown status "paused"/,
      );
      expect(await store.latest('app-prod', 'full')).toBeUndefined();
    });

    it('keeps a second holder out until the lock is released or expires', async () => {
      const now = new Date('2026-11-23T05:00:00.000Z');
      expect(await store.acquire('j#db', 'a', 60, now)).toEqual({ acquired: true });
      expect(await store.acquire('j#db', 'a', 60, now)).toEqual({ acquired: true }); // its own: renewed
      expect(await store.acquire('j#db', 'b', 60, now)).toEqual({
        acquired: false,
        current: { holder: 'a', since: now.toISOString(), expiresAt: '2026-11-23T05:01:00.000Z' },
      });
      expect(await store.acquire('j#db', 'b', 60, new Date(now.getTime() + 61_000))).toEqual({
        acquired: true,
      });
      await store.release('j#db', 'a'); // no longer a's: no effect
      expect(await store.acquire('j#db', 'c', 60, now)).toMatchObject({
        acquired: false,
        current: { holder: 'b' },
      });
      await store.release('j#db', 'b');
      expect(await store.acquire('j#db', 'c', 60, now)).toEqual({ acquired: true });
      expect(await store.acquire('other#db', 'd', 60, now)).toEqual({ acquired: true });
    });
  });
}

let dir: string | undefined;
behavesAsAHistory(
  'FileHistoryStore',
  () => {
    dir = tempDir('history');
    return Promise.resolve(new FileHistoryStore(dir));
  },
  () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

describeLocalAws('DynamoHistoryStore (local AWS)', () => {
  const tables: string[] = [];
  const dynamodb = () => new DynamoDBClient(clientConfig());
  behavesAsAHistory('in a table with the construct’s schema', async () => {
    const table = await createHistoryTable(dynamodb());
    tables.push(table);
    return new DynamoHistoryStore(DynamoDBDocumentClient.from(dynamodb()), table);
  });

  it('stores the index keys with the record, and the lock as its own item', async () => {
    const client = dynamodb();
    const table = await createHistoryTable(client);
    const store = new DynamoHistoryStore(DynamoDBDocumentClient.from(client), table);
    await store.put(base);
    await store.acquire('backup-database#app-prod', 'exec-1', 3600, new Date('2026-11-23T05:00:00.000Z'));
    const item = await client.send(new GetItemCommand({ TableName: table, Key: { id: { S: base.id } } }));
    expect(item.Item).toMatchObject({
      databaseKind: { S: 'app-prod#full' },
      databaseKindStatus: { S: 'app-prod#full#running' },
    });
    const lock = await client.send(
      new GetItemCommand({ TableName: table, Key: { id: { S: 'lock#backup-database#app-prod' } } }),
    );
    expect(lock.Item).toEqual({
      id: { S: 'lock#backup-database#app-prod' },
      holder: { S: 'exec-1' },
      since: { S: '2026-11-23T05:00:00.000Z' },
      expiresAt: { S: '2026-11-23T06:00:00.000Z' },
    });
  });

  it('reads a time range across scan pages (over 1 MB of records), sorted by startedAt', async () => {
    const client = dynamodb();
    const table = await createHistoryTable(client);
    const store = new DynamoHistoryStore(DynamoDBDocumentClient.from(client), table);
    const padding = 'x'.repeat(300 * 1024); // DynamoDB items hold up to 400 KB
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const startedAt = new Date(Date.UTC(2026, 10, 1 + (i % 28), 5, 0, 0, i)).toISOString();
      const id = `r${String(i).padStart(3, '0')}`;
      ids.push(id);
      await store.put({ ...base, id, startedAt, status: 'succeeded', message: padding });
    }
    await store.put({ ...base, id: 'december', startedAt: '2026-12-01T05:00:00.000Z' });
    // DynamoDB itself pages this table: one Scan does not return everything.
    const first = await client.send(new RawScanCommand({ TableName: table }));
    expect(first.LastEvaluatedKey).toBeDefined();
    const records = await store.between('2026-11-01T00:00:00.000Z', '2026-11-30T23:59:59.999Z');
    expect(records.map((r) => r.id).sort()).toEqual(ids);
    expect(records.map((r) => r.startedAt)).toEqual(records.map((r) => r.startedAt).sort());
  });
});
