/**
 * Where the backup history lives: the DynamoDB table in AWS ({@link DynamoHistoryStore}), a folder of
 * JSON files locally ({@link FileHistoryStore}, for `cofre local` and tests). Both also hold the job
 * locks that keep two runs of the same job for the same database from overlapping ({@link JobLock}).
 *
 * Writers: the prepare / record Lambdas (and the local runner). Readers: the verify Lambda (trailing
 * size average), the freshness check and the monthly report.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import {
  databaseKindKey,
  databaseKindStatusKey,
  HISTORY_INDEXES,
  historyItem,
  type HistoryItem,
  type HistoryKind,
  type HistoryRecord,
  type HistoryStatus,
} from './records';

/** The history, as the pipeline reads and writes it. */
export interface HistoryStore {
  /** Writes a record (replacing the record with the same id: `running` → `succeeded`). */
  put(record: HistoryRecord): Promise<void>;
  /** The newest record (by `startedAt`) of one database and kind, optionally of one status. */
  latest(
    database: string | undefined,
    kind: HistoryKind,
    status?: HistoryStatus,
  ): Promise<HistoryRecord | undefined>;
  /** Every record started in [fromIso, toIso], oldest first. */
  between(fromIso: string, toIso: string): Promise<HistoryRecord[]>;
}

/** The newest `limit` records of one database, kind and status, newest first. */
export interface RecentHistory {
  recent(
    database: string | undefined,
    kind: HistoryKind,
    status: HistoryStatus,
    limit: number,
  ): Promise<HistoryRecord[]>;
}

/**
 * Records that two writers race for (a console restore: its validation writes `running`, the
 * stopped-execution handler writes `failed`): a write that never overwrites a finished record.
 */
export interface RunningRecords {
  /**
   * Writes the record unless one with its id exists and is finished (any status but `running`);
   * false when it was left as it was. Atomic in DynamoDB (a condition expression).
   */
  putUnlessFinished(record: HistoryRecord): Promise<boolean>;
}

/** Who holds a job lock, and since when. */
export interface LockHolder {
  readonly holder: string;
  readonly since: string;
  readonly expiresAt: string;
}

/**
 * A lock per job and database, so a scheduled run never overlaps a running one (CronJob `Forbid`).
 * A lock expires by itself after its time to live (the job's timeout), so a run killed before it
 * could release its lock blocks the job at most that long.
 */
export interface JobLock {
  /** Takes the lock for `holder`; when someone else holds it, says who. */
  acquire(
    name: string,
    holder: string,
    ttlSeconds: number,
    now: Date,
  ): Promise<{ readonly acquired: true } | { readonly acquired: false; readonly current: LockHolder }>;
  /** Releases the lock if `holder` still holds it (otherwise does nothing). */
  release(name: string, holder: string): Promise<void>;
}

const KEY_ATTRIBUTES = ['databaseKind', 'databaseKindStatus', 'databaseTenant'] as const;

/** The record without the derived index keys. */
function recordOf(item: Record<string, unknown>): HistoryRecord {
  const keys = new Set<string>(KEY_ATTRIBUTES);
  return Object.fromEntries(Object.entries(item).filter(([k]) => !keys.has(k))) as unknown as HistoryRecord;
}

/** Items of the history table that are locks, not records: `lock#<job>#<database>`; they have no `startedAt`. */
export const LOCK_ID_PREFIX = 'lock#';

/**
 * The history in the DynamoDB table of `lib/constructs/backup-history.ts`. Needs `dynamodb:PutItem`,
 * `dynamodb:UpdateItem`, `dynamodb:GetItem`, `dynamodb:Query` on the table and its indexes, and
 * `dynamodb:Scan` for {@link between} (never `DeleteItem`).
 */
export class DynamoHistoryStore implements HistoryStore, RecentHistory, JobLock, RunningRecords {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async put(record: HistoryRecord): Promise<void> {
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: historyItem(record) }));
  }

  async putUnlessFinished(record: HistoryRecord): Promise<boolean> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: historyItem(record),
          ConditionExpression: 'attribute_not_exists(#id) OR #status = :running',
          ExpressionAttributeNames: { '#id': 'id', '#status': 'status' },
          ExpressionAttributeValues: { ':running': 'running' },
        }),
      );
      return true;
    } catch (error) {
      if ((error as { name?: string }).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  async latest(
    database: string | undefined,
    kind: HistoryKind,
    status?: HistoryStatus,
  ): Promise<HistoryRecord | undefined> {
    return (await this.query(database, kind, status, 1))[0];
  }

  async recent(
    database: string | undefined,
    kind: HistoryKind,
    status: HistoryStatus,
    limit: number,
  ): Promise<HistoryRecord[]> {
    return this.query(database, kind, status, limit);
  }

  private async query(
    database: string | undefined,
    kind: HistoryKind,
    status: HistoryStatus | undefined,
    limit: number,
  ): Promise<HistoryRecord[]> {
    const index = status ? HISTORY_INDEXES.byDatabaseKindStatus : HISTORY_INDEXES.byDatabaseKind;
    const key = status ? databaseKindStatusKey(database, kind, status) : databaseKindKey(database, kind);
    const out = await this.client.send(
      new QueryCommand({
        TableName: this.tableName,
        IndexName: index.indexName,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': index.partitionKey },
        ExpressionAttributeValues: { ':pk': key },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map(recordOf);
  }

  async between(fromIso: string, toIso: string): Promise<HistoryRecord[]> {
    const records: HistoryRecord[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await this.client.send(
        new ScanCommand({
          TableName: this.tableName,
          FilterExpression: '#s BETWEEN :from AND :to',
          ExpressionAttributeNames: { '#s': 'startedAt' },
          ExpressionAttributeValues: { ':from': fromIso, ':to': toIso },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      records.push(...(out.Items ?? []).map(recordOf));
      start = out.LastEvaluatedKey;
    } while (start);
    return records.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  }

  async acquire(
    name: string,
    holder: string,
    ttlSeconds: number,
    now: Date,
  ): Promise<{ acquired: true } | { acquired: false; current: LockHolder }> {
    const id = `${LOCK_ID_PREFIX}${name}`;
    const expiresAt = new Date(now.getTime() + ttlSeconds * 1000).toISOString();
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { id, holder, since: now.toISOString(), expiresAt },
          ConditionExpression: 'attribute_not_exists(#h) OR #e < :now OR #h = :me',
          ExpressionAttributeNames: { '#h': 'holder', '#e': 'expiresAt' },
          ExpressionAttributeValues: { ':now': now.toISOString(), ':me': holder },
        }),
      );
      return { acquired: true };
    } catch (error) {
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
      const out = await this.client.send(
        new GetCommand({ TableName: this.tableName, Key: { id }, ConsistentRead: true }),
      );
      const item = (out.Item ?? {}) as Partial<LockHolder>;
      return {
        acquired: false,
        current: { holder: item.holder ?? '?', since: item.since ?? '?', expiresAt: item.expiresAt ?? '?' },
      };
    }
  }

  async release(name: string, holder: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { id: `${LOCK_ID_PREFIX}${name}` },
          UpdateExpression: 'REMOVE #h, #s, #e',
          ConditionExpression: '#h = :me',
          ExpressionAttributeNames: { '#h': 'holder', '#s': 'since', '#e': 'expiresAt' },
          ExpressionAttributeValues: { ':me': holder },
        }),
      );
    } catch (error) {
      // Not ours any more (expired and taken over, or never taken): nothing to release.
      if ((error as { name?: string }).name !== 'ConditionalCheckFailedException') throw error;
    }
  }
}

