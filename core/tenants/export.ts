/**
 * Streams one tenant's rows out of a live database, in one consistent snapshot, as the tenant
 * export format of `format.ts`: PostgreSQL `COPY (SELECT …) TO STDOUT` in a repeatable-read,
 * read-only transaction; MySQL a streamed SELECT per table in a `WITH CONSISTENT SNAPSHOT`
 * transaction, written as batched INSERTs. Row counts come from the very bytes written.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { escape as mysqlEscape } from 'mysql2';
import type { Connection as MysqlCallbackConnection, FieldPacket, TypeCast } from 'mysql2';
import type { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { quoteIdentifier, type Connection, type Engine } from '../sources/connection';
import { IntegrityError, OperationalError, messageOf } from '../util/errors';
import { connectMysql } from '../sources/mysql';
import { connectPostgres } from '../sources/postgres';
import type { RunningDump, TableCount } from '../sources/types';
import { COPY_END, END_MARK, HEADER_MARK, tableMark, type SectionTable } from './format';
import { ownershipWhere, tenantLiteral, type TenantPlan, type TenantPlanTable } from './plan';

/** The artifact formats of tenant exports. */
export const TENANT_FORMATS = { postgres: 'tenant-pg-copy', mysql: 'tenant-mysql-insert' } as const;

/**
 * Session settings under which rows are written and read back, so that text forms of times,
 * dates, intervals and floats round-trip exactly (pg_dump and mysqldump set the same).
 */
export const SESSION_SETTINGS: Record<Engine, readonly string[]> = {
  postgres: [
    "SET client_encoding = 'UTF8';",
    'SET standard_conforming_strings = on;',
    "SET TimeZone = 'UTC';",
    "SET DateStyle = 'ISO, MDY';",
    "SET IntervalStyle = 'postgres';",
    'SET extra_float_digits = 3;',
  ],
  mysql: [
    'SET NAMES utf8mb4;',
    "SET time_zone = '+00:00';",
    "SET sql_mode = 'NO_AUTO_VALUE_ON_ZERO';",
    'SET foreign_key_checks = 0;',
    'SET unique_checks = 1;',
  ],
};

/** A MySQL INSERT holds rows up to about this many bytes (one bigger row makes its own statement). */
export const INSERT_BATCH_BYTES = 1024 * 1024;

/** The columns a section carries: every column but generated ones (the target computes those). */
export function loadColumns(table: TenantPlanTable): string[] {
  return table.columns.filter((c) => !table.generatedColumns.includes(c));
}

export function sectionTable(table: TenantPlanTable): SectionTable {
  return { key: table.key, schema: table.schema, name: table.name, columns: loadColumns(table) };
}

export function qualifiedName(engine: Engine, t: { schema: string; name: string }): string {
  return engine === 'postgres'
    ? `${quoteIdentifier(engine, t.schema)}.${quoteIdentifier(engine, t.name)}`
    : quoteIdentifier(engine, t.name);
}

/**
 * The plan's SELECT for one table with an explicit column list (generated columns left out), the
 * tenant id as `tenant` (SQL: a literal from `tenantLiteral`, or a bind parameter) and primary-key order.
 */
export function tenantSelect(engine: Engine, table: TenantPlanTable, tenant?: string): string {
  const q = (n: string) => quoteIdentifier(engine, n);
  const value = tenant ?? (engine === 'postgres' ? '$1' : '?');
  let sql = `SELECT ${loadColumns(table)
    .map((c) => `t0.${q(c)}`)
    .join(
      ', ',
    )} FROM ${engine === 'postgres' ? 'ONLY ' : ''}${qualifiedName(engine, table)} AS t0 WHERE ${ownershipWhere(engine, table, value)}`;
  if (table.primaryKey.length) sql += ` ORDER BY ${table.primaryKey.map((c) => `t0.${q(c)}`).join(', ')}`;
  return sql;
}

/**
 * An order-independent digest of a table's rows: each row's SHA-256 (of its text in the export:
 * the COPY line, or the INSERT tuple), added up lane by lane (8 × 32 bits, modulo 2^32). Equal
 * multisets of rows give equal digests whatever the order, so a copy can be compared without sorting.
 */
export class RowSetHash {
  private readonly lanes = new Uint32Array(8);
  rows = 0;
  add(row: Buffer | string): void {
    const h = createHash('sha256').update(row).digest();
    for (let i = 0; i < 8; i++) this.lanes[i] = (this.lanes[i]! + h.readUInt32BE(i * 4)) >>> 0;
    this.rows++;
  }
  digest(): string {
    return `${ROWSET_HASH}:${Buffer.from(this.lanes.buffer).toString('hex')}`;
  }
}

/** Names the digest scheme of RowSetHash in manifests. */
export const ROWSET_HASH = 'rowsum-sha256';

