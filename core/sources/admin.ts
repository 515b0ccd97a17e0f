/**
 * Server-level work on an administrative connection (PostgreSQL: the `postgres` database; MySQL:
 * no default database): checks across databases, and dropping scratch databases.
 */
import { quoteIdentifier, type Connection } from './connection';
import { connectMysql } from './mysql';
import { connectPostgres } from './postgres';

export type AdminQuery = (sql: string) => Promise<Record<string, unknown>[]>;

/** Runs `fn` on an administrative connection to the server (PostgreSQL: database `postgres`). */
export async function withAdmin<T>(c: Connection, fn: (query: AdminQuery) => Promise<T>): Promise<T> {
  if (c.engine === 'postgres') {
    const client = await connectPostgres(c, 'postgres');
    try {
      return await fn(async (sql) => (await client.query<Record<string, unknown>>(sql)).rows);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const conn = await connectMysql(c);
  try {
    return await fn(async (sql) => {
      const [rows] = await conn.query(sql);
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
    });
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** Drops the database `name` if it exists (PostgreSQL: ending its sessions first, `WITH (FORCE)`). */
export async function dropDatabaseIfExists(c: Connection, name: string): Promise<void> {
  await withAdmin(c, (query) =>
    query(
      `DROP DATABASE IF EXISTS ${quoteIdentifier(c.engine, name)}${c.engine === 'postgres' ? ' WITH (FORCE)' : ''}`,
    ),
  );
}
