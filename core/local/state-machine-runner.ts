/**
 * Runs the state machines of `state-machines/` locally with `aws-local-stepfunctions`: the SAME ASL
 * files, placeholders substituted with local ids, every Task state mapped by its resource to the
 * same code as in AWS — Lambda states to the step functions the handlers call, the ECS dump task to
 * the dump runner's core in-process (reading the same container overrides), notify to
 * `notify` with a publish that prints. Used by `cofre local` and the orchestration tests.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { StateMachine } from 'aws-local-stepfunctions';
import { notify, parseNotifyEvent, type AlertMessage, type NotifyEvent } from '../alerts/notify';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Connection } from '../sources/connection';
import type { Keys } from '../vault/crypto';
import { messageOf } from '../util/errors';
import type { MetricsSink } from '../policy/metrics';
import { listTenants as engineListTenants } from '../tenants/backup';
import type { TenantModel } from '../tenants/plan';
import type { Vault } from '../vault';
import { NamedError, asNamedError } from '../aws/task-errors';
import { parseContainerJob, type ContainerJob, type JobName } from '../aws/job';
import {
  listBackupsStep,
  listTenantsStep,
  prepare,
  recordStep,
  verifyStep,
  type PrepareEvent,
  type RecordEvent,
  type StepHistory,
  type VerifyEvent,
} from '../aws/steps';
import type { RDSClient } from '@aws-sdk/client-rds';
import { rdsRestoreStep, type RdsRestoreEvent } from '../aws/rds-restore-step';
import { recordRestore, type RestoreRecordEvent } from '../aws/restore-record';
import { validateRestore, type RestoreDatabase, type ValidateRestoreEvent } from '../aws/restore-validate';
import { parseTaskCommand, readsBackups, runTaskCommand } from '../aws/task';

/**
 * Where the ASL files are: `state-machines/` of the checkout, found upwards from this file (it is
 * `core/local/` from the sources, `dist/` in the CLI bundle).
 */
export const STATE_MACHINES_DIR = findUp(__dirname, 'state-machines');

function findUp(from: string, name: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, name);
    if (existsSync(path.join(candidate, 'backup-database.asl.json'))) return candidate;
    if (path.dirname(dir) === dir) return path.join(from, '..', '..', name);
  }
}

const LOCAL_ACCOUNT = '000000000000';
const LOCAL_REGION = 'us-east-1';
const localFunction = (name: string) =>
  `arn:aws:lambda:${LOCAL_REGION}:${LOCAL_ACCOUNT}:function:cofre-local-${name}`;

/** Every placeholder the ASL files may use, and its local value. */
export const LOCAL_SUBSTITUTIONS: Readonly<Record<string, string>> = {
  PrepareFunctionArn: localFunction('prepare'),
  VerifyFunctionArn: localFunction('verify'),
  RecordFunctionArn: localFunction('record'),
  ListTenantsFunctionArn: localFunction('list-tenants'),
  ListBackupsFunctionArn: localFunction('list-backups'),
  NotifyFunctionArn: localFunction('notify'),
  RestoreValidateFunctionArn: localFunction('restore-validate'),
  RestoreRecordFunctionArn: localFunction('restore-record'),
  RestoreRdsFunctionArn: localFunction('restore-rds'),
  ClusterArn: `arn:aws:ecs:${LOCAL_REGION}:${LOCAL_ACCOUNT}:cluster/cofre-local`,
  ContainerName: 'dump-runner',
};

/** The `${Name}` placeholders in a definition's text. */
export function placeholdersOf(text: string): string[] {
  return [...new Set([...text.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!))].sort();
}

/** Substitutes every placeholder (as CDK's `definitionSubstitutions` does); an unknown one is an error. */
export function substitute(text: string, values: Readonly<Record<string, string>>): string {
  const missing = placeholdersOf(text).filter((p) => values[p] === undefined);
  if (missing.length) throw new Error(`no substitution for ${missing.map((m) => `\${${m}}`).join(', ')}`);
  return text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (_, name: string) => values[name]!);
}

