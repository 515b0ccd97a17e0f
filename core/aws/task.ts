/**
 * The Fargate task's work (tasks/dump-runner): one of `backup`, `tenant-backup`, `verify-deep`,
 * `restore-test` for
 * the job in `COFRE_JOB`, reported to Step Functions with the task token (`.waitForTaskToken`):
 * SendTaskSuccess with a summary, or SendTaskFailure with an error name the ASL retries or catches
 * on. It heartbeats only while bytes move through the vault, so a hung dump stops heartbeating and
 * Step Functions fails the state (`HeartbeatSeconds`) within minutes. The local runner calls
 * {@link runTaskCommand} in-process.
 */
import { Transform, type Readable } from 'node:stream';
import {
  SendTaskFailureCommand,
  SendTaskHeartbeatCommand,
  SendTaskSuccessCommand,
  type SFNClient,
} from '@aws-sdk/client-sfn';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { runBackup } from '../backup/backup';
import { summarize, type Manifest } from '../catalog/manifest';
import { sourcePrefixes } from '../catalog/keys';
import type { Connection } from '../sources/connection';
import type { Keys } from '../vault/crypto';
import { CancelledError, IntegrityError, UsageError, messageOf } from '../util/errors';
import { runTenantBackup } from '../tenants/backup';
import type { StoredObject, Vault, WriteOptions } from '../vault';
import { verifyBackup } from '../verify/verify';
import { NamedError, TASK_ERRORS, taskErrorName } from './task-errors';
import type { ContainerJob } from './job';
import { runRestoreTest, type RestoreTestDeps, type RestoreTestTaskOutput } from '../verify/restore-test';
import {
  runConsoleRestore,
  runRestoreCheck,
  type ConsoleRestoreOutput,
  type RestoreCheckOutput,
} from './restore-task';

export type { RestoreTestResult, RestoreTestTaskOutput } from '../verify/restore-test';

export const TASK_COMMANDS = [
  'backup',
  'tenant-backup',
  'verify-deep',
  'restore-test',
  'restore',
  'restore-check',
] as const;
export type TaskCommand = (typeof TASK_COMMANDS)[number];

export function parseTaskCommand(value: string | undefined, field = 'COFRE_COMMAND'): TaskCommand {
  if (value && (TASK_COMMANDS as readonly string[]).includes(value)) return value as TaskCommand;
  throw new UsageError(`${field}: expected one of ${TASK_COMMANDS.join(', ')}, got ${JSON.stringify(value)}`);
}

/** One database's backup, as the task reports it. */
export interface BackupSummary {
  readonly backupId: string;
  readonly database: string | null;
  readonly folder: string;
  readonly tier: string;
  readonly rawBytes: number;
  readonly storedBytes: number;
  readonly durationMs: number;
  readonly tables: number;
  readonly rows: number;
}

export interface BackupTaskOutput {
  readonly backups: readonly BackupSummary[];
  /** Wall time of the whole task. */
  readonly durationMs: number;
}

export interface TenantTaskOutput {
  readonly exports: readonly (BackupSummary & { readonly tenant: string })[];
  readonly failed: readonly { readonly tenant: string; readonly error: string }[];
  readonly durationMs: number;
}

export interface DeepVerifyTaskOutput {
  readonly reports: readonly {
    readonly backupId: string;
    readonly status: 'ok' | 'failed' | 'expired';
    readonly problems: readonly string[];
  }[];
  readonly durationMs: number;
}

export type TaskOutput =
  | BackupTaskOutput
  | TenantTaskOutput
  | DeepVerifyTaskOutput
  | RestoreTestTaskOutput
  | ConsoleRestoreOutput
  | RestoreCheckOutput;

/** Whether a command reads backups (decrypt keys) rather than writing them (encrypt keys). */
export function readsBackups(command: TaskCommand): boolean {
  return command !== 'backup' && command !== 'tenant-backup';
}

