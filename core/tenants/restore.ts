/**
 * Restore one tenant into a live database without touching the others: in ONE transaction, delete
 * the tenant's current rows (children first), load the backup's rows (parents first), check every
 * table's count against the backup, move sequences above the restored ids, commit. Any error rolls
 * the whole transaction back, so the tenant is either fully restored or exactly as it was.
 *
 * The rows come from a tenant backup, or from a full backup: that is first restored into a
 * temporary scratch database on the target server, the tenant exported from it (export.ts) and
 * loaded the same way; the scratch database is always dropped.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { RowDataPacket } from 'mysql2/promise';
import { findBackup } from '../catalog/catalog';
import { describeConnection, quoteIdentifier, type Connection } from '../sources/connection';
import type { Keys } from '../vault/crypto';
import { checkKeyFits } from '../offline/decrypt';
import { IntegrityError, OperationalError, UsageError, messageOf } from '../util/errors';
import type { Artifact, Manifest } from '../catalog/manifest';
import type { OnProgress } from '../util/progress';
import { requireStoredIntact, requireValidManifest, verifiedPlaintext } from '../catalog/artifact-reader';
import { ensurePacket } from '../restore/mysql';
import { restoreBackup } from '../restore/restore';
import { dropDatabaseIfExists } from '../sources/admin';
import { connectMysql, mysqlOptionFile, spawnMysqlClient } from '../sources/mysql';
import { connectPostgres, postgresEnv } from '../sources/postgres';
import { spawnTool } from '../sources/process';
import type { TableCount } from '../sources/types';
import { impactLines, inSnapshot, tenantImpact, type TenantImpact } from './coverage';
import { loadColumns, qualifiedName, startTenantExport } from './export';
import { SectionReader, lines } from './format';
import {
  discoverTenantPlan,
  ownershipWhere,
  tenantLiteral,
  type TenantModel,
  type TenantPlan,
  type TenantPlanTable,
} from './plan';
import { withCancellableRun } from '../util/run-context';
import { withSession, type RowWriter, type Session } from './session';

export interface TenantRestoreOptions {
  readonly vault: import('../vault').Vault;
  readonly backupId: string;
  /** Look for the backup under these key prefixes only (default: the whole vault). */
  readonly prefixes?: readonly string[] | undefined;
  readonly keys: Keys;
  /** The live database that holds the tenants (the URL's database). */
  readonly target: Connection;
  readonly tenant: string;
  /** Tenant model; a tenant backup carries its own (this must then agree), a full backup needs it. */
  readonly model?: TenantModel | undefined;
  /** Report what would be deleted and loaded per table; change nothing. */
  readonly dryRun?: boolean | undefined;
  /** Restore into this new database (schema and shared tables copied from the target) instead. */
  readonly intoDatabase?: string | undefined;
  /**
   * Let the target's triggers fire for the deleted and loaded rows. Default: PostgreSQL switches
   * user triggers off for the transaction (the rows are restored as they were, audit rows
   * included); MySQL cannot, so it refuses a restore into tables that have triggers.
   */
  readonly fireTriggers?: boolean | undefined;
  /**
   * Go ahead although the restore's deletes reach rows the plan does not own for this tenant alone
   * (rows another tenant reaches too; rows of others that reference the tenant's). The row
   * accounting still rolls the restore back if a delete removes or changes a row it did not delete.
   */
  readonly acceptUnownedRows?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly log?: ((line: string) => void) | undefined;
  /** Bytes of the stored artifact read so far (see core/util/progress.ts). */
  readonly onProgress?: OnProgress | undefined;
  readonly now?: (() => Date) | undefined;
}

export interface TenantTableReport {
  readonly table: string;
  /** Rows of the tenant in the target before the restore (deleted, or that would be). */
  readonly deleted: number;
  /** Rows loaded from the backup (or that would be). */
  readonly loaded: number;
}

