/**
 * Does the tenant plan own every row it should, and only once? Two checks:
 *
 * - `checkCoverage` (`cofre tenant plan --check`, and before `backup --all-tenants`): for every
 *   tenant-scoped table, in one read-only snapshot and with one aggregate query per table, the rows
 *   owned by no tenant (a NULL tenant column, or child rows whose every FK path is NULL) and the
 *   rows reachable from more than one tenant (cross-tenant references, along any FK path).
 * - `tenantImpact` (before a tenant restore, and in its `--dry-run`): what deleting one tenant's
 *   rows would do beyond them: the tenant's rows that another tenant reaches too, and, per foreign
 *   key into a tenant table, the rows that are not the tenant's but reference its rows, which the
 *   FK's ON DELETE would remove (CASCADE), change (SET NULL / SET DEFAULT) or refuse (NO ACTION /
 *   RESTRICT). Driven by the tenant's rows, so it costs about what its export costs.
 */
import { quoteIdentifier, type Connection, type Engine } from '../sources/connection';
import { OperationalError, messageOf } from '../util/errors';
import { connectMysql } from '../sources/mysql';
import { connectPostgres } from '../sources/postgres';
import {
  ownershipWhere,
  pathCondition,
  pathValue,
  tenantLiteral,
  type OnDelete,
  type TenantPlan,
  type TenantPlanTable,
  type TenantTableKind,
} from './plan';

export type Query = (sql: string) => Promise<Record<string, unknown>[]>;

export interface CoverageTable {
  readonly table: string;
  readonly kind: TenantTableKind;
  readonly rows: number;
  /** Rows no tenant owns: in no tenant backup, kept by a tenant restore (only a full backup has them). */
  readonly unowned: number;
  /** Rows reachable from two or more tenants (along any FK path): cross-tenant references. */
  readonly multiOwned: number;
}

export interface CoverageReport {
  readonly database: string;
  readonly tables: readonly CoverageTable[];
  readonly unowned: number;
  readonly multiOwned: number;
  readonly durationMs: number;
}

function qualified(engine: Engine, t: { schema: string; name: string }): string {
  return engine === 'postgres'
    ? `ONLY ${quoteIdentifier(engine, t.schema)}.${quoteIdentifier(engine, t.name)}`
    : quoteIdentifier(engine, t.name);
}

/** The one aggregate query of a table: `n`, `unowned`, `multi`. */
export function coverageSql(engine: Engine, t: TenantPlanTable): string {
  const from = `${qualified(engine, t)} AS t0`;
  if (t.kind === 'tenant-table') return `SELECT count(*) AS n, 0 AS unowned, 0 AS multi FROM ${from}`;
  if (t.kind === 'direct')
    return `SELECT count(*) AS n, SUM(CASE WHEN t0.${quoteIdentifier(engine, t.filterColumn)} IS NULL THEN 1 ELSE 0 END) AS unowned, 0 AS multi FROM ${from}`;
  const all = [...t.paths, ...t.otherPaths];
  const v = all.map((_, i) => `x.v${i}`);
  const unowned = t.paths.map((_, i) => `${v[i]} IS NULL`).join(' AND ');
  const first = `COALESCE(${v.join(', ')})`;
  const multi =
    all.length > 1
      ? `SUM(CASE WHEN ${v.map((x) => `${x} <> ${first}`).join(' OR ')} THEN 1 ELSE 0 END)`
      : '0';
  return `SELECT count(*) AS n, SUM(CASE WHEN ${unowned} THEN 1 ELSE 0 END) AS unowned, ${multi} AS multi FROM (SELECT ${all
    .map((p, i) => `${pathValue(engine, p)} AS v${i}`)
    .join(', ')} FROM ${from}) AS x`;
}