/**
 * The history as JSON files in a folder (one file per record, written atomically), with the same
 * semantics as {@link DynamoHistoryStore}: for local runs and tests.
 */
export class FileHistoryStore implements HistoryStore, RecentHistory, JobLock, RunningRecords {
  constructor(readonly dir: string) {}

  private async writeJson(file: string, value: unknown): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`);
    await rename(tmp, file);
  }

  private recordFile(id: string): string {
    return path.join(this.dir, 'records', `${encodeURIComponent(id)}.json`);
  }

  async put(record: HistoryRecord): Promise<void> {
    await this.writeJson(this.recordFile(record.id), historyItem(record));
  }

  /** As DynamoDB's; not atomic across processes (one local runner writes the folder). */
  async putUnlessFinished(record: HistoryRecord): Promise<boolean> {
    let existing: HistoryItem | undefined;
    try {
      existing = JSON.parse(await readFile(this.recordFile(record.id), 'utf8')) as HistoryItem;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (existing && existing.status !== 'running') return false;
    await this.put(record);
    return true;
  }

  /** Every record, oldest first. */
  async all(): Promise<HistoryRecord[]> {
    let names: string[];
    try {
      names = await readdir(path.join(this.dir, 'records'));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const items = await Promise.all(
      names
        .filter((n) => n.endsWith('.json'))
        .map(
          async (n) => JSON.parse(await readFile(path.join(this.dir, 'records', n), 'utf8')) as HistoryItem,
        ),
    );
    return items.map((i) => recordOf(i as unknown as Record<string, unknown>)).sort(byStart);
  }

  async latest(
    database: string | undefined,
    kind: HistoryKind,
    status?: HistoryStatus,
  ): Promise<HistoryRecord | undefined> {
    return (await this.matching(database, kind, status)).at(-1);
  }

  async recent(
    database: string | undefined,
    kind: HistoryKind,
    status: HistoryStatus,
    limit: number,
  ): Promise<HistoryRecord[]> {
    return (await this.matching(database, kind, status)).reverse().slice(0, limit);
  }

  private async matching(
    database: string | undefined,
    kind: HistoryKind,
    status: HistoryStatus | undefined,
  ): Promise<HistoryRecord[]> {
    const key = databaseKindKey(database, kind);
    return (await this.all()).filter(
      (r) => databaseKindKey(r.database, r.kind) === key && (status === undefined || r.status === status),
    );
  }

  async between(fromIso: string, toIso: string): Promise<HistoryRecord[]> {
    return (await this.all()).filter((r) => r.startedAt >= fromIso && r.startedAt <= toIso);
  }

  private lockFile(name: string): string {
    return path.join(this.dir, 'locks', `${encodeURIComponent(name)}.json`);
  }

  async acquire(
    name: string,
    holder: string,
    ttlSeconds: number,
    now: Date,
  ): Promise<{ acquired: true } | { acquired: false; current: LockHolder }> {
    const file = this.lockFile(name);
    const current = await readJson<LockHolder>(file);
    if (current && current.holder !== holder && current.expiresAt >= now.toISOString())
      return { acquired: false, current };
    const lock: LockHolder = {
      holder,
      since: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
    };
    await this.writeJson(file, lock);
    return { acquired: true };
  }

  async release(name: string, holder: string): Promise<void> {
    const file = this.lockFile(name);
    const current = await readJson<LockHolder>(file);
    if (current?.holder === holder) await this.writeJson(file, {});
  }
}

async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    const value = JSON.parse(await readFile(file, 'utf8')) as T;
    return value && typeof value === 'object' && 'holder' in value ? value : undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

function byStart(a: HistoryRecord, b: HistoryRecord): number {
  return a.startedAt.localeCompare(b.startedAt) || a.id.localeCompare(b.id);
}