export interface TaskDeps {
  /** The database (credentials resolved); not needed for verify-deep. */
  readonly connection?: Connection | undefined;
  readonly vault: Vault;
  /** Keys to write with (backup, tenant-backup) or read with (verify-deep, restore-test: {@link readsBackups}). */
  readonly keys: Keys;
  readonly signal?: AbortSignal | undefined;
  readonly log?: ((line: string) => void) | undefined;
  readonly now?: (() => Date) | undefined;
  /** Progress that moves no bytes through the vault (restore-test: the server still restoring). */
  readonly onProgress?: (() => void) | undefined;
  /** How often a long-running server step (a restore's index builds, a post-check count) is looked at (default 60 s). */
  readonly probeIntervalMs?: number | undefined;
  /** Secrets Manager with the task's credentials: a console restore into a named restore target reads its secret. */
  readonly secrets?: SecretsManagerClient | undefined;
}

/** Runs one command of the task; throws an error whose name is the Step Functions error. */
export async function runTaskCommand(
  command: TaskCommand,
  job: ContainerJob,
  deps: TaskDeps,
): Promise<TaskOutput> {
  const started = Date.now();
  const db = job.database;
  const log = deps.log ?? (() => undefined);
  if (command === 'verify-deep') {
    if (!job.backupIds?.length) throw new UsageError('COFRE_JOB.backupIds: expected the backups to verify');
    const reports: DeepVerifyTaskOutput['reports'][number][] = [];
    for (const backupId of job.backupIds) {
      if (deps.signal?.aborted) throw new CancelledError('verify-deep was stopped');
      try {
        // Only this database's prefixes: the task role may list nothing else in the vault.
        const r = await verifyBackup({
          vault: deps.vault,
          backupId,
          prefixes: sourcePrefixes(db.id),
          deep: deps.keys,
          signal: deps.signal,
        });
        reports.push({ backupId, status: r.status, problems: r.problems });
        log(`deep-verified ${backupId}: ${r.status}`);
      } catch (error) {
        if (!(error instanceof IntegrityError)) throw error;
        reports.push({ backupId, status: 'failed', problems: error.problems });
        log(`deep verification FAILED for ${backupId}: ${error.problems.join('; ')}`);
      }
    }
    return { reports, durationMs: Date.now() - started };
  }
  if (!deps.connection) throw new UsageError(`COFRE_DB_SECRET: ${command} needs the database credentials`);
  // The console restore, its check and the scheduled restore test take the same dependencies.
  const restoreDeps: RestoreTestDeps = {
    connection: deps.connection,
    vault: deps.vault,
    keys: deps.keys,
    signal: deps.signal,
    log,
    now: deps.now,
    onProgress: deps.onProgress,
    probeIntervalMs: deps.probeIntervalMs,
  };
  // Console restores (state-machines/restore.asl.json): core/aws/restore-task.ts.
  if (command === 'restore') return runConsoleRestore(job, { ...restoreDeps, secrets: deps.secrets });
  if (command === 'restore-check') return runRestoreCheck(job, { ...restoreDeps, secrets: deps.secrets });
  if (command === 'restore-test') return runRestoreTest(job, restoreDeps);
  if (command === 'backup') {
    const outcomes = await runBackup({
      connection: deps.connection,
      databases: db.databases,
      excludeDatabases: db.excludeDatabases,
      sourceId: db.id,
      vault: deps.vault,
      keys: deps.keys,
      dataClass: db.dataClass,
      retention: job.retention,
      timeZone: job.timeZone,
      tier: job.tier,
      signal: deps.signal,
      log,
      now: deps.now,
    });
    const failures = outcomes.filter((o) => !o.ok);
    if (failures.length) {
      const name = deps.signal?.aborted
        ? TASK_ERRORS.cancelled
        : failures.every((f) => f.exitCode === 2)
          ? TASK_ERRORS.badInput
          : TASK_ERRORS.dump;
      throw new NamedError(
        name,
        `${failures.length} of ${outcomes.length} backup(s) of ${db.id} failed: ${failures.map((f) => `${f.database ?? 'globals'}: ${f.error}`).join('; ')}`,
      );
    }
    return {
      backups: outcomes.flatMap((o) => (o.ok ? [summary(o.database, o.folder, o.manifest)] : [])),
      durationMs: Date.now() - started,
    };
  }
  const model = db.tenants;
  if (!model) throw new UsageError(`COFRE_JOB.database.tenants: ${db.id} has no tenant model`);
  if (!job.tenants?.length) throw new UsageError('COFRE_JOB.tenants: expected the tenants of this batch');
  const outcomes = await runTenantBackup({
    connection: deps.connection,
    model,
    tenants: job.tenants,
    sourceId: db.id,
    vault: deps.vault,
    keys: deps.keys,
    dataClass: model.dataClass ?? db.dataClass,
    retention: job.retention,
    timeZone: job.timeZone,
    signal: deps.signal,
    log,
    now: deps.now,
  });
  if (deps.signal?.aborted) throw new CancelledError('tenant-backup was stopped');
  return {
    exports: outcomes.flatMap((o) =>
      o.ok ? [{ tenant: o.tenant, ...summary(o.manifest.source.database, o.folder, o.manifest) }] : [],
    ),
    failed: outcomes.flatMap((o) => (o.ok ? [] : [{ tenant: o.tenant, error: o.error }])),
    durationMs: Date.now() - started,
  };
}

