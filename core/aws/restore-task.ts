/**
 * The Fargate task's side of a console restore (state-machines/restore.asl.json): task command
 * `restore` runs the plan that restore-validate.ts checked, with the same engines as `cofre restore`
 * (core/restore.ts, core/tenants/restore.ts); task command `restore-check` is the post-restore check.
 *
 * Before anything is touched, `restore` checks what the validation Lambda cannot see from outside the
 * database network: a new target must not exist yet, an existing one must exist. A failed or
 * cancelled restore leaves nothing that looks restored (the engines restore into a temporary copy,
 * or in one transaction, and drop what they made).
 *
 * `restore-check` connects to the restored database and counts rows, comparing them with the manifest
 * of the backup nearest before the restore point (for a logical restore: the backup itself, whose
 * counts were taken inside the dump's snapshot): the live rows are the independent source.
 */
import { readCatalog } from '../catalog/catalog';
import { chainPrefix, fullSourcePrefix, sourcePrefixes, tenantChainPrefix } from '../catalog/keys';
import { quoteIdentifier, type Connection } from '../sources/connection';
import { UsageError, messageOf } from '../util/errors';
import { probeProgress } from '../util/progress';
import type { Manifest } from '../catalog/manifest';
import { restoreBackup } from '../restore/restore';
import { withAdmin } from '../sources/admin';
import { connectMysql } from '../sources/mysql';
import { connectPostgres } from '../sources/postgres';
import { discoverTenantPlan, ownershipWhere, tenantLiteral } from '../tenants/plan';
import { restoreTenant } from '../tenants/restore';
import { probeRestoring, type RestoreTestDeps } from '../verify/restore-test';
import type { Vault } from '../vault';
import { NamedError } from './task-errors';
import type { ContainerJob } from './job';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { describeTarget, targetConnection } from './restore-target';
import {
  rejection,
  restorePlanSchema,
  isRdsPlan,
  type LogicalPlan,
  type RdsJobPlan,
  type RestorePlan,
} from './restore-validate';

/** The post-restore check found the restored data different from the manifest. */
export const POST_CHECK_FAILED = 'Cofre.PostCheckFailed';

/**
 * The same dependencies as the scheduled restore test (the job database's server, the vault, keys),
 * and Secrets Manager for a restore into a named restore target (its secret is read at run time).
 */
export type ConsoleRestoreDeps = RestoreTestDeps & {
  readonly secrets?: SecretsManagerClient | undefined;
};

/**
 * The server a logical plan restores into: the job database's own (deps.connection), or the named
 * restore target's (its secret, read now), with how messages name it.
 */
export async function restoreServer(
  job: ContainerJob,
  plan: LogicalPlan,
  deps: ConsoleRestoreDeps,
): Promise<{ connection: Connection; where: string }> {
  if (!plan.target) {
    const c = deps.connection;
    return { connection: c, where: `${c.host}:${c.port}` };
  }
  const connection = await targetConnection(job.database.engine, plan.target, deps.secrets);
  return { connection, where: describeTarget(plan.target, connection) };
}

/** What the restore task reports (SendTaskSuccess). */
export interface ConsoleRestoreOutput {
  readonly kind: LogicalPlan['kind'];
  readonly backupId: string;
  readonly targetDatabase: string;
  readonly table?: string;
  readonly tenant?: string;
  readonly dryRun?: boolean;
  /** Tables restored (or, for a tenant, the tenant's tables). */
  readonly tables: number;
  /** Rows restored (tenant: loaded, or that would be). */
  readonly rows: number;
  /** Tenant: the tenant's rows deleted first (or that would be). */
  readonly deleted?: number;
  /** database kind: an existing target was replaced (confirmed). */
  readonly replaced?: boolean;
  /** The restore itself, from the first byte read to the checked copy. */
  readonly durationMs: number;
}

/** What the post-restore check reports. */
export interface RestoreCheckOutput {
  readonly targetDatabase: string;
  /** The manifest compared with. */
  readonly manifestBackupId: string;
  readonly tablesCompared: number;
  readonly rowsCompared: number;
  readonly checks: readonly string[];
}

