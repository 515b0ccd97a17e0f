/**
 * Point-in-time restores of RDS instances and Aurora clusters into a NEW instance or cluster: the
 * `point-in-time` kind of the console restore (lambdas/restore-rds) and `cofre restore
 * --point-in-time` (cli/restore-rds-command.ts) call these same functions.
 *
 * The new resource copies the source's subnet group, security groups, parameter group, KMS key
 * (Aurora: passed explicitly; an instance keeps its source's key), instance class and Multi-AZ unless
 * overridden, and is tagged `cofre:restore=<run>`: the only tag under which the restore role may
 * create anything. Nothing here deletes or modifies the source.
 */
import {
  CreateDBInstanceCommand,
  DescribeDBClusterSnapshotsCommand,
  DescribeDBSnapshotsCommand,
  RestoreDBClusterFromSnapshotCommand,
  RestoreDBInstanceFromDBSnapshotCommand,
  DescribeDBClustersCommand,
  DescribeDBInstancesCommand,
  RestoreDBClusterToPointInTimeCommand,
  RestoreDBInstanceToPointInTimeCommand,
  type DBCluster,
  type DBInstance,
  type RDSClient,
} from '@aws-sdk/client-rds';
import { z } from 'zod';
import { messageOf } from '../util/errors';

/** The tag every resource a restore creates carries (its value: the execution or run). */
export const RESTORE_TAG = 'cofre:restore';

export const rdsPlanSchema = z.object({
  kind: z.enum(['point-in-time', 'snapshot']),
  /** snapshot: the recovery point (an RDS snapshot or cluster snapshot ARN). */
  snapshotArn: z.string().optional(),
  /** Where the new resource is made (snapshot: the recovery point's region); absent: the pipeline's. */
  region: z.string().optional(),
  /** Instance (RDS) or cluster (Aurora). */
  resource: z.enum(['instance', 'cluster']),
  source: z.string(),
  /** The new instance (RDS) or cluster (Aurora). */
  target: z.string(),
  /** Aurora: the new cluster's first instance. */
  targetInstance: z.string().optional(),
  /** The time restored to, or absent for the latest restorable time. */
  restoreTime: z.string().optional(),
  engine: z.string(),
  instanceClass: z.string(),
  multiAz: z.boolean(),
  subnetGroup: z.string().optional(),
  securityGroupIds: z.array(z.string()),
  parameterGroup: z.string().optional(),
  kmsKeyId: z.string().optional(),
  port: z.number().int().optional(),
});
export type RdsPlan = z.infer<typeof rdsPlanSchema>;

/** What the point-in-time input asks for (restore-input.ts). */
export interface PointInTimeRequest {
  readonly time: string;
  readonly targetIdentifier?: string | undefined;
  readonly instanceClass?: string | undefined;
  readonly multiAz?: boolean | undefined;
}

/** RDS instance / cluster identifiers: letter first, letters, digits and single hyphens, ≤ 63. */
export const RDS_IDENTIFIER = /^[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)$/;

function notFound(error: unknown): boolean {
  const name = (error as { name?: string }).name ?? '';
  return /NotFound/.test(name);
}

async function instanceOf(rds: RDSClient, id: string): Promise<DBInstance | undefined> {
  try {
    return (await rds.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: id }))).DBInstances?.[0];
  } catch (error) {
    if (notFound(error)) return undefined;
    throw error;
  }
}

async function clusterOf(rds: RDSClient, id: string): Promise<DBCluster | undefined> {
  try {
    return (await rds.send(new DescribeDBClustersCommand({ DBClusterIdentifier: id }))).DBClusters?.[0];
  } catch (error) {
    if (notFound(error)) return undefined;
    throw error;
  }
}

/** The default new identifier: `<source>-restore-<yyyymmddhhmm>`, at most 63 characters. */
export function defaultRdsTarget(source: string, now: Date): string {
  const suffix = `-restore-${now.toISOString().slice(0, 16).replace(/[-:T]/g, '')}`;
  return `${source.slice(0, 63 - suffix.length).replace(/-+$/, '')}${suffix}`;
}

