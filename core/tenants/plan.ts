/**
 * Tenant model discovery: from the live catalog, which tables hold one tenant's rows, how to
 * select exactly those rows, and in which order to load (or, reversed, delete) them.
 *
 * A table belongs to the tenant plan when it is the tenant table (filtered by its key column),
 * has the tenant column ("direct", filtered by its own column even if it also references other
 * tenant tables), or reaches one of those through foreign keys ("child"). A child row belongs to
 * the tenants its FK paths reach: when the table has paths whose every hop is NOT NULL, those
 * paths decide (a nullable shortcut, NULL in most rows, never hides the rows); otherwise every
 * path counts. Several paths are a union (nested EXISTS per path, OR-ed, so a row is never
 * repeated). Every other table is shared.
 */
import type { Client } from 'pg';
import { escape as mysqlEscape } from 'mysql2';
import type { Connection as MysqlConnection, RowDataPacket } from 'mysql2/promise';
import { quoteIdentifier, type Connection, type Engine } from '../sources/connection';
import { FieldError, UsageError } from '../util/errors';
import { connectMysql } from '../sources/mysql';
import { connectPostgres } from '../sources/postgres';

/** What the operator tells us about the tenant model. */
export interface TenantModel {
  /** The tenant table: `name` or `schema.name`. */
  readonly table: string;
  /** Its key column (the tenant id). */
  readonly keyColumn: string;
  /** The column that holds the tenant id on tenant-owned tables, e.g. `tenant_id`. */
  readonly tenantColumn: string;
}

export interface TableRef {
  readonly schema: string;
  readonly name: string;
  /** `schema.name` on PostgreSQL, `name` on MySQL (the schema is the URL's database). */
  readonly key: string;
}

/** One foreign-key hop: `from(columns)` references `to(refColumns)`. */
export interface FkHop {
  readonly constraint: string;
  readonly from: TableRef;
  readonly columns: readonly string[];
  readonly to: TableRef;
  readonly refColumns: readonly string[];
}

export type TenantTableKind = 'tenant-table' | 'direct' | 'child';

/** What a foreign key does to referencing rows when a referenced row is deleted. */
export type OnDelete = 'NO ACTION' | 'RESTRICT' | 'CASCADE' | 'SET NULL' | 'SET DEFAULT';

/** One way from a child table to a tenant: FK hops ending at a table compared on `filterColumn`. */
export interface OwnershipPath {
  /** The first hop starts at the child table; the last ends at the anchor (direct or tenant table). */
  readonly hops: readonly FkHop[];
  readonly filterColumn: string;
  /** Every hop's FK columns are NOT NULL: every row of the child has exactly this way to its tenant. */
  readonly notNull: boolean;
}

export interface TenantPlanTable extends TableRef {
  readonly kind: TenantTableKind;
  /** Columns in ordinal order. */
  readonly columns: readonly string[];
  /** Primary-key columns ([] when the table has none). */
  readonly primaryKey: readonly string[];
  /** Generated (computed) columns: leave them out when loading rows. */
  readonly generatedColumns: readonly string[];
  /** The column compared with the tenant id: the key column, the tenant column, or (child) the anchor's. */
  readonly filterColumn: string;
  /**
   * Child tables: the FK hops from this table up to a table with the tenant column (or the tenant
   * table); the first hop starts at this table. [] for the tenant table and direct tables.
   * The preferred of `paths` (kept for display).
   */
  readonly path: readonly FkHop[];
  /**
   * Child tables: every path that decides ownership (a row is the tenant's when any of them reaches
   * it): the NOT NULL paths when there are any, otherwise all paths. [] for the others.
   */
  readonly paths: readonly OwnershipPath[];
  /** Child tables: nullable paths set aside because NOT NULL ones exist (the coverage check still follows them). */
  readonly otherPaths: readonly OwnershipPath[];
  /** Keys of the other plan tables this one references (load them first). */
  readonly dependsOn: readonly string[];
  /**
   * `SELECT t0.* FROM <table> AS t0 WHERE ...` returning exactly this tenant's rows, with one bind
   * parameter for the tenant id (`$1` on PostgreSQL, `?` on MySQL).
   */
  readonly selectSql: string;
}