/** The ASL definition of a job with local ids substituted. */
export function localDefinition(job: JobName): Record<string, unknown> {
  const text = readFileSync(path.join(STATE_MACHINES_DIR, `${job}.asl.json`), 'utf8');
  return JSON.parse(substitute(text, LOCAL_SUBSTITUTIONS)) as Record<string, unknown>;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type TaskState = {
  Type: string;
  Resource?: string;
  Retry?: unknown[];
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
};

/** Every Task state (with Map item processors), by name. */
function taskStates(definition: { States?: Record<string, unknown> }): Map<string, TaskState> {
  const out = new Map<string, TaskState>();
  for (const [name, raw] of Object.entries(definition.States ?? {})) {
    const state = raw as TaskState & {
      ItemProcessor?: { States?: Record<string, unknown> };
      Iterator?: { States?: Record<string, unknown> };
    };
    if (state.Type === 'Task') out.set(name, state);
    const inner = state.ItemProcessor ?? state.Iterator;
    if (inner) for (const [n, s] of taskStates(inner)) out.set(n, s);
  }
  return out;
}

export interface LocalPipelineOptions {
  readonly history: StepHistory;
  readonly vault: Vault;
  /** Keys the task writes with, and reads with for verify-deep and restore-test. */
  readonly keys: Keys;
  readonly decryptKeys: Keys;
  /** The connection (credentials resolved) to the job's database: the local stand-in for COFRE_DB_SECRET. */
  connect(job: ContainerJob): Promise<Connection>;
  readonly listTenants?: (connection: Connection, model: TenantModel) => Promise<string[]>;
  /** The databases the console restore may restore (COFRE_RESTORE_DATABASES of restore-validate). */
  readonly restoreDatabases?: readonly RestoreDatabase[];
  /** Secrets Manager as the dump task sees it (a console restore into a named restore target). */
  readonly secrets?: SecretsManagerClient;
  /** RDS for point-in-time restores (the local AWS). */
  readonly rds?: RDSClient;
  /** RDS in another region (snapshot restores from the DR region); default: `rds`. */
  readonly rdsIn?: (region: string) => RDSClient;
  /** Snapshot restores: the account and the two regions of the pipeline. */
  readonly aws?: { readonly account: string; readonly primaryRegion: string; readonly drRegion: string };
  /** Seconds of every Wait state (default: as in the file). */
  readonly waitSeconds?: number;
  /** Where notifications go (default: the log). */
  readonly publish?: (message: AlertMessage) => Promise<void>;
  readonly notifyOnSuccess?: boolean;
  readonly metrics?: MetricsSink;
  readonly maxDurationMinutes?: number;
  readonly sizeAnomalyPercent?: number;
  /** Pause before each retry, instead of the ASL's backoff (tests: 0). */
  readonly retryIntervalMs?: number;
  /** Wraps every Task state (fault injection in tests: a hung task that Step Functions timed out). */
  readonly around?: (state: string, input: Json, run: () => Promise<Json>) => Promise<Json>;
  readonly signal?: AbortSignal;
  readonly log?: (line: string) => void;
  readonly now?: () => Date;
}

/** Events of a local execution, for reports and tests. */
export interface LocalEvent {
  readonly type: string;
  readonly state?: string;
  readonly error?: string;
  readonly cause?: string;
}

export interface LocalExecution {
  readonly job: JobName;
  readonly executionArn: string;
  readonly status: 'succeeded' | 'failed';
  readonly output?: Record<string, unknown>;
  readonly error?: string;
  readonly cause?: string;
  readonly events: readonly LocalEvent[];
  /** What notify sent. */
  readonly notifications: readonly NotifyEvent[];
  readonly durationMs: number;
}

/** Runs one job's state machine locally, to the end. */
export async function runLocalJob(
  job: JobName,
  input: unknown,
  o: LocalPipelineOptions,
): Promise<LocalExecution> {
  const started = Date.now();
  const log = o.log ?? (() => undefined);
  const definition = localDefinition(job);
  // aws-local-stepfunctions resolves TimeoutSecondsPath against the Parameters output, where AWS
  // resolves it against the state input: give those states the same timeout as a fixed value.
  const timeoutMinutes = (input as { timeoutMinutes?: unknown } | null)?.timeoutMinutes;
  for (const state of taskStates(definition).values()) {
    if (state.TimeoutSecondsPath === undefined) continue;
    delete state.TimeoutSecondsPath;
    state.TimeoutSeconds = (typeof timeoutMinutes === 'number' ? timeoutMinutes : 360) * 60;
  }
  const name = `local-${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
  const executionArn = `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:execution:cofre-${job}:${name}`;
  const notifications: NotifyEvent[] = [];
  const rdsIn = (region: string | undefined): RDSClient => {
    const client = region && o.rdsIn ? o.rdsIn(region) : o.rds;
    if (!client) throw new Error('restore-rds: no RDS client given to the local runner');
    return client;
  };
  const functions: Record<string, (payload: Record<string, unknown>) => Promise<unknown>> = {
    [LOCAL_SUBSTITUTIONS.PrepareFunctionArn!]: (p) =>
      prepare(p as unknown as PrepareEvent, { history: o.history, now: o.now }),
    [LOCAL_SUBSTITUTIONS.VerifyFunctionArn!]: (p) =>
      verifyStep(p as unknown as VerifyEvent, {
        history: o.history,
        vault: o.vault,
        metrics: o.metrics ?? { emit: () => undefined },
        maxDurationMinutes: o.maxDurationMinutes ?? 30,
        sizeAnomalyPercent: o.sizeAnomalyPercent ?? 30,
        now: o.now,
      }),
    [LOCAL_SUBSTITUTIONS.RecordFunctionArn!]: (p) =>
      recordStep(p as unknown as RecordEvent, {
        history: o.history,
        metrics: o.metrics ?? { emit: () => undefined },
        vaultUrl: o.vault.url,
        now: o.now,
      }),
    [LOCAL_SUBSTITUTIONS.ListTenantsFunctionArn!]: (p) =>
      listTenantsStep(p as { job: unknown }, {
        connect: (job) => o.connect(job),
        listTenants: o.listTenants ?? engineListTenants,
      }),
    [LOCAL_SUBSTITUTIONS.ListBackupsFunctionArn!]: (p) =>
      listBackupsStep(p as { job: unknown }, { vault: o.vault, now: o.now }),
    [LOCAL_SUBSTITUTIONS.RestoreValidateFunctionArn!]: (p) =>
      validateRestore(p as unknown as ValidateRestoreEvent, {
        databases: o.restoreDatabases ?? [],
        vault: o.vault,
        history: o.history,
        rds: o.rds,
        aws: o.aws && { ...o.aws, rdsIn: rdsIn },
        now: o.now,
      }),
    [LOCAL_SUBSTITUTIONS.RestoreRdsFunctionArn!]: (p) => {
      return rdsRestoreStep(p as unknown as RdsRestoreEvent, {
        rdsIn: (region) => (region ? rdsIn(region) : rdsIn(undefined)),
        now: o.now,
      });
    },
    [LOCAL_SUBSTITUTIONS.RestoreRecordFunctionArn!]: (p) =>
      recordRestore(p as unknown as RestoreRecordEvent, { history: o.history, now: o.now }),
    [LOCAL_SUBSTITUTIONS.NotifyFunctionArn!]: async (p) => {
      const event = parseNotifyEvent(p);
      notifications.push(event);
      await notify(event, {
        publish:
          o.publish ??
          ((m) => {
            log(`notify [${m.attributes.severity ?? '?'}] ${m.subject}`);
            return Promise.resolve();
          }),
        notifyOnSuccess: o.notifyOnSuccess ?? true,
        region: 'local',
        vaultUrl: o.vault.url,
      });
      return {};
    },
  };

  const lambda = async (state: string, input: Record<string, unknown>): Promise<Json> => {
    const fn = functions[String(input.FunctionName)];
    if (!fn) throw new Error(`${state}: no local function for ${String(input.FunctionName)}`);
    log(`  ${state}`);
    const payload = await fn((input.Payload ?? {}) as Record<string, unknown>);
    // As the lambda:invoke integration returns it.
    return { StatusCode: 200, Payload: JSON.parse(JSON.stringify(payload ?? null)) as Json };
  };

  const ecs = async (state: string, input: Record<string, unknown>): Promise<Json> => {
    const params = input as {
      LaunchType?: string;
      Cluster?: string;
      TaskDefinition?: string;
      Overrides?: {
        ContainerOverrides?: { Name?: string; Environment?: { Name: string; Value: string }[] }[];
      };
    };
    if (
      params.LaunchType !== 'FARGATE' ||
      params.Cluster !== LOCAL_SUBSTITUTIONS.ClusterArn ||
      !params.TaskDefinition
    )
      throw new Error(`${state}: expected a Fargate RunTask on the cluster with a task definition`);
    const container = params.Overrides?.ContainerOverrides?.find(
      (c) => c.Name === LOCAL_SUBSTITUTIONS.ContainerName,
    );
    const env = Object.fromEntries((container?.Environment ?? []).map((e) => [e.Name, e.Value]));
    if (!env.COFRE_TASK_TOKEN)
      throw new Error(`${state}: COFRE_TASK_TOKEN missing from the container overrides`);
    const command = parseTaskCommand(env.COFRE_COMMAND);
    const jobSpec = parseContainerJob(env.COFRE_JOB);
    log(
      `  ${state}: ${command} of ${jobSpec.database.id}${jobSpec.tenants ? ` (${jobSpec.tenants.length} tenants)` : ''}${jobSpec.backupIds ? ` (${jobSpec.backupIds.length} backups)` : ''}`,
    );
    const output = await runTaskCommand(command, jobSpec, {
      connection: command === 'verify-deep' ? undefined : await o.connect(jobSpec),
      vault: o.vault,
      keys: readsBackups(command) ? o.decryptKeys : o.keys,
      signal: o.signal,
      log: (line) => {
        log(`    ${line}`);
      },
      now: o.now,
      secrets: o.secrets,
    });
    return JSON.parse(JSON.stringify(output)) as Json;
  };

  const handlers: Record<string, (input: Json) => Promise<Json>> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const [stateName, state] of taskStates(definition)) {
    const run =
      state.Resource === 'arn:aws:states:::lambda:invoke'
        ? (i: Json) => lambda(stateName, i as Record<string, unknown>)
        : state.Resource === 'arn:aws:states:::ecs:runTask.waitForTaskToken'
          ? (i: Json) => ecs(stateName, i as Record<string, unknown>)
          : undefined;
    if (!run)
      throw new Error(
        `${job}: state ${stateName} uses ${String(state.Resource)}, which has no local mapping`,
      );
    handlers[stateName] = async (i: Json) => {
      try {
        return await (o.around ? o.around(stateName, i, () => run(i)) : run(i));
      } catch (error) {
        // Named as Step Functions would name it, so Retry and Catch match as in AWS.
        const named = error instanceof NamedError ? error : asNamedError(error);
        log(`  ${stateName} failed: ${named.name}: ${named.message}`);
        throw named;
      }
    };
    if (state.Retry && o.retryIntervalMs !== undefined) retryIntervalOverrides[stateName] = o.retryIntervalMs;
  }

  const waitTimeOverrides: Record<string, number> = {};
  if (o.waitSeconds !== undefined)
    for (const [stateName, state] of Object.entries(
      (definition as { States?: Record<string, { Type?: string }> }).States ?? {},
    ))
      if (state.Type === 'Wait') waitTimeOverrides[stateName] = o.waitSeconds * 1000;
  const machine = new StateMachine(definition as unknown as ConstructorParameters<typeof StateMachine>[0]);
  const execution = machine.run(input as Json, {
    overrides: { taskResourceLocalHandlers: handlers, retryIntervalOverrides, waitTimeOverrides },
    context: {
      Execution: { Id: executionArn, Name: name },
      StateMachine: {
        Id: `arn:aws:states:${LOCAL_REGION}:${LOCAL_ACCOUNT}:stateMachine:cofre-${job}`,
        Name: `cofre-${job}`,
      },
      Task: { Token: `local-token-${name}` },
    },
  });
  const onAbort = () => {
    execution.abort();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  const events: LocalEvent[] = [];
  const collecting = (async () => {
    for await (const e of execution.eventLogs) {
      const ev = e as { type: string; state?: { name: string }; Error?: string; Cause?: unknown };
      events.push({
        type: ev.type,
        ...(ev.state ? { state: ev.state.name } : {}),
        ...(ev.Error ? { error: ev.Error } : {}),
        ...(ev.Cause !== undefined
          ? { cause: typeof ev.Cause === 'string' ? ev.Cause : messageOf(ev.Cause) }
          : {}),
      });
    }
  })();
  try {
    const output = (await execution.result) as Record<string, unknown>;
    await collecting.catch(() => undefined);
    return {
      job,
      executionArn,
      status: 'succeeded',
      output,
      events,
      notifications,
      durationMs: Date.now() - started,
    };
  } catch (error) {
    await collecting.catch(() => undefined);
    const cause = (error as { cause?: { name?: string; message?: string } }).cause;
    return {
      job,
      executionArn,
      status: 'failed',
      error: cause?.name ?? (error as Error).name,
      cause: cause?.message ?? messageOf(error),
      events,
      notifications,
      durationMs: Date.now() - started,
    };
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
  }
}