export interface TenantRestoreReport {
  readonly backupId: string;
  readonly tenant: string;
  /** Where the rows came from. */
  readonly from: 'tenant-backup' | 'full-backup';
  readonly mode: 'restore' | 'dry-run' | 'into-database';
  readonly target: { readonly host: string; readonly port: number; readonly database: string };
  readonly tables: readonly TenantTableReport[];
  readonly deleted: number;
  readonly loaded: number;
  /** Sequences moved above the restored ids (PostgreSQL). */
  readonly sequences: readonly string[];
  /** User triggers on the tenant's tables (`table.trigger`) and what was done with them. */
  readonly triggers: {
    readonly names: readonly string[];
    readonly handling: 'none' | 'disabled' | 'fired' | 'refused';
  };
  /**
   * What the deletes reach beyond the tenant's rows (from the catalog's FK actions): with
   * `--dry-run`, what they would do; otherwise what was found (and accepted) before deleting.
   */
  readonly impact: TenantImpact;
  readonly startedAt: string;
  readonly durationMs: number;
}

interface LoadResult {
  tables: TenantTableReport[];
  sequences: string[];
  triggers: TenantRestoreReport['triggers'];
  impact: TenantImpact;
}

/** Where the rows to load come from: a stream in the tenant export format and its expected counts. */
interface RowSource {
  readonly stream: Readable;
  /** Resolves with the expected per-table counts once the stream has been fully produced and checked. */
  readonly expected: Promise<readonly TableCount[]>;
  abort(): void;
}

export function restoreTenant(options: TenantRestoreOptions): Promise<TenantRestoreReport> {
  // One cancellation path: every tool and session of this run stops with `options.signal`.
  return withCancellableRun({ signal: options.signal }, () => restoreTenantInRun(options));
}

async function restoreTenantInRun(options: TenantRestoreOptions): Promise<TenantRestoreReport> {
  const startedAt = (options.now ?? (() => new Date()))();
  const log = options.log ?? (() => undefined);
  const entry = await findBackup(options.vault, options.backupId, options.prefixes);
  const manifest = requireValidManifest(entry);
  const artifact = manifest.artifacts[0]!;
  const target = options.target;
  if (!target.database) throw new UsageError('--target-url: expected the tenants’ database in the URL path');
  if (manifest.engine !== target.engine)
    throw new UsageError(
      `--target-url: backup ${manifest.backupId} is a ${manifest.engine} backup, the target is ${target.engine}`,
    );
  if (manifest.kind === 'globals')
    throw new UsageError(`--backup: ${manifest.backupId} holds server globals, not tenant rows`);
  if (options.dryRun && options.intoDatabase)
    throw new UsageError('--dry-run and --into-database: choose one');
  const model = modelFor(manifest, options);
  checkKeyFits(options.keys, artifact, `backup ${manifest.backupId}`);
  await requireStoredIntact(options.vault, `${entry.folder}/${artifact.name}`, artifact, options.onProgress);

  let loadInto = target;
  if (options.intoDatabase) {
    loadInto = { ...target, database: options.intoDatabase };
    await createInspectionCopy(target, options.intoDatabase, model, log);
  }
  try {
    const plan = await discoverTenantPlan(loadInto, model);
    for (const f of plan.unindexedForeignKeys)
      log(
        `slow: no index on ${f.table} (${f.columns.join(', ')}) for ${f.constraint} → ${f.references}; each deleted row scans ${f.table} (${f.createIndex})`,
      );
    if (manifest.kind === 'tenant') checkPlanFits(plan, manifest);
    const result =
      manifest.kind === 'tenant'
        ? await fromTenantBackup(
            options,
            plan,
            manifest,
            artifact,
            `${entry.folder}/${artifact.name}`,
            loadInto,
          )
        : await fromFullBackup(options, plan, loadInto, log);
    const finishedAt = (options.now ?? (() => new Date()))();
    return {
      backupId: manifest.backupId,
      tenant: options.tenant,
      from: manifest.kind === 'tenant' ? 'tenant-backup' : 'full-backup',
      mode: options.dryRun ? 'dry-run' : options.intoDatabase ? 'into-database' : 'restore',
      target: { host: loadInto.host, port: loadInto.port, database: loadInto.database! },
      tables: result.tables,
      deleted: result.tables.reduce((n, t) => n + t.deleted, 0),
      loaded: result.tables.reduce((n, t) => n + t.loaded, 0),
      sequences: result.sequences,
      triggers: result.triggers,
      impact: result.impact,
      startedAt: startedAt.toISOString(),
      durationMs: finishedAt.getTime() - startedAt.getTime(),
    };
  } catch (error) {
    if (options.intoDatabase) await dropDatabaseIfExists(target, options.intoDatabase).catch(() => undefined);
    throw error;
  }
}

