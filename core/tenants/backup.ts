/**
 * Per-tenant backups: one tenant's rows, exported in one consistent snapshot (export.ts), streamed
 * through the same pipeline as full backups (zstd → AWS Encryption SDK → vault, the end held back
 * until the export finished cleanly), with a manifest that lists per-table row counts and the
 * plan used. Kept under `tenants/<source>/<database>/<tenant>/<backup id>/`, tier `tenant`.
 */
import type { HeldChainLock } from '../catalog/chain-lock';
import { DEFAULT_TIME_ZONE } from '../backup/backup';
import { COFRE_VERSION } from '../util/version';
import { priorTenantBackupsOf, withChainLock } from '../catalog/catalog';
import { tenantBackupFolder, tenantChainPrefix } from '../catalog/keys';
import { describeConnection, quoteIdentifier, type Connection } from '../sources/connection';
import { FieldError, IntegrityError, UsageError, messageOf } from '../util/errors';
import { newBackupId, type Manifest, type ManifestTenant } from '../catalog/manifest';
import { DEFAULT_ZSTD_LEVEL, type Progress } from '../backup/stream-encoder';
import { writeBackup, type BackupRunSettings } from '../backup/write';
import { CLASS_TAG, DEFAULT_RETENTION, GENERAL_CLASS, retentionFor, TIER_TAG } from '../policy/retention';
import { connectMysql, mysqlInfo } from '../sources/mysql';
import { connectPostgres, postgresInfo } from '../sources/postgres';
import type { SourceInfo } from '../sources/types';
import { checkCoverage, coverageProblems } from './coverage';
import { loadColumns, startTenantExport } from './export';
import { discoverTenantPlan, type TenantModel, type TenantPlan } from './plan';
import { withRun } from '../util/run-context';

export interface TenantBackupOptions extends BackupRunSettings {
  /** The database (its name in the URL) holding the tenants. */
  readonly connection: Connection;
  readonly model: TenantModel;
  /** Tenant ids, or every row of the tenant table. */
  readonly tenants: readonly string[] | 'all';
  /** Tenants exported at the same time (each on its own connection). Default 2. */
  readonly concurrency?: number | undefined;
  /** `tenants: 'all'`: go ahead although the coverage check finds rows owned by no tenant or by several. */
  readonly acceptUnownedRows?: boolean | undefined;
  readonly sourceId?: string | undefined;
  readonly onProgress?: ((tenant: string, progress: Progress) => void) | undefined;
}

export type TenantBackupOutcome =
  | { readonly ok: true; readonly tenant: string; readonly folder: string; readonly manifest: Manifest }
  | { readonly ok: false; readonly tenant: string; readonly error: string; readonly exitCode: number };

export const DEFAULT_TENANT_CONCURRENCY = 2;

/** Every tenant id (the tenant table's key column, as text), sorted. */
export async function listTenants(connection: Connection, model: TenantModel): Promise<string[]> {
  const plan = await discoverTenantPlan(connection, model);
  return listPlanTenants(connection, plan);
}