/** Runs `fn` in one read-only snapshot of the plan's database. */
export async function inSnapshot<T>(
  c: Connection,
  plan: TenantPlan,
  fn: (query: Query) => Promise<T>,
): Promise<T> {
  if (c.engine === 'postgres') {
    const client = await connectPostgres(c, plan.database);
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const result = await fn(async (sql) => (await client.query<Record<string, unknown>>(sql)).rows);
      await client.query('COMMIT');
      return result;
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const conn = await connectMysql(c, plan.database);
  try {
    await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    const result = await fn(async (sql) => {
      const [rows] = await conn.query(sql);
      return rows as Record<string, unknown>[];
    });
    await conn.query('COMMIT');
    return result;
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** The coverage check: one aggregate query per tenant-scoped table, all in one snapshot. */
export async function checkCoverage(c: Connection, plan: TenantPlan): Promise<CoverageReport> {
  const started = Date.now();
  try {
    const tables = await inSnapshot(c, plan, async (query) => {
      const out: CoverageTable[] = [];
      for (const t of plan.tables) {
        const [row] = await query(coverageSql(plan.engine, t));
        out.push({
          table: t.key,
          kind: t.kind,
          rows: Number(row?.n ?? 0),
          unowned: Number(row?.unowned ?? 0),
          multiOwned: Number(row?.multi ?? 0),
        });
      }
      return out;
    });
    return {
      database: plan.database,
      tables,
      unowned: tables.reduce((n, t) => n + t.unowned, 0),
      multiOwned: tables.reduce((n, t) => n + t.multiOwned, 0),
      durationMs: Date.now() - started,
    };
  } catch (error) {
    throw new OperationalError(`the tenant coverage check of ${plan.database} failed: ${messageOf(error)}`);
  }
}

/** The problems of a coverage report, one line per table (empty when every row has exactly one tenant). */
export function coverageProblems(report: CoverageReport): string[] {
  return report.tables.flatMap((t) => [
    ...(t.unowned ? [`${t.table}: ${t.unowned} of ${t.rows} rows are owned by no tenant`] : []),
    ...(t.multiOwned
      ? [`${t.table}: ${t.multiOwned} of ${t.rows} rows are reachable from more than one tenant`]
      : []),
  ]);
}

export function formatCoverage(report: CoverageReport): string {
  const problems = coverageProblems(report);
  const lines = [
    `coverage of ${report.database}: ${report.tables.length} tenant tables, ${report.tables.reduce((n, t) => n + t.rows, 0)} rows checked in one snapshot (${(report.durationMs / 1000).toFixed(1)} s)`,
    ...report.tables.map(
      (t) =>
        `  ${t.table}: ${t.rows} rows, ${t.unowned} owned by no tenant, ${t.multiOwned} by more than one`,
    ),
  ];
  lines.push(
    problems.length
      ? `NOT COVERED: ${report.unowned} rows owned by no tenant (in no tenant backup, only in full backups), ${report.multiOwned} rows reachable from more than one tenant (cross-tenant references: restoring one of those tenants replaces them for all)`
      : 'OK: every row of the tenant tables belongs to exactly one tenant',
  );
  return `${lines.join('\n')}\n`;
}

export interface ForeignKeyImpact {
  /** The referencing table. */
  readonly table: string;
  readonly constraint: string;
  readonly references: string;
  readonly onDelete: OnDelete;
  /** Its rows that are not the tenant's and reference rows the restore deletes. */
  readonly rows: number;
}

export interface TenantImpact {
  /** The tenant's rows (per table) that another tenant reaches too. */
  readonly multiOwned: readonly { readonly table: string; readonly rows: number }[];
  /** Per foreign key into a tenant table: rows outside the tenant that its deletes would reach. */
  readonly foreignKeys: readonly ForeignKeyImpact[];
}

/** What deleting `tenant`'s rows would do beyond them (see the file comment); only non-zero entries. */
export async function tenantImpact(query: Query, plan: TenantPlan, tenant: string): Promise<TenantImpact> {
  const { engine } = plan;
  const q = (n: string) => quoteIdentifier(engine, n);
  const lit = tenantLiteral(engine, tenant);
  const byKey = new Map(plan.tables.map((t) => [t.key, t]));
  const multiOwned: { table: string; rows: number }[] = [];
  for (const t of plan.tables) {
    const all = [...t.paths, ...t.otherPaths];
    if (t.kind !== 'child' || all.length < 2) continue;
    const other = all.map((p) => `(${pathCondition(engine, p, (col) => `${col} <> ${lit}`)})`).join(' OR ');
    const [row] = await query(
      `SELECT count(*) AS n FROM ${qualified(engine, t)} AS t0 WHERE (${ownershipWhere(engine, t, lit)}) AND (${other})`,
    );
    const rows = Number(row?.n ?? 0);
    if (rows) multiOwned.push({ table: t.key, rows });
  }
  const foreignKeys: ForeignKeyImpact[] = [];
  for (const f of plan.inboundForeignKeys) {
    const parent = byKey.get(f.to.key);
    if (!parent) continue;
    const child = byKey.get(f.from.key);
    const parentRows = `SELECT ${f.refColumns.map((c, i) => `t0.${q(c)} AS r${i}`).join(', ')} FROM ${qualified(engine, parent)} AS t0 WHERE ${ownershipWhere(engine, parent, lit)}`;
    const on = f.columns.map((c, i) => `t0.${q(c)} = p.r${i}`).join(' AND ');
    const notTheTenants = child ? `(${ownershipWhere(engine, child, lit)}) IS NOT TRUE` : '1 = 1';
    const [row] = await query(
      `SELECT count(*) AS n FROM (${parentRows}) AS p JOIN ${qualified(engine, f.from)} AS t0 ON ${on} WHERE ${notTheTenants}`,
    );
    const rows = Number(row?.n ?? 0);
    if (rows)
      foreignKeys.push({
        table: f.from.key,
        constraint: f.constraint,
        references: f.to.key,
        onDelete: f.onDelete,
        rows,
      });
  }
  return { multiOwned, foreignKeys };
}

/** One line per effect, for refusals and the dry-run. */
export function impactLines(impact: TenantImpact, tenant: string): string[] {
  const effect: Record<OnDelete, string> = {
    CASCADE: 'would delete them',
    'SET NULL': 'would set their columns to NULL',
    'SET DEFAULT': 'would set their columns to the default',
    'NO ACTION': 'would make the restore fail',
    RESTRICT: 'would make the restore fail',
  };
  return [
    ...impact.multiOwned.map(
      (m) =>
        `${m.table}: ${m.rows} of tenant ${tenant}'s rows are reachable from another tenant too (the restore would replace them for both)`,
    ),
    ...impact.foreignKeys.map(
      (f) =>
        `${f.table}: ${f.rows} rows that are not tenant ${tenant}'s reference its rows in ${f.references}; deleting those rows (${f.constraint}, ON DELETE ${f.onDelete}) ${effect[f.onDelete]}`,
    ),
  ];
}