function modelFor(manifest: Manifest, options: TenantRestoreOptions): TenantModel {
  if (manifest.kind === 'tenant') {
    const own = manifest.tenant!;
    if (own.id !== options.tenant)
      throw new UsageError(
        `--tenant: backup ${manifest.backupId} holds tenant "${own.id}", not "${options.tenant}"`,
      );
    const m = options.model;
    if (
      m &&
      (m.table !== own.model.table ||
        m.keyColumn !== own.model.keyColumn ||
        m.tenantColumn !== own.model.tenantColumn)
    )
      throw new UsageError(
        `--tenant-table/--key-column/--tenant-column: backup ${manifest.backupId} was made with ${own.model.table}.${own.model.keyColumn} and column ${own.model.tenantColumn}`,
      );
    return own.model;
  }
  if (!options.model)
    throw new UsageError(
      '--tenant-table, --key-column and --tenant-column: needed to take one tenant out of a full backup',
    );
  return options.model;
}

/** The live schema must hold the same tenant tables, with every exported column. */
function checkPlanFits(plan: TenantPlan, manifest: Manifest): void {
  const recorded = manifest.tenant!.tables;
  const live = new Map(plan.tables.map((t) => [t.key, t]));
  const recordedKeys = new Set(recorded.map((t) => t.key));
  const gone = recorded.filter((t) => !live.has(t.key)).map((t) => t.key);
  const added = plan.tables.filter((t) => !recordedKeys.has(t.key)).map((t) => t.key);
  const problems: string[] = [];
  if (gone.length) problems.push(`tables in the backup but not in the target: ${gone.join(', ')}`);
  if (added.length)
    problems.push(
      `tenant tables in the target that the backup does not have (their rows would be deleted and not restored): ${added.join(', ')}`,
    );
  for (const t of recorded) {
    const l = live.get(t.key);
    if (!l) continue;
    const missing = t.columns.filter((c) => !loadColumns(l).includes(c));
    if (missing.length) problems.push(`${t.key}: columns gone from the target: ${missing.join(', ')}`);
  }
  if (problems.length)
    throw new UsageError(
      `--target-url: the schema changed since backup ${manifest.backupId}; nothing was changed:\n  ${problems.join('\n  ')}\n  (restore it with --into-database NEW to inspect the rows)`,
    );
}

async function fromTenantBackup(
  options: TenantRestoreOptions,
  plan: TenantPlan,
  manifest: Manifest,
  artifact: Artifact,
  key: string,
  loadInto: Connection,
): Promise<LoadResult> {
  if (options.dryRun) return dryRun(loadInto, plan, options.tenant, artifact.tables, options.fireTriggers);
  const stream = await verifiedPlaintext({
    vault: options.vault,
    key,
    artifact,
    keys: options.keys,
    signal: options.signal,
    onProgress: options.onProgress,
  });
  const source: RowSource = {
    stream,
    expected: Promise.resolve(artifact.tables),
    abort: () => stream.destroy(),
  };
  let releasePacket: () => Promise<void> = () => Promise.resolve();
  if (manifest.engine === 'mysql' && artifact.largestStatementBytes) {
    const conn = await connectMysql(loadInto);
    try {
      releasePacket = await ensurePacket(conn, loadInto, artifact, options.log);
    } catch (error) {
      stream.destroy();
      throw error;
    } finally {
      await conn.end().catch(() => undefined);
    }
  }
  try {
    return await load(loadInto, plan, options.tenant, source, options);
  } finally {
    await releasePacket();
  }
}

