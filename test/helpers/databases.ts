/**
 * Real PostgreSQL / MySQL (MariaDB) databases for tests: availability gates, throw-away databases,
 * the "tricky" clinic fixtures, and order-independent content checksums to compare a source
 * database with a restored one.
 *
 * Servers: COFRE_TEST_PG_URL / COFRE_TEST_MYSQL_URL (admin URLs), defaulting to the local
 * trust-auth PostgreSQL and password-less MariaDB root. Without a server the suites are skipped
 * with a printed reason, except under CI=true, where they fail.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createConnection, type Connection as MysqlCallbackConnection, type RowDataPacket } from 'mysql2';
import type { Connection as MysqlConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { describe, test } from 'vitest';

export type Engine = 'postgres' | 'mysql';

export const PG_ADMIN_URL = process.env.COFRE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const MYSQL_ADMIN_URL = process.env.COFRE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';

const ENGINE_NAME: Record<Engine, string> = { postgres: 'PostgreSQL', mysql: 'MySQL/MariaDB' };
const CONNECT_TIMEOUT_MS = 5_000;

// ---------------------------------------------------------------------------------------------
// Connections

/** The URL with its password replaced by `***`, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '<unparseable URL>';
  }
}

/** A connected pg client for `url`, closed after `fn`. */
export async function withPostgresClient<T>(url: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

function mysqlCallbackConnection(url: string, multipleStatements = false): MysqlCallbackConnection {
  const u = new URL(url);
  if (u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') {
    throw new Error(`not a mysql:// URL: ${redactUrl(url)}`);
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return createConnection({
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    ...(database ? { database } : {}),
    charset: 'utf8mb4_unicode_ci',
    connectTimeout: CONNECT_TIMEOUT_MS,
    multipleStatements,
    // The fixture's 10 MiB row and checksum queries must not be mangled into JS numbers/dates.
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
  });
}

async function closeMysql(conn: MysqlConnection): Promise<void> {
  try {
    await conn.end();
  } catch {
    conn.destroy();
  }
}

/** A connected mysql2 (promise API) connection for `url`, closed after `fn`. */
export async function withMysqlConnection<T>(
  url: string,
  fn: (conn: MysqlConnection) => Promise<T>,
  options: { multipleStatements?: boolean } = {},
): Promise<T> {
  const conn = mysqlCallbackConnection(url, options.multipleStatements ?? false).promise();
  try {
    await conn.connect();
    return await fn(conn);
  } finally {
    await closeMysql(conn);
  }
}

// ---------------------------------------------------------------------------------------------
// Availability and vitest gates

function errorText(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) {
    return err.errors.map(errorText).join('; ');
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code) ? `${code} ${err.message}` : err.message;
  }
  return String(err);
}

let postgresProbe: Promise<string | undefined> | undefined;
let mysqlProbe: Promise<string | undefined> | undefined;

/** undefined when the PostgreSQL admin URL accepts connections; otherwise why not. Cached. */
export function postgresAvailable(): Promise<string | undefined> {
  postgresProbe ??= withPostgresClient(PG_ADMIN_URL, async (c) => {
    await c.query('SELECT 1');
    return undefined;
  }).catch(
    (err: unknown) =>
      `PostgreSQL is not reachable at ${redactUrl(PG_ADMIN_URL)} (set COFRE_TEST_PG_URL): ${errorText(err)}`,
  );
  return postgresProbe;
}

/** undefined when the MySQL/MariaDB admin URL accepts connections; otherwise why not. Cached. */
export function mysqlAvailable(): Promise<string | undefined> {
  mysqlProbe ??= withMysqlConnection(MYSQL_ADMIN_URL, async (c) => {
    await c.query('SELECT 1');
    return undefined;
  }).catch(
    (err: unknown) =>
      `MySQL/MariaDB is not reachable at ${redactUrl(MYSQL_ADMIN_URL)} (set COFRE_TEST_MYSQL_URL): ${errorText(err)}`,
  );
  return mysqlProbe;
}

export function databaseAvailable(engine: Engine): Promise<string | undefined> {
  return engine === 'postgres' ? postgresAvailable() : mysqlAvailable();
}

/**
 * `describe(name, fn)` when the engine's server is reachable. Otherwise: with CI=true, a suite
 * with one failing test carrying the reason; else the suite's tests are registered as skipped
 * and the reason is printed. Keep database work inside hooks and tests (never at collection
 * time in `fn`), so that skipped suites do nothing.
 */
