/**
 * The Lambda steps of the state machines, as plain functions over injected dependencies: the
 * handlers in `lambdas/` and the local runner call exactly these. Inputs are what the ASL files'
 * `Payload` blocks send (see state-machines/README.md).
 */
import { readCatalog, type CatalogEntry } from '../catalog/catalog';
import { fullSourcePrefix, sourcePrefixes } from '../catalog/keys';
import type { Connection } from '../sources/connection';
import { IntegrityError, UsageError, messageOf } from '../util/errors';
import type { HistoryRecord, HistoryStatus } from '../history/records';
import type { HistoryStore, JobLock, RecentHistory, RunningRecords } from '../history/store';
import { newBackupId } from '../catalog/manifest';
import { backupMetrics, failureMetrics, type MetricsSink } from '../policy/metrics';
import { decideTier } from '../policy/tiers';
import type { TenantModel } from '../tenants/plan';
import type { Vault } from '../vault';
import { verifyBackup } from '../verify/verify';
import { formatDuration } from '../alerts/message';
import type { NotifyEvent } from '../alerts/notify';
import { NamedError, TASK_ERRORS, causeText } from './task-errors';
import {
  JOB_KIND,
  JOBS,
  lockName,
  parseContainerJob,
  parseJobInput,
  recordsHistory,
  type ContainerJob,
  type JobName,
} from './job';
import type { BackupTaskOutput, DeepVerifyTaskOutput, RestoreTestTaskOutput, TenantTaskOutput } from './task';

export type StepHistory = HistoryStore & RecentHistory & JobLock & RunningRecords;

export interface StepDeps {
  readonly history: StepHistory;
  readonly now?: () => Date;
}

function jobName(value: unknown): JobName {
  if (typeof value === 'string' && (JOBS as readonly string[]).includes(value)) return value as JobName;
  throw new UsageError(`job: expected one of ${JOBS.join(', ')}, got ${JSON.stringify(value)}`);
}

// ---------------------------------------------------------------------------------------------
// prepare

export interface PrepareEvent {
  readonly job: string;
  readonly input: unknown;
  readonly executionId: string;
}

export type PrepareResult =
  | {
      readonly skip: false;
      readonly runId: string;
      readonly startedAt: string;
      readonly timeoutSeconds: number;
      readonly lock: string;
      readonly job: ContainerJob;
    }
  | { readonly skip: true; readonly runId: string; readonly message: string; readonly notify: NotifyEvent };

/** How long a job lock lives: every attempt of the task (1 + 2 retries) plus room for the Lambdas. */
export function lockSeconds(timeoutMinutes: number): number {
  return Math.min(86_400, timeoutMinutes * 60 * 3 + 1800);
}

/**
 * Starts a run: validates the input, takes the job lock (or records `skipped` when the same job for
 * the same database still holds it), decides the tier of a full backup from the history (the same
 * grandfather-father-son rule as the engine), and records the run as `running`.
 */