async function fromFullBackup(
  options: TenantRestoreOptions,
  plan: TenantPlan,
  loadInto: Connection,
  log: (line: string) => void,
): Promise<LoadResult> {
  const scratchName = `${(options.target.database ?? 'cofre').slice(0, 30)}_cofre_tenant_${randomBytes(4).toString('hex')}`;
  const scratch: Connection = { ...options.target, database: scratchName };
  log(
    `restoring backup ${options.backupId} into scratch database ${scratchName} to take tenant ${options.tenant} out of it`,
  );
  try {
    await restoreBackup({
      vault: options.vault,
      backupId: options.backupId,
      keys: options.keys,
      target: scratch,
      noOwner: true,
      noAcl: true,
      signal: options.signal,
      onProgress: options.onProgress,
      log,
    });
    const scratchPlan = await discoverTenantPlan(scratch, plan.model);
    const live = plan.tables.map((t) => t.key).join(',');
    const old = scratchPlan.tables.map((t) => t.key).join(',');
    if (live !== old)
      throw new UsageError(
        `--target-url: the tenant tables differ between backup ${options.backupId} (${old}) and the target (${live}); nothing was changed`,
      );
    const known = await countTenant(scratch, scratchPlan, options.tenant);
    if (known.every((t) => t.rows === 0))
      throw new UsageError(`--tenant: backup ${options.backupId} has no rows of tenant "${options.tenant}"`);
    if (options.dryRun) return await dryRun(loadInto, plan, options.tenant, known, options.fireTriggers);
    const dump = await startTenantExport(scratch, scratchPlan, options.tenant);
    const source: RowSource = {
      stream: dump.stdout,
      expected: dump.completed,
      abort: () => {
        dump.abort();
      },
    };
    return await load(loadInto, plan, options.tenant, source, options);
  } finally {
    await dropDatabaseIfExists(options.target, scratchName).catch((error: unknown) => {
      log(`could not drop scratch database ${scratchName}: ${messageOf(error)} (drop it by hand)`);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Counting

/** A count's table in plan-key form (MySQL: the name alone; the database may differ). */
function countOf(
  counts: readonly TableCount[],
  t: TenantPlanTable,
  engine: Connection['engine'],
): number | undefined {
  return counts.find((x) => x.name === t.name && (engine === 'mysql' || x.schema === t.schema))?.rows;
}

/** The tenant's rows per plan table, in `c`. */
async function countTenant(c: Connection, plan: TenantPlan, tenant: string): Promise<TableCount[]> {
  return withSession(c, plan.database, async (s) => {
    const out: TableCount[] = [];
    for (const t of plan.tables) out.push({ schema: t.schema, name: t.name, rows: await s.count(t, tenant) });
    return out;
  });
}

async function dryRun(
  c: Connection,
  plan: TenantPlan,
  tenant: string,
  incoming: readonly TableCount[],
  fireTriggers: boolean | undefined,
): Promise<LoadResult> {
  const current = await countTenant(c, plan, tenant);
  const names = await withSession(c, plan.database, (s) => s.triggers(plan));
  const impact = await inSnapshot(c, plan, (query) => tenantImpact(query, plan, tenant));
  return {
    impact,
    tables: plan.tables.map((t, i) => ({
      table: t.key,
      deleted: current[i]!.rows,
      loaded: countOf(incoming, t, plan.engine) ?? 0,
    })),
    sequences: [],
    triggers: {
      names,
      handling: !names.length
        ? 'none'
        : fireTriggers
          ? 'fired'
          : plan.engine === 'postgres'
            ? 'disabled'
            : 'refused',
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Row accounting: every row the deletes remove or change must be one the plan deleted directly

interface Ledger {
  /** After the deletes: one line per table where rows went or changed beyond `deleted` ([] when none). */
  check(deleted: ReadonlyMap<string, number>): Promise<string[]>;
}

/**
 * PostgreSQL counts every row deleted or updated in this transaction per table
 * (pg_stat_xact_user_tables: cascades, SET NULL, triggers and rules included), so nothing needs
 * counting before. Without track_counts, and on MySQL: each tenant table's rows are counted before
 * and after the deletes, and for each ON DELETE SET NULL / SET DEFAULT foreign key into a tenant
 * table, the referencing rows whose columns are set.
 */
async function openLedger(s: Session, plan: TenantPlan, tenant: string): Promise<Ledger> {
  const { engine } = plan;
  if (engine === 'postgres') {
    const [setting] = await s.query(`SELECT current_setting('track_counts') AS v`);
    if (setting?.v === 'on')
      return {
        async check(deleted) {
          const rows = await s.query(
            `SELECT schemaname AS schema, relname AS name, n_tup_del AS del, n_tup_upd AS upd
               FROM pg_stat_xact_user_tables WHERE n_tup_del > 0 OR n_tup_upd > 0 ORDER BY 1, 2`,
          );
          const seen = new Map(rows.map((r) => [`${String(r.schema)}.${String(r.name)}`, r]));
          const problems: string[] = [];
          for (const key of new Set([...seen.keys(), ...deleted.keys()])) {
            const del = Number(seen.get(key)?.del ?? 0);
            const upd = Number(seen.get(key)?.upd ?? 0);
            const own = deleted.get(key) ?? 0;
            if (del !== own)
              problems.push(
                `${key}: ${del - own} rows removed beyond the ${own} the restore deleted (an ON DELETE CASCADE, a trigger or a rule)`,
              );
            if (upd)
              problems.push(
                `${key}: ${upd} rows changed by the deletes (ON DELETE SET NULL / SET DEFAULT, a trigger or a rule)`,
              );
          }
          return problems;
        },
      };
  }
  const q = (n: string) => quoteIdentifier(engine, n);
  const lit = tenantLiteral(engine, tenant);
  const from = (t: { schema: string; name: string }) =>
    `${engine === 'postgres' ? 'ONLY ' : ''}${qualifiedName(engine, t)}`;
  const countAll = async (t: TenantPlanTable) =>
    Number((await s.query(`SELECT count(*) AS n FROM ${from(t)} AS t0`))[0]?.n ?? 0);
  const setNull = plan.inboundForeignKeys.filter(
    (f) => f.onDelete === 'SET NULL' || f.onDelete === 'SET DEFAULT',
  );
  const setCount = async (f: (typeof setNull)[number], own: boolean) => {
    const child = plan.tables.find((t) => t.key === f.from.key);
    const set = f.columns.map((c) => `t0.${q(c)} IS NOT NULL`).join(' AND ');
    const mine = own && child ? ` AND (${ownershipWhere(engine, child, lit)})` : own ? ' AND 1 = 0' : '';
    return Number(
      (await s.query(`SELECT count(*) AS n FROM ${from(f.from)} AS t0 WHERE ${set}${mine}`))[0]?.n ?? 0,
    );
  };
  const before = new Map<string, number>();
  for (const t of plan.tables) before.set(t.key, await countAll(t));
  const setBefore = new Map<string, { all: number; own: number }>();
  for (const f of setNull)
    setBefore.set(f.constraint + f.from.key, { all: await setCount(f, false), own: await setCount(f, true) });
  return {
    async check(deleted) {
      const problems: string[] = [];
      for (const t of plan.tables) {
        const gone = before.get(t.key)! - (await countAll(t));
        const own = deleted.get(t.key) ?? 0;
        if (gone !== own)
          problems.push(
            `${t.key}: ${gone - own} rows removed beyond the ${own} the restore deleted (an ON DELETE CASCADE, a trigger or a rule)`,
          );
      }
      for (const f of setNull) {
        const b = setBefore.get(f.constraint + f.from.key)!;
        const changed = b.all - b.own - (await setCount(f, false));
        if (changed)
          problems.push(
            `${f.from.key}: ${changed} rows changed by the deletes (${f.constraint}, ON DELETE ${f.onDelete})`,
          );
      }
      return problems;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The load

export async function load(
  c: Connection,
  plan: TenantPlan,
  tenant: string,
  source: RowSource,
  options: Pick<TenantRestoreOptions, 'signal' | 'fireTriggers' | 'acceptUnownedRows'>,
): Promise<LoadResult> {
  const signal = options.signal;
  const onAbort = () => {
    source.abort();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await withSession(c, plan.database, async (s) => {
      await s.begin();
      try {
        const names = await s.triggers(plan);
        let handling: LoadResult['triggers']['handling'] = names.length ? 'fired' : 'none';
        if (names.length && !options.fireTriggers) {
          if (plan.engine === 'mysql')
            throw new UsageError(
              `MySQL cannot switch triggers off inside a transaction, and these would fire for every deleted and restored row: ${names.join(', ')}. Nothing was changed. Restore with --into-database NEW (the copy has no triggers), or add --fire-triggers if they write nothing into the tenant's tables`,
            );
          await s.disableTriggers(plan.tables.filter((t) => names.some((n) => n.startsWith(`${t.key}.`))));
          handling = 'disabled';
        }
        // Before any change, in this transaction: rows the deletes would reach beyond the tenant's.
        const impact = await tenantImpact(s.query, plan, tenant);
        const reach = impactLines(impact, tenant);
        if (reach.length && !options.acceptUnownedRows)
          throw new UsageError(
            `tenant ${tenant}: the restore's deletes would reach rows the tenant plan does not own for this tenant alone; nothing was changed:\n  ${reach.join('\n  ')}\n  (see "cofre tenant plan --check"; --accept-unowned-rows goes ahead, and the restore still rolls back if a delete removes or changes a row it did not delete itself)`,
          );
        const ledger = await openLedger(s, plan, tenant);
        const deleted = new Map<string, number>();
        for (const t of [...plan.tables].reverse()) {
          try {
            deleted.set(t.key, await s.remove(t, tenant));
          } catch (error) {
            // A foreign key (NO ACTION / RESTRICT) of a row the plan does not own blocks the delete.
            const code = (error as { code?: unknown; errno?: unknown }).code;
            if (code === '23503' || code === 'ER_ROW_IS_REFERENCED_2' || code === 'ER_ROW_IS_REFERENCED')
              throw new IntegrityError(
                `tenant ${tenant}: deleting its rows of ${t.key} would break rows it does not own; the restore was rolled back, nothing was changed: ${messageOf(error)}`,
              );
            throw error;
          }
        }
        const lost = await ledger.check(deleted);
        if (lost.length)
          throw new IntegrityError(
            `tenant ${tenant}: the deletes removed or changed rows the restore did not delete itself; the restore was rolled back, nothing was changed:\n  ${lost.join('\n  ')}`,
            lost,
          );
        const byKey = new Map(plan.tables.map((t) => [t.key, t]));
        let writer: RowWriter | undefined;
        const reader = new SectionReader(plan.engine, async (event) => {
          switch (event.type) {
            case 'table':
              if (!byKey.has(event.table.key))
                throw new UsageError(
                  `the backup has rows of ${event.table.key}, which is not a tenant table of the target`,
                );
              break;
            case 'copy-start':
              writer = await s.startRows(byKey.get(event.table.key)!, event.table);
              break;
            case 'insert-start':
              writer = await s.startRows(byKey.get(event.table.key)!, event.table, event.line);
              break;
            case 'row':
              await writer!.row(event.line);
              break;
            case 'rows-end':
              // PostgreSQL: the COPY is over; MySQL: the INSERT statement was run.
              await writer!.end();
              break;
            default:
              break;
          }
        });
        for await (const line of lines(source.stream)) {
          if (signal?.aborted) throw new OperationalError('tenant restore cancelled');
          await reader.line(line);
        }
        const read = reader.finish();
        const expected = await source.expected;
        const problems: string[] = [];
        const tables: TenantTableReport[] = [];
        for (const t of plan.tables) {
          const want = countOf(expected, t, plan.engine) ?? 0;
          const got = countOf(read, t, plan.engine) ?? 0;
          const now = await s.count(t, tenant);
          if (got !== want) problems.push(`${t.key}: the backup records ${want} rows, ${got} were read`);
          else if (now !== want)
            problems.push(`${t.key}: ${want} rows loaded, but the tenant now has ${now}`);
          tables.push({ table: t.key, deleted: deleted.get(t.key) ?? 0, loaded: got });
        }
        if (problems.length)
          throw new IntegrityError(
            `tenant ${tenant}: row counts do not match; the restore was rolled back:\n  ${problems.join('\n  ')}`,
            problems,
          );
        const sequences = await s.afterLoad(plan, tenant);
        await s.commit();
        return { tables, sequences, triggers: { names, handling }, impact };
      } catch (error) {
        source.abort();
        await s.rollback().catch(() => undefined);
        if (error instanceof UsageError || error instanceof IntegrityError) throw error;
        if (error instanceof OperationalError) throw error;
        throw new OperationalError(
          `restoring tenant ${tenant} into ${describeConnection(c, plan.database)} failed, nothing was changed (rolled back): ${messageOf(error)}`,
        );
      }
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

// ---------------------------------------------------------------------------------------------
// Databases: scratch and inspection copies

/**
 * A new database with the target's schema and its shared tables' rows (the rows tenant rows
 * reference), for `--into-database`. Refuses an existing database.
 */
async function createInspectionCopy(
  c: Connection,
  name: string,
  model: TenantModel,
  log: (line: string) => void,
): Promise<void> {
  const source = c.database!;
  if (c.engine === 'postgres') {
    const client = await connectPostgres(c, 'postgres');
    try {
      const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      if (rowCount)
        throw new UsageError(`--into-database: database "${name}" already exists; name a new one`);
      await client.query(`CREATE DATABASE ${quoteIdentifier('postgres', name)}`);
    } finally {
      await client.end().catch(() => undefined);
    }
  } else {
    const conn = await connectMysql(c);
    try {
      const [rows] = await conn.query<RowDataPacket[]>(
        'SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
        [name],
      );
      if (rows.length)
        throw new UsageError(`--into-database: database "${name}" already exists; name a new one`);
      await conn.query(`CREATE DATABASE ${quoteIdentifier('mysql', name)}`);
    } finally {
      await conn.end().catch(() => undefined);
    }
  }
  try {
    const plan = await discoverTenantPlan(c, model);
    log(`copying the schema of ${source} and its ${plan.shared.length} shared tables into ${name}`);
    await copySchema(c, source, name, plan);
  } catch (error) {
    await dropDatabaseIfExists(c, name).catch(() => undefined);
    throw error;
  }
}

async function copySchema(c: Connection, source: string, dest: string, plan: TenantPlan): Promise<void> {
  if (c.engine === 'postgres') {
    const shared = plan.shared.flatMap((s) => [`--table=${pgPattern(s.schema)}.${pgPattern(s.name)}`]);
    const dumps = [['--schema-only'], ...(shared.length ? [['--data-only', ...shared]] : [])];
    for (const extra of dumps) {
      const dump = spawnTool('pg_dump', ['--no-owner', '--no-acl', '--no-password', ...extra], {
        env: postgresEnv(c, source),
        secrets: [c.password],
        largeStdout: true,
      });
      const psql = spawnTool('psql', ['--no-psqlrc', '--quiet', '-v', 'ON_ERROR_STOP=1', '--no-password'], {
        env: postgresEnv(c, dest),
        stdin: true,
        secrets: [c.password],
      });
      psql.stdout.resume();
      dump.stdout.pipe(psql.stdin!);
      await Promise.all([dump.finished, psql.finished]);
    }
    return;
  }
  const base = [
    '--defaults-extra-file=/dev/fd/4',
    '--single-transaction',
    '--skip-lock-tables',
    '--no-tablespaces',
    '--default-character-set=utf8mb4',
    '--hex-blob',
    '--skip-triggers',
  ];
  const dumps = [
    // Routines too: views may call them. Triggers stay out, so the copy loads without them firing.
    [...base, '--no-data', '--routines', '--', source],
    ...(plan.shared.length
      ? [[...base, '--no-create-info', '--', source, ...plan.shared.map((s) => s.name)]]
      : []),
  ];
  for (const args of dumps) {
    const dump = spawnTool('mysqldump', args, {
      optionFile: mysqlOptionFile(c),
      secrets: [c.password],
      largeStdout: true,
    });
    const client = spawnMysqlClient(c, dest);
    dump.stdout.pipe(client.stdin!);
    await Promise.all([dump.finished, client.finished]);
  }
}

/** A pg_dump --table pattern matching exactly this name. */
function pgPattern(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
