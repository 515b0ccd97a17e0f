import { rmSync } from 'node:fs';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { HistoryRecord } from '../../core/history';
import { DynamoHistoryStore, FileHistoryStore } from '../../core/history-store';
import { tempDir } from '../helpers/cli';

const base: HistoryRecord = {
  id: '20261123T050000123Z-1a2b3c4d',
  kind: 'full',
  database: 'app-prod',
  tier: 'daily',
  status: 'running',
  startedAt: '2026-11-23T05:00:00.123Z',
  requestedBy: 'schedule',
};

describe('DynamoHistoryStore', () => {
  const ddb = mockClient(DynamoDBDocumentClient);
  /** Inputs of every call of one command, in order. */
  const inputs = (command: Parameters<typeof ddb.commandCalls>[0]) =>
    ddb.commandCalls(command).map((c) => c.args[0].input as Record<string, unknown>);
  const store = new DynamoHistoryStore(DynamoDBDocumentClient.from(new DynamoDBClient({})), 'History');
  beforeEach(() => ddb.reset());

  it('puts the record with its index keys', async () => {
    ddb.on(PutCommand).resolves({});
    await store.put(base);
    expect(inputs(PutCommand).at(-1)).toMatchObject({
      TableName: 'History',
      Item: { ...base, databaseKind: 'app-prod#full', databaseKindStatus: 'app-prod#full#running' },
    });
  });

  it('refuses a record with an unknown status before calling DynamoDB', async () => {
    await expect(store.put({ ...base, status: 'paused' as never })).rejects.toThrow(
      /unknown status "paused"/,
    );
    expect(inputs(PutCommand)).toHaveLength(0);
  });

  it('reads the latest good backup with one query on byDatabaseKindStatus, newest first, keys stripped', async () => {
    ddb.on(QueryCommand).resolves({
      Items: [{ ...base, status: 'succeeded', databaseKind: 'app-prod#full', databaseKindStatus: 'x' }],
    });
    const latest = await store.latest('app-prod', 'full', 'succeeded');
    expect(inputs(QueryCommand).at(-1)).toMatchObject({
      TableName: 'History',
      IndexName: 'byDatabaseKindStatus',
      KeyConditionExpression: '#pk = :pk',
      ExpressionAttributeNames: { '#pk': 'databaseKindStatus' },
      ExpressionAttributeValues: { ':pk': 'app-prod#full#succeeded' },
      ScanIndexForward: false,
      Limit: 1,
    });
    expect(latest).toEqual({ ...base, status: 'succeeded' });
  });

  it('reads the latest run of any status on byDatabaseKind', async () => {
    ddb.on(QueryCommand).resolves({ Items: [] });
    expect(await store.latest(undefined, 'config')).toBeUndefined();
    expect(inputs(QueryCommand).at(-1)).toMatchObject({
      IndexName: 'byDatabaseKind',
      ExpressionAttributeValues: { ':pk': '-#config' },
    });
  });

  it('scans a time range across pages and sorts by startedAt', async () => {
    ddb
      .on(ScanCommand)
      .resolvesOnce({
        Items: [{ ...base, id: 'b', startedAt: '2026-11-23T06:00:00.000Z' }],
        LastEvaluatedKey: { id: 'b' },
      })
      .resolvesOnce({ Items: [{ ...base, id: 'a' }] });
    const records = await store.between('2026-11-01T00:00:00.000Z', '2026-11-30T00:00:00.000Z');
    expect(records.map((r) => r.id)).toEqual(['a', 'b']);
    expect(inputs(ScanCommand)).toHaveLength(2);
    expect(inputs(ScanCommand)[1]).toMatchObject({ ExclusiveStartKey: { id: 'b' } });
    expect(inputs(ScanCommand).at(-1)).toMatchObject({
      FilterExpression: '#s BETWEEN :from AND :to',
      ExpressionAttributeValues: { ':from': '2026-11-01T00:00:00.000Z', ':to': '2026-11-30T00:00:00.000Z' },
    });
  });

  it('takes a job lock with a conditional put, and reports the holder when it is taken', async () => {
    const now = new Date('2026-11-23T05:00:00.000Z');
    ddb.on(PutCommand).resolvesOnce({});
    expect(await store.acquire('backup-database#app-prod', 'exec-1', 3600, now)).toEqual({ acquired: true });
    expect(inputs(PutCommand).at(-1)).toMatchObject({
      Item: {
        id: 'lock#backup-database#app-prod',
        holder: 'exec-1',
        since: now.toISOString(),
        expiresAt: '2026-11-23T06:00:00.000Z',
      },
      ConditionExpression: 'attribute_not_exists(#h) OR #e < :now OR #h = :me',
    });
    ddb.on(PutCommand).rejects(new ConditionalCheckFailedException({ message: 'taken', $metadata: {} }));
    ddb.on(GetCommand).resolves({ Item: { id: 'x', holder: 'exec-1', since: 's', expiresAt: 'e' } });
    expect(await store.acquire('backup-database#app-prod', 'exec-2', 3600, now)).toEqual({
      acquired: false,
      current: { holder: 'exec-1', since: 's', expiresAt: 'e' },
    });
  });

  it('releases only its own lock, and ignores a lock that is no longer its own', async () => {
    ddb
      .on(UpdateCommand)
      .rejects(new ConditionalCheckFailedException({ message: 'not yours', $metadata: {} }));
    await store.release('backup-database#app-prod', 'exec-1');
    expect(inputs(UpdateCommand).at(-1)).toMatchObject({
      Key: { id: 'lock#backup-database#app-prod' },
      ConditionExpression: '#h = :me',
      ExpressionAttributeValues: { ':me': 'exec-1' },
    });
  });
});

describe('FileHistoryStore', () => {
  let dir: string;
  let store: FileHistoryStore;
  beforeEach(() => {
    dir = tempDir('history');
    store = new FileHistoryStore(dir);
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('replaces a running record by its final one, and finds the latest by status', async () => {
    await store.put({ ...base, id: 'old', status: 'succeeded', startedAt: '2026-11-22T05:00:00.000Z' });
    await store.put(base);
    expect((await store.latest('app-prod', 'full'))?.status).toBe('running');
    expect((await store.latest('app-prod', 'full', 'succeeded'))?.id).toBe('old');
    await store.put({ ...base, status: 'succeeded', finishedAt: '2026-11-23T05:10:00.000Z' });
    expect(await store.latest('app-prod', 'full', 'running')).toBeUndefined();
    expect((await store.recent('app-prod', 'full', 'succeeded', 5)).map((r) => r.id)).toEqual([
      base.id,
      'old',
    ]);
    expect(await store.latest('other', 'full')).toBeUndefined();
    expect(
      (await store.between('2026-11-23T00:00:00.000Z', '2026-11-24T00:00:00.000Z')).map((r) => r.id),
    ).toEqual([base.id]);
  });

  it('keeps a second holder out until the lock is released or expires', async () => {
    const now = new Date('2026-11-23T05:00:00.000Z');
    expect(await store.acquire('j#db', 'a', 60, now)).toEqual({ acquired: true });
    expect(await store.acquire('j#db', 'b', 60, now)).toMatchObject({
      acquired: false,
      current: { holder: 'a' },
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
  });
});