function summary(database: string | null, folder: string, m: Manifest): BackupSummary {
  const { backupId, tier, rawBytes, storedBytes, durationMs, tables, rows } = summarize(m);
  return { backupId, database, folder, tier, rawBytes, storedBytes, durationMs, tables, rows };
}

// ---------------------------------------------------------------------------------------------
// Progress and heartbeats

/** A vault that counts the bytes written to and read from it: the task's sign of progress. */
export class CountingVault implements Vault {
  bytes = 0;
  constructor(private readonly inner: Vault) {}
  get url(): string {
    return this.inner.url;
  }
  get kind(): Vault['kind'] {
    return this.inner.kind;
  }
  get objectLockMode(): Vault['objectLockMode'] {
    return this.inner.objectLockMode;
  }
  private counter(): Transform {
    return new Transform({
      transform: (chunk: Buffer, _e, cb) => {
        this.bytes += chunk.length;
        cb(null, chunk);
      },
    });
  }
  write(key: string, body: Readable, options: WriteOptions): Promise<StoredObject> {
    const counted = body.pipe(this.counter());
    body.on('error', (e) => counted.destroy(e));
    return this.inner.write(key, counted, options);
  }
  async read(key: string, signal?: AbortSignal): Promise<Readable> {
    const source = await this.inner.read(key, signal);
    const counted = source.pipe(this.counter());
    source.on('error', (e) => counted.destroy(e));
    return counted;
  }
  readBytes(key: string): Promise<Buffer | undefined> {
    return this.inner.readBytes(key);
  }
  sha256(key: string, onChunk?: (chunk: Buffer) => void): Promise<string> {
    return this.inner.sha256(key, (chunk) => {
      this.bytes += chunk.length;
      onChunk?.(chunk);
    });
  }
  stat(key: string): Promise<StoredObject | undefined> {
    return this.inner.stat(key);
  }
  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }
  createExclusive(key: string, bytes: Buffer): Promise<boolean> {
    return this.inner.createExclusive(key, bytes);
  }
  remove(key: string): Promise<void> {
    return this.inner.remove(key);
  }
  replaceExclusive(key: string, expected: Buffer, bytes: Buffer): Promise<boolean> {
    return this.inner.replaceExclusive(key, expected, bytes);
  }
  release(key: string, expected?: Buffer): Promise<void> {
    return this.inner.release(key, expected);
  }
}

/** Heartbeats only when `progress()` advanced since the last beat. Returns a stop function. */
export function startHeartbeats(o: {
  readonly progress: () => number;
  readonly beat: () => Promise<void>;
  readonly intervalMs: number;
  readonly onError: (error: unknown) => void;
}): () => void {
  let last = o.progress();
  const timer = setInterval(() => {
    const now = o.progress();
    if (now <= last) return; // stalled: let HeartbeatSeconds fail the state
    last = now;
    o.beat().catch(o.onError);
  }, o.intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
  };
}

/** Step Functions limits: error name 256, cause 32,768 characters. */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export interface ReportedTaskOptions {
  readonly sfn: SFNClient;
  readonly token: string;
  readonly command: TaskCommand;
  readonly job: ContainerJob;
  readonly deps: TaskDeps;
  /** Default 60 s; HeartbeatSeconds in the ASL is 300. */
  readonly heartbeatIntervalMs?: number;
  readonly log?: (line: string) => void;
}

