/**
 * `cofre restore --point-in-time TIME (--rds-instance ID | --rds-cluster ID)`: the same core code as
 * the console's `point-in-time` kind (core/orchestration/rds-restore.ts): the time checked against the
 * source's restorable window, the new identifier checked free, the restore into a NEW instance or
 * cluster with the source's settings, tagged `cofre:restore=<run>`, then polled until available or
 * the timeout. It never replaces or changes the source.
 */
import { RDSClient } from '@aws-sdk/client-rds';
import { OperationalError, UsageError } from '../core/errors';
import {
  planPointInTime,
  rdsRestoreStatus,
  startRdsRestore,
  type RdsRestoreStatus,
} from '../core/orchestration/rds-restore';
import { sdkClientConfig } from '../core/vault';
import type { CliIo } from './cofre';

/** The options of `cofre restore` this path reads (flags in cli/cofre.ts). */
export interface PointInTimeOptions {
  readonly pointInTime?: unknown;
  readonly rdsInstance?: unknown;
  readonly rdsCluster?: unknown;
  readonly targetIdentifier?: unknown;
  readonly instanceClass?: unknown;
  readonly multiAz?: unknown;
  readonly timeoutMinutes?: unknown;
  readonly pollSeconds?: unknown;
  readonly json?: unknown;
}

/** The flags that belong to a logical restore (they make no sense with --point-in-time). */
const LOGICAL_FLAGS = [
  'vault',
  'backup',
  'targetUrl',
  'table',
  'intoTable',
  'tenant',
  'force',
  'dryRun',
] as const;
const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Runs a point-in-time restore from the command line; the exit code. */
export async function runPointInTimeRestore(
  opts: PointInTimeOptions & Record<string, unknown>,
  io: CliIo,
  deps: { readonly rds?: RDSClient; readonly sleep?: (ms: number) => Promise<void> } = {},
): Promise<number> {
  const problems: string[] = [];
  for (const key of LOGICAL_FLAGS)
    if (opts[key] !== undefined && opts[key] !== false)
      problems.push(
        `${flagName(key)}: not with --point-in-time (a point-in-time restore makes a new RDS instance or cluster)`,
      );
  const time = String(opts.pointInTime);
  if (time !== 'latest' && (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(time) || Number.isNaN(Date.parse(time))))
    problems.push(`--point-in-time: expected "latest" or an ISO-8601 time with its offset, got "${time}"`);
  const instance = opts.rdsInstance as string | undefined;
  const cluster = opts.rdsCluster as string | undefined;
  if ((instance === undefined) === (cluster === undefined))
    problems.push('--rds-instance / --rds-cluster: expected exactly one, the source of the restore');
  const timeoutMinutes = opts.timeoutMinutes === undefined ? 360 : Number(opts.timeoutMinutes);
  if (!Number.isInteger(timeoutMinutes) || timeoutMinutes < 5 || timeoutMinutes > 1440)
    problems.push(`--timeout-minutes: expected minutes from 5 to 1440, got "${String(opts.timeoutMinutes)}"`);
  const pollSeconds = opts.pollSeconds === undefined ? 30 : Number(opts.pollSeconds);
  if (!Number.isFinite(pollSeconds) || pollSeconds < 0 || pollSeconds > 600)
    problems.push(`--poll-seconds: expected seconds from 0 to 600, got "${String(opts.pollSeconds)}"`);
  if (problems.length) throw new UsageError(`${problems.join('\n')}\nnothing was changed`);

  const rds = deps.rds ?? new RDSClient(sdkClientConfig(io.env, 'AWS_ENDPOINT_URL_RDS'));
  const started = new Date();
  const plan = await planPointInTime(
    { id: instance ?? cluster!, rdsInstanceId: instance, rdsClusterId: cluster },
    {
      time,
      targetIdentifier: opts.targetIdentifier as string | undefined,
      instanceClass: opts.instanceClass as string | undefined,
      multiAz: opts.multiAz as boolean | undefined,
    },
    rds,
    started,
    problems,
  );
  if (problems.length || !plan)
    throw new UsageError(
      `${problems
        .map((p) =>
          p
            .replace(/^targetIdentifier:/, '--target-identifier:')
            .replace(/^time:/, '--point-in-time:')
            .replace(/^database:/, instance ? '--rds-instance:' : '--rds-cluster:'),
        )
        .join('\n')}\nnothing was changed`,
    );
  const run = `cli-${started.toISOString().replace(/[-:.]/g, '')}`;
  await startRdsRestore(plan, rds, run);
  io.stderr(
    `restoring ${plan.source} to ${plan.restoreTime ?? 'its latest restorable time'} into the new ${plan.resource} ${plan.target} (tag cofre:restore=${run})\n`,
  );
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let status: RdsRestoreStatus;
  for (;;) {
    status = await rdsRestoreStatus(plan, rds, started.toISOString(), timeoutMinutes * 60, new Date());
    io.stderr(`  ${plan.target}: ${status.status} (${status.elapsedSeconds} s)\n`);
    if (status.available || status.timedOut || io.signal?.aborted) break;
    await sleep(pollSeconds * 1000);
  }
  if (opts.json) io.stdout(`${JSON.stringify({ plan, status })}\n`);
  if (!status.available)
    throw new OperationalError(
      `${plan.target} is not available after ${status.elapsedSeconds} s (status ${status.status}); it goes on being created (tag cofre:restore=${run}); the source ${plan.source} was not touched`,
    );
  io.stderr(
    `OK ${plan.target} is available${status.endpoint ? ` at ${status.endpoint.host}:${status.endpoint.port}` : ''}; the source ${plan.source} was not touched\n`,
  );
  return 0;
}
