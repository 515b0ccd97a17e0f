/**
 * `cofre restore --point-in-time TIME (--rds-instance ID | --rds-cluster ID)`: the same core code as
 * the console's `point-in-time` kind (core/aws/rds-restore.ts): the time checked against the
 * source's restorable window, the new identifier checked free, the restore into a NEW instance or
 * cluster with the source's settings, tagged `cofre:restore=<run>`, then polled until available or
 * the timeout. It never replaces or changes the source.
 */
import {
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  RDSClient,
} from '@aws-sdk/client-rds';
import { OperationalError, UsageError } from '../core/util/errors';
import {
  RECOVERY_POINT_ARN,
  planFromSnapshot,
  planPointInTime,
  rdsRestoreStatus,
  startRdsRestore,
  type RdsPlan,
  type RdsRestoreStatus,
} from '../core/aws/rds-restore';
import { sdkClientConfig } from '../core/vault';
import type { CliIo } from './cofre';

/** The options of `cofre restore` this path reads, as commander parses them (flags in cli/restore-command.ts). */
export interface PointInTimeOptions {
  readonly pointInTime?: string;
  readonly snapshot?: string;
  readonly subnetGroup?: string;
  readonly securityGroupIds?: string;
  readonly rdsInstance?: string;
  readonly rdsCluster?: string;
  readonly targetIdentifier?: string;
  readonly instanceClass?: string;
  /** `--multi-az` true, `--no-multi-az` false, neither: as the source. */
  readonly multiAz?: boolean;
  readonly timeoutMinutes?: string;
  readonly pollSeconds?: string;
  readonly json?: true;
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
/** The logical-restore options, as commander parses them: refused with --point-in-time / --snapshot. */
export type LogicalRestoreOpts = { readonly [K in (typeof LOGICAL_FLAGS)[number]]?: string | boolean };
const flagName = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** Runs a point-in-time restore from the command line; the exit code. */
export async function runPointInTimeRestore(
  opts: PointInTimeOptions & LogicalRestoreOpts,
  io: CliIo,
  deps: { readonly rds?: RDSClient; readonly sleep?: (ms: number) => Promise<void> } = {},
): Promise<number> {
  const problems: string[] = [];
  const mode = opts.snapshot !== undefined ? '--snapshot' : '--point-in-time';
  if (opts.snapshot !== undefined && opts.pointInTime !== undefined)
    problems.push('--point-in-time / --snapshot: choose one');
  for (const key of LOGICAL_FLAGS)
    if (opts[key] !== undefined && opts[key] !== false)
      problems.push(
        `${flagName(key)}: not with ${mode} (an RDS restore makes a new RDS instance or cluster)`,
      );
  const time = opts.pointInTime ?? 'latest';
  if (time !== 'latest' && (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/.test(time) || Number.isNaN(Date.parse(time))))
    problems.push(`--point-in-time: expected "latest" or an ISO-8601 time with its offset, got "${time}"`);
  const instance = opts.rdsInstance;
  const cluster = opts.rdsCluster;
  if ((instance === undefined) === (cluster === undefined))
    problems.push('--rds-instance / --rds-cluster: expected exactly one, the source of the restore');
  const timeoutMinutes = opts.timeoutMinutes === undefined ? 360 : Number(opts.timeoutMinutes);
  if (!Number.isInteger(timeoutMinutes) || timeoutMinutes < 5 || timeoutMinutes > 1440)
    problems.push(`--timeout-minutes: expected minutes from 5 to 1440, got "${String(opts.timeoutMinutes)}"`);
  const pollSeconds = opts.pollSeconds === undefined ? 30 : Number(opts.pollSeconds);
  if (!Number.isFinite(pollSeconds) || pollSeconds < 0 || pollSeconds > 600)
    problems.push(`--poll-seconds: expected seconds from 0 to 600, got "${String(opts.pollSeconds)}"`);
  if (problems.length) throw new UsageError(`${problems.join('\n')}\nnothing was changed`);

  const config = sdkClientConfig(io.env, 'AWS_ENDPOINT_URL_RDS');
  const rds = deps.rds ?? new RDSClient(config);
  const started = new Date();
  const rename = (p: string) =>
    p
      .replace(/^targetIdentifier:/, '--target-identifier:')
      .replace(/^time:/, '--point-in-time:')
      .replace(/^recoveryPointArn:/, '--snapshot:')
      .replace(/^subnetGroup \/ securityGroupIds:/, '--subnet-group / --security-group-ids:')
      .replace(/^database:/, instance ? '--rds-instance:' : '--rds-cluster:');
  let plan: RdsPlan | undefined;
  let client = rds;
  if (opts.snapshot !== undefined) {
    const arn = opts.snapshot;
    const m = RECOVERY_POINT_ARN.exec(arn);
    const region = m?.[1] ?? '';
    const primaryRegion = (await rds.config.region()) || region;
    const rdsIn = (r: string) => (r === primaryRegion ? rds : new RDSClient({ ...config, region: r }));
    const found = await planFromSnapshot(
      { id: instance ?? cluster!, rdsInstanceId: instance, rdsClusterId: cluster },
      {
        recoveryPointArn: arn,
        targetIdentifier: opts.targetIdentifier,
        instanceClass: opts.instanceClass,
        multiAz: opts.multiAz,
        subnetGroup: opts.subnetGroup,
        securityGroupIds: opts.securityGroupIds?.split(','),
      },
      {
        account: m ? await callerAccount(rdsIn(region), m[3] === 'cluster-snapshot', m[4]!, m[2]!) : '',
        primaryRegion,
        drRegion: region,
        rdsIn,
      },
      started,
      problems,
    );
    plan = found?.plan;
    if (plan) client = rdsIn(region);
  } else
    plan = await planPointInTime(
      { id: instance ?? cluster!, rdsInstanceId: instance, rdsClusterId: cluster },
      {
        time,
        targetIdentifier: opts.targetIdentifier,
        instanceClass: opts.instanceClass,
        multiAz: opts.multiAz,
      },
      rds,
      started,
      problems,
    );
  if (problems.length || !plan)
    throw new UsageError(`${problems.map(rename).join('\n')}\nnothing was changed`);
  const run = `cli-${started.toISOString().replace(/[-:.]/g, '')}`;
  await startRdsRestore(plan, client, run);
  io.stderr(
    `restoring ${plan.source} ${plan.kind === 'snapshot' ? `from ${plan.snapshotArn ?? '?'}` : `to ${plan.restoreTime ?? 'its latest restorable time'}`} into the new ${plan.resource} ${plan.target} (tag cofre:restore=${run})\n`,
  );
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let status: RdsRestoreStatus;
  for (;;) {
    status = await rdsRestoreStatus(plan, client, started.toISOString(), timeoutMinutes * 60, new Date());
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

/**
 * The caller's account, as RDS reports it: the ARN of the caller's own snapshot with that identifier
 * (a recovery point of another account is not the caller's, so it is then named as such); the
 * given account when the caller has no snapshot of that name (it is then reported missing).
 */
async function callerAccount(rds: RDSClient, cluster: boolean, id: string, given: string): Promise<string> {
  try {
    const arn = cluster
      ? (await rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: id })))
          .DBClusterSnapshots?.[0]?.DBClusterSnapshotArn
      : (await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id }))).DBSnapshots?.[0]
          ?.DBSnapshotArn;
    return arn?.split(':')[4] ?? given;
  } catch {
    return given;
  }
}