/**
 * Runs the command with progress heartbeats and reports the outcome with the task token. Returns
 * the process exit code (0 success reported, 1 failure reported or reporting failed).
 */
export async function runReportedTask(o: ReportedTaskOptions): Promise<number> {
  const log = o.log ?? (() => undefined);
  const vault = new CountingVault(o.deps.vault);
  let otherProgress = 0;
  const controller = new AbortController();
  const signal = o.deps.signal ? AbortSignal.any([o.deps.signal, controller.signal]) : controller.signal;
  const stop = startHeartbeats({
    progress: () => vault.bytes + otherProgress,
    intervalMs: o.heartbeatIntervalMs ?? 60_000,
    beat: async () => {
      await o.sfn.send(new SendTaskHeartbeatCommand({ taskToken: o.token }));
    },
    onError: (error) => {
      const name = (error as { name?: string }).name ?? '';
      log(`heartbeat failed: ${name}: ${messageOf(error)}`);
      // The state is over (timed out, execution stopped): stop working, nobody waits for us.
      if (name === 'TaskTimedOut' || name === 'TaskDoesNotExist' || name === 'InvalidToken')
        controller.abort(new CancelledError(`Step Functions no longer waits for this task (${name})`));
    },
  });
  let outcome: { ok: true; output: TaskOutput } | { ok: false; error: string; cause: string };
  try {
    const output = await runTaskCommand(o.command, o.job, {
      ...o.deps,
      vault,
      signal,
      onProgress: () => {
        otherProgress++;
        o.deps.onProgress?.();
      },
    });
    outcome = { ok: true, output };
  } catch (error) {
    outcome = {
      ok: false,
      error: signal.aborted && !(error instanceof NamedError) ? TASK_ERRORS.cancelled : taskErrorName(error),
      cause: messageOf(error),
    };
  } finally {
    stop();
  }
  try {
    if (outcome.ok) {
      await o.sfn.send(
        new SendTaskSuccessCommand({ taskToken: o.token, output: JSON.stringify(outcome.output) }),
      );
      log(`reported success to Step Functions`);
      return 0;
    }
    await o.sfn.send(
      new SendTaskFailureCommand({
        taskToken: o.token,
        error: clip(outcome.error, 256),
        cause: clip(outcome.cause, 32_768),
      }),
    );
    log(`reported failure to Step Functions: ${outcome.error}: ${outcome.cause}`);
    return 1;
  } catch (error) {
    log(`could not report to Step Functions: ${messageOf(error)} (the state will time out)`);
    return 1;
  }
}

// ---------------------------------------------------------------------------------------------
// Credentials from COFRE_DB_SECRET

const rdsSecretSchema = z.looseObject({
  username: z.string().min(1),
  password: z.string(),
  host: z.string().min(1).optional(),
  port: z.union([z.number(), z.string()]).optional(),
  dbname: z.string().optional(),
});

/**
 * The connection for the job's database from the secret ECS injects as `COFRE_DB_SECRET` (the RDS
 * secret JSON). `database.host` / `database.port` win over the secret's. Never echoes the secret.
 */
export function connectionFromSecret(job: ContainerJob, secretText: string | undefined): Connection {
  if (!secretText)
    throw new UsageError('COFRE_DB_SECRET: not set; the task definition must inject the database secret');
  let secret: z.infer<typeof rdsSecretSchema>;
  try {
    secret = rdsSecretSchema.parse(JSON.parse(secretText));
  } catch {
    throw new UsageError(
      'COFRE_DB_SECRET: expected the RDS secret JSON ({"username": …, "password": …, "host": …})',
    );
  }
  const db = job.database;
  const host = db.host ?? secret.host;
  if (!host)
    throw new UsageError(
      `COFRE_DB_SECRET: no "host" in the secret, and database.host of ${db.id} is not set`,
    );
  const port =
    db.port ?? (secret.port !== undefined ? Number(secret.port) : db.engine === 'postgres' ? 5432 : 3306);
  const named = Array.isArray(db.databases) ? db.databases[0] : undefined;
  return {
    engine: db.engine,
    host,
    port,
    user: secret.username,
    password: secret.password,
    database: named ?? secret.dbname ?? (db.engine === 'postgres' ? 'postgres' : undefined),
    sslMode: undefined,
  };
}