/** The plan of a restore job (COFRE_JOB.restore), or a bad-input error naming the field. */
export function restorePlanOf(job: ContainerJob): RestorePlan {
  const parsed = restorePlanSchema.safeParse((job as { restore?: unknown }).restore);
  if (!parsed.success)
    throw new UsageError(
      `COFRE_JOB.restore: ${parsed.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/** Whether a database of that name exists on the server. */
export async function databaseExists(c: Connection, name: string): Promise<boolean> {
  return withAdmin(c, async (query) => {
    const literal = `'${name.replace(/\\/g, c.engine === 'mysql' ? '\\\\' : '\\').replace(/'/g, "''")}'`;
    const rows =
      c.engine === 'postgres'
        ? await query(`SELECT 1 AS found FROM pg_database WHERE datname = ${literal}`)
        : await query(`SELECT 1 AS found FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ${literal}`);
    return rows.length > 0;
  });
}

/** Runs the restore of a validated plan. */
export async function runConsoleRestore(
  job: ContainerJob,
  deps: ConsoleRestoreDeps,
): Promise<ConsoleRestoreOutput> {
  const plan = restorePlanOf(job);
  if (isRdsPlan(plan))
    throw new UsageError('COFRE_JOB.restore.kind: a point-in-time restore is made by RDS, not by the task');
  const log = deps.log ?? (() => undefined);
  const { connection: c, where } = await restoreServer(job, plan, deps);
  const exists = await databaseExists(c, plan.targetDatabase);
  if (plan.targetIs === 'new' && exists)
    throw rejection([
      `${plan.kind === 'tenant' ? 'intoDatabase' : 'targetDatabase'}: expected the name of a new database, got "${plan.targetDatabase}", which already exists on ${where} (choose another name${plan.kind === 'database' ? ', or replace it with replace: true and confirm' : ''})`,
    ]);
  if (plan.targetIs === 'existing' && plan.kind !== 'database' && !exists)
    throw rejection([
      `targetDatabase: expected an existing database, got "${plan.targetDatabase}", which does not exist on ${where}`,
    ]);
  const target: Connection = { ...c, database: plan.targetDatabase };
  const prefixes = sourcePrefixes(job.database.id);
  log(`restore (${plan.kind}) of backup ${plan.backupId} into ${plan.targetDatabase} on ${where}`);
  const stopProbe = deps.onProgress
    ? probeRestoring(c, plan.targetDatabase, deps.onProgress, deps.probeIntervalMs ?? 60_000)
    : () => undefined;
  try {
    return await runPlan(job, plan, { ...deps, connection: c }, target, prefixes, log);
  } finally {
    stopProbe();
  }
}

async function runPlan(
  job: ContainerJob,
  plan: LogicalPlan,
  deps: ConsoleRestoreDeps,
  target: Connection,
  prefixes: string[],
  log: (line: string) => void,
): Promise<ConsoleRestoreOutput> {
  const c = deps.connection;
  if (plan.kind === 'tenant') {
    const report = await restoreTenant({
      vault: deps.vault,
      backupId: plan.backupId,
      prefixes,
      keys: deps.keys,
      target: { ...c, database: plan.targetIs === 'new' ? plan.sourceDatabase : plan.targetDatabase },
      tenant: plan.tenant!,
      model: job.database.tenants,
      dryRun: plan.dryRun,
      ...(plan.targetIs === 'new' ? { intoDatabase: plan.targetDatabase } : {}),
      acceptUnownedRows: plan.acceptUnownedRows,
      signal: deps.signal,
      log,
      now: deps.now,
    });
    return {
      kind: 'tenant',
      backupId: report.backupId,
      targetDatabase: report.target.database,
      tenant: report.tenant,
      dryRun: report.mode === 'dry-run',
      tables: report.tables.length,
      rows: report.loaded,
      deleted: report.deleted,
      durationMs: report.durationMs,
    };
  }
  const report = await restoreBackup({
    vault: deps.vault,
    backupId: plan.backupId,
    prefixes,
    keys: deps.keys,
    target,
    table: plan.table,
    intoTable: plan.intoTable,
    force: plan.replace,
    // Another server has none of the source's roles: its objects belong to the target's user.
    ...(plan.target ? { noOwner: true, noAcl: true } : {}),
    jobs: 'auto',
    signal: deps.signal,
    log,
    now: deps.now,
  });
  return {
    kind: plan.kind,
    backupId: report.backupId,
    targetDatabase: report.target.database,
    ...(report.target.table ? { table: report.target.table } : {}),
    tables: report.tables.length,
    rows: report.rows,
    ...(report.replaced !== undefined ? { replaced: report.replaced } : {}),
    durationMs: report.durationMs,
  };
}