/** A tenant export: also each table's content digest (RowSetHash), known once `completed` resolved. */
export interface TenantDump extends RunningDump {
  contentHashes(): Record<string, string>;
}

/** The first line of an export: what it is, for a person opening the file. */
function headerLine(plan: TenantPlan, tenant: string): string {
  return `${HEADER_MARK}${JSON.stringify({ engine: plan.engine, database: plan.database, tenant, tables: plan.tables.length })}\n`;
}

async function write(out: PassThrough, data: string | Buffer): Promise<void> {
  if (out.destroyed) throw new OperationalError('the tenant export stream was closed');
  if (!out.write(data)) await once(out, 'drain');
}

/**
 * Starts exporting one tenant. The returned dump's `completed` resolves with every table's row
 * count once the last byte was written and the snapshot's transaction ended cleanly.
 */
export async function startTenantExport(
  connection: Connection,
  plan: TenantPlan,
  tenant: string,
): Promise<TenantDump> {
  return plan.engine === 'postgres'
    ? startPostgresExport(connection, plan, tenant)
    : startMysqlExport(connection, plan, tenant);
}

/** How one engine opens its snapshot, writes one table's section, and lets go. */
interface ExportSession {
  /** Opens the snapshot's transaction with the session settings. */
  begin(): Promise<void>;
  /** Writes the rows of one table (after its header), each also into `hash`; returns how many there were. */
  rows(table: TenantPlanTable, section: SectionTable, out: PassThrough, hash: RowSetHash): Promise<number>;
  /** The tenant's rows of the table by a query of their own (not from the bytes written), in the same snapshot. */
  count(table: TenantPlanTable): Promise<number>;
  commit(): Promise<void>;
  /** Closes the connection (after commit, or on failure). */
  release(): Promise<void>;
  /** Stops at once (abort): kills the connection. */
  kill(): void;
}

/**
 * The export around an engine's session: header and settings, each table's mark and rows in plan
 * order, the end marker, then commit; `completed` resolves with the counts once it all went through.
 */
function runExport(
  plan: TenantPlan,
  tenant: string,
  session: ExportSession,
  format: RunningDump['format'],
): Omit<TenantDump, 'largestStatementBytes'> {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  const state = { aborted: false };
  const hashes: Record<string, string> = {};
  const completed = (async (): Promise<TableCount[]> => {
    const counts: TableCount[] = [];
    try {
      await session.begin();
      await write(out, headerLine(plan, tenant));
      await write(out, `${SESSION_SETTINGS[plan.engine].join('\n')}\n`);
      for (const table of plan.tables) {
        const section = sectionTable(table);
        await write(out, tableMark(section));
        const hash = new RowSetHash();
        const rows = await session.rows(table, section, out, hash);
        const independent = await session.count(table);
        if (independent !== rows || hash.rows !== rows)
          throw new IntegrityError(
            `${table.key}: ${rows} rows of tenant "${tenant}" were exported, but counting them in the same snapshot gives ${independent}`,
          );
        hashes[table.key] = hash.digest();
        counts.push({
          schema: plan.engine === 'postgres' ? table.schema : plan.database,
          name: table.name,
          rows,
        });
      }
      await write(out, `${END_MARK}${JSON.stringify({ tables: plan.tables.length })}\n`);
      await session.commit();
      out.end();
      return counts;
    } catch (error) {
      out.destroy();
      if (error instanceof IntegrityError && !state.aborted) throw error;
      throw state.aborted
        ? new OperationalError('tenant export stopped')
        : new OperationalError(
            `exporting tenant "${tenant}" of "${plan.database}" failed: ${messageOf(error)}`,
          );
    } finally {
      await session.release().catch(() => undefined);
    }
  })();
  completed.catch(() => undefined);
  return {
    format,
    extension: 'tenant.sql',
    stdout: out,
    completed,
    contentHashes: () => ({ ...hashes }),
    abort() {
      if (state.aborted) return;
      state.aborted = true;
      out.destroy();
      session.kill();
    },
  };
}

