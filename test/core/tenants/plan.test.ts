import type { RowDataPacket } from 'mysql2';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { main } from '../../../cli/cofre';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { UsageError } from '../../../core/util/errors';
import { discoverTenantPlan, type TenantPlan, type TenantPlanTable } from '../../../core/tenants/plan';
import {
  createDatabase,
  describeDatabase,
  loadTrickySchema,
  TRICKY_ROW_COUNTS,
  TRICKY_TENANTS,
  withMysqlConnection,
  withPostgresClient,
  type Engine,
  type TestDatabase,
} from '../../helpers/databases';

const MODEL = { table: 'tenants', keyColumn: 'id', tenantColumn: 'tenant_id' } as const;

/** Runs `sql` (with `params`) against the database at `url`; rows as plain objects. */
async function query(
  engine: Engine,
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<Record<string, unknown>[]> {
  if (engine === 'postgres') {
    return withPostgresClient(
      url,
      async (c) => (await c.query(sql, params)).rows as Record<string, unknown>[],
    );
  }
  return withMysqlConnection(
    url,
    async (c) => {
      const [rows] = await c.query<RowDataPacket[]>(sql, params);
      return rows;
    },
    { multipleStatements: true },
  );
}

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env: {},
  });
  return { code, stdout, stderr };
}

function byKey(plan: TenantPlan): Record<string, TenantPlanTable> {
  return Object.fromEntries(plan.tables.map((t) => [t.key, t]));
}

