import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { RowDataPacket } from 'mysql2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBackup } from '../../../core/backup/backup';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import type { Keys } from '../../../core/vault/crypto';
import { OperationalError, UsageError } from '../../../core/util/errors';
import { runTenantBackup } from '../../../core/tenants/backup';
import { discoverTenantPlan, type TenantPlan } from '../../../core/tenants/plan';
import { restoreTenant } from '../../../core/tenants/restore';
import { verifyBackup } from '../../../core/verify/verify';
import { openVault, type Vault } from '../../../core/vault';
import { filesUnder } from '../../helpers/cli';
import {
  createDatabase,
  describeDatabase,
  loadTrickySchema,
  tableChecksums,
  TRICKY_TENANTS,
  withMysqlConnection,
  withPostgresClient,
  type Engine,
  type TableChecksum,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import {
  loadTenantFixture,
  perTenantRows,
  TENANT_MODEL,
  tenantChecksums,
} from '../../helpers/tenant-fixture';
import { tempDir } from '../../helpers/temp';

const TENANTS = 50;

type Row = Record<string, unknown>;

async function exec(engine: Engine, url: string, sql: string, params: unknown[] = []): Promise<Row[]> {
  if (engine === 'postgres')
    return withPostgresClient(url, async (c) => (await c.query<Row>(sql, params)).rows);
  return withMysqlConnection(url, async (c) => {
    const [rows] = await c.query<RowDataPacket[]>(sql, params);
    return Array.isArray(rows) ? rows : [];
  });
}

for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(engine, `per-tenant backup and restore (${engine})`, () => {
    let db: TestDatabase;
    let dir: string;
    let vault: Vault;
    let keys: Keys;
    let plan: TenantPlan;
    let original: Record<string, TableChecksum>;
    let tenant7: Record<string, string>;
    let backupId: string;
    const q = (n: string) => (engine === 'postgres' ? `"${n}"` : `\`${n}\``);
    const connection = () => parseDatabaseUrl(engine, db.url);
    const checksums7 = (url = db.url) => tenantChecksums(engine, url, plan.tables, '7');

    /** Damages tenant 7: deletes grandchildren, renames patients, adds an appointment the backup does not have. */
    async function scramble(): Promise<void> {
      await exec(
        engine,
        db.url,
        engine === 'postgres'
          ? 'DELETE FROM item_notes n USING prescription_items i, prescriptions p, appointments a WHERE n.item_id = i.id AND i.prescription_id = p.id AND p.appointment_id = a.id AND a.tenant_id = 7 AND n.id % 2 = 0'
          : 'DELETE n FROM item_notes n JOIN prescription_items i ON n.item_id = i.id JOIN prescriptions p ON i.prescription_id = p.id JOIN appointments a ON p.appointment_id = a.id WHERE a.tenant_id = 7 AND n.id % 2 = 0',
      );
      await exec(engine, db.url, `UPDATE patients SET name = 'EMBARALHADO' WHERE tenant_id = 7`);
      await exec(
        engine,
        db.url,
        `INSERT INTO appointments (id, tenant_id, patient_id, at) VALUES (900001, 7, 71, '2030-01-01 00:00:00')`,
      );
    }

    beforeAll(async () => {
      db = await createDatabase(engine, 'tenants');
      await loadTenantFixture(engine, db.url, { tenants: TENANTS });
      plan = await discoverTenantPlan(connection(), TENANT_MODEL);
      original = await tableChecksums(engine, db.url);
      tenant7 = await checksums7();
      dir = tempDir('tenant');
      vault = openVault(`file://${dir}/vault`);
      keys = (await testKeys()).keys;
    }, 120_000);
    afterAll(async () => {
      await db.drop();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('plans 3 levels of children without the tenant column, a self-reference and shared tables', () => {
      const kinds = Object.fromEntries(plan.tables.map((t) => [t.name, t.kind]));
      expect(kinds).toMatchObject({
        tenants: 'tenant-table',
        professionals: 'direct',
        patients: 'direct',
        appointments: 'direct',
        prescriptions: 'child',
        prescription_items: 'child',
        item_notes: 'child',
      });
      expect(plan.tables.find((t) => t.name === 'item_notes')!.path).toHaveLength(3);
      expect(plan.selfReferences.map((s) => s.table)).toEqual([
        engine === 'postgres' ? 'public.professionals' : 'professionals',
      ]);
      expect(plan.shared.map((s) => s.name).sort()).toEqual(['app_settings', 'specialties']);
      expect(plan.unindexedForeignKeys).toEqual([]);
    });

    it('names foreign keys into tenant tables that no index supports (each tenant delete would scan)', async () => {
      await exec(
        engine,
        db.url,
        `CREATE TABLE notes_fk (id integer PRIMARY KEY, patient_id bigint REFERENCES patients (id))`,
      );
      try {
        const withNotes = await discoverTenantPlan(connection(), TENANT_MODEL);
        // InnoDB indexes every FK by itself; PostgreSQL does not.
        expect(
          withNotes.unindexedForeignKeys.map((f) => [f.table.split('.').pop(), f.columns, f.createIndex]),
        ).toEqual(
          engine === 'postgres'
            ? [['notes_fk', ['patient_id'], 'CREATE INDEX ON "public"."notes_fk" ("patient_id");']]
            : [],
        );
      } finally {
        await exec(engine, db.url, `DROP TABLE notes_fk`);
      }
    });

    it('backs up tenant 7 into one encrypted artifact whose manifest lists its rows per table and the plan', async () => {
      const [outcome] = await runTenantBackup({
        connection: connection(),
        model: TENANT_MODEL,
        tenants: ['7'],
        vault,
        keys,
      });
      if (!outcome?.ok) throw new Error(`tenant backup failed: ${JSON.stringify(outcome)}`);
      const m = outcome.manifest;
      backupId = m.backupId;
      expect(outcome.folder).toMatch(new RegExp(`^tenants/${db.name}/${db.name}/7/${m.backupId}$`));
      expect(m.kind).toBe('tenant');
      expect(m.tier).toBe('tenant');
      expect(m.tenant!.id).toBe('7');
      expect(m.tenant!.tables.map((t) => t.name)).toEqual(plan.tables.map((t) => t.name));
      const rows = Object.fromEntries(m.artifacts[0]!.tables.map((t) => [t.name, t.rows]));
      expect(rows).toEqual(perTenantRows());
      // The generated column is not exported; the target computes it.
      expect(m.tenant!.tables.find((t) => t.name === 'patients')!.columns).not.toContain('search_name');
      const report = await verifyBackup({ vault, backupId: m.backupId, deep: keys });
      expect(report.status).toBe('ok');
      expect(report.checked.join('\n')).toMatch(/tenant export complete; row counts of all 7 tables match/);
    }, 60_000);

    it('restores tenant 7 after its rows were damaged: its content equals the original, every other row is unchanged', async () => {
      await scramble();
      expect(await checksums7()).not.toEqual(tenant7);
      const report = await restoreTenant({ vault, backupId, keys, target: connection(), tenant: '7' });
      expect(report.mode).toBe('restore');
      expect(report.loaded).toBe(Object.values(perTenantRows()).reduce((a, b) => a + b, 0));
      expect(report.tables.find((t) => t.table.endsWith('appointments'))).toMatchObject({
        deleted: 21,
        loaded: 20,
      });
      expect(await checksums7()).toEqual(tenant7);
      expect(await tableChecksums(engine, db.url)).toEqual(original);
      // Sequences / AUTO_INCREMENT end above the restored ids: a new row takes a fresh id.
      await exec(engine, db.url, `INSERT INTO patients (tenant_id, name) VALUES (7, 'novo')`);
      const [row] = (await exec(engine, db.url, `SELECT max(id) AS m FROM patients`)) as {
        m: string | number;
      }[];
      expect(Number(row!.m)).toBeGreaterThan(TENANTS * 10);
      await exec(engine, db.url, `DELETE FROM patients WHERE name = 'novo'`);
      if (engine === 'postgres') expect(report.sequences.join(' ')).toMatch(/patients_id_seq/);
    }, 60_000);

    it('rolls everything back when a row fails mid-restore: tenant 7 stays exactly as it was', async () => {
      await scramble();
      const before = await tableChecksums(engine, db.url);
      // The last table loaded rejects one of the backup's rows (its earlier tables are already loaded).
      await exec(
        engine,
        db.url,
        `ALTER TABLE item_notes ADD CONSTRAINT poison CHECK (note <> 'nota 7-3 ''aspas'' "duplas"')`,
      );
      try {
        const failing = restoreTenant({ vault, backupId, keys, target: connection(), tenant: '7' });
        await expect(failing).rejects.toThrow(OperationalError);
        await expect(failing).rejects.toThrow(/nothing was changed \(rolled back\)/);
        expect(await tableChecksums(engine, db.url)).toEqual(before);
      } finally {
        await exec(engine, db.url, `ALTER TABLE item_notes DROP CONSTRAINT poison`);
      }
      await restoreTenant({ vault, backupId, keys, target: connection(), tenant: '7' });
      expect(await tableChecksums(engine, db.url)).toEqual(original);
    }, 60_000);

    it('--dry-run reports what would be deleted and loaded per table and changes nothing', async () => {
      await scramble();
      const before = await tableChecksums(engine, db.url);
      const report = await restoreTenant({
        vault,
        backupId,
        keys,
        target: connection(),
        tenant: '7',
        dryRun: true,
      });
      expect(report.mode).toBe('dry-run');
      const counts = (name: string) => {
        const t = report.tables.find((x) => x.table.split('.').pop() === name)!;
        return { deleted: t.deleted, loaded: t.loaded };
      };
      expect(counts('appointments')).toEqual({ deleted: 21, loaded: 20 });
      expect(counts('item_notes')).toEqual({ deleted: 5, loaded: 10 });
      expect(await tableChecksums(engine, db.url)).toEqual(before);
      await restoreTenant({ vault, backupId, keys, target: connection(), tenant: '7' });
      expect(await tableChecksums(engine, db.url)).toEqual(original);
    }, 60_000);

    it('restores tenant 7 from a full backup (through a scratch database that is dropped afterwards)', async () => {
      const [full] = await runBackup({ connection: connection(), vault, keys });
      if (!full?.ok) throw new Error(`full backup failed: ${JSON.stringify(full)}`);
      await scramble();
      const report = await restoreTenant({
        vault,
        backupId: full.manifest.backupId,
        keys,
        target: connection(),
        tenant: '7',
        model: TENANT_MODEL,
      });
      expect(report.from).toBe('full-backup');
      expect(await checksums7()).toEqual(tenant7);
      expect(await tableChecksums(engine, db.url)).toEqual(original);
      const scratch =
        engine === 'postgres'
          ? await exec(engine, db.url, `SELECT datname FROM pg_database WHERE datname LIKE '%cofre_tenant%'`)
          : await exec(
              engine,
              db.url,
              `SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE '%cofre_tenant%'`,
            );
      expect(scratch).toEqual([]);
      // A full backup needs the tenant model.
      await expect(
        restoreTenant({ vault, backupId: full.manifest.backupId, keys, target: connection(), tenant: '7' }),
      ).rejects.toThrow(/--tenant-table, --key-column and --tenant-column/);
    }, 120_000);

    it('--into-database restores tenant 7 into a new copy of the schema for inspection', async () => {
      const into = `${db.name.slice(0, 40)}_inspect`;
      try {
        const report = await restoreTenant({
          vault,
          backupId,
          keys,
          target: connection(),
          tenant: '7',
          intoDatabase: into,
        });
        expect(report.mode).toBe('into-database');
        const intoUrl = db.url.replace(db.name, into);
        expect(await checksums7(intoUrl)).toEqual(tenant7);
        const counts = await exec(engine, intoUrl, `SELECT count(*) AS n FROM tenants`);
        expect(Number(counts[0]!.n)).toBe(1);
        const shared = await exec(engine, intoUrl, `SELECT count(*) AS n FROM specialties`);
        expect(Number(shared[0]!.n)).toBe(5);
        await expect(
          restoreTenant({ vault, backupId, keys, target: connection(), tenant: '7', intoDatabase: into }),
        ).rejects.toThrow(UsageError);
      } finally {
        await exec(engine, db.url, `DROP DATABASE IF EXISTS ${q(into)}`);
      }
      expect(await tableChecksums(engine, db.url)).toEqual(original);
    }, 60_000);

    it('refuses, changing nothing: another tenant than the backup holds, an unknown tenant, a schema that changed', async () => {
      await expect(
        restoreTenant({ vault, backupId, keys, target: connection(), tenant: '8' }),
      ).rejects.toThrow(/holds tenant "7", not "8"/);
      await expect(
        runTenantBackup({ connection: connection(), model: TENANT_MODEL, tenants: ['999'], vault, keys }),
      ).rejects.toThrow(/no tenant "999"/);
      await exec(engine, db.url, `CREATE TABLE visits (id integer PRIMARY KEY, tenant_id integer NOT NULL)`);
      try {
        await expect(
          restoreTenant({ vault, backupId, keys, target: connection(), tenant: '7' }),
        ).rejects.toThrow(/schema changed since backup[\s\S]*visits/);
      } finally {
        await exec(engine, db.url, `DROP TABLE visits`);
      }
      expect(await tableChecksums(engine, db.url)).toEqual(original);
    }, 60_000);

    it('--all-tenants: one artifact per tenant, bounded parallelism; a failing tenant is reported by id and loses no other', async () => {
      // A vault that refuses tenant 13's writes (the storage failing for one tenant).
      const failing: Vault = {
        ...vault,
        url: vault.url,
        kind: vault.kind,
        list: (p) => vault.list(p),
        read: (k, s) => vault.read(k, s),
        readBytes: (k) => vault.readBytes(k),
        sha256: (k, c) => vault.sha256(k, c),
        stat: (k) => vault.stat(k),
        createExclusive: (k, b) => vault.createExclusive(k, b),
        remove: (k) => vault.remove(k),
        replaceExclusive: (k, e, b) => vault.replaceExclusive(k, e, b),
        release: (k, e) => vault.release(k, e),
        write: (key, body, o) => {
          if (key.includes('/13/')) {
            body.destroy();
            return Promise.reject(new Error('simulated storage failure'));
          }
          return vault.write(key, body, o);
        },
      };
      const outcomes = await runTenantBackup({
        connection: connection(),
        model: TENANT_MODEL,
        tenants: 'all',
        concurrency: 4,
        vault: failing,
        keys,
      });
      expect(outcomes).toHaveLength(TENANTS);
      expect(outcomes.filter((o) => !o.ok).map((o) => o.tenant)).toEqual(['13']);
      expect(outcomes.find((o) => o.tenant === '13')).toMatchObject({
        ok: false,
        error: /simulated storage failure/,
      });
      const files = filesUnder(path.join(dir, 'vault', 'tenants'));
      expect(files.filter((f) => f.includes('/13/'))).toEqual([]);
      const manifests = files.filter((f) => f.endsWith('manifest.json'));
      // 49 from this run, plus tenant 7's earlier backup.
      expect(manifests).toHaveLength(TENANTS);
    }, 120_000);
  });
}

for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(engine, `per-tenant round trip of the tricky clinic schema (${engine})`, () => {
    let db: TestDatabase;
    let dir: string;

    beforeAll(async () => {
      db = await createDatabase(engine, 'tenant_tricky');
      await loadTrickySchema(engine, db.url);
      dir = tempDir('tenant-tricky');
    }, 120_000);
    afterAll(async () => {
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    });

    it('every tenant (odd values, generated columns, a 10 MiB value, audit triggers) comes back exactly', async () => {
      const model = { table: 'tenants', keyColumn: 'id', tenantColumn: 'tenant_id' };
      const connection = parseDatabaseUrl(engine, db.url);
      const vault = openVault(`file://${dir}`);
      const { keys } = await testKeys();
      const original = await tableChecksums(engine, db.url);
      const outcomes = await runTenantBackup({ connection, model, tenants: 'all', vault, keys });
      expect(outcomes.map((o) => [o.tenant, o.ok])).toEqual([...TRICKY_TENANTS].sort().map((t) => [t, true]));
      const plan = await discoverTenantPlan(connection, model);
      for (const o of outcomes) {
        if (!o.ok) continue;
        const rows = o.manifest.artifacts[0]!.tables.reduce((n, t) => n + t.rows, 0);
        if (engine === 'mysql') {
          // MySQL cannot switch the audit triggers off inside a transaction: refused, nothing changed.
          await expect(
            restoreTenant({
              vault,
              backupId: o.manifest.backupId,
              keys,
              target: connection,
              tenant: o.tenant,
            }),
          ).rejects.toThrow(/cannot switch triggers off[\s\S]*patients\.patients_audit_insert/);
          expect(await tableChecksums(engine, db.url)).toEqual(original);
          // --into-database restores into a copy without triggers: the tenant's rows, byte for byte.
          const into = `${db.name.slice(0, 40)}_i${o.tenant.replace(/-/g, '')}`.slice(0, 64);
          try {
            const report = await restoreTenant({
              vault,
              backupId: o.manifest.backupId,
              keys,
              target: connection,
              tenant: o.tenant,
              intoDatabase: into,
            });
            expect(report.loaded).toBe(rows);
            expect(
              await tenantChecksums(engine, db.url.replace(db.name, into), plan.tables, o.tenant),
            ).toEqual(await tenantChecksums(engine, db.url, plan.tables, o.tenant));
          } finally {
            await exec(engine, db.url, `DROP DATABASE IF EXISTS \`${into}\``);
          }
          continue;
        }
        // PostgreSQL: delete every row of the tenant (children first; the audit trigger fires for
        // these deletes), then restore with the triggers switched off: everything is back.
        for (const t of [...plan.tables].reverse())
          await exec(engine, db.url, t.selectSql.replace(/^SELECT t0\.\* FROM /, 'DELETE FROM '), [o.tenant]);
        const report = await restoreTenant({
          vault,
          backupId: o.manifest.backupId,
          keys,
          target: connection,
          tenant: o.tenant,
        });
        expect(report.loaded).toBe(rows);
        expect(report.triggers).toEqual({ names: ['public.patients.patients_audit'], handling: 'disabled' });
        expect(await tableChecksums(engine, db.url), `after restoring ${o.tenant}`).toEqual(original);
      }
    }, 180_000);
  });
}