export interface SelfReference {
  readonly table: string;
  readonly constraint: string;
  readonly columns: readonly string[];
  readonly refColumns: readonly string[];
  /** PostgreSQL: whether the constraint is DEFERRABLE. */
  readonly deferrable: boolean;
  readonly note: string;
}

export interface TenantPlan {
  readonly engine: Engine;
  /** MySQL: the URL's database; PostgreSQL: the connected database. */
  readonly database: string;
  readonly model: TenantModel;
  readonly tenantTable: TableRef;
  /** The tenant tables in load order (parents first). */
  readonly tables: readonly TenantPlanTable[];
  /** Table keys in load order; delete in the reverse order. */
  readonly order: readonly string[];
  /** Tables with no FK path to a tenant: left out of tenant backups and restores. */
  readonly shared: readonly TableRef[];
  /** Plan tables with FKs to themselves: load with deferred constraints or in self-FK order. */
  readonly selfReferences: readonly SelfReference[];
  /**
   * Foreign keys into tenant tables whose referencing columns no index starts with: deleting a
   * tenant's rows (a tenant restore) then scans the referencing table once per deleted row.
   */
  readonly unindexedForeignKeys: readonly UnindexedForeignKey[];
  /**
   * Every foreign key into a plan table (self-references included), with its ON DELETE action:
   * what deleting one tenant's rows does to the rows that reference them.
   */
  readonly inboundForeignKeys: readonly InboundForeignKey[];
}

export interface InboundForeignKey extends FkHop {
  readonly onDelete: OnDelete;
}

export interface UnindexedForeignKey {
  readonly table: string;
  readonly constraint: string;
  readonly columns: readonly string[];
  readonly references: string;
  /** The index that would make the check a lookup. */
  readonly createIndex: string;
}

// ---------------------------------------------------------------------------------------------
// Catalog snapshot (engine-neutral)

export interface CatalogTable extends TableRef {
  readonly columns: readonly {
    readonly name: string;
    readonly notNull: boolean;
    readonly generated: boolean;
  }[];
  readonly primaryKey: readonly string[];
}

export interface CatalogForeignKey extends FkHop {
  readonly deferrable: boolean;
  /** ON DELETE action (NO ACTION when unknown). */
  readonly onDelete?: OnDelete;
  /** An index on the referencing table starts with the FK's columns (InnoDB always makes one). */
  readonly indexed?: boolean;
}

export interface TenantCatalog {
  readonly engine: Engine;
  readonly database: string;
  readonly tables: readonly CatalogTable[];
  readonly foreignKeys: readonly CatalogForeignKey[];
}

function tableKey(engine: Engine, schema: string, name: string): string {
  return engine === 'postgres' ? `${schema}.${name}` : name;
}

function ref(engine: Engine, schema: string, name: string): TableRef {
  return { schema, name, key: tableKey(engine, schema, name) };
}

const PG_ON_DELETE: Record<string, OnDelete> = {
  a: 'NO ACTION',
  r: 'RESTRICT',
  c: 'CASCADE',
  n: 'SET NULL',
  d: 'SET DEFAULT',
};