/**
 * Checks a point-in-time request against the live source (exists, the time within its restorable
 * window, the target identifier free) and returns the plan; pushes one line per problem otherwise.
 */
export async function planPointInTime(
  source: {
    readonly rdsInstanceId?: string | undefined;
    readonly rdsClusterId?: string | undefined;
    readonly id: string;
  },
  request: PointInTimeRequest,
  rds: RDSClient,
  now: Date,
  problems: string[],
): Promise<RdsPlan | undefined> {
  const resource = source.rdsClusterId ? 'cluster' : source.rdsInstanceId ? 'instance' : undefined;
  if (!resource) {
    problems.push(
      `database: expected a database with rdsInstanceId or rdsClusterId for a point-in-time restore, got ${source.id}, which has neither (a self-managed server: restore a logical backup with kind "database")`,
    );
    return undefined;
  }
  const sourceId = (resource === 'cluster' ? source.rdsClusterId : source.rdsInstanceId)!;
  let window: { earliest?: Date; latest?: Date };
  let plan: Omit<RdsPlan, 'target' | 'restoreTime' | 'targetInstance'>;
  try {
    if (resource === 'instance') {
      const i = await instanceOf(rds, sourceId);
      if (!i) {
        problems.push(
          `database: expected the RDS instance ${sourceId} of ${source.id} to exist, it does not`,
        );
        return undefined;
      }
      const retentionDays = i.BackupRetentionPeriod ?? 0;
      if (retentionDays < 1) {
        problems.push(
          `database: expected automated backups on ${sourceId} (point-in-time recovery), its backup retention is 0 days`,
        );
        return undefined;
      }
      const created = i.InstanceCreateTime ?? now;
      const byRetention = new Date(now.getTime() - retentionDays * 86_400_000);
      window = {
        earliest: created > byRetention ? created : byRetention,
        ...(i.LatestRestorableTime ? { latest: i.LatestRestorableTime } : {}),
      };
      plan = {
        kind: 'point-in-time',
        resource,
        source: sourceId,
        engine: i.Engine ?? 'postgres',
        instanceClass: request.instanceClass ?? i.DBInstanceClass ?? 'db.t3.micro',
        multiAz: request.multiAz ?? i.MultiAZ ?? false,
        ...(i.DBSubnetGroup?.DBSubnetGroupName ? { subnetGroup: i.DBSubnetGroup.DBSubnetGroupName } : {}),
        securityGroupIds: (i.VpcSecurityGroups ?? []).flatMap((g) =>
          g.VpcSecurityGroupId ? [g.VpcSecurityGroupId] : [],
        ),
        ...(i.DBParameterGroups?.[0]?.DBParameterGroupName
          ? { parameterGroup: i.DBParameterGroups[0].DBParameterGroupName }
          : {}),
        ...(i.KmsKeyId ? { kmsKeyId: i.KmsKeyId } : {}),
        ...(i.Endpoint?.Port ? { port: i.Endpoint.Port } : {}),
      };
    } else {
      const c = await clusterOf(rds, sourceId);
      if (!c) {
        problems.push(
          `database: expected the Aurora cluster ${sourceId} of ${source.id} to exist, it does not`,
        );
        return undefined;
      }
      const writer = c.DBClusterMembers?.find((m) => m.IsClusterWriter)?.DBInstanceIdentifier;
      const writerInstance = writer ? await instanceOf(rds, writer) : undefined;
      window = {
        ...(c.EarliestRestorableTime ? { earliest: c.EarliestRestorableTime } : {}),
        ...(c.LatestRestorableTime ? { latest: c.LatestRestorableTime } : {}),
      };
      plan = {
        kind: 'point-in-time',
        resource,
        source: sourceId,
        engine: c.Engine ?? 'aurora-postgresql',
        instanceClass: request.instanceClass ?? writerInstance?.DBInstanceClass ?? 'db.r6g.large',
        multiAz: request.multiAz ?? c.MultiAZ ?? false,
        ...(c.DBSubnetGroup ? { subnetGroup: c.DBSubnetGroup } : {}),
        securityGroupIds: (c.VpcSecurityGroups ?? []).flatMap((g) =>
          g.VpcSecurityGroupId ? [g.VpcSecurityGroupId] : [],
        ),
        ...(c.DBClusterParameterGroup ? { parameterGroup: c.DBClusterParameterGroup } : {}),
        ...(c.KmsKeyId ? { kmsKeyId: c.KmsKeyId } : {}),
        ...(c.Port ? { port: c.Port } : {}),
      };
    }
  } catch (error) {
    problems.push(`database: could not read ${sourceId} from RDS: ${messageOf(error)}`);
    return undefined;
  }

  let restoreTime: string | undefined;
  if (request.time !== 'latest') {
    const at = new Date(request.time);
    const range = `${window.earliest?.toISOString() ?? '?'} – ${window.latest?.toISOString() ?? now.toISOString()}`;
    if (at.getTime() > now.getTime())
      problems.push(
        `time: expected a time that has passed (now is ${now.toISOString()}), got ${request.time}`,
      );
    else if ((window.earliest && at < window.earliest) || (window.latest && at > window.latest))
      problems.push(
        `time: expected a time within the restorable window of ${sourceId} (${range}), got ${request.time}`,
      );
    else restoreTime = at.toISOString();
  }
  const target = request.targetIdentifier ?? defaultRdsTarget(sourceId, now);
  const taken = resource === 'instance' ? await instanceOf(rds, target) : await clusterOf(rds, target);
  if (taken)
    problems.push(
      `targetIdentifier: expected the identifier of a new ${resource}, got "${target}", which already exists (a point-in-time restore never replaces anything)`,
    );
  const targetInstance =
    resource === 'cluster' ? `${target.slice(0, 63 - '-instance-1'.length)}-instance-1` : undefined;
  if (targetInstance && (await instanceOf(rds, targetInstance)))
    problems.push(
      `targetIdentifier: expected a name whose first instance ${targetInstance} is free, it already exists`,
    );
  return {
    ...plan,
    target,
    ...(targetInstance ? { targetInstance } : {}),
    ...(restoreTime ? { restoreTime } : {}),
  };
}