/**
 * The manifest of the newest valid backup of `database` started at or before `point` (full backups,
 * or one tenant's exports): what the restored data is compared with.
 */
export async function nearestManifestBefore(
  vault: Vault,
  sourceId: string,
  database: string,
  point: string,
  tenant?: string,
): Promise<Manifest | undefined> {
  const prefix =
    tenant === undefined ? chainPrefix(sourceId, database) : tenantChainPrefix(sourceId, database, tenant);
  const manifests = (await readCatalog(vault, prefix))
    .flatMap((e) => (e.manifest ? [e.manifest] : []))
    .filter((m) => m.startedAt <= point)
    .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  return manifests[manifests.length - 1];
}

/**
 * Whether the database session `id` is running a statement that is not waiting for a lock: a count
 * that is working (reading pages), not one that is stuck.
 */
export async function sessionIsWorking(c: Connection, id: number): Promise<boolean> {
  return withAdmin(c, async (query) => {
    const rows =
      c.engine === 'postgres'
        ? await query(
            `SELECT 1 AS working FROM pg_stat_activity WHERE pid = ${id} AND state = 'active' AND coalesce(wait_event_type, '') <> 'Lock'`,
          )
        : await query(
            `SELECT 1 AS working FROM information_schema.PROCESSLIST WHERE ID = ${id} AND COMMAND = 'Query' AND COALESCE(STATE, '') NOT LIKE '%lock%'`,
          );
    return rows.length > 0;
  });
}

/** How often a running count is looked at (default 60 s, the task's heartbeat interval). */
const COUNT_PROBE_MS = 60_000;

/**
 * Runs one count with progress: every `intervalMs` while it runs, another session asks the server
 * whether the counting session is working (not waiting for a lock); each yes is progress, so the task
 * keeps heartbeating through a count longer than HeartbeatSeconds, and a stuck one lets it trip.
 */
async function countWithProgress<T>(
  c: Connection,
  session: number,
  count: () => Promise<T>,
  onProgress: (() => void) | undefined,
  intervalMs: number,
): Promise<T> {
  if (!onProgress) return count();
  const stop = probeProgress(() => sessionIsWorking(c, session), onProgress, intervalMs);
  try {
    return await count();
  } finally {
    stop();
  }
}

/**
 * Row counts of tables of one database. Progress (`onProgress`): each table counted, and while one
 * count runs, each look (every `probeIntervalMs`) that finds it working.
 */