export async function prepare(event: PrepareEvent, deps: StepDeps): Promise<PrepareResult> {
  const job = jobName(event.job);
  const input = parseJobInput(event.input);
  if (!event.executionId) throw new UsageError('executionId: expected the execution ARN');
  const now = (deps.now ?? (() => new Date()))();
  const db = input.database;
  const kind = JOB_KIND[job];
  const runId = newBackupId(now);
  const lock = lockName(job, db.id);
  const taken = await deps.history.acquire(lock, event.executionId, lockSeconds(input.timeoutMinutes), now);
  if (!taken.acquired) {
    const message = `skipped: ${job} for ${db.id} is still running (execution ${taken.current.holder}, since ${taken.current.since})`;
    const record: HistoryRecord = {
      id: runId,
      kind,
      database: db.id,
      status: 'skipped',
      startedAt: now.toISOString(),
      finishedAt: now.toISOString(),
      message,
      requestedBy: input.requestedBy,
    };
    if (recordsHistory(job)) await deps.history.put(record);
    return {
      skip: true,
      runId,
      message,
      notify: { outcome: 'skipped', job, database: db.id, kind, record, executionArn: event.executionId },
    };
  }
  let tier: ContainerJob['tier'];
  if (job === 'backup-database') {
    const lastGood = await deps.history.latest(db.id, 'full', 'succeeded');
    tier = decideTier(now, lastGood ? [new Date(lastGood.startedAt)] : [], input.timeZone);
  }
  if (recordsHistory(job))
    await deps.history.put({
      id: runId,
      kind,
      database: db.id,
      ...(tier ? { tier } : job === 'backup-tenants' ? { tier: 'tenant' as const } : {}),
      status: 'running',
      startedAt: now.toISOString(),
      requestedBy: input.requestedBy,
    });
  return {
    skip: false,
    runId,
    startedAt: now.toISOString(),
    timeoutSeconds: input.timeoutMinutes * 60,
    lock,
    job: {
      job,
      runId,
      startedAt: now.toISOString(),
      database: db,
      requestedBy: input.requestedBy,
      timeZone: input.timeZone,
      retention: input.retention,
      ...(tier ? { tier } : {}),
      ...(job === 'backup-tenants' ? { tenantBatchSize: input.tenantBatchSize } : {}),
      ...(job === 'verify-integrity' ? { verifyDays: input.verifyDays } : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// verify

export interface VerifyDeps extends StepDeps {
  readonly vault: Vault;
  readonly metrics: MetricsSink;
  readonly maxDurationMinutes: number;
  readonly sizeAnomalyPercent: number;
}

export interface VerifyEvent {
  readonly job: string;
  /** The whole state: `prepared.result`, and `dump` (backup-database) or `job` + `export` (a tenant batch). */
  readonly state: {
    readonly prepared?: { readonly result?: { readonly job?: unknown } };
    readonly dump?: BackupTaskOutput;
    readonly job?: unknown;
    readonly export?: TenantTaskOutput;
  };
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly backups?: readonly { backupId: string; database: string | null; checked: number }[];
  readonly summary?: { storedBytes: number; rawBytes: number; tables: number; rows: number };
  readonly metrics?: Record<string, number>;
  readonly anomalies?: readonly string[];
  /** backup-tenants: tenants whose export failed or did not verify. */
  readonly failedTenants?: readonly string[];
  readonly verified?: number;
}

/**
 * Quick verification of what a task wrote (manifest, sizes, stored checksums, hash chain) and the
 * backup's metrics: size, duration, compression, deviation from the trailing average of earlier
 * good backups, duration over the threshold. A backup that fails verification throws
 * `Cofre.VerifyFailed` (the failure path records it and emits BackupFailed).
 */
export async function verifyStep(event: VerifyEvent, deps: VerifyDeps): Promise<VerifyResult> {
  const job = jobName(event.job);
  if (job === 'backup-tenants') return verifyTenantBatch(event, deps);
  if (job !== 'backup-database')
    throw new UsageError(`job: verify handles backup-database and backup-tenants, got ${job}`);
  const prepared = parseContainerJob(event.state.prepared?.result?.job, 'prepared.result.job');
  const dump = event.state.dump;
  if (!dump?.backups.length)
    throw new NamedError(TASK_ERRORS.verify, `${prepared.database.id}: the dump task reported no backups`);
  const problems: string[] = [];
  const backups: { backupId: string; database: string | null; checked: number }[] = [];
  for (const b of dump.backups) {
    try {
      const report = await verifyBackup({ vault: deps.vault, backupId: b.backupId });
      backups.push({ backupId: b.backupId, database: b.database, checked: report.checked.length });
    } catch (error) {
      if (error instanceof IntegrityError) problems.push(...error.problems);
      else problems.push(`${b.backupId}: ${messageOf(error)}`);
    }
  }
  if (problems.length)
    throw new NamedError(
      TASK_ERRORS.verify,
      `${prepared.database.id}: ${problems.length} problem(s) in the new backups: ${problems.join('; ')}`,
    );
  const storedBytes = sum(dump.backups.map((b) => b.storedBytes));
  const rawBytes = sum(dump.backups.map((b) => b.rawBytes));
  const previous = await deps.history.recent(prepared.database.id, 'full', 'succeeded', 7);
  const computed = backupMetrics({
    storedBytes,
    rawBytes,
    durationSeconds: dump.durationMs / 1000,
    previousStoredBytes: previous.map((r) => r.bytes ?? 0),
    maxDurationMinutes: deps.maxDurationMinutes,
    sizeAnomalyPercent: deps.sizeAnomalyPercent,
  });
  await deps.metrics.emit(prepared.database.id, computed.metrics);
  return {
    ok: true,
    backups,
    summary: {
      storedBytes,
      rawBytes,
      tables: sum(dump.backups.map((b) => b.tables)),
      rows: sum(dump.backups.map((b) => b.rows)),
    },
    metrics: Object.fromEntries(computed.metrics.map((m) => [m.name, m.value])),
    anomalies: computed.anomalies,
  };
}

async function verifyTenantBatch(event: VerifyEvent, deps: VerifyDeps): Promise<VerifyResult> {
  const batch = parseContainerJob(event.state.job, 'job');
  const output = event.state.export;
  if (!output?.exports)
    throw new NamedError(TASK_ERRORS.verify, `${batch.database.id}: the export task reported no exports`);
  const failed = new Set(output.failed.map((f) => f.tenant));
  let verified = 0;
  for (const e of output.exports) {
    try {
      await verifyBackup({ vault: deps.vault, backupId: e.backupId });
      verified++;
    } catch {
      failed.add(e.tenant);
    }
  }
  // A tenant the task neither exported nor reported failed is failed too.
  const seen = new Set([...output.exports.map((e) => e.tenant), ...output.failed.map((f) => f.tenant)]);
  for (const t of batch.tenants ?? []) if (!seen.has(t)) failed.add(t);
  return { ok: failed.size === 0, failedTenants: [...failed].sort(), verified };
}

// ---------------------------------------------------------------------------------------------
// record

export interface RecordDeps extends StepDeps {
  readonly metrics: MetricsSink;
  /** The vault's URL, for the record's location. */
  readonly vaultUrl: string;
}

interface CaughtError {
  readonly Error?: string;
  readonly Cause?: unknown;
}

export interface RecordEvent {
  readonly job: string;
  readonly outcome: 'succeeded' | 'failed';
  readonly executionId: string;
  readonly state: {
    readonly database?: { readonly id?: string };
    readonly requestedBy?: string;
    readonly prepared?: {
      readonly result?: {
        readonly runId?: string;
        readonly startedAt?: string;
        readonly lock?: string;
        readonly job?: { readonly tier?: string };
      };
    };
    readonly verified?: { readonly result?: VerifyResult };
    readonly dump?: BackupTaskOutput;
    /** restore-test: what the task restored. */
    readonly restore?: RestoreTestTaskOutput;
    readonly batches?: readonly BatchResult[];
    readonly backups?: { readonly result?: { readonly count?: number } };
    readonly error?: CaughtError;
  };
}

/** What one Map iteration returns (BatchDone / BatchFailed of the ASL). */
export interface BatchResult {
  readonly ok: boolean;
  readonly tenants?: readonly string[];
  readonly failedTenants?: readonly string[];
  readonly backupIds?: readonly string[];
  readonly reports?: DeepVerifyTaskOutput['reports'];
  readonly exports?: TenantTaskOutput['exports'];
  readonly error?: string;
  readonly cause?: unknown;
}

export interface RecordResult {
  readonly status: Extract<HistoryStatus, 'succeeded' | 'failed'>;
  readonly record: HistoryRecord;
  readonly error?: string;
  readonly cause?: string;
  readonly notify: NotifyEvent;
}

/**
 * Ends a run: the final history record (replacing the `running` one), BackupFailed on failure, the
 * job lock released, and the notify event. For backup-tenants and verify-integrity it also decides
 * the outcome from the batches (a failed tenant or backup fails the run, naming them).
 */
export async function recordStep(event: RecordEvent, deps: RecordDeps): Promise<RecordResult> {
  const job = jobName(event.job);
  const kind = JOB_KIND[job];
  const now = (deps.now ?? (() => new Date()))();
  const state = event.state;
  const prepared = state.prepared?.result;
  const database = state.database?.id ?? 'unknown';
  const runId = prepared?.runId ?? newBackupId(now);
  let status: RecordResult['status'] = event.outcome;
  let error: string | undefined;
  let cause: string | undefined;
  let message: string | undefined;
  let bytes: number | undefined;
  let failedTenants: string[] | undefined;
  let location: string | undefined;
  let summary: NotifyEvent['summary'];

  if (event.outcome === 'failed') {
    error = state.error?.Error ?? 'Cofre.Failed';
    cause = `${job} of ${database} failed: ${error}: ${causeText(state.error?.Cause) || 'no cause given'}`;
  } else if (job === 'backup-database') {
    const verified = state.verified?.result;
    bytes = verified?.summary?.storedBytes;
    location = `${deps.vaultUrl}/${fullSourcePrefix(database)}`;
    const ids = (verified?.backups ?? []).map((b) => `${b.database ?? 'globals'} ${b.backupId}`);
    message = `${ids.length} backup(s) verified: ${ids.join(', ')}${verified?.anomalies?.length ? `; anomalies: ${verified.anomalies.join('; ')}` : ''}`;
  } else if (job === 'restore-test') {
    const restores = state.restore?.restores ?? [];
    location = `${deps.vaultUrl}/${fullSourcePrefix(database)}`;
    bytes = sum(restores.map((r) => r.storedBytes));
    message = restoreTestMessage(restores);
    summary = {
      ...(restores.length === 1 ? { backupId: restores[0]!.backupId } : {}),
      storedBytes: bytes,
      tables: sum(restores.map((r) => r.tables)),
      rows: sum(restores.map((r) => r.rows)),
    };
    if (restores.length === 0) {
      status = 'failed';
      error = TASK_ERRORS.nothingToRestore;
      cause = `restore-test of ${database}: the task restored nothing`;
    }
  } else if (job === 'backup-tenants') {
    const batches = state.batches ?? [];
    const all = batches.flatMap((b) => b.tenants ?? []);
    failedTenants = [...new Set(batches.flatMap((b) => b.failedTenants ?? []))].sort();
    bytes = sum(batches.flatMap((b) => (b.exports ?? []).map((e) => e.storedBytes)));
    location = `${deps.vaultUrl}/`;
    const batchErrors = batches
      .filter((b) => !b.ok)
      .map((b) => `${b.error ?? 'error'}: ${causeText(b.cause)}`);
    message = `${all.length - failedTenants.length} of ${all.length} tenant(s) exported and verified in ${batches.length} batch(es)`;
    if (failedTenants.length) {
      status = 'failed';
      error = 'Cofre.TenantsFailed';
      cause = `backup-tenants of ${database}: ${failedTenants.length} of ${all.length} tenant(s) failed: ${failedTenants.join(', ')}${batchErrors.length ? ` (${batchErrors.join('; ')})` : ''}`;
    }
  } else {
    const batches = state.batches ?? [];
    const reports = batches.flatMap((b) => b.reports ?? []);
    const bad = reports.filter((r) => r.status === 'failed');
    const failedBatches = batches.filter((b) => !b.ok);
    message = `${reports.length - bad.length} of ${reports.length} backup(s) passed deep verification`;
    if (reports.length === 0 && failedBatches.length === 0) {
      status = 'failed';
      error = 'Cofre.NothingToVerify';
      cause = `verify-integrity of ${database}: no backups in the period to verify (are backups running?)`;
    } else if (bad.length || failedBatches.length) {
      status = 'failed';
      error = bad.length ? TASK_ERRORS.integrity : (failedBatches[0]!.error ?? 'Cofre.TaskFailed');
      cause = `verify-integrity of ${database}: ${[
        ...bad.map((r) => `${r.backupId}: ${r.problems.join('; ')}`),
        ...failedBatches.map(
          (b) => `batch ${(b.backupIds ?? []).join(',')}: ${b.error ?? ''}: ${causeText(b.cause)}`,
        ),
      ].join(' | ')}`;
    }
  }

  const record: HistoryRecord = {
    id: runId,
    kind,
    database,
    ...(prepared?.job?.tier
      ? { tier: prepared.job.tier as HistoryRecord['tier'] }
      : job === 'backup-tenants'
        ? { tier: 'tenant' as const }
        : {}),
    status,
    startedAt: prepared?.startedAt ?? now.toISOString(),
    finishedAt: now.toISOString(),
    ...(bytes !== undefined ? { bytes } : {}),
    ...(location ? { location } : {}),
    ...(status === 'failed' ? { message: cause } : message ? { message } : {}),
    requestedBy: state.requestedBy ?? 'unknown',
  };
  if (recordsHistory(job)) await deps.history.put(record);
  // BackupFailed is about backups: a failed restore test shows in the freshness metrics (LastRestoreTestPassed).
  if (status === 'failed' && job !== 'verify-integrity' && job !== 'restore-test')
    await deps.metrics.emit(database, failureMetrics());
  if (prepared?.lock) await deps.history.release(prepared.lock, event.executionId);
  const verified = state.verified?.result;
  const notify: NotifyEvent = {
    outcome: status,
    job,
    database,
    kind,
    ...(recordsHistory(job) ? { record } : {}),
    ...(event.executionId.startsWith('arn:') ? { executionArn: event.executionId } : {}),
    ...(error ? { error } : {}),
    ...(cause ? { cause } : {}),
    ...(failedTenants?.length ? { failedTenants } : {}),
    ...(verified?.summary
      ? { summary: { ...verified.summary, backupId: verified.backups?.[0]?.backupId } }
      : summary
        ? { summary }
        : {}),
  };
  return { status, record, ...(error ? { error } : {}), ...(cause ? { cause } : {}), notify };
}

/**
 * The history message of a passed restore test: the measured RTO (the longest restore), then per
 * database the backup, its age, what was restored and compared, and where.
 */
export function restoreTestMessage(restores: RestoreTestTaskOutput['restores']): string {
  if (restores.length === 0) return 'nothing was restored';
  const rto = Math.max(...restores.map((r) => r.durationMs));
  const parts = restores.map(
    (r) =>
      `${r.database}: backup ${r.backupId} (${formatDuration(r.backupAgeSeconds * 1000)} old) restored into ${r.scratchDatabase} in ${formatDuration(r.durationMs)}, ${r.tables} tables and ${r.rows} rows equal to the manifest, ${r.dropped ? 'scratch database dropped' : `scratch database NOT dropped (${r.dropError ?? 'unknown error'}; the next test drops it)`}`,
  );
  return `${restores.length} database(s) restored and row counts equal to the manifest; RTO (restore) ${formatDuration(rto)} (${rto} ms); ${parts.join('; ')}`;
}

// ---------------------------------------------------------------------------------------------
// list-tenants, list-backups

/** ECS accepts at most 8 KiB of container overrides: leave room for the rest of the job. */
export const MAX_BATCH_CHARS = 4000;

/** Splits ids into batches of at most `size` ids and {@link MAX_BATCH_CHARS} characters of JSON. */
export function batchIds(ids: readonly string[], size: number, maxChars = MAX_BATCH_CHARS): string[][] {
  const batches: string[][] = [];
  let current: string[] = [];
  let chars = 2;
  for (const id of ids) {
    const cost = JSON.stringify(id).length + 1;
    if (cost + 2 > maxChars)
      throw new UsageError(
        `tenant id ${JSON.stringify(id.slice(0, 40))}…: longer than ${maxChars} characters`,
      );
    if (current.length >= size || chars + cost > maxChars) {
      batches.push(current);
      current = [];
      chars = 2;
    }
    current.push(id);
    chars += cost;
  }
  if (current.length) batches.push(current);
  return batches;
}

export interface ListTenantsDeps {
  /** A connection to the database (credentials resolved). */
  connect(job: ContainerJob): Promise<Connection>;
  listTenants(connection: Connection, model: TenantModel): Promise<string[]>;
}

/** Every tenant of the database, in batches (one Fargate task each). */
export async function listTenantsStep(
  event: { readonly job: unknown },
  deps: ListTenantsDeps,
): Promise<{ count: number; batches: ContainerJob[] }> {
  const job = parseContainerJob(event.job, 'job');
  const model = job.database.tenants;
  if (!model)
    throw new UsageError(
      `database.tenants: ${job.database.id} has no tenant model; set databases[].tenants in cofre.config.ts`,
    );
  const tenants = await deps.listTenants(await deps.connect(job), model);
  const batches = batchIds(tenants, job.tenantBatchSize ?? 50).map((t) => ({ ...job, tenants: t }));
  return { count: tenants.length, batches };
}

/** Backups per deep-verification task. */
export const VERIFY_BATCH_SIZE = 20;

/** The backups (full and per-tenant) of the database made in the last `verifyDays` days, in batches for deep verification. */
export async function listBackupsStep(
  event: { readonly job: unknown },
  deps: { readonly vault: Vault; readonly now?: () => Date },
): Promise<{ count: number; batches: ContainerJob[] }> {
  const job = parseContainerJob(event.job, 'job');
  const now = (deps.now ?? (() => new Date()))();
  const since = new Date(now.getTime() - (job.verifyDays ?? 7) * 86_400_000).toISOString();
  const catalog: CatalogEntry[] = [];
  for (const prefix of sourcePrefixes(job.database.id))
    catalog.push(...(await readCatalog(deps.vault, prefix)));
  const ids = catalog.filter((e) => !e.manifest || e.manifest.startedAt >= since).map((e) => e.backupId);
  const batches = batchIds(ids, VERIFY_BATCH_SIZE).map((b) => ({ ...job, backupIds: b }));
  return { count: ids.length, batches };
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
