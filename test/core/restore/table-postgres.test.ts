/**
 * One-table restore on PostgreSQL after `DROP TABLE … CASCADE`: the table must come back whole
 * (sequence and default, keys, indexes, triggers, policies, comments, grants, the foreign keys of
 * other tables into it), or not at all.
 */
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBackup } from '../../../core/backup/backup';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { buildKeys, keygen, type Keys } from '../../../core/vault/crypto';
import { UsageError } from '../../../core/util/errors';
import { restoreBackup } from '../../../core/restore/restore';
import { runTool } from '../../../core/sources/process';
import { FileVault } from '../../../core/vault';
import {
  createDatabase,
  describePostgres,
  tableChecksums,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { tempDir } from '../../helpers/temp';

const SCHEMA = `
CREATE SCHEMA shop;
CREATE TABLE shop.orders (id serial PRIMARY KEY, placed_at timestamptz NOT NULL DEFAULT now());
CREATE FUNCTION shop.touch() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TABLE shop.order_items (
  id serial PRIMARY KEY,
  order_id integer NOT NULL REFERENCES shop.orders (id) ON DELETE CASCADE,
  sku text NOT NULL,
  qty integer NOT NULL CHECK (qty > 0),
  line_no integer GENERATED ALWAYS AS IDENTITY,
  updated_at timestamptz,
  UNIQUE (order_id, sku)
);
CREATE INDEX order_items_sku_idx ON shop.order_items (lower(sku));
CREATE TRIGGER order_items_touch BEFORE UPDATE ON shop.order_items FOR EACH ROW EXECUTE FUNCTION shop.touch();
ALTER TABLE shop.order_items ENABLE ROW LEVEL SECURITY;
CREATE POLICY order_items_all ON shop.order_items USING (qty > 0);
COMMENT ON TABLE shop.order_items IS 'lines of an order';
COMMENT ON COLUMN shop.order_items.sku IS 'stock keeping unit';
GRANT SELECT, INSERT ON shop.order_items TO PUBLIC;
GRANT USAGE ON SEQUENCE shop.order_items_id_seq TO PUBLIC;
CREATE TABLE shop.shipments (id serial PRIMARY KEY, item_id integer REFERENCES shop.order_items (id));
CREATE VIEW shop.big_items AS SELECT id, sku FROM shop.order_items WHERE qty > 5;
INSERT INTO shop.orders (placed_at) SELECT now() - g * interval '1 day' FROM generate_series(1, 20) g;
INSERT INTO shop.order_items (order_id, sku, qty) SELECT 1 + g % 20, 'SKU-' || g, 1 + g % 9 FROM generate_series(1, 300) g;
INSERT INTO shop.shipments (item_id) SELECT g * 3 FROM generate_series(1, 50) g;
`;

/** The database's whole definition as pg_dump prints it (what an application depends on). */
async function definition(db: TestDatabase): Promise<string> {
  const u = new URL(db.url);
  return (
    await runTool('pg_dump', ['--schema-only', '--no-password'], {
      env: { PGHOST: u.hostname, PGPORT: u.port || '5432', PGUSER: u.username, PGDATABASE: db.name },
    })
  )
    .split('\n')
    .filter((l) => !l.startsWith('--') && !l.startsWith('\\') && l.trim() !== '')
    .join('\n');
}

async function sql(db: TestDatabase, text: string): Promise<unknown[]> {
  return withPostgresClient(db.url, async (c) => (await c.query(text)).rows as unknown[]);
}

describePostgres('one-table restore of a dropped PostgreSQL table', () => {
  let source: TestDatabase;
  let target: TestDatabase;
  let vault: FileVault;
  let keys: Keys;
  let backupId: string;
  let wholeDefinition: string;

  beforeAll(async () => {
    source = await createDatabase('postgres', 'rt_src');
    await sql(source, SCHEMA);
    const dir = tempDir('rt');
    await keygen(path.join(dir, 'key'));
    keys = await buildKeys({ keyFile: path.join(dir, 'key') }, 'encrypt');
    vault = new FileVault(path.join(dir, 'vault'));
    const [outcome] = await runBackup({ connection: parseDatabaseUrl('postgres', source.url), vault, keys });
    if (!outcome?.ok) throw new Error('backup failed');
    backupId = outcome.manifest.backupId;
    wholeDefinition = await definition(source);
    target = await createDatabase('postgres', 'rt_dst');
  });

  afterAll(async () => {
    await source.drop();
    await target.drop();
  });

  const restoreInto = async (db: TestDatabase) => {
    await db.drop();
    await restoreBackup({ vault, backupId, keys, target: parseDatabaseUrl('postgres', db.url) });
  };

  it('brings back the table with its sequence, default, keys, indexes, trigger, policy, comments, grants and the foreign keys into it', async () => {
    await restoreInto(target);
    const rows = await tableChecksums('postgres', target.url);
    await sql(target, 'DROP TABLE shop.order_items CASCADE');
    const logs: string[] = [];
    const report = await restoreBackup({
      vault,
      backupId,
      keys,
      target: parseDatabaseUrl('postgres', target.url),
      table: 'shop.order_items',
      log: (l) => logs.push(l),
    });
    expect(report.rows).toBe(300);
    expect(await definition(target)).toBe(wholeDefinition);
    expect(await tableChecksums('postgres', target.url)).toEqual(rows);
    // The application's next INSERT works and continues the sequence.
    const [inserted] = (await sql(
      target,
      "INSERT INTO shop.order_items (order_id, sku, qty) VALUES (1, 'NEW', 2) RETURNING id, line_no",
    )) as { id: number; line_no: number }[];
    expect(inserted).toEqual({ id: 301, line_no: 301 });
    expect(logs.join('\n')).toMatch(
      /restoring its definition.*FK CONSTRAINT shop shipments shipments_item_id_fkey/s,
    );
  });

  it('refuses before changing anything when something the table needs is gone, naming it', async () => {
    await restoreInto(target);
    await sql(target, 'DROP TABLE shop.order_items CASCADE; DROP FUNCTION shop.touch()');
    const before = await definition(target);
    const p = restoreBackup({
      vault,
      backupId,
      keys,
      target: parseDatabaseUrl('postgres', target.url),
      table: 'shop.order_items',
    });
    await expect(p).rejects.toBeInstanceOf(UsageError);
    await expect(p).rejects.toThrow(/FUNCTION shop touch\(\).*nothing was changed/s);
    expect(await definition(target)).toBe(before);
  });

  it('rolls back everything when a foreign key into the table no longer holds (one transaction)', async () => {
    await restoreInto(target);
    await sql(
      target,
      'DROP TABLE shop.order_items CASCADE; INSERT INTO shop.shipments (item_id) VALUES (99999)',
    );
    const before = await definition(target);
    await expect(
      restoreBackup({
        vault,
        backupId,
        keys,
        target: parseDatabaseUrl('postgres', target.url),
        table: 'shop.order_items',
      }),
    ).rejects.toThrow(/shipments_item_id_fkey/);
    expect(await definition(target)).toBe(before);
  });

  it('--into-table makes a copy with its own sequences, set past its rows', async () => {
    await restoreInto(target);
    await restoreBackup({
      vault,
      backupId,
      keys,
      target: parseDatabaseUrl('postgres', target.url),
      table: 'shop.order_items',
      intoTable: 'order_items_copy',
    });
    const live = await sql(target, 'SELECT last_value FROM shop.order_items_id_seq');
    const [copy] = (await sql(
      target,
      "INSERT INTO shop.order_items_copy (order_id, sku, qty) VALUES (1, 'COPY', 2) RETURNING id, line_no",
    )) as { id: number; line_no: number }[];
    expect(copy).toEqual({ id: 301, line_no: 301 });
    expect(await sql(target, 'SELECT last_value FROM shop.order_items_id_seq')).toEqual(live);
    const [owner] = (await sql(
      target,
      "SELECT pg_get_serial_sequence('shop.order_items_copy', 'id') AS seq",
    )) as { seq: string }[];
    expect(owner!.seq).not.toBe('shop.order_items_id_seq');
    // Dropping the copy leaves the live table's default working.
    await sql(target, 'DROP TABLE shop.order_items_copy');
    await sql(target, "INSERT INTO shop.order_items (order_id, sku, qty) VALUES (2, 'AFTER', 1)");
  });
});