/** Starts the restore (tagged `cofre:restore=<run>`); the new resource's identifier. */
export async function startRdsRestore(
  plan: RdsPlan,
  rds: RDSClient,
  run: string,
): Promise<{ started: string }> {
  const Tags = [{ Key: RESTORE_TAG, Value: run }];
  // What every new resource takes from its source (or the input's overrides), and is tagged with.
  const placement = {
    ...(plan.subnetGroup ? { DBSubnetGroupName: plan.subnetGroup } : {}),
    VpcSecurityGroupIds: plan.securityGroupIds,
    DeletionProtection: false,
    Tags,
  };
  const instance = {
    ...placement,
    DBInstanceClass: plan.instanceClass,
    MultiAZ: plan.multiAz,
    ...(plan.parameterGroup ? { DBParameterGroupName: plan.parameterGroup } : {}),
  };
  const cluster = {
    ...placement,
    ...(plan.parameterGroup ? { DBClusterParameterGroupName: plan.parameterGroup } : {}),
    ...(plan.kmsKeyId ? { KmsKeyId: plan.kmsKeyId } : {}),
  };
  /** A restored cluster has no instance: its first one, which makes it reachable. */
  const firstInstance = () =>
    rds.send(
      new CreateDBInstanceCommand({
        DBInstanceIdentifier: plan.targetInstance!,
        DBClusterIdentifier: plan.target,
        DBInstanceClass: plan.instanceClass,
        Engine: plan.engine,
        Tags,
      }),
    );
  if (plan.kind === 'snapshot') {
    if (plan.resource === 'instance') {
      await rds.send(
        new RestoreDBInstanceFromDBSnapshotCommand({
          DBInstanceIdentifier: plan.target,
          DBSnapshotIdentifier: snapshotIdOf(plan.snapshotArn!),
          ...instance,
        }),
      );
      return { started: plan.target };
    }
    await rds.send(
      new RestoreDBClusterFromSnapshotCommand({
        DBClusterIdentifier: plan.target,
        SnapshotIdentifier: snapshotIdOf(plan.snapshotArn!),
        Engine: plan.engine,
        ...cluster,
      }),
    );
    await firstInstance();
    return { started: plan.target };
  }
  if (plan.resource === 'instance') {
    await rds.send(
      new RestoreDBInstanceToPointInTimeCommand({
        SourceDBInstanceIdentifier: plan.source,
        TargetDBInstanceIdentifier: plan.target,
        ...(plan.restoreTime
          ? { RestoreTime: new Date(plan.restoreTime) }
          : { UseLatestRestorableTime: true }),
        ...instance,
        CopyTagsToSnapshot: true,
      }),
    );
    return { started: plan.target };
  }
  await rds.send(
    new RestoreDBClusterToPointInTimeCommand({
      SourceDBClusterIdentifier: plan.source,
      DBClusterIdentifier: plan.target,
      RestoreType: 'full-copy',
      ...(plan.restoreTime
        ? { RestoreToTime: new Date(plan.restoreTime) }
        : { UseLatestRestorableTime: true }),
      ...cluster,
    }),
  );
  await firstInstance();
  return { started: plan.target };
}