async function startPostgresExport(c: Connection, plan: TenantPlan, tenant: string): Promise<TenantDump> {
  const client: Client = await connectPostgres(c, plan.database);
  const literal = tenantLiteral('postgres', tenant);
  return runExport(
    plan,
    tenant,
    {
      async begin() {
        await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        for (const s of SESSION_SETTINGS.postgres) await client.query(s.replace(/^SET /, 'SET LOCAL '));
      },
      async count(table) {
        const { rows } = await client.query<{ n: string }>(
          `SELECT count(*) AS n FROM ONLY ${qualifiedName('postgres', table)} AS t0 WHERE ${ownershipWhere('postgres', table, literal)}`,
        );
        return Number(rows[0]!.n);
      },
      async rows(table, section, out, hash) {
        await write(
          out,
          `COPY ${qualifiedName('postgres', table)} (${section.columns.map((x) => quoteIdentifier('postgres', x)).join(', ')}) FROM stdin;\n`,
        );
        let rows = 0;
        let partial: Buffer[] = [];
        const copy = client.query(copyTo(`COPY (${tenantSelect('postgres', table, literal)}) TO STDOUT`));
        for await (const chunk of copy as AsyncIterable<Buffer>) {
          // COPY text format: every row is exactly one line.
          let start = 0;
          for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) {
            rows++;
            const piece = chunk.subarray(start, i);
            hash.add(partial.length ? Buffer.concat([...partial, piece]) : piece);
            partial = [];
            start = i + 1;
          }
          if (start < chunk.length) partial.push(chunk.subarray(start));
          await write(out, chunk);
        }
        await write(out, `${COPY_END}\n`);
        return rows;
      },
      async commit() {
        await client.query('COMMIT');
      },
      release: () => client.end(),
      kill() {
        void client.end().catch(() => undefined);
      },
    },
    TENANT_FORMATS.postgres,
  );
}

/** MySQL column types whose values are bytes, not text: written as X'…'. */
const BINARY_CHARSET = 63;

async function startMysqlExport(c: Connection, plan: TenantPlan, tenant: string): Promise<TenantDump> {
  const conn = await connectMysql(c, plan.database);
  // The promise wrapper's underlying connection (streaming queries live on it).
  const raw = (conn as unknown as { connection: MysqlCallbackConnection }).connection;
  let closed = false;
  const onClosed = () => (closed = true);
  raw.once('end', onClosed);
  raw.on('error', onClosed);
  let largest = 0;
  const dump = runExport(
    plan,
    tenant,
    {
      async begin() {
        await conn.query("SET SESSION time_zone = '+00:00'");
        await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
        await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      },
      async count(table) {
        const [rows] = await conn.query(
          `SELECT COUNT(*) AS n FROM ${qualifiedName('mysql', table)} AS t0 WHERE ${ownershipWhere('mysql', table, tenantLiteral('mysql', tenant))}`,
        );
        return Number((rows as { n: number | string }[])[0]!.n);
      },
      async rows(table, section, out, hash) {
        const insert = `INSERT INTO ${qualifiedName('mysql', table)} (${section.columns.map((x) => quoteIdentifier('mysql', x)).join(',')}) VALUES\n`;
        let binary: boolean[] = [];
        const query = raw.query({
          sql: tenantSelect('mysql', table, tenantLiteral('mysql', tenant)),
          rowsAsArray: true,
          // Every value as its raw bytes; text columns arrive in the connection's utf8mb4.
          typeCast: ((field) => field.buffer()) as TypeCast,
        });
        query.on('fields', (fields: FieldPacket[]) => {
          binary = fields.map((f) => f.characterSet === BINARY_CHARSET);
        });
        let rows = 0;
        let held: string | undefined;
        let statementBytes = 0;
        const stream = query.stream({ highWaterMark: 256 });
        // A connection the server closes (KILL, restart, network) ends the connection, not the
        // query's stream, which would wait forever: end the stream with the reason.
        const gone = () =>
          stream.destroy(
            new OperationalError('the MySQL server closed the connection (killed, restarted or unreachable)'),
          );
        raw.once('end', gone);
        raw.once('error', gone);
        try {
          for await (const row of stream as AsyncIterable<(Buffer | null)[]>) {
            const tuple = `(${row
              .map((v, i) =>
                v === null ? 'NULL' : binary[i] ? mysqlEscape(v) : mysqlEscape(v.toString('utf8')),
              )
              .join(',')})`;
            hash.add(tuple);
            const tupleBytes = Buffer.byteLength(tuple) + 2;
            if (held === undefined) {
              await write(out, insert);
              statementBytes = insert.length;
            } else if (statementBytes + tupleBytes > INSERT_BATCH_BYTES) {
              await write(out, `${held};\n`);
              largest = Math.max(largest, statementBytes + 1);
              await write(out, insert);
              statementBytes = insert.length;
            } else {
              await write(out, `${held},\n`);
            }
            held = tuple;
            statementBytes += tupleBytes;
            rows++;
          }
        } finally {
          raw.off('end', gone);
          raw.off('error', gone);
        }
        if (held !== undefined) {
          await write(out, `${held};\n`);
          largest = Math.max(largest, statementBytes + 1);
        }
        return rows;
      },
      async commit() {
        await conn.query('COMMIT');
      },
      // end() on a connection the server closed waits forever (mysql2): destroy it instead.
      release: async () => {
        if (closed) raw.destroy();
        else await conn.end();
      },
      kill() {
        raw.destroy();
      },
    },
    TENANT_FORMATS.mysql,
  );
  return { ...dump, largestStatementBytes: () => largest };
}
