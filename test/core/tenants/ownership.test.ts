/**
 * Issue 14: a grandchild reached from its tenant two ways, through a NOT NULL FK to a child table
 * and through a nullable FK (mostly NULL) straight to a directly owned table. Every row of the
 * tenant must be backed up and restored, on both engines, whatever the NOT NULL path's ON DELETE.
 */
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBackup } from '../../../core/backup/backup';
import type { Manifest } from '../../../core/catalog/manifest';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import type { Keys } from '../../../core/vault/crypto';
import { IntegrityError, UsageError } from '../../../core/util/errors';
import { runTenantBackup } from '../../../core/tenants/backup';
import { checkCoverage, coverageProblems } from '../../../core/tenants/coverage';
import { discoverTenantPlan } from '../../../core/tenants/plan';
import { restoreTenant } from '../../../core/tenants/restore';
import { checkTenantRestore } from '../../../core/tenants/restore-check';
import { openVault, type Vault } from '../../../core/vault';
import {
  createDatabase,
  describeDatabase,
  tableChecksums,
  withMysqlConnection,
  withPostgresClient,
  type Engine,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { tempDir } from '../../helpers/temp';

type Row = Record<string, unknown>;

async function exec(engine: Engine, url: string, sql: string): Promise<Row[]> {
  if (engine === 'postgres') return withPostgresClient(url, async (c) => (await c.query<Row>(sql)).rows);
  return withMysqlConnection(url, async (c) => {
    const [rows] = await c.query<RowDataPacket[]>(sql);
    return Array.isArray(rows) ? rows : [];
  });
}

const MODEL = { table: 'tenants', keyColumn: 'id', tenantColumn: 'tenant_id' };
const TENANTS = [5, 6, 7];
/** Actions per tenant; one in ten was performed by a user (the nullable FK), the rest have NULL. */
const ACTIONS = { cascade: 240, 'no action': 300 } as const;

/** tenants ← users (tenant_id), tenants ← visits (tenant_id) ← items ← actions → users (nullable). */
function schema(engine: Engine, onDelete: 'CASCADE' | 'NO ACTION'): string[] {
  const big = engine === 'postgres' ? 'bigint' : 'BIGINT';
  return [
    `CREATE TABLE tenants (id integer PRIMARY KEY, name varchar(40) NOT NULL)`,
    `CREATE TABLE users (id integer PRIMARY KEY, tenant_id integer NOT NULL REFERENCES tenants (id), name varchar(40) NOT NULL)`,
    `CREATE TABLE visits (id integer PRIMARY KEY, tenant_id integer NOT NULL REFERENCES tenants (id), note varchar(40))`,
    `CREATE TABLE items (id integer PRIMARY KEY, visit_id integer NOT NULL, label varchar(40) NOT NULL,
       CONSTRAINT items_visit FOREIGN KEY (visit_id) REFERENCES visits (id) ON DELETE CASCADE)`,
    `CREATE TABLE actions (id ${big} PRIMARY KEY, item_id integer NOT NULL, performed_by integer NULL, what varchar(40) NOT NULL,
       CONSTRAINT actions_item FOREIGN KEY (item_id) REFERENCES items (id) ON DELETE ${onDelete},
       CONSTRAINT actions_user FOREIGN KEY (performed_by) REFERENCES users (id))`,
    ...(engine === 'postgres'
      ? [
          'CREATE INDEX ON actions (item_id)',
          'CREATE INDEX ON actions (performed_by)',
          'CREATE INDEX ON items (visit_id)',
        ]
      : []),
  ];
}

function data(actionsPerTenant: number): string[] {
  const out: string[] = [];
  for (const t of TENANTS) {
    out.push(`INSERT INTO tenants VALUES (${t}, 'clinica ${t}')`);
    out.push(
      `INSERT INTO users VALUES ${[1, 2, 3].map((u) => `(${t * 10 + u}, ${t}, 'user ${t}-${u}')`).join(', ')}`,
    );
    out.push(
      `INSERT INTO visits VALUES ${[1, 2, 3, 4].map((v) => `(${t * 10 + v}, ${t}, 'visit ${t}-${v}')`).join(', ')}`,
    );
    out.push(
      `INSERT INTO items VALUES ${Array.from({ length: 12 }, (_, i) => `(${t * 100 + i}, ${t * 10 + 1 + (i % 4)}, 'item ${t}-${i}')`).join(', ')}`,
    );
    out.push(
      `INSERT INTO actions VALUES ${Array.from(
        { length: actionsPerTenant },
        (_, i) =>
          `(${t * 10000 + i}, ${t * 100 + (i % 12)}, ${i % 10 === 0 ? String(t * 10 + 1 + (i % 3)) : 'NULL'}, 'action ${t}-${i}')`,
      ).join(', ')}`,
    );
  }
  return out;
}

for (const engine of ['postgres', 'mysql'] as const) {
  for (const onDelete of ['CASCADE', 'NO ACTION'] as const) {
    const perTenant = onDelete === 'CASCADE' ? ACTIONS.cascade : ACTIONS['no action'];
    describeDatabase(
      engine,
      `a grandchild with a NOT NULL path and a nullable shortcut, ON DELETE ${onDelete} (${engine})`,
      () => {
        let db: TestDatabase;
        let dir: string;
        let vault: Vault;
        let keys: Keys;
        const connection = () => parseDatabaseUrl(engine, db.url);

        beforeAll(async () => {
          db = await createDatabase(engine, 'tenant_paths');
          for (const s of [...schema(engine, onDelete), ...data(perTenant)]) await exec(engine, db.url, s);
          dir = tempDir('tenant-paths');
          vault = openVault(`file://${dir}/vault`);
          keys = (await testKeys()).keys;
        }, 60_000);
        afterAll(async () => {
          await db.drop();
          if (dir) await rm(dir, { recursive: true, force: true });
        });

        it('owns the grandchild through its NOT NULL path, not the shorter nullable one', async () => {
          const plan = await discoverTenantPlan(connection(), MODEL);
          const actions = plan.tables.find((t) => t.name === 'actions')!;
          expect(actions.path.map((h) => h.constraint)).toEqual(['actions_item', 'items_visit']);
        });

        it(`backs up all ${perTenant} of tenant 7's actions, and a restore after damage brings every row back`, async () => {
          const original = await tableChecksums(engine, db.url);
          const [outcome] = await runTenantBackup({
            connection: connection(),
            model: MODEL,
            tenants: ['7'],
            vault,
            keys,
          });
          if (!outcome?.ok) throw new Error(`tenant backup failed: ${JSON.stringify(outcome)}`);
          const rows = Object.fromEntries(outcome.manifest.artifacts[0]!.tables.map((t) => [t.name, t.rows]));
          expect(rows).toEqual({ tenants: 1, users: 3, visits: 4, items: 12, actions: perTenant });

          // Damage tenant 7: delete some actions, change others, add one the backup does not have.
          await exec(engine, db.url, `DELETE FROM actions WHERE id BETWEEN 70000 AND 70049`);
          await exec(
            engine,
            db.url,
            `UPDATE actions SET what = 'EMBARALHADO' WHERE id BETWEEN 70100 AND 70120`,
          );
          await exec(engine, db.url, `INSERT INTO actions VALUES (79999, 700, NULL, 'nova')`);
          const dry = await restoreTenant({
            vault,
            backupId: outcome.manifest.backupId,
            keys,
            target: connection(),
            tenant: '7',
            dryRun: true,
          });
          expect(dry.tables.find((t) => t.table.endsWith('actions'))).toMatchObject({
            deleted: perTenant - 50 + 1,
            loaded: perTenant,
          });

          const report = await restoreTenant({
            vault,
            backupId: outcome.manifest.backupId,
            keys,
            target: connection(),
            tenant: '7',
          });
          expect(report.tables.find((t) => t.table.endsWith('actions'))).toMatchObject({
            deleted: perTenant - 50 + 1,
            loaded: perTenant,
          });
          expect(await tableChecksums(engine, db.url)).toEqual(original);
          // The content digests recorded at backup time match a new export of the restored tenant.
          const hashes = (m: Manifest) => m.tenant!.tables.map((t) => [t.key, t.contentHash]);
          expect(hashes(outcome.manifest).every(([, h]) => /^rowsum-sha256:[0-9a-f]{64}$/.test(h!))).toBe(
            true,
          );
          const [again] = await runTenantBackup({
            connection: connection(),
            model: MODEL,
            tenants: ['7'],
            vault,
            keys,
          });
          if (!again?.ok) throw new Error(`tenant backup failed: ${JSON.stringify(again)}`);
          expect(hashes(again.manifest)).toEqual(hashes(outcome.manifest));
        }, 60_000);

        it('restores tenant 7 from a full backup with every one of its actions', async () => {
          const original = await tableChecksums(engine, db.url);
          const [full] = await runBackup({ connection: connection(), vault, keys });
          if (!full?.ok) throw new Error(`full backup failed: ${JSON.stringify(full)}`);
          await exec(
            engine,
            db.url,
            `UPDATE actions SET what = 'EMBARALHADO' WHERE id BETWEEN 70000 AND 70200`,
          );
          const report = await restoreTenant({
            vault,
            backupId: full.manifest.backupId,
            keys,
            target: connection(),
            tenant: '7',
            model: MODEL,
          });
          expect(report.tables.find((t) => t.table.endsWith('actions'))!.loaded).toBe(perTenant);
          expect(await tableChecksums(engine, db.url)).toEqual(original);
        }, 120_000);
      },
    );
  }
}

/**
 * A row the plan cannot own: a system note with a NULL tenant column that references tenant 7's
 * user with ON DELETE CASCADE. Restoring tenant 7 deletes that user, and the cascade would take the
 * note with it: the restore refuses (exit 2) before changing anything, and, when told to go ahead,
 * its row accounting sees the cascade and rolls back (exit 3).
 */
for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(engine, `rows the plan does not own (${engine})`, () => {
    let db: TestDatabase;
    let dir: string;
    let vault: Vault;
    let keys: Keys;
    let backupId: string;
    const connection = () => parseDatabaseUrl(engine, db.url);

    beforeAll(async () => {
      db = await createDatabase(engine, 'tenant_unowned');
      for (const s of [...schema(engine, 'CASCADE'), ...data(20)]) await exec(engine, db.url, s);
      dir = tempDir('tenant-unowned');
      vault = openVault(`file://${dir}/vault`);
      keys = (await testKeys()).keys;
      await exec(
        engine,
        db.url,
        `CREATE TABLE system_notes (id integer PRIMARY KEY, tenant_id integer NULL, user_id integer NOT NULL,
           CONSTRAINT system_notes_user FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE)`,
      );
      await exec(engine, db.url, `INSERT INTO system_notes VALUES (1, NULL, 71)`);
      await exec(engine, db.url, `INSERT INTO system_notes VALUES (2, 5, 51)`);
      const [outcome] = await runTenantBackup({
        connection: connection(),
        model: MODEL,
        tenants: ['7'],
        vault,
        keys,
      });
      if (!outcome?.ok) throw new Error(`tenant backup failed: ${JSON.stringify(outcome)}`);
      backupId = outcome.manifest.backupId;
    }, 60_000);
    afterAll(async () => {
      await db.drop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('the coverage check names the row owned by no tenant, in one snapshot', async () => {
      const plan = await discoverTenantPlan(connection(), MODEL);
      const report = await checkCoverage(connection(), plan);
      const notes = report.tables.find((t) => t.table.endsWith('system_notes'))!;
      expect(notes).toMatchObject({ rows: 2, unowned: 1, multiOwned: 0 });
      expect(report.unowned).toBe(1);
      expect(coverageProblems(report)).toEqual([`${notes.table}: 1 of 2 rows are owned by no tenant`]);
    });

    it('--all-tenants refuses (nothing backed up) unless the unowned rows are acknowledged', async () => {
      await expect(
        runTenantBackup({ connection: connection(), model: MODEL, tenants: 'all', vault, keys }),
      ).rejects.toThrow(
        /--all-tenants: .*nothing was backed up:\n {2}\S*system_notes: 1 of 2 rows are owned by no tenant/,
      );
    });

    it('--dry-run reports the cascade per table, from the catalog’s FK actions', async () => {
      const report = await restoreTenant({
        vault,
        backupId,
        keys,
        target: connection(),
        tenant: '7',
        dryRun: true,
      });
      expect(report.impact.foreignKeys).toEqual([
        expect.objectContaining({ constraint: 'system_notes_user', onDelete: 'CASCADE', rows: 1 }),
      ]);
    });

    it('a restore refuses with exit 2 and changes nothing; acknowledged, its accounting rolls back with exit 3', async () => {
      const before = await tableChecksums(engine, db.url);
      const refused = await restoreTenant({ vault, backupId, keys, target: connection(), tenant: '7' }).catch(
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(UsageError);
      expect(String(refused)).toMatch(
        /system_notes: 1 rows that are not tenant 7's reference its rows in \S*users; deleting those rows \(system_notes_user, ON DELETE CASCADE\) would delete them/,
      );
      expect(await tableChecksums(engine, db.url)).toEqual(before);

      const rolledBack = await restoreTenant({
        vault,
        backupId,
        keys,
        target: connection(),
        tenant: '7',
        acceptUnownedRows: true,
      }).catch((e: unknown) => e);
      expect(rolledBack).toBeInstanceOf(IntegrityError);
      expect(String(rolledBack)).toMatch(/system_notes: 1 rows removed beyond the 0 the restore deleted/);
      expect(await tableChecksums(engine, db.url)).toEqual(before);
    }, 60_000);
  });
}

/** The tenant part of the monthly restore test: a scratch copy compared by content digests. */
for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(engine, `tenant restore test into a scratch copy (${engine})`, () => {
    let db: TestDatabase;
    let dir: string;
    beforeAll(async () => {
      db = await createDatabase(engine, 'tenant_rt');
      for (const s of [...schema(engine, 'CASCADE'), ...data(30)]) await exec(engine, db.url, s);
      dir = tempDir('tenant-rt');
    }, 60_000);
    afterAll(async () => {
      await db.drop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('restores each tenant in turn into a scratch copy whose content digests equal the backup’s; a digest that does not match is exit 3', async () => {
      const vault = openVault(`file://${dir}/vault`);
      const { keys } = await testKeys();
      const connection = parseDatabaseUrl(engine, db.url);
      const outcomes = await runTenantBackup({ connection, model: MODEL, tenants: 'all', vault, keys });
      expect(outcomes.every((o) => o.ok)).toBe(true);
      const scratch = `${db.name.slice(0, 40)}_rt`;
      const seen: string[] = [];
      for (const turn of [0, 1, 2, 3]) {
        const check = await checkTenantRestore({
          vault,
          keys,
          connection,
          sourceId: db.name,
          turn,
          scratchDatabase: scratch,
        });
        expect(check.rows).toBe(1 + 3 + 4 + 12 + 30);
        seen.push(check.tenant);
      }
      expect(seen).toEqual(['5', '6', '7', '5']);
      // A backup whose recorded digest no longer matches what it restores: exit 3, scratch dropped.
      const [seven] = outcomes.filter((o) => o.ok && o.tenant === '7');
      if (!seven?.ok) throw new Error('no backup of tenant 7');
      const manifestPath = path.join(dir, 'vault', seven.folder, 'manifest.json');
      const m = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
      const actions = m.tenant!.tables.find((t) => t.name === 'actions')!;
      (actions as { contentHash?: string }).contentHash = `rowsum-sha256:${'0'.repeat(64)}`;
      await chmod(manifestPath, 0o644);
      await writeFile(manifestPath, JSON.stringify(m));
      await expect(
        checkTenantRestore({ vault, keys, connection, sourceId: db.name, turn: 2, scratchDatabase: scratch }),
      ).rejects.toThrow(/tenant 7 restored from \S+ differs from its rows at backup time in: \S*actions/);
      const left = await exec(
        engine,
        db.url,
        engine === 'postgres'
          ? `SELECT datname FROM pg_database WHERE datname = '${scratch}'`
          : `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '${scratch}'`,
      );
      expect(left).toEqual([]);
    }, 120_000);
  });
}