/** Reads tables, columns, primary keys and foreign keys of every non-system schema. */
export async function readPostgresCatalog(client: Client): Promise<TenantCatalog> {
  const db = await client.query<{ d: string }>('SELECT current_database() AS d');
  const tables = await client.query<{
    schema: string;
    name: string;
    columns: string[];
    not_null: boolean[];
    generated: boolean[];
    pk: string[] | null;
  }>(`
    SELECT n.nspname AS schema, c.relname AS name,
      array(SELECT a.attname::text FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS columns,
      array(SELECT a.attnotnull FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS not_null,
      array(SELECT a.attgenerated <> '' FROM pg_attribute a
            WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) AS generated,
      (SELECT array(SELECT a.attname::text FROM unnest(p.conkey) WITH ORDINALITY k(n, i)
                    JOIN pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = k.n ORDER BY k.i)
       FROM pg_constraint p WHERE p.conrelid = c.oid AND p.contype = 'p') AS pk
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2`);
  const fks = await client.query<{
    constraint: string;
    deferrable: boolean;
    on_delete: string;
    indexed: boolean;
    schema: string;
    name: string;
    ref_schema: string;
    ref_name: string;
    columns: string[];
    ref_columns: string[];
  }>(`
    SELECT c.conname AS constraint, c.condeferrable AS deferrable, c.confdeltype AS on_delete,
      EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.conrelid
              AND cardinality(c.conkey) <= i.indnkeyatts
              AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
              AND (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey) AS indexed,
      sn.nspname AS schema, sc.relname AS name, tn.nspname AS ref_schema, tc.relname AS ref_name,
      array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.i) AS columns,
      array(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(n, i)
            JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.i) AS ref_columns
    FROM pg_constraint c
    JOIN pg_class sc ON sc.oid = c.conrelid JOIN pg_namespace sn ON sn.oid = sc.relnamespace
    JOIN pg_class tc ON tc.oid = c.confrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace
    WHERE c.contype = 'f'
    ORDER BY sn.nspname, sc.relname, c.conname`);
  return {
    engine: 'postgres',
    database: db.rows[0]!.d,
    tables: tables.rows.map((t) => ({
      ...ref('postgres', t.schema, t.name),
      columns: t.columns.map((name, i) => ({
        name,
        notNull: t.not_null[i] ?? false,
        generated: t.generated[i] ?? false,
      })),
      primaryKey: t.pk ?? [],
    })),
    foreignKeys: fks.rows.map((f) => ({
      constraint: f.constraint,
      deferrable: f.deferrable,
      onDelete: PG_ON_DELETE[f.on_delete] ?? 'NO ACTION',
      indexed: f.indexed,
      from: ref('postgres', f.schema, f.name),
      columns: f.columns,
      to: ref('postgres', f.ref_schema, f.ref_name),
      refColumns: f.ref_columns,
    })),
  };
}

/** Reads tables, columns, primary keys and foreign keys of `database` from information_schema. */
export async function readMysqlCatalog(conn: MysqlConnection, database: string): Promise<TenantCatalog> {
  const [cols] = await conn.query<RowDataPacket[]>(
    `SELECT c.TABLE_NAME AS name, c.COLUMN_NAME AS col, c.IS_NULLABLE AS nullable, c.EXTRA AS extra
     FROM information_schema.COLUMNS c
     JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
     WHERE c.TABLE_SCHEMA = ? AND t.TABLE_TYPE = 'BASE TABLE'
     ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`,
    [database],
  );
  const [pks] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_NAME AS name, COLUMN_NAME AS col FROM information_schema.KEY_COLUMN_USAGE
     WHERE TABLE_SCHEMA = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_NAME, ORDINAL_POSITION`,
    [database],
  );
  const [fks] = await conn.query<RowDataPacket[]>(
    `SELECT CONSTRAINT_NAME AS cname, TABLE_NAME AS name, COLUMN_NAME AS col,
            REFERENCED_TABLE_NAME AS ref_name, REFERENCED_COLUMN_NAME AS ref_col
     FROM information_schema.KEY_COLUMN_USAGE
     WHERE TABLE_SCHEMA = ? AND REFERENCED_TABLE_SCHEMA = ? AND REFERENCED_TABLE_NAME IS NOT NULL
     ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION`,
    [database, database],
  );
  const [rules] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_NAME AS name, CONSTRAINT_NAME AS cname, DELETE_RULE AS rule
     FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ?`,
    [database],
  );
  const deleteRule = new Map(
    rules.map((r) => [`${String(r.name)}\u0000${String(r.cname)}`, String(r.rule).toUpperCase()]),
  );
  const tables = new Map<
    string,
    {
      columns: { name: string; notNull: boolean; generated: boolean }[];
      primaryKey: string[];
    }
  >();
  for (const c of cols) {
    const name = String(c.name);
    const t = tables.get(name) ?? { columns: [], primaryKey: [] };
    t.columns.push({
      name: String(c.col),
      notNull: c.nullable === 'NO',
      generated: /\b(VIRTUAL|STORED|PERSISTENT)\b/i.test(String(c.extra ?? '')),
    });
    tables.set(name, t);
  }
  for (const p of pks) tables.get(String(p.name))?.primaryKey.push(String(p.col));
  const byConstraint = new Map<string, CatalogForeignKey & { columns: string[]; refColumns: string[] }>();
  for (const f of fks) {
    const id = `${String(f.name)}\u0000${String(f.cname)}`;
    let fk = byConstraint.get(id);
    if (!fk) {
      fk = {
        constraint: String(f.cname),
        deferrable: false,
        onDelete:
          (['NO ACTION', 'RESTRICT', 'CASCADE', 'SET NULL', 'SET DEFAULT'] as const).find(
            (a) => a === deleteRule.get(id),
          ) ?? 'NO ACTION',
        from: ref('mysql', database, String(f.name)),
        columns: [],
        to: ref('mysql', database, String(f.ref_name)),
        refColumns: [],
      };
      byConstraint.set(id, fk);
    }
    fk.columns.push(String(f.col));
    fk.refColumns.push(String(f.ref_col));
  }
  return {
    engine: 'mysql',
    database,
    tables: [...tables.entries()].map(([name, t]) => ({ ...ref('mysql', database, name), ...t })),
    foreignKeys: [...byConstraint.values()].filter((f) => tables.has(f.from.name) && tables.has(f.to.name)),
  };
}

