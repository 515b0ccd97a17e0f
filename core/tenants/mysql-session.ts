/** The MySQL / MariaDB session of a tenant restore. */

import type { Connection as MysqlConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { quoteIdentifier } from '../sources/connection';
import { IntegrityError } from '../util/errors';
import { qualifiedName, tenantSelect } from './export';
import { ownershipWhere, readMysqlCatalog, tenantLiteral, type TenantPlanTable } from './plan';
import type { Session } from './session';

export function mysqlSession(conn: MysqlConnection, database: string): Session {
  /** Self-referencing tables load with foreign_key_checks off (InnoDB checks row by row); checked after. */
  const unchecked = new Set<string>();
  let selfRefs: Set<string> | undefined;
  const isSelfRef = async (t: TenantPlanTable) => {
    if (!selfRefs) {
      const catalog = await readMysqlCatalog(conn, database);
      selfRefs = new Set(catalog.foreignKeys.filter((f) => f.from.key === f.to.key).map((f) => f.from.key));
    }
    return selfRefs.has(t.key);
  };
  const checks = async (t: TenantPlanTable, on: boolean) => {
    if (!(await isSelfRef(t))) return;
    await conn.query(`SET SESSION foreign_key_checks = ${on ? 1 : 0}`);
    unchecked.add(t.key);
  };
  return {
    query: async (sql) => {
      const [rows] = await conn.query(sql);
      return rows as Record<string, unknown>[];
    },
    async count(t, tenant) {
      const [rows] = await conn.query<RowDataPacket[]>(
        `SELECT COUNT(*) AS n FROM (${tenantSelect('mysql', t, tenantLiteral('mysql', tenant))}) AS x`,
      );
      return Number(rows[0]!.n);
    },
    async begin() {
      const [rows] = await conn.query<RowDataPacket[]>('SELECT @@SESSION.sql_mode AS m');
      const modes = String(rows[0]!.m)
        .split(',')
        .filter((m) => m && m !== 'NO_BACKSLASH_ESCAPES' && m !== 'NO_AUTO_VALUE_ON_ZERO');
      await conn.query('SET SESSION sql_mode = ?', [[...modes, 'NO_AUTO_VALUE_ON_ZERO'].join(',')]);
      await conn.query("SET SESSION time_zone = '+00:00'");
      await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await conn.query('START TRANSACTION');
    },
    async triggers(plan) {
      const [rows] = await conn.query<RowDataPacket[]>(
        'SELECT EVENT_OBJECT_TABLE AS t, TRIGGER_NAME AS name FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1, 2',
        [database],
      );
      const keys = new Set(plan.tables.map((t) => t.key));
      return rows.filter((r) => keys.has(String(r.t))).map((r) => `${String(r.t)}.${String(r.name)}`);
    },
    disableTriggers() {
      return Promise.reject(new Error('MySQL cannot switch triggers off inside a transaction'));
    },
    async remove(t, tenant) {
      await checks(t, false);
      const sql = `DELETE t0 FROM ${qualifiedName('mysql', t)} AS t0 WHERE ${ownershipWhere('mysql', t, tenantLiteral('mysql', tenant))}`;
      const [res] = await conn.query<ResultSetHeader>(sql);
      await checks(t, true);
      return res.affectedRows;
    },
    async startRows(t, _section, insertLine) {
      await checks(t, false);
      if (!insertLine) throw new Error('an INSERT section without its INSERT line');
      let parts: Buffer[] = [insertLine, Buffer.from('\n')];
      return {
        async row(line) {
          // The statement's last row ends with ";": run it then.
          if (line[line.length - 1] === 0x3b) {
            parts.push(line.subarray(0, line.length - 1));
            const sql = Buffer.concat(parts).toString('utf8');
            parts = [];
            await conn.query(sql);
          } else {
            parts.push(line, Buffer.from('\n'));
          }
        },
        async end() {
          await checks(t, true);
        },
      };
    },
    async afterLoad(plan, tenant) {
      // The FKs of tables loaded without checks: every referencing value must have its row.
      if (unchecked.size === 0) return [];
      const catalog = await readMysqlCatalog(conn, database);
      const q = (n: string) => quoteIdentifier('mysql', n);
      for (const key of unchecked) {
        const t = plan.tables.find((x) => x.key === key)!;
        for (const fk of catalog.foreignKeys.filter((f) => f.from.key === key)) {
          const [rows] = await conn.query<RowDataPacket[]>(
            `SELECT COUNT(*) AS n FROM (${tenantSelect('mysql', t, tenantLiteral('mysql', tenant))}) AS c WHERE ${fk.columns
              .map((col) => `c.${q(col)} IS NOT NULL`)
              .join(' AND ')} AND NOT EXISTS (SELECT 1 FROM ${q(fk.to.name)} AS p WHERE ${fk.columns
              .map((col, i) => `p.${q(fk.refColumns[i]!)} = c.${q(col)}`)
              .join(' AND ')})`,
          );
          const n = Number(rows[0]!.n);
          if (n)
            throw new IntegrityError(
              `${key}: ${n} restored rows break foreign key ${fk.constraint} (${fk.columns.join(', ')} → ${fk.to.key})`,
            );
        }
      }
      // InnoDB moves AUTO_INCREMENT above explicitly inserted ids by itself.
      return [];
    },
    async commit() {
      await conn.query('COMMIT');
    },
    async rollback() {
      await conn.query('ROLLBACK');
    },
  };
}