export interface RdsRestoreStatus {
  /** The new resource's status (`creating`, …, `available`). */
  readonly status: string;
  readonly available: boolean;
  /** Longer than the restore's timeout and still not available. */
  readonly timedOut: boolean;
  readonly elapsedSeconds: number;
  /** Where to connect, once available. */
  readonly endpoint?: { readonly host: string; readonly port: number };
}

/**
 * Where the restore is: the new instance's status (Aurora: the cluster's and its first instance's,
 * available only when both are), and whether `timeoutSeconds` since `startedAt` have passed.
 */
export async function rdsRestoreStatus(
  plan: RdsPlan,
  rds: RDSClient,
  startedAt: string,
  timeoutSeconds: number,
  now: Date,
): Promise<RdsRestoreStatus> {
  let status: string;
  let endpoint: RdsRestoreStatus['endpoint'];
  if (plan.resource === 'instance') {
    const i = await instanceOf(rds, plan.target);
    status = i?.DBInstanceStatus ?? 'not found';
    if (i?.Endpoint?.Address)
      endpoint = { host: i.Endpoint.Address, port: i.Endpoint.Port ?? plan.port ?? 5432 };
  } else {
    const c = await clusterOf(rds, plan.target);
    const i = plan.targetInstance ? await instanceOf(rds, plan.targetInstance) : undefined;
    const cs = c?.Status ?? 'not found';
    const is = i?.DBInstanceStatus ?? 'not found';
    status = cs === 'available' && is === 'available' ? 'available' : `cluster ${cs}, instance ${is}`;
    if (c?.Endpoint) endpoint = { host: c.Endpoint, port: c.Port ?? plan.port ?? 5432 };
  }
  const elapsedSeconds = Math.max(0, Math.round((now.getTime() - Date.parse(startedAt)) / 1000));
  const available = status === 'available';
  return {
    status,
    available,
    timedOut: !available && elapsedSeconds >= timeoutSeconds,
    elapsedSeconds,
    ...(endpoint ? { endpoint } : {}),
  };
}

/** The snapshot identifier in a recovery point ARN (RDS takes the identifier for snapshots of its own account). */
export function snapshotIdOf(arn: string): string {
  const m = RECOVERY_POINT_ARN.exec(arn);
  if (!m) throw new Error(`not an RDS recovery point ARN: ${arn}`);
  return m[4]!;
}

/** What the snapshot input asks for (restore-input.ts). */
export interface SnapshotRequest {
  readonly recoveryPointArn: string;
  readonly targetIdentifier?: string | undefined;
  readonly instanceClass?: string | undefined;
  readonly multiAz?: boolean | undefined;
  readonly subnetGroup?: string | undefined;
  readonly securityGroupIds?: readonly string[] | undefined;
}