// ---------------------------------------------------------------------------------------------
// Planning (pure)

function qualified(engine: Engine, t: TableRef): string {
  return engine === 'postgres'
    ? `${quoteIdentifier(engine, t.schema)}.${quoteIdentifier(engine, t.name)}`
    : quoteIdentifier(engine, t.name);
}

/** Column-name equality: exact on PostgreSQL, case-insensitive on MySQL (as the servers do). */
function sameName(engine: Engine, a: string, b: string): boolean {
  return engine === 'postgres' ? a === b : a.toLowerCase() === b.toLowerCase();
}

function listed(names: readonly string[], max = 30): string {
  if (names.length === 0) return '(none)';
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown}, … (${names.length - max} more)` : shown;
}

function findTenantTable(catalog: TenantCatalog, spec: string): CatalogTable {
  const { engine } = catalog;
  const dot = spec.indexOf('.');
  const schema = dot >= 0 ? spec.slice(0, dot) : undefined;
  const name = dot >= 0 ? spec.slice(dot + 1) : spec;
  const matches = (exact: boolean) =>
    catalog.tables.filter(
      (t) =>
        (exact ? t.name === name : t.name.toLowerCase() === name.toLowerCase()) &&
        (schema === undefined ||
          (exact ? t.schema === schema : t.schema.toLowerCase() === schema.toLowerCase())),
    );
  let found = matches(true);
  if (found.length === 0 && engine === 'mysql') found = matches(false);
  if (found.length > 1) {
    const pub = found.filter((t) => t.schema === 'public');
    if (pub.length === 1) return pub[0]!;
    throw new FieldError(
      'model.table',
      `"${spec}" is ambiguous: ${found.map((t) => t.key).join(', ')}; give it as schema.name`,
    );
  }
  if (found.length === 0) {
    throw new FieldError(
      'model.table',
      `no table "${spec}" in database "${catalog.database}"; tables: ${listed(catalog.tables.map((t) => t.key))}`,
    );
  }
  return found[0]!;
}

function columnOf(engine: Engine, t: CatalogTable, name: string): string | undefined {
  return t.columns.find((c) => sameName(engine, c.name, name))?.name;
}

interface Anchor {
  readonly kind: TenantTableKind;
  readonly filterColumn: string;
  readonly paths: OwnershipPath[];
  readonly otherPaths: OwnershipPath[];
}

/** Paths per child table above this many: the plan refuses (the SELECT would grow too large). */
export const MAX_OWNERSHIP_PATHS = 64;

/** Builds the plan from a catalog snapshot. Throws UsageError for a bad model or an FK cycle. */
export function buildTenantPlan(catalog: TenantCatalog, model: TenantModel): TenantPlan {
  const { engine } = catalog;
  const tenant = findTenantTable(catalog, model.table);
  const keyColumn = columnOf(engine, tenant, model.keyColumn);
  if (!keyColumn) {
    throw new FieldError(
      'model.keyColumn',
      `table ${tenant.key} has no column "${model.keyColumn}"; its columns: ${listed(tenant.columns.map((c) => c.name))}`,
    );
  }
  const byKey = new Map(catalog.tables.map((t) => [t.key, t]));
  const owned = new Map<string, Anchor>();
  owned.set(tenant.key, { kind: 'tenant-table', filterColumn: keyColumn, paths: [], otherPaths: [] });
  for (const t of catalog.tables) {
    if (t.key === tenant.key) continue;
    const col = columnOf(engine, t, model.tenantColumn);
    if (col) owned.set(t.key, { kind: 'direct', filterColumn: col, paths: [], otherPaths: [] });
  }
  if (owned.size === 1) {
    const similar = catalog.tables.flatMap((t) =>
      t.columns.filter((c) => /tenant|client|account|org/i.test(c.name)).map((c) => `${t.key}.${c.name}`),
    );
    throw new FieldError(
      'model.tenantColumn',
      `no table has a column "${model.tenantColumn}"; columns that look like one: ${listed(similar)}`,
    );
  }

  // Every simple FK path (child → parent, self-references left out) from each other table to an
  // anchor (a direct table or the tenant table; a path ends at the first anchor it meets).
  const fks = catalog.foreignKeys.filter((f) => f.from.key !== f.to.key);
  const fkNotNull = (f: FkHop) => {
    const t = byKey.get(f.from.key);
    return f.columns.every((c) => t?.columns.find((x) => x.name === c)?.notNull === true);
  };
  const outgoing = new Map<string, CatalogForeignKey[]>();
  for (const f of fks) outgoing.set(f.from.key, [...(outgoing.get(f.from.key) ?? []), f]);
  for (const list of outgoing.values())
    list.sort((a, b) => a.to.key.localeCompare(b.to.key) || a.constraint.localeCompare(b.constraint));
  // Tables that reach an anchor at all (walked backwards from the anchors).
  const reaches = new Set(owned.keys());
  for (let grew = true; grew;) {
    grew = false;
    for (const f of fks)
      if (!reaches.has(f.from.key) && reaches.has(f.to.key) && !owned.has(f.from.key)) {
        reaches.add(f.from.key);
        grew = true;
      }
  }
  const hopOf = (f: CatalogForeignKey): FkHop => ({
    constraint: f.constraint,
    from: f.from,
    columns: f.columns,
    to: f.to,
    refColumns: f.refColumns,
  });
  for (const t of catalog.tables) {
    if (owned.has(t.key) || !reaches.has(t.key)) continue;
    const found: OwnershipPath[] = [];
    const walk = (at: string, hops: CatalogForeignKey[], seen: Set<string>) => {
      for (const f of outgoing.get(at) ?? []) {
        if (seen.has(f.to.key) || !reaches.has(f.to.key)) continue;
        const next = [...hops, f];
        const anchor = owned.get(f.to.key);
        if (anchor && anchor.kind !== 'child') {
          if (found.length >= MAX_OWNERSHIP_PATHS)
            throw new FieldError(
              'model.tenantColumn',
              `table ${t.key} reaches the tenants by more than ${MAX_OWNERSHIP_PATHS} foreign-key paths; the tenant plan cannot select its rows (simplify its foreign keys, or give it the tenant column)`,
            );
          found.push({
            hops: next.map(hopOf),
            filterColumn: anchor.filterColumn,
            notNull: next.every(fkNotNull),
          });
        } else {
          walk(f.to.key, next, new Set([...seen, f.to.key]));
        }
      }
    };
    walk(t.key, [], new Set([t.key]));
    // Preferred first: NOT NULL, then shorter, then by constraint names.
    const name = (p: OwnershipPath) => p.hops.map((h) => h.constraint).join('\u0000');
    found.sort(
      (a, b) =>
        Number(b.notNull) - Number(a.notNull) ||
        a.hops.length - b.hops.length ||
        name(a).localeCompare(name(b)),
    );
    const strict = found.filter((p) => p.notNull);
    const paths = strict.length ? strict : found;
    owned.set(t.key, {
      kind: 'child',
      filterColumn: paths[0]!.filterColumn,
      paths,
      otherPaths: found.filter((p) => !paths.includes(p)),
    });
  }

  const order = loadOrder(
    // The tenant table first among equals, then by name.
    [tenant.key, ...[...owned.keys()].filter((key) => key !== tenant.key).sort()],
    fks.filter((f) => owned.has(f.from.key) && owned.has(f.to.key)),
  );
  const param = engine === 'postgres' ? '$1' : '?';
  const tables: TenantPlanTable[] = order.map((key) => {
    const t = byKey.get(key)!;
    const a = owned.get(key)!;
    return {
      schema: t.schema,
      name: t.name,
      key,
      kind: a.kind,
      columns: t.columns.map((c) => c.name),
      primaryKey: t.primaryKey,
      generatedColumns: t.columns.filter((c) => c.generated).map((c) => c.name),
      filterColumn: a.filterColumn,
      path: a.paths[0]?.hops ?? [],
      paths: a.paths,
      otherPaths: a.otherPaths,
      dependsOn: [
        ...new Set(fks.filter((f) => f.from.key === key && owned.has(f.to.key)).map((f) => f.to.key)),
      ].sort(),
      selectSql: `SELECT t0.* FROM ${engine === 'postgres' ? 'ONLY ' : ''}${qualified(engine, t)} AS t0 WHERE ${ownershipWhere(engine, { kind: a.kind, filterColumn: a.filterColumn, paths: a.paths }, param)}`,
    };
  });
  const selfReferences: SelfReference[] = catalog.foreignKeys
    .filter((f) => f.from.key === f.to.key && owned.has(f.from.key))
    .map((f) => ({
      table: f.from.key,
      constraint: f.constraint,
      columns: f.columns,
      refColumns: f.refColumns,
      deferrable: f.deferrable,
      note:
        `rows may reference rows of the same table (${f.columns.join(', ')} → ${f.refColumns.join(', ')}): ` +
        `load them parents first along that FK, or insert with ${f.columns.join(', ')} NULL and set it afterwards` +
        (engine === 'mysql'
          ? ', or load with foreign_key_checks = 0 in the load session'
          : f.deferrable
            ? ', or SET CONSTRAINTS ALL DEFERRED in the load transaction'
            : ' (the FK is NOT DEFERRABLE, so it cannot be deferred)'),
    }));
  return {
    engine,
    database: catalog.database,
    model,
    tenantTable: ref(engine, tenant.schema, tenant.name),
    tables,
    order,
    shared: catalog.tables.filter((t) => !owned.has(t.key)).map((t) => ref(engine, t.schema, t.name)),
    selfReferences,
    unindexedForeignKeys: catalog.foreignKeys
      .filter((f) => f.indexed === false && owned.has(f.to.key))
      .map((f) => ({
        table: f.from.key,
        constraint: f.constraint,
        columns: f.columns,
        references: f.to.key,
        createIndex: `CREATE INDEX ON ${qualified(engine, f.from)} (${f.columns.map((c) => quoteIdentifier(engine, c)).join(', ')});`,
      })),
    inboundForeignKeys: catalog.foreignKeys
      .filter((f) => owned.has(f.to.key))
      .map((f) => ({ ...hopOf(f), onDelete: f.onDelete ?? 'NO ACTION' })),
  };
}

/**
 * One path's condition on `t0` (the child row): nested EXISTS up to the anchor, whose filter column
 * (SQL, e.g. `t3."tenant_id"`) must pass `test`.
 */
export function pathCondition(engine: Engine, path: OwnershipPath, test: (column: string) => string): string {
  const q = (n: string) => quoteIdentifier(engine, n);
  const depth = path.hops.length;
  // Innermost first: the last hop's parent carries the filter column.
  let where = test(`t${depth}.${q(path.filterColumn)}`);
  for (let i = depth - 1; i >= 0; i--) {
    const hop = path.hops[i]!;
    const join = hop.columns
      .map((c, k) => `t${i + 1}.${q(hop.refColumns[k]!)} = t${i}.${q(c)}`)
      .join(' AND ');
    where = `EXISTS (SELECT 1 FROM ${qualified(engine, hop.to)} AS t${i + 1} WHERE ${join} AND ${where})`;
  }
  return where;
}

/** The tenant id one path reaches from `t0` as text (NULL when it reaches none): a scalar subquery. */
export function pathValue(engine: Engine, path: OwnershipPath): string {
  const q = (n: string) => quoteIdentifier(engine, n);
  const depth = path.hops.length;
  const col = `t${depth}.${q(path.filterColumn)}`;
  const from = path.hops
    .map((hop, i) => {
      const on = hop.columns
        .map((c, k) => `t${i + 1}.${q(hop.refColumns[k]!)} = t${i}.${q(c)}`)
        .join(' AND ');
      return i === 0
        ? `${qualified(engine, hop.to)} AS t1`
        : `JOIN ${qualified(engine, hop.to)} AS t${i + 1} ON ${on}`;
    })
    .join(' ');
  const first = path.hops[0]!;
  const where = first.columns.map((c, k) => `t1.${q(first.refColumns[k]!)} = t0.${q(c)}`).join(' AND ');
  const text = engine === 'postgres' ? `${col}::text` : `CAST(${col} AS CHAR)`;
  return `(SELECT MIN(${text}) FROM ${from} WHERE ${where})`;
}

/**
 * The condition on `t0` (a row of `table`) that makes it the tenant's: `value` is the SQL of the
 * tenant id (a bind parameter or a literal). Child tables: one nested EXISTS per path, OR-ed.
 */
export function ownershipWhere(
  engine: Engine,
  table: {
    readonly kind: TenantTableKind;
    readonly filterColumn: string;
    readonly paths: readonly OwnershipPath[];
  },
  value: string,
): string {
  if (table.kind !== 'child') return `t0.${quoteIdentifier(engine, table.filterColumn)} = ${value}`;
  const test = (column: string) => `${column} = ${value}`;
  if (table.paths.length === 1) return pathCondition(engine, table.paths[0]!, test);
  return table.paths.map((p) => `(${pathCondition(engine, p, test)})`).join(' OR ');
}

/** A tenant id as an SQL string literal (compared with the key column, the server converts it). */
export function tenantLiteral(engine: Engine, tenant: string): string {
  if (engine === 'mysql') return mysqlEscape(tenant);
  // As node-postgres' escapeLiteral: E'' when there is a backslash, whatever standard_conforming_strings is.
  const quoted = `'${tenant.replace(/'/g, "''")}'`;
  return tenant.includes('\\') ? ` E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}

/** Kahn's algorithm, parents first, ties by name; an unorderable rest is a cycle → UsageError. */
function loadOrder(keys: readonly string[], edges: readonly FkHop[]): string[] {
  const parents = new Map<string, Set<string>>(keys.map((k) => [k, new Set<string>()]));
  for (const e of edges) parents.get(e.from.key)!.add(e.to.key);
  const done = new Set<string>();
  const order: string[] = [];
  for (;;) {
    const ready = keys.filter((k) => !done.has(k) && [...parents.get(k)!].every((p) => done.has(p)));
    if (ready.length === 0) break;
    for (const k of ready) {
      done.add(k);
      order.push(k);
    }
  }
  if (order.length === keys.length) return order;
  // Walk parent links among the remaining tables until one repeats: that is a cycle.
  const rest = keys.filter((k) => !done.has(k));
  const seen: string[] = [];
  let at = rest[0]!;
  while (!seen.includes(at)) {
    seen.push(at);
    at = [...parents.get(at)!].filter((p) => !done.has(p)).sort()[0]!;
  }
  const cycle = [...seen.slice(seen.indexOf(at)), at];
  const via = cycle.slice(0, -1).map((from, i) => {
    const e = edges.find((x) => x.from.key === from && x.to.key === cycle[i + 1]);
    return `${from}.${e?.constraint ?? '?'}`;
  });
  throw new UsageError(
    `foreign keys form a cycle that cannot be ordered for loading: ${cycle.join(' → ')} (each references the next; constraints: ${via.join(', ')})`,
  );
}

/** Connects, reads the catalog and builds the plan. MySQL needs the database in the URL. */
export async function discoverTenantPlan(connection: Connection, model: TenantModel): Promise<TenantPlan> {
  if (connection.engine === 'postgres') {
    const client = await connectPostgres(connection);
    try {
      return buildTenantPlan(await readPostgresCatalog(client), model);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const database = connection.database;
  if (!database)
    throw new UsageError('--url: expected a database name in the MySQL URL (mysql://user@host/db)');
  const conn = await connectMysql(connection, database);
  try {
    return buildTenantPlan(await readMysqlCatalog(conn, database), model);
  } finally {
    await conn.end().catch(() => undefined);
  }
}