export function describeDatabase(engine: Engine, name: string, fn: () => void): void {
  describe(name, async () => {
    const reason = await databaseAvailable(engine);
    if (reason === undefined) {
      fn();
      return;
    }
    if (process.env.CI === 'true') {
      test(`${ENGINE_NAME[engine]} is available (required because CI=true)`, () => {
        throw new Error(reason);
      });
      return;
    }
    console.warn(`[cofre tests] skipping "${name}": ${reason}`);
    describe.skip(`skipped: ${ENGINE_NAME[engine]} unavailable`, fn);
  });
}

export function describePostgres(name: string, fn: () => void): void {
  describeDatabase('postgres', name, fn);
}

export function describeMysql(name: string, fn: () => void): void {
  describeDatabase('mysql', name, fn);
}

// ---------------------------------------------------------------------------------------------
// Throw-away databases

export interface TestDatabase {
  readonly engine: Engine;
  /** Database name: cofre_t_<label>_<pid>_<random>, lowercase, ≤ 63 characters. */
  readonly name: string;
  /** Connection URL for the new database (the admin URL with its path replaced). */
  readonly url: string;
  /** Drops the database, terminating other sessions connected to it first. Idempotent. */
  drop(): Promise<void>;
}

/** A fresh, unique database name: `cofre_t_<label>_<pid>_<8 hex>`. */
export function uniqueDatabaseName(label: string): string {
  const suffix = `_${process.pid}_${randomBytes(4).toString('hex')}`;
  const prefix = 'cofre_t_';
  const clean =
    label
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '_')
      .replace(/^_+|_+$/g, '') || 'db';
  return prefix + clean.slice(0, 63 - prefix.length - suffix.length) + suffix;
}