for (const engine of ['postgres', 'mysql'] as const) {
  const k = (name: string, schema = 'public') => (engine === 'postgres' ? `${schema}.${name}` : name);
  const q = (n: string) => (engine === 'postgres' ? `"${n}"` : `\`${n}\``);

  describeDatabase(engine, `tenant plan on the tricky clinic schema (${engine})`, () => {
    let db: TestDatabase;
    let plan: TenantPlan;

    beforeAll(async () => {
      db = await createDatabase(engine, 'tenant_plan');
      await loadTrickySchema(engine, db.url);
      plan = await discoverTenantPlan(parseDatabaseUrl(engine, db.url), MODEL);
    }, 120_000);
    afterAll(async () => {
      await db.drop();
    });

    it('classifies tenant, direct, child and shared tables', () => {
      const t = byKey(plan);
      expect(plan.tenantTable.key).toBe(k('tenants'));
      expect(t[k('tenants')]!.kind).toBe('tenant-table');
      for (const name of ['patients', 'professionals', 'appointments', 'invoices', 'waiting_list']) {
        expect(t[k(name)]!.kind, name).toBe('direct');
      }
      expect(t[engine === 'postgres' ? 'audit.events' : 'audit_events']!.kind).toBe('direct');
      for (const name of ['prescriptions', 'prescription_items', 'attachments', 'ClinicUnits']) {
        expect(t[k(name)]!.kind, name).toBe('child');
      }
      expect(plan.shared.map((s) => s.key)).toEqual([k('specialties')]);
      expect(Object.keys(t).sort()).toEqual(
        Object.keys(TRICKY_ROW_COUNTS[engine])
          .filter((n) => n !== k('specialties'))
          .sort(),
      );
      // Paths: prescription_items → prescriptions → appointments (tenant_id); "ClinicUnits"."tenantId" → tenants.id.
      expect(t[k('prescription_items')]!.path.map((h) => [h.columns, h.to.key])).toEqual([
        [['prescription_id'], k('prescriptions')],
        [['appointment_id'], k('appointments')],
      ]);
      expect(t[k('prescription_items')]!.filterColumn).toBe('tenant_id');
      expect(t[k('ClinicUnits')]!.path.map((h) => [h.columns, h.to.key, h.refColumns])).toEqual([
        [['tenantId'], k('tenants'), ['id']],
      ]);
      expect(t[k('ClinicUnits')]!.selectSql).toContain(q('ClinicUnits'));
      expect(t[k('ClinicUnits')]!.selectSql).toContain(q('tenantId'));
      expect(plan.selfReferences.map((s) => [s.table, s.columns])).toEqual([
        [k('professionals'), ['supervisor_id']],
      ]);
      expect(t[k('patients')]!.generatedColumns).toEqual(['search_name']);
      expect(t[k('appointments')]!.generatedColumns).toEqual([]);
    });

    it('orders parents before children', () => {
      const pos = (name: string) => plan.order.indexOf(k(name));
      expect(plan.order).toEqual(plan.tables.map((t) => t.key));
      expect(pos('tenants')).toBe(0);
      for (const t of plan.tables) {
        for (const parent of t.dependsOn)
          expect(plan.order.indexOf(parent), `${parent} before ${t.key}`).toBeLessThan(
            plan.order.indexOf(t.key),
          );
      }
      expect(pos('ClinicUnits')).toBeLessThan(pos('appointments'));
      expect(pos('patients')).toBeLessThan(pos('appointments'));
      expect(pos('appointments')).toBeLessThan(pos('prescriptions'));
      expect(pos('prescriptions')).toBeLessThan(pos('prescription_items'));
    });

    it('selects exactly each tenant’s rows, none twice, none missed', async () => {
      for (const t of plan.tables) {
        expect(t.primaryKey.length, `${t.key} has a primary key`).toBeGreaterThan(0);
        const total = TRICKY_ROW_COUNTS[engine][t.key]!;
        const pk = t.primaryKey.map(q).join(', ');
        const seen = new Set<string>();
        const counts: Record<string, number> = {};
        for (const tenant of TRICKY_TENANTS) {
          const rows = await query(engine, db.url, `SELECT ${pk} FROM (${t.selectSql}) AS s`, [tenant]);
          counts[tenant] = rows.length;
          for (const r of rows) {
            const id = JSON.stringify(t.primaryKey.map((c) => String(r[c])));
            expect(seen.has(id), `${t.key} row ${id} selected twice`).toBe(false);
            seen.add(id);
          }
        }
        expect(seen.size, `${t.key}: every row belongs to exactly one tenant`).toBe(total);
        expect(counts['sem-dados'], `${t.key} for sem-dados`).toBe(t.kind === 'tenant-table' ? 1 : 0);
      }
    }, 120_000);

    it('matches hand-written joins for clinica-sp', async () => {
      const t = byKey(plan);
      const count = async (sql: string) => Number((await query(engine, db.url, sql, ['clinica-sp']))[0]!.n);
      const viaPlan = async (key: string) => count(`SELECT count(*) AS n FROM (${t[key]!.selectSql}) AS s`);
      const p = engine === 'postgres' ? '$1' : '?';
      const pre = engine === 'postgres' ? 'public.' : '';
      const items = await count(
        `SELECT count(*) AS n FROM ${pre}prescription_items i JOIN ${pre}prescriptions r ON r.id = i.prescription_id
         JOIN ${pre}appointments a ON a.id = r.appointment_id WHERE a.tenant_id = ${p}`,
      );
      expect(items).toBeGreaterThan(0);
      expect(await viaPlan(k('prescription_items'))).toBe(items);
      const units = await count(
        `SELECT count(*) AS n FROM ${pre}${q('ClinicUnits')} WHERE ${q('tenantId')} = ${p}`,
      );
      expect(await viaPlan(k('ClinicUnits'))).toBe(units);
      const patients = await count(`SELECT count(*) AS n FROM ${pre}patients WHERE tenant_id = ${p}`);
      expect(await viaPlan(k('patients'))).toBe(patients);
    });

    it('cofre tenant plan prints the plan, as JSON too', async () => {
      const args = ['tenant', 'plan', '--engine', engine, '--url', db.url, '--tenant-table', 'tenants'];
      const human = await run([...args, '--key-column', 'id', '--tenant-column', 'tenant_id']);
      expect(human.code, human.stderr).toBe(0);
      expect(human.stdout).toMatch(
        /prescription_items\s+child\s+\(prescription_id\) → \S*prescriptions → \(appointment_id\) → \S*appointments\.tenant_id = :tenant/,
      );
      expect(human.stdout).toContain(`shared (no path to a tenant, left out): ${k('specialties')}`);
      const json = await run([...args, '--key-column', 'id', '--tenant-column', 'tenant_id', '--json']);
      expect(json.code, json.stderr).toBe(0);
      expect((JSON.parse(json.stdout) as TenantPlan).order).toEqual(plan.order);
    });

    it('bad model inputs exit 2 naming the option', async () => {
      const base = ['tenant', 'plan', '--engine', engine, '--url', db.url];
      const cases: [string[], RegExp][] = [
        [
          ['--tenant-table', 'clinics', '--key-column', 'id', '--tenant-column', 'tenant_id'],
          /--tenant-table: no table "clinics".*tenants/,
        ],
        [
          ['--tenant-table', 'tenants', '--key-column', 'uuid', '--tenant-column', 'tenant_id'],
          /--key-column: table \S*tenants has no column "uuid".*\bid\b/,
        ],
        [
          ['--tenant-table', 'tenants', '--key-column', 'id', '--tenant-column', 'clinic_id'],
          /--tenant-column: no table has a column "clinic_id".*tenant_id/,
        ],
      ];
      for (const [extra, message] of cases) {
        const r = await run([...base, ...extra]);
        expect(r.code, r.stderr).toBe(2);
        expect(r.stderr).toMatch(message);
      }
      const missing = await run([...base, '--tenant-table', 'tenants', '--key-column', 'id']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain('--tenant-column');
    });
  });

  describeDatabase(
    engine,
    `tenant plan: deep children, composite FK, self-reference, cycle (${engine})`,
    () => {
      let db: TestDatabase;
      const text = engine === 'postgres' ? 'text' : 'VARCHAR(40)';
      // Table-level FOREIGN KEY clauses: MySQL ignores inline column REFERENCES.
      const schema = [
        `CREATE TABLE orgs (code ${text} PRIMARY KEY, name ${text})`,
        `CREATE TABLE countries (iso ${text} PRIMARY KEY)`,
        `CREATE TABLE projects (org ${text} NOT NULL, num integer NOT NULL, country ${text},
         PRIMARY KEY (org, num), FOREIGN KEY (org) REFERENCES orgs (code), FOREIGN KEY (country) REFERENCES countries (iso))`,
        `CREATE TABLE tasks (id integer PRIMARY KEY, org ${text} NOT NULL, project_num integer NOT NULL, parent_id integer,
         FOREIGN KEY (parent_id) REFERENCES tasks (id), FOREIGN KEY (org, project_num) REFERENCES projects (org, num))`,
        `CREATE TABLE notes (id integer PRIMARY KEY, task_id integer NOT NULL, FOREIGN KEY (task_id) REFERENCES tasks (id))`,
        `CREATE TABLE reactions (id integer PRIMARY KEY, note_id integer NOT NULL, FOREIGN KEY (note_id) REFERENCES notes (id))`,
        `CREATE TABLE emojis (id integer PRIMARY KEY, reaction_id integer NOT NULL,
         FOREIGN KEY (reaction_id) REFERENCES reactions (id))`,
        `INSERT INTO orgs VALUES ('a', 'A'), ('b', 'B')`,
        `INSERT INTO countries VALUES ('BR')`,
        `INSERT INTO projects VALUES ('a', 1, 'BR'), ('a', 2, NULL), ('b', 1, 'BR')`,
        `INSERT INTO tasks VALUES (1, 'a', 1, NULL), (2, 'a', 2, 1), (3, 'b', 1, NULL)`,
        `INSERT INTO notes VALUES (1, 1), (2, 2), (3, 3), (4, 3)`,
        `INSERT INTO reactions VALUES (1, 1), (2, 2), (3, 3), (4, 4)`,
        `INSERT INTO emojis VALUES (1, 1), (2, 2), (3, 4), (4, 4)`,
      ];
      const model = { table: 'orgs', keyColumn: 'code', tenantColumn: 'org' };

      beforeAll(async () => {
        db = await createDatabase(engine, 'tenant_plan_deep');
        for (const sql of schema) {
          await query(engine, db.url, sql);
        }
      }, 60_000);
      afterAll(async () => {
        await db.drop();
      });

      it('follows 3+ levels of children and a composite FK, with one tenant parameter', async () => {
        const plan = await discoverTenantPlan(parseDatabaseUrl(engine, db.url), model);
        const t = byKey(plan);
        expect(plan.shared.map((s) => s.key)).toEqual([k('countries')]);
        expect(plan.order).toEqual([
          k('orgs'),
          k('projects'),
          k('tasks'),
          k('notes'),
          k('reactions'),
          k('emojis'),
        ]);
        expect(t[k('tasks')]!.kind).toBe('direct');
        expect(t[k('emojis')]!.kind).toBe('child');
        expect(t[k('emojis')]!.path.map((h) => h.to.key)).toEqual([k('reactions'), k('notes'), k('tasks')]);
        expect(plan.selfReferences.map((s) => [s.table, s.columns, s.refColumns])).toEqual([
          [k('tasks'), ['parent_id'], ['id']],
        ]);
        const ids = async (key: string, tenant: string) =>
          (
            await query(engine, db.url, `SELECT id FROM (${t[key]!.selectSql}) AS s ORDER BY id`, [tenant])
          ).map((r) => Number(r.id));
        expect(await ids(k('emojis'), 'a')).toEqual([1, 2]);
        expect(await ids(k('emojis'), 'b')).toEqual([3, 4]);
        expect(await ids(k('notes'), 'b')).toEqual([3, 4]);
        expect(await ids(k('tasks'), 'a')).toEqual([1, 2]);
      });

      it('composite FK path when the child lacks the tenant column', async () => {
        // With tenant column "name" only orgs has it, so projects/tasks are reached through FKs:
        // tasks → projects is the composite (org, project_num) → (org, num) hop.
        await expect(
          discoverTenantPlan(parseDatabaseUrl(engine, db.url), { ...model, tenantColumn: 'name' }),
        ).rejects.toThrow(/^model\.tenantColumn: no table has a column "name"/);
        const plan = await discoverTenantPlan(parseDatabaseUrl(engine, db.url), {
          ...model,
          tenantColumn: 'num',
        });
        const tasks = byKey(plan)[k('tasks')]!;
        expect(tasks.kind).toBe('child');
        expect(tasks.path.map((h) => [h.columns, h.refColumns])).toEqual([
          [
            ['org', 'project_num'],
            ['org', 'num'],
          ],
        ]);
        const rows = await query(engine, db.url, `SELECT id FROM (${tasks.selectSql}) AS s ORDER BY id`, [1]);
        expect(rows.map((r) => Number(r.id))).toEqual([1, 3]);
      });

      it('names an FK cycle that cannot be ordered', async () => {
        await query(engine, db.url, 'ALTER TABLE notes ADD COLUMN pinned_reaction integer');
        await query(
          engine,
          db.url,
          'ALTER TABLE notes ADD CONSTRAINT notes_pin FOREIGN KEY (pinned_reaction) REFERENCES reactions (id)',
        );
        const error = await discoverTenantPlan(parseDatabaseUrl(engine, db.url), model).catch(
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(UsageError);
        expect((error as Error).message).toMatch(
          /cycle .*(notes → \S*reactions → \S*notes|reactions → \S*notes → \S*reactions)/,
        );
        const r = await run([
          'tenant',
          'plan',
          '--engine',
          engine,
          '--url',
          db.url,
          '--tenant-table',
          'orgs',
          '--key-column',
          'code',
          '--tenant-column',
          'org',
        ]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain('notes_pin');
      });
    },
  );
}
