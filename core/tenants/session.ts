/** A tenant restore's database session: one connection, one transaction, the same operations on either engine. */

import type { Connection } from '../sources/connection';
import { connectMysql } from '../sources/mysql';
import { connectPostgres } from '../sources/postgres';
import type { Query } from './coverage';
import type { SectionTable } from './format';
import type { TenantPlan, TenantPlanTable } from './plan';
import { postgresSession } from './postgres-session';
import { mysqlSession } from './mysql-session';

// ---------------------------------------------------------------------------------------------
// Sessions: one connection, one transaction, per engine

export interface Session {
  count(t: TenantPlanTable, tenant: string): Promise<number>;
  /** Any statement in the session (its transaction, once begun); the rows it returns. */
  query: Query;
  begin(): Promise<void>;
  /** User triggers on the plan's tables, as `table.trigger`. */
  triggers(plan: TenantPlan): Promise<string[]>;
  /** Switches user triggers of these tables off until the transaction ends (PostgreSQL). */
  disableTriggers(tables: readonly TenantPlanTable[]): Promise<void>;
  remove(t: TenantPlanTable, tenant: string): Promise<number>;
  /** Starts loading one section; returns a writer of row lines. */
  startRows(t: TenantPlanTable, section: SectionTable, insertLine?: Buffer): Promise<RowWriter>;
  /** After the load, before commit: sequences above the loaded ids; integrity of unchecked FKs. */
  afterLoad(plan: TenantPlan, tenant: string): Promise<string[]>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

export interface RowWriter {
  row(line: Buffer): Promise<void>;
  end(): Promise<void>;
}

export async function withSession<T>(
  c: Connection,
  database: string,
  fn: (s: Session) => Promise<T>,
): Promise<T> {
  if (c.engine === 'postgres') {
    const client = await connectPostgres(c, database);
    try {
      return await fn(postgresSession(client));
    } finally {
      await client.end().catch(() => undefined);
    }
  }
  const conn = await connectMysql(c, database);
  try {
    return await fn(mysqlSession(conn, database));
  } finally {
    await conn.end().catch(() => undefined);
  }
}