function urlWithDatabase(adminUrl: string, name: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

function quotePgIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function quoteMysqlIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

export async function createPostgresDatabase(label: string): Promise<TestDatabase> {
  const name = uniqueDatabaseName(label);
  await withPostgresClient(PG_ADMIN_URL, (c) =>
    c.query(`CREATE DATABASE ${quotePgIdent(name)} TEMPLATE template0 ENCODING 'UTF8'`),
  );
  return {
    engine: 'postgres',
    name,
    url: urlWithDatabase(PG_ADMIN_URL, name),
    drop: () => dropPostgresDatabase(name),
  };
}

async function dropPostgresDatabase(name: string): Promise<void> {
  // WITH (FORCE) (PostgreSQL ≥ 13) terminates the other sessions connected to the database.
  await withPostgresClient(PG_ADMIN_URL, (c) =>
    c.query(`DROP DATABASE IF EXISTS ${quotePgIdent(name)} WITH (FORCE)`),
  );
}

export async function createMysqlDatabase(label: string): Promise<TestDatabase> {
  const name = uniqueDatabaseName(label);
  await withMysqlConnection(MYSQL_ADMIN_URL, (c) =>
    c.query(`CREATE DATABASE ${quoteMysqlIdent(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`),
  );
  return {
    engine: 'mysql',
    name,
    url: urlWithDatabase(MYSQL_ADMIN_URL, name),
    drop: () => dropMysqlDatabase(name),
  };
}

async function dropMysqlDatabase(name: string): Promise<void> {
  await withMysqlConnection(MYSQL_ADMIN_URL, async (c) => {
    const [sessions] = await c.query<RowDataPacket[]>(
      'SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()',
      [name],
    );
    for (const s of sessions) {
      try {
        await c.query(`KILL ${Number(s.id)}`);
      } catch {
        // Already gone.
      }
    }
    await c.query(`DROP DATABASE IF EXISTS ${quoteMysqlIdent(name)}`);
  });
}

export function createDatabase(engine: Engine, label: string): Promise<TestDatabase> {
  return engine === 'postgres' ? createPostgresDatabase(label) : createMysqlDatabase(label);
}

// ---------------------------------------------------------------------------------------------
// The tricky fixtures

export const FIXTURES_DIR = path.join(__dirname, '..', 'fixtures');

export function trickyFixturePath(engine: Engine): string {
  return path.join(FIXTURES_DIR, engine === 'postgres' ? 'tricky-postgres.sql' : 'tricky-mysql.sql');
}

/** Tenants of the fixtures; `sem-dados` has no row outside `tenants`. */
export const TRICKY_TENANTS = ['clinica-sp', 'clinica-rj', 'odonto-bh', 'sem-dados'] as const;

/** Row counts after loading each fixture (keys as returned by tableChecksums / rowCounts). */
export const TRICKY_ROW_COUNTS: Record<Engine, Readonly<Record<string, number>>> = {
  postgres: {
    'audit.events': 1243,
    'public.ClinicUnits': 5,
    'public.appointments': 2996,
    'public.attachments': 5,
    'public.invoices': 400,
    'public.patients': 1181,
    'public.prescription_items': 2999,
    'public.prescriptions': 1499,
    'public.professionals': 24,
    'public.specialties': 7,
    'public.tenants': 4,
    'public.waiting_list': 0,
  },
  mysql: {
    ClinicUnits: 5,
    appointments: 2996,
    attachments: 5,
    audit_events: 1243,
    invoices: 400,
    patients: 1181,
    prescription_items: 2999,
    prescriptions: 1499,
    professionals: 24,
    specialties: 7,
    tenants: 4,
    waiting_list: 0,
  },
};

/** Where each fixture keeps its ≥ 10 MiB incompressible value. */
export const TRICKY_BIG_ROW: Record<Engine, { table: string; column: string; id: number; bytes: number }> = {
  postgres: { table: 'public.attachments', column: 'content', id: 5, bytes: 10 * 1024 * 1024 },
  mysql: { table: 'attachments', column: 'content', id: 5, bytes: 10 * 1024 * 1024 },
};

/**
 * Splits a mysql-client script at its `DELIMITER` lines: each `;`-delimited section is one
 * multi-statement batch (the server splits it), each statement under another delimiter is its
 * own batch. Comment-only batches are dropped.
 */
export function splitMysqlScript(sql: string): string[] {
  const batches: string[] = [];
  let delimiter = ';';
  let current: string[] = [];
  const flush = (): void => {
    const text = current.join('\n').trim();
    const meaningful = current.some((l) => l.trim() !== '' && !l.trim().startsWith('--'));
    if (meaningful) batches.push(text);
    current = [];
  };
  for (const line of sql.split(/\r?\n/)) {
    const directive = /^\s*DELIMITER\s+(\S+)\s*$/i.exec(line);
    if (directive) {
      flush();
      delimiter = directive[1]!;
      continue;
    }
    const trimmed = line.trimEnd();
    if (delimiter !== ';' && trimmed.endsWith(delimiter)) {
      current.push(trimmed.slice(0, -delimiter.length));
      flush();
      continue;
    }
    current.push(line);
  }
  flush();
  return batches;
}

/** Loads test/fixtures/tricky-<engine>.sql into the (empty) database at `url`. */
export async function loadTrickySchema(engine: Engine, url: string): Promise<void> {
  const sql = await readFile(trickyFixturePath(engine), 'utf8');
  if (engine === 'postgres') {
    // One simple-protocol query: all statements run in one implicit transaction.
    await withPostgresClient(url, async (c) => {
      await c.query(sql);
    });
    return;
  }
  await withMysqlConnection(
    url,
    async (c) => {
      for (const batch of splitMysqlScript(sql)) await c.query(batch);
    },
    { multipleStatements: true },
  );
}

// ---------------------------------------------------------------------------------------------
// Content checksums

export interface TableChecksum {
  rows: number;
  /** SHA-256 (hex) over the sorted per-row hashes: independent of physical row order. */
  sha256: string;
}

interface TableRef {
  key: string;
  sql: string;
}

async function postgresTables(c: Client): Promise<TableRef[]> {
  // Ordinary tables (and partitions) of every non-system schema, minus extension members.
  const { rows } = await c.query<{ schema: string; name: string }>(`
    SELECT n.nspname AS schema, c.relname AS name
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'r'
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1, 2`);
  return rows.map((r) => ({
    key: `${r.schema}.${r.name}`,
    sql: `${quotePgIdent(r.schema)}.${quotePgIdent(r.name)}`,
  }));
}

/** Session settings that fix the text form of every value (time zone, dates, floats, bytea). */
const PG_STABLE_OUTPUT = `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';
  SET extra_float_digits = 1; SET bytea_output = 'hex'; SET client_encoding = 'UTF8'`;

async function postgresChecksums(url: string): Promise<Record<string, TableChecksum>> {
  return withPostgresClient(url, async (c) => {
    await c.query(PG_STABLE_OUTPUT);
    const out: Record<string, TableChecksum> = {};
    for (const t of await postgresTables(c)) {
      // The row's composite text form distinguishes NULL from '' and renders bytea as hex.
      const { rows } = await c.query<{ rows: string; sha256: string }>(`
        SELECT count(*) AS rows,
               encode(sha256(convert_to(coalesce(string_agg(h, E'\\n' ORDER BY h COLLATE "C"), ''), 'UTF8')), 'hex') AS sha256
        FROM (SELECT encode(sha256(convert_to(cofre_row__::text, 'UTF8')), 'hex') AS h
              FROM ONLY ${t.sql} AS cofre_row__) AS s`);
      out[t.key] = { rows: Number(rows[0]!.rows), sha256: rows[0]!.sha256 };
    }
    return out;
  });
}

interface MysqlColumn {
  name: string;
  charset: string | null;
}

async function mysqlTables(c: MysqlConnection): Promise<Map<string, MysqlColumn[]>> {
  const [rows] = await c.query<RowDataPacket[]>(`
    SELECT c.TABLE_NAME AS tbl, c.COLUMN_NAME AS col, c.CHARACTER_SET_NAME AS charset
    FROM information_schema.COLUMNS c
    JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
    WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE'
    ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION`);
  const tables = new Map<string, MysqlColumn[]>();
  for (const r of rows) {
    const tbl = String(r.tbl);
    const cols = tables.get(tbl) ?? [];
    cols.push({ name: String(r.col), charset: r.charset === null ? null : String(r.charset) });
    tables.set(tbl, cols);
  }
  return new Map([...tables.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Per-row SHA-256 computed server-side: each column hashed on its own (so a 10 MiB BLOB never
 * has to be hex-encoded, which MySQL caps at max_allowed_packet), text converted to utf8mb4 first,
 * NULL marked apart from ''.
 */
function mysqlRowHashSql(table: string, columns: MysqlColumn[]): string {
  const parts = columns.map((col) => {
    const ident = quoteMysqlIdent(col.name);
    const value = col.charset === null ? ident : `CONVERT(${ident} USING utf8mb4)`;
    return `IFNULL(CONCAT('v', SHA2(${value}, 256)), 'n')`;
  });
  return `SELECT SHA2(CONCAT_WS(',', ${parts.join(', ')}), 256) AS h FROM ${quoteMysqlIdent(table)} ORDER BY h`;
}

function streamMysqlHashes(conn: MysqlCallbackConnection, sql: string): Promise<TableChecksum> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let rows = 0;
    conn
      .query({ sql, rowsAsArray: true })
      .stream()
      .on('data', (row: unknown[]) => {
        hash.update(`${String(row[0])}\n`);
        rows += 1;
      })
      .on('error', reject)
      .on('end', () => {
        resolve({ rows, sha256: hash.digest('hex') });
      });
  });
}

async function mysqlChecksums(url: string): Promise<Record<string, TableChecksum>> {
  const raw = mysqlCallbackConnection(url);
  const conn = raw.promise();
  try {
    await conn.connect();
    await conn.query("SET time_zone = '+00:00'");
    const out: Record<string, TableChecksum> = {};
    for (const [table, columns] of await mysqlTables(conn)) {
      out[table] = await streamMysqlHashes(raw, mysqlRowHashSql(table, columns));
    }
    return out;
  } finally {
    await closeMysql(conn);
  }
}

/**
 * For every base table (PostgreSQL: every non-system schema, keys `schema.table`; MySQL: the
 * URL's database, keys `table`): row count and a content hash independent of physical row
 * order that changes with any value of any column (NULL vs '', one byte of a bytea/BLOB).
 * Compare only databases on servers of the same engine and major version.
 */
export function tableChecksums(engine: Engine, url: string): Promise<Record<string, TableChecksum>> {
  return engine === 'postgres' ? postgresChecksums(url) : mysqlChecksums(url);
}

/** Exact `count(*)` of every base table (same keys as tableChecksums). */
export async function rowCounts(engine: Engine, url: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (engine === 'postgres') {
    await withPostgresClient(url, async (c) => {
      for (const t of await postgresTables(c)) {
        const { rows } = await c.query<{ n: string }>(`SELECT count(*) AS n FROM ONLY ${t.sql}`);
        out[t.key] = Number(rows[0]!.n);
      }
    });
    return out;
  }
  await withMysqlConnection(url, async (c) => {
    for (const table of (await mysqlTables(c)).keys()) {
      const [rows] = await c.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${quoteMysqlIdent(table)}`);
      out[table] = Number(rows[0]!.n);
    }
  });
  return out;
}