/** An RDS recovery point ARN (what AWS Backup lists for RDS/Aurora). */
export const RECOVERY_POINT_ARN =
  /^arn:aws[a-z-]*:rds:([a-z0-9-]+):(\d{12}):(snapshot|cluster-snapshot):([A-Za-z0-9:-]{1,255})$/;

/**
 * Checks a restore from a recovery point: in this account, in the primary or DR region, a snapshot
 * of this database that is available, the new identifier free there; the network of the new
 * resource is the source's in the primary region and must be given in the DR region (the source's
 * subnet group and security groups do not exist there).
 */
export async function planFromSnapshot(
  source: {
    readonly rdsInstanceId?: string | undefined;
    readonly rdsClusterId?: string | undefined;
    readonly id: string;
  },
  request: SnapshotRequest,
  where: {
    readonly account: string;
    readonly primaryRegion: string;
    readonly drRegion: string;
    readonly rdsIn: (region: string) => RDSClient;
  },
  now: Date,
  problems: string[],
): Promise<{ plan: RdsPlan; restorePoint: string } | undefined> {
  const m = RECOVERY_POINT_ARN.exec(request.recoveryPointArn);
  if (!m) {
    problems.push(
      `recoveryPointArn: expected the ARN of an RDS recovery point (AWS Backup > Backup vaults > the recovery point: arn:aws:rds:<region>:<account>:snapshot:awsbackup:job-…), got "${request.recoveryPointArn}"`,
    );
    return undefined;
  }
  const [, region, account, type, id] = m as unknown as [
    string,
    string,
    string,
    'snapshot' | 'cluster-snapshot',
    string,
  ];
  if (account !== where.account) {
    problems.push(
      `recoveryPointArn: expected a recovery point in this account (${where.account}), got one in ${account}: a restore never reads from or creates anything in another account`,
    );
    return undefined;
  }
  if (region !== where.primaryRegion && region !== where.drRegion) {
    problems.push(
      `recoveryPointArn: expected a recovery point in the primary (${where.primaryRegion}) or DR (${where.drRegion}) region, got one in ${region}`,
    );
    return undefined;
  }
  const resource = type === 'cluster-snapshot' ? 'cluster' : 'instance';
  const sourceId = resource === 'cluster' ? source.rdsClusterId : source.rdsInstanceId;
  if (!sourceId) {
    problems.push(
      `recoveryPointArn: expected a ${resource === 'cluster' ? 'cluster snapshot of an Aurora cluster (rdsClusterId)' : 'snapshot of an RDS instance (rdsInstanceId)'}, and ${source.id} has no ${resource === 'cluster' ? 'rdsClusterId' : 'rdsInstanceId'}`,
    );
    return undefined;
  }
  const rds = where.rdsIn(region);
  const dr = region === where.drRegion && region !== where.primaryRegion;
  let snapshot:
    | { of?: string; status?: string; created?: Date; engine?: string; kmsKeyId?: string; port?: number }
    | undefined;
  try {
    if (resource === 'instance') {
      const s = (await rds.send(new DescribeDBSnapshotsCommand({ DBSnapshotIdentifier: id })))
        .DBSnapshots?.[0];
      if (s)
        snapshot = {
          ...(s.DBInstanceIdentifier ? { of: s.DBInstanceIdentifier } : {}),
          ...(s.Status ? { status: s.Status } : {}),
          ...(s.SnapshotCreateTime ? { created: s.SnapshotCreateTime } : {}),
          ...(s.Engine ? { engine: s.Engine } : {}),
          ...(s.Port ? { port: s.Port } : {}),
        };
    } else {
      const s = (await rds.send(new DescribeDBClusterSnapshotsCommand({ DBClusterSnapshotIdentifier: id })))
        .DBClusterSnapshots?.[0];
      if (s)
        snapshot = {
          ...(s.DBClusterIdentifier ? { of: s.DBClusterIdentifier } : {}),
          ...(s.Status ? { status: s.Status } : {}),
          ...(s.SnapshotCreateTime ? { created: s.SnapshotCreateTime } : {}),
          ...(s.Engine ? { engine: s.Engine } : {}),
          ...(s.KmsKeyId ? { kmsKeyId: s.KmsKeyId } : {}),
          ...(s.Port ? { port: s.Port } : {}),
        };
    }
  } catch (error) {
    if (!notFound(error)) {
      problems.push(`recoveryPointArn: could not read it from RDS in ${region}: ${messageOf(error)}`);
      return undefined;
    }
  }
  if (!snapshot) {
    problems.push(
      `recoveryPointArn: expected an existing recovery point, got ${request.recoveryPointArn}, which does not exist`,
    );
    return undefined;
  }
  if (snapshot.of !== sourceId)
    problems.push(
      `recoveryPointArn: expected a recovery point of ${sourceId} (${source.id}), got one of ${snapshot.of ?? 'an unknown source'}`,
    );
  if (snapshot.status !== 'available')
    problems.push(
      `recoveryPointArn: expected an available recovery point, got one that is ${snapshot.status ?? 'of unknown status'}`,
    );
  // The source's settings, read in the primary region (the DR region has no source).
  const primary = where.rdsIn(where.primaryRegion);
  const live = resource === 'instance' ? await instanceOf(primary, sourceId) : undefined;
  const liveCluster = resource === 'cluster' ? await clusterOf(primary, sourceId) : undefined;
  if (dr && (!request.subnetGroup || !request.securityGroupIds?.length))
    problems.push(
      `subnetGroup / securityGroupIds: expected the DB subnet group and security groups of the new ${resource} in ${region} (the source's exist only in ${where.primaryRegion})`,
    );
  const target = request.targetIdentifier ?? defaultRdsTarget(sourceId, now);
  const taken = resource === 'instance' ? await instanceOf(rds, target) : await clusterOf(rds, target);
  if (taken)
    problems.push(
      `targetIdentifier: expected the identifier of a new ${resource} in ${region}, got "${target}", which already exists (a restore never replaces anything)`,
    );
  const targetInstance =
    resource === 'cluster' ? `${target.slice(0, 63 - '-instance-1'.length)}-instance-1` : undefined;
  const subnetGroup =
    request.subnetGroup ??
    (dr ? undefined : (live?.DBSubnetGroup?.DBSubnetGroupName ?? liveCluster?.DBSubnetGroup));
  const securityGroupIds = request.securityGroupIds
    ? [...request.securityGroupIds]
    : dr
      ? []
      : (live?.VpcSecurityGroups ?? liveCluster?.VpcSecurityGroups ?? []).flatMap((g) =>
          g.VpcSecurityGroupId ? [g.VpcSecurityGroupId] : [],
        );
  const parameterGroup = dr
    ? undefined
    : (live?.DBParameterGroups?.[0]?.DBParameterGroupName ?? liveCluster?.DBClusterParameterGroup);
  return {
    restorePoint: (snapshot.created ?? now).toISOString(),
    plan: {
      kind: 'snapshot',
      snapshotArn: request.recoveryPointArn,
      region,
      resource,
      source: sourceId,
      target,
      ...(targetInstance ? { targetInstance } : {}),
      engine: snapshot.engine ?? live?.Engine ?? liveCluster?.Engine ?? 'postgres',
      instanceClass: request.instanceClass ?? live?.DBInstanceClass ?? 'db.r6g.large',
      multiAz: request.multiAz ?? live?.MultiAZ ?? liveCluster?.MultiAZ ?? false,
      ...(subnetGroup ? { subnetGroup } : {}),
      securityGroupIds,
      ...(parameterGroup ? { parameterGroup } : {}),
      ...(snapshot.kmsKeyId ? { kmsKeyId: snapshot.kmsKeyId } : {}),
      ...(snapshot.port ? { port: snapshot.port } : {}),
    },
  };
}