export async function countTables(
  c: Connection,
  database: string,
  tables: readonly { schema: string; name: string; where?: string }[],
  onProgress?: () => void,
  probeIntervalMs = COUNT_PROBE_MS,
): Promise<number[]> {
  const q = (n: string) => quoteIdentifier(c.engine, n);
  if (c.engine === 'postgres') {
    const client = await connectPostgres(c, database);
    try {
      const { rows: me } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const session = me[0]!.pid;
      const out: number[] = [];
      for (const t of tables) {
        const { rows } = await countWithProgress(
          c,
          session,
          () =>
            client.query<{ n: string }>(
              `SELECT count(*) AS n FROM ONLY ${q(t.schema)}.${q(t.name)} AS t0${t.where ? ` WHERE ${t.where}` : ''}`,
            ),
          onProgress,
          probeIntervalMs,
        );
        out.push(Number(rows[0]!.n));
        onProgress?.();
      }
      return out;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const conn = await connectMysql(c, database);
  try {
    const [me] = await conn.query('SELECT CONNECTION_ID() AS id');
    const session = Number((me as { id: unknown }[])[0]!.id);
    const out: number[] = [];
    for (const t of tables) {
      const [rows] = await countWithProgress(
        c,
        session,
        () => conn.query(`SELECT COUNT(*) AS n FROM ${q(t.name)} AS t0${t.where ? ` WHERE ${t.where}` : ''}`),
        onProgress,
        probeIntervalMs,
      );
      out.push(Number((rows as { n: unknown }[])[0]!.n));
      onProgress?.();
    }
    return out;
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/**
 * The post-restore check: connects to the restored database and compares row counts with the
 * manifest nearest before the restore point. A difference is `Cofre.PostCheckFailed`, naming each
 * table.
 */
export async function runRestoreCheck(
  job: ContainerJob,
  deps: ConsoleRestoreDeps,
): Promise<RestoreCheckOutput> {
  const plan = restorePlanOf(job);
  if (isRdsPlan(plan)) return runRdsCheck(job, plan, deps);
  const { connection: c, where } = await restoreServer(job, plan, deps);
  const log = deps.log ?? (() => undefined);
  const manifest = await nearestManifestBefore(
    deps.vault,
    job.database.id,
    plan.sourceDatabase,
    plan.backupStartedAt,
    plan.backupKind === 'tenant' ? plan.tenant : undefined,
  );
  if (!manifest)
    throw new NamedError(
      POST_CHECK_FAILED,
      `no valid manifest of ${job.database.id}/${plan.sourceDatabase} at or before ${plan.backupStartedAt} to compare the restored ${plan.targetDatabase} with`,
    );
  const base = { targetDatabase: plan.targetDatabase, manifestBackupId: manifest.backupId };
  const tables = manifest.artifacts.flatMap((a) => a.tables);
  // The restored copy of a MySQL database has the target's name as its schema.
  const schemaOf = (schema: string) => (c.engine === 'mysql' ? plan.targetDatabase : schema);
  let compared: { label: string; expected: number; schema: string; name: string; where?: string }[];
  const checks: string[] = [];
  if (plan.kind === 'database') {
    compared = tables.map((t) => ({
      label: `${t.schema}.${t.name}`,
      expected: t.rows,
      schema: schemaOf(t.schema),
      name: t.name,
    }));
  } else if (plan.kind === 'table') {
    const wanted = plan.table!;
    const t = tables.find((x) =>
      wanted.includes('.') ? `${x.schema}.${x.name}` === wanted : x.name === wanted,
    );
    if (!t)
      throw new NamedError(
        POST_CHECK_FAILED,
        `table ${wanted} is not in the manifest of ${manifest.backupId}`,
      );
    const name = plan.intoTable ?? t.name;
    compared = [{ label: `${t.schema}.${name}`, expected: t.rows, schema: schemaOf(t.schema), name }];
  } else if (plan.dryRun) {
    // A dry run changed nothing: the check is that the live database answers.
    await countTables(c, plan.targetDatabase, []);
    checks.push(`connected to ${plan.targetDatabase}: dry run, nothing was changed`);
    return { ...base, tablesCompared: 0, rowsCompared: 0, checks };
  } else if (plan.backupKind === 'tenant') {
    // The tenant's rows per table, found with the tenant plan of the restored database.
    const model = job.database.tenants ?? manifest.tenant!.model;
    const tenantPlan = await discoverTenantPlan({ ...c, database: plan.targetDatabase }, model);
    const literal = tenantLiteral(c.engine, plan.tenant!);
    compared = tables.map((t) => {
      const planned = tenantPlan.tables.find(
        (p) => p.name === t.name && (c.engine === 'mysql' || p.schema === t.schema),
      );
      return {
        label: `${t.schema}.${t.name}`,
        expected: t.rows,
        schema: schemaOf(t.schema),
        name: t.name,
        where: planned ? ownershipWhere(c.engine, planned, literal) : 'false',
      };
    });
  } else {
    // From a full backup the manifest has every tenant's rows: the tenant row itself is checked.
    const model = job.database.tenants!;
    const [schema, name] = model.table.includes('.')
      ? model.table.split('.')
      : [c.engine === 'postgres' ? 'public' : plan.targetDatabase, model.table];
    compared = [
      {
        label: `${model.table} (tenant ${plan.tenant})`,
        expected: 1,
        schema: schema!,
        name: name!,
        where: `t0.${quoteIdentifier(c.engine, model.keyColumn)} = ${tenantLiteral(c.engine, plan.tenant!)}`,
      },
    ];
  }
  let actual: number[];
  try {
    // Each counted table is progress, and so is a long count the server is working on: the task
    // heartbeats while a large copy is counted.
    actual = await countTables(c, plan.targetDatabase, compared, deps.onProgress, deps.probeIntervalMs);
  } catch (error) {
    throw new NamedError(
      POST_CHECK_FAILED,
      `could not count the rows of the restored ${plan.targetDatabase} on ${where}: ${messageOf(error)}`,
    );
  }
  const problems: string[] = [];
  compared.forEach((t, i) => {
    if (actual[i] !== t.expected)
      problems.push(`${t.label}: ${actual[i]} rows, the manifest of ${manifest.backupId} has ${t.expected}`);
  });
  if (problems.length)
    throw new NamedError(
      POST_CHECK_FAILED,
      `the restored ${plan.targetDatabase} differs from the manifest of ${manifest.backupId} (${manifest.startedAt}): ${problems.join('; ')}`,
    );
  const rows = actual.reduce((a, b) => a + b, 0);
  checks.push(
    `connected to ${plan.targetDatabase}${plan.target ? ` on ${where}` : ''}; ${compared.length} table(s), ${rows} rows equal to the manifest of ${manifest.backupId}`,
  );
  log(checks[checks.length - 1]!);
  return { ...base, tablesCompared: compared.length, rowsCompared: rows, checks };
}

/**
 * The post-check of a point-in-time copy: connects to the new instance or cluster (the source's
 * credentials: a restored copy keeps its master user) and, for each database with a full backup at or
 * before the restore point, counts the rows of every table of that backup's manifest. A table of the
 * manifest that is missing or unreadable fails the check; the counts are reported next to the
 * manifest's (rows written between the backup and the restore point make them differ legitimately).
 */
async function runRdsCheck(
  job: ContainerJob,
  plan: RdsJobPlan,
  deps: ConsoleRestoreDeps,
): Promise<RestoreCheckOutput> {
  if (!plan.endpoint)
    throw new UsageError(
      'COFRE_JOB.restore.endpoint: the post-check needs the endpoint of the restored copy',
    );
  const c: Connection = { ...deps.connection, host: plan.endpoint.host, port: plan.endpoint.port };
  const db = job.database;
  try {
    await withAdmin(c, (query) => query('SELECT 1'));
  } catch (error) {
    throw new NamedError(
      POST_CHECK_FAILED,
      `could not connect to the restored ${plan.rds.target} at ${c.host}:${c.port}: ${messageOf(error)}`,
    );
  }
  const names = Array.isArray(db.databases)
    ? db.databases
    : [
        ...new Set(
          (await readCatalog(deps.vault, fullSourcePrefix(db.id))).flatMap((e) =>
            e.manifest?.kind === 'full' && e.manifest.source.database ? [e.manifest.source.database] : [],
          ),
        ),
      ];
  const problems: string[] = [];
  const checks: string[] = [`connected to ${plan.rds.target} at ${c.host}:${c.port}`];
  let tables = 0;
  let rows = 0;
  let compared: string | undefined;
  for (const name of names.filter((n) => !db.excludeDatabases.includes(n))) {
    const manifest = await nearestManifestBefore(deps.vault, db.id, name, plan.restorePoint);
    if (!manifest) {
      checks.push(`${name}: no full backup at or before ${plan.restorePoint} to compare with`);
      continue;
    }
    compared ??= manifest.backupId;
    const list = manifest.artifacts.flatMap((a) => a.tables);
    let counts: number[] = [];
    try {
      counts = await countTables(
        c,
        name,
        list.map((t) => ({ schema: c.engine === 'mysql' ? name : t.schema, name: t.name })),
        deps.onProgress,
        deps.probeIntervalMs,
      );
    } catch (error) {
      problems.push(`${name}: ${messageOf(error)}`);
      continue;
    }
    tables += list.length;
    rows += counts.reduce((a, b) => a + b, 0);
    const deltas = list
      .map((t, i) => ({ t, d: counts[i]! - t.rows }))
      .filter((x) => x.d !== 0)
      .map((x) => `${x.t.schema}.${x.t.name} ${x.d > 0 ? '+' : ''}${x.d}`);
    checks.push(
      `${name}: ${list.length} tables of backup ${manifest.backupId} (${manifest.startedAt}) present, ${counts.reduce((a, b) => a + b, 0)} rows${deltas.length ? `; changed since that backup: ${deltas.join(', ')}` : ', as in that backup'}`,
    );
  }
  if (problems.length)
    throw new NamedError(
      POST_CHECK_FAILED,
      `the restored ${plan.rds.target} (${c.host}:${c.port}) does not hold what its backups say: ${problems.join('; ')}`,
    );
  return {
    targetDatabase: plan.rds.target,
    manifestBackupId: compared ?? 'none',
    tablesCompared: tables,
    rowsCompared: rows,
    checks,
  };
}
