/** The PostgreSQL session of a tenant restore: COPY in batches, triggers switched off, sequences advanced. */

import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import type { Client } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { quoteIdentifier } from '../sources/connection';
import { SESSION_SETTINGS, qualifiedName, tenantSelect } from './export';
import { ownershipWhere, tenantLiteral } from './plan';
import type { RowWriter, Session } from './session';

const BATCH = 1024 * 1024;

export function postgresSession(client: Client): Session {
  return {
    query: async (sql) => (await client.query<Record<string, unknown>>(sql)).rows,
    async count(t, tenant) {
      const { rows } = await client.query<{ n: string }>(
        `SELECT count(*) AS n FROM (${tenantSelect('postgres', t, tenantLiteral('postgres', tenant))}) AS x`,
      );
      return Number(rows[0]!.n);
    },
    async begin() {
      await client.query('BEGIN');
      for (const s of SESSION_SETTINGS.postgres) await client.query(s.replace(/^SET /, 'SET LOCAL '));
    },
    async triggers(plan) {
      const out: string[] = [];
      for (const t of plan.tables) {
        const { rows } = await client.query<{ name: string }>(
          'SELECT tgname AS name FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal ORDER BY 1',
          [qualifiedName('postgres', t)],
        );
        out.push(...rows.map((r) => `${t.key}.${r.name}`));
      }
      return out;
    },
    async disableTriggers(tables) {
      // Transactional: a rollback switches them back on. Takes the tables' ACCESS EXCLUSIVE lock.
      for (const t of tables)
        await client.query(`ALTER TABLE ${qualifiedName('postgres', t)} DISABLE TRIGGER USER`);
    },
    async remove(t, tenant) {
      const sql = `DELETE FROM ONLY ${qualifiedName('postgres', t)} AS t0 WHERE ${ownershipWhere('postgres', t, tenantLiteral('postgres', tenant))}`;
      return (await client.query(sql)).rowCount ?? 0;
    },
    startRows(t, section) {
      const cols = section.columns.map((c) => quoteIdentifier('postgres', c)).join(', ');
      const copy = client.query(copyFrom(`COPY ${qualifiedName('postgres', t)} (${cols}) FROM STDIN`));
      return Promise.resolve(batchedWriter(copy, finished(copy)));
    },
    async afterLoad(plan) {
      const moved: string[] = [];
      for (const t of plan.tables) {
        const table = qualifiedName('postgres', t);
        const { rows } = await client.query<{ col: string; seq: string }>(
          `SELECT a.attname AS col, pg_get_serial_sequence($1, a.attname) AS seq
             FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
              AND pg_get_serial_sequence($1, a.attname) IS NOT NULL`,
          [table],
        );
        for (const { col, seq } of rows) {
          const res = await client.query<{ v: string }>(
            `SELECT setval($1::regclass, m) AS v FROM (SELECT max(${quoteIdentifier('postgres', col)}) AS m FROM ${table}) x
              WHERE m IS NOT NULL AND m > COALESCE(pg_sequence_last_value($1::regclass), 0)`,
            [seq],
          );
          if (res.rowCount) moved.push(`${seq} → ${res.rows[0]!.v}`);
        }
      }
      return moved;
    },
    async commit() {
      await client.query('COMMIT');
    },
    async rollback() {
      await client.query('ROLLBACK');
    },
  };
}

/** Writes row lines in ~1 MiB batches to a COPY stream, failing fast if the stream fails. */
function batchedWriter(copy: Writable, done: Promise<void>): RowWriter {
  let parts: Buffer[] = [];
  let bytes = 0;
  const NL = Buffer.from('\n');
  let failed: unknown;
  done.catch((error: unknown) => {
    failed = error;
  });
  const flush = async () => {
    if (!bytes) return;
    const chunk = Buffer.concat(parts, bytes);
    parts = [];
    bytes = 0;
    if (failed) throw failed instanceof Error ? failed : new Error('the COPY failed');
    if (!copy.write(chunk)) await Promise.race([once(copy, 'drain'), done]);
  };
  return {
    async row(line) {
      parts.push(line, NL);
      bytes += line.length + 1;
      if (bytes >= BATCH) await flush();
    },
    async end() {
      await flush();
      copy.end();
      await done;
    },
  };
}
