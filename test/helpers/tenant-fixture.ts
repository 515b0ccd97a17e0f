/** Loads the generated multi-tenant clinic (test/fixtures/tenant-clinic.ts) and checksums one tenant. */
import { createHash } from 'node:crypto';
import type { RowDataPacket } from 'mysql2';
import {
  literal,
  perTenantRows,
  TENANT_CLINIC_SCHEMA,
  TENANT_MODEL,
  tenantRows,
  type TableRows,
  type TenantFixtureSize,
} from '../fixtures/tenant-clinic';
import { withMysqlConnection, withPostgresClient, type Engine } from './databases';

export { perTenantRows, TENANT_MODEL, tenantRows };

/** Inserts tables' rows in batches (MySQL: FK checks off for the self-referencing rows). */
export async function insertRows(engine: Engine, url: string, tables: readonly TableRows[]): Promise<void> {
  const statements: string[] = [];
  for (const t of tables) {
    for (let i = 0; i < t.rows.length; i += 2000) {
      const q = (c: string) => (engine === 'postgres' ? `"${c}"` : `\`${c}\``);
      statements.push(
        `INSERT INTO ${q(t.table)} (${t.columns.map(q).join(', ')}) VALUES ${t.rows
          .slice(i, i + 2000)
          .map((r) => `(${r.map((v) => literal(engine, v)).join(', ')})`)
          .join(', ')}`,
      );
    }
  }
  if (engine === 'postgres') {
    await withPostgresClient(url, async (c) => {
      await c.query("SET TimeZone = 'UTC'");
      for (const s of statements) await c.query(s);
    });
  } else {
    await withMysqlConnection(url, async (c) => {
      await c.query("SET time_zone = '+00:00'");
      await c.query('SET foreign_key_checks = 0');
      for (const s of statements) await c.query(s);
      await c.query('SET foreign_key_checks = 1');
    });
  }
}

/** Creates the schema and `size.tenants` tenants (ids 1..N) in the empty database at `url`. */
export async function loadTenantFixture(engine: Engine, url: string, size: TenantFixtureSize): Promise<void> {
  const run = async (statements: readonly string[]) => {
    if (engine === 'postgres')
      await withPostgresClient(url, async (c) => {
        await c.query(statements.join(';\n'));
      });
    else
      await withMysqlConnection(url, async (c) => {
        for (const s of statements) await c.query(s);
      });
  };
  await run([
    ...TENANT_CLINIC_SCHEMA[engine],
    `INSERT INTO specialties (id, name) VALUES (1, 'Cardiologia'), (2, 'Pediatria'), (3, 'Ortopedia'), (4, 'Dermatologia'), (5, 'Clínica geral')`,
    `INSERT INTO app_settings VALUES ('version', '3'), ('maintenance', NULL)`,
  ]);
  for (let from = 1; from <= size.tenants; from += 50)
    await insertRows(engine, url, tenantRows(from, Math.min(size.tenants + 1, from + 50), size.scale ?? 1));
}

/**
 * One tenant's content, table by table: a SHA-256 over the text of its rows (PostgreSQL: each row
 * as text under fixed output settings; MySQL: each value's bytes), in primary-key order.
 */
export async function tenantChecksums(
  engine: Engine,
  url: string,
  tables: readonly { key: string; selectSql: string; primaryKey: readonly string[] }[],
  tenant: string,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  if (engine === 'postgres') {
    await withPostgresClient(url, async (c) => {
      await c.query("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 3");
      for (const t of tables) {
        const { rows } = await c.query<{ r: string }>(
          `SELECT x::text AS r FROM (${t.selectSql}) AS x ORDER BY ${t.primaryKey.map((k) => `x."${k}"`).join(', ')}`,
          [tenant],
        );
        out[t.key] = `${rows.length}:${createHash('sha256')
          .update(rows.map((r) => r.r).join('\n'))
          .digest('hex')}`;
      }
    });
    return out;
  }
  await withMysqlConnection(url, async (c) => {
    await c.query("SET time_zone = '+00:00'");
    for (const t of tables) {
      const [rows] = await c.query<RowDataPacket[]>({
        sql: `SELECT * FROM (${t.selectSql}) AS x ORDER BY ${t.primaryKey.map((k) => `x.\`${k}\``).join(', ')}`,
        // One bind parameter per ownership path.
        values: t.selectSql
          .split('= ?')
          .slice(1)
          .map(() => tenant),
        rowsAsArray: true,
        typeCast: (field) => field.buffer(),
      });
      const hash = createHash('sha256');
      for (const row of rows as unknown as (Buffer | null)[][])
        hash.update(`${row.map((v) => (v === null ? '\\N' : v.toString('hex'))).join(',')}\n`);
      out[t.key] = `${rows.length}:${hash.digest('hex')}`;
    }
  });
  return out;
}