async function listPlanTenants(connection: Connection, plan: TenantPlan): Promise<string[]> {
  const t = plan.tables.find((x) => x.kind === 'tenant-table')!;
  const key = quoteIdentifier(plan.engine, t.filterColumn);
  if (plan.engine === 'postgres') {
    const client = await connectPostgres(connection, plan.database);
    try {
      const { rows } = await client.query<{ id: string }>(
        `SELECT ${key}::text AS id FROM ${quoteIdentifier('postgres', t.schema)}.${quoteIdentifier('postgres', t.name)} ORDER BY 1`,
      );
      return rows.map((r) => r.id);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const conn = await connectMysql(connection, plan.database);
  try {
    const [rows] = await conn.query(
      `SELECT CAST(${key} AS CHAR) AS id FROM ${quoteIdentifier('mysql', t.name)} ORDER BY 1`,
    );
    return (rows as { id: string }[]).map((r) => r.id);
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** The manifest's record of the plan. */
export function manifestTenant(
  plan: TenantPlan,
  tenant: string,
  contentHashes: Readonly<Record<string, string>> = {},
): ManifestTenant {
  return {
    id: tenant,
    model: {
      table: plan.model.table,
      keyColumn: plan.model.keyColumn,
      tenantColumn: plan.model.tenantColumn,
    },
    tables: plan.tables.map((t) => ({
      key: t.key,
      schema: t.schema,
      name: t.name,
      kind: t.kind,
      filterColumn: t.filterColumn,
      columns: loadColumns(t),
      path: t.path.map((h) => h.constraint),
      ...(t.paths.length > 1 ? { paths: t.paths.map((p) => p.hops.map((h) => h.constraint)) } : {}),
      ...(contentHashes[t.key] ? { contentHash: contentHashes[t.key] } : {}),
      dependsOn: [...t.dependsOn],
    })),
    shared: plan.shared.map((s) => s.key),
    selfReferences: plan.selfReferences.map((s) => s.table),
  };
}

/**
 * Backs up each requested tenant as its own backup, `concurrency` at a time. A tenant that fails
 * is reported by id and does not stop the others; nothing of it is kept.
 */
export function runTenantBackup(options: TenantBackupOptions): Promise<TenantBackupOutcome[]> {
  // One cancellation path: every tool and session of this run stops with `options.signal`.
  return withRun({ signal: options.signal }, () => runTenantBackupInRun(options));
}

async function runTenantBackupInRun(options: TenantBackupOptions): Promise<TenantBackupOutcome[]> {
  const c = options.connection;
  if (!c.database)
    throw new UsageError('--url: expected the database that holds the tenants in the URL path');
  const concurrency = options.concurrency ?? DEFAULT_TENANT_CONCURRENCY;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 32)
    throw new FieldError('concurrency', `expected a whole number from 1 to 32, got ${String(concurrency)}`);
  const dataClass = options.dataClass ?? GENERAL_CLASS;
  try {
    retentionFor('tenant', dataClass, options.retention ?? DEFAULT_RETENTION);
  } catch (error) {
    throw new FieldError('dataClass', messageOf(error));
  }
  if (options.sourceId !== undefined && !/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(options.sourceId))
    throw new FieldError(
      'sourceId',
      `expected letters, digits, ".", "_" or "-" (at most 63), got "${options.sourceId}"`,
    );
  const plan = await discoverTenantPlan(c, options.model);
  const known = await listPlanTenants(c, plan);
  let tenants: string[];
  if (options.tenants === 'all') {
    tenants = known;
    if (tenants.length === 0) throw new UsageError(`--all-tenants: ${plan.tenantTable.key} has no rows`);
    const coverage = await checkCoverage(c, plan);
    const problems = coverageProblems(coverage);
    options.log?.(
      `coverage check of ${plan.database}: ${coverage.unowned} rows owned by no tenant, ${coverage.multiOwned} by more than one (${(coverage.durationMs / 1000).toFixed(1)} s)`,
    );
    if (problems.length && !options.acceptUnownedRows)
      throw new UsageError(
        `--all-tenants: the tenant backups would not hold every row of the tenant tables exactly once; nothing was backed up:\n  ${problems.join('\n  ')}\n  (rows owned by no tenant are only in full backups; see "cofre tenant plan --check"; --accept-unowned-rows goes ahead)`,
      );
  } else {
    tenants = [...new Set(options.tenants)];
    if (tenants.length === 0) throw new UsageError('--tenant: expected at least one tenant id');
    const knownSet = new Set(known);
    const missing = tenants.filter((t) => !knownSet.has(t));
    if (missing.length)
      throw new UsageError(
        `--tenant: no tenant ${missing.map((m) => JSON.stringify(m)).join(', ')} in ${plan.tenantTable.key}.${plan.model.keyColumn} of ${describeConnection(c)}`,
      );
  }
  const info = c.engine === 'postgres' ? await postgresInfo(c) : await mysqlInfo(c);
  const sourceId = options.sourceId ?? c.database.replace(/[^A-Za-z0-9._-]/g, '-');
  const log = options.log ?? (() => undefined);
  const outcomes = new Map<string, TenantBackupOutcome>();
  let next = 0;
  const worker = async () => {
    while (next < tenants.length) {
      const tenant = tenants[next++]!;
      if (options.signal?.aborted) {
        outcomes.set(tenant, { ok: false, tenant, error: 'not started: the run was cancelled', exitCode: 1 });
        continue;
      }
      try {
        // One backup of a tenant's chain at a time: a second run fails here, before writing anything.
        const outcome = await withChainLock(
          options.vault,
          tenantChainPrefix(sourceId, plan.database, tenant),
          (lock) => backupTenant(options, plan, info, sourceId, tenant, lock),
          log,
          { staleAfterMs: options.chainLockStaleAfterMs },
        );
        outcomes.set(tenant, outcome);
      } catch (error) {
        const message = messageOf(error);
        log(`FAILED tenant ${tenant}: ${message}`);
        outcomes.set(tenant, {
          ok: false,
          tenant,
          error: message,
          exitCode: error instanceof UsageError ? 2 : error instanceof IntegrityError ? 3 : 1,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tenants.length) }, worker));
  return tenants.map((t) => outcomes.get(t)!);
}

async function backupTenant(
  options: TenantBackupOptions,
  plan: TenantPlan,
  info: SourceInfo,
  sourceId: string,
  tenant: string,
  lock: HeldChainLock,
): Promise<TenantBackupOutcome> {
  const now = options.now ?? (() => new Date());
  const c = options.connection;
  const database = plan.database;
  const dataClass = options.dataClass ?? GENERAL_CLASS;
  const zstdLevel = options.zstdLevel ?? DEFAULT_ZSTD_LEVEL;
  const retention = retentionFor('tenant', dataClass, options.retention ?? DEFAULT_RETENTION);
  const startedAt = now();
  const backupId = newBackupId(startedAt);
  const prior = await priorTenantBackupsOf(options.vault, sourceId, database, tenant, options.log);
  const folder = tenantBackupFolder(sourceId, database, tenant, backupId);
  const tags = { [TIER_TAG]: 'tenant', [CLASS_TAG]: dataClass };
  const encryptionContext = {
    'cofre:backup-id': backupId,
    'cofre:source': sourceId,
    'cofre:database': database,
    'cofre:tenant': tenant,
    'cofre:tier': 'tenant',
  };
  const dump = await startTenantExport(c, plan, tenant);
  const { manifest, result } = await writeBackup({
    vault: options.vault,
    keys: options.keys,
    folder,
    artifactName: 'tenant.sql.zst.enc',
    dump,
    tags,
    retention,
    encryptionContext,
    zstdLevel,
    latest: prior.latest,
    startedAt,
    now,
    signal: options.signal,
    onProgress: (p) => options.onProgress?.(tenant, p),
    // The commit point: only while this run still holds the tenant chain's lock.
    beforeManifest: () => lock.confirm(),
    body: () => ({
      backupId,
      kind: 'tenant',
      tenant: manifestTenant(plan, tenant, dump.contentHashes()),
      engine: c.engine,
      serverVersion: info.serverVersion,
      toolVersions: { cofre: COFRE_VERSION, node: process.versions.node },
      sourceId,
      source: { host: c.host, port: c.port, user: c.user, database },
      tier: 'tenant',
      dataClass,
      timeZone: options.timeZone ?? DEFAULT_TIME_ZONE,
    }),
  });
  const rows = result.tables.reduce((n, t) => n + t.rows, 0);
  options.log?.(
    `tenant backup ${backupId} of tenant ${tenant} (${database}): ${result.tables.length} tables, ${rows} rows, ${result.rawBytes} bytes exported, ${result.storedBytes} stored`,
  );
  return { ok: true, tenant, folder, manifest };
}
