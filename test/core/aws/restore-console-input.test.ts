/**
 * The console restore's validation (state-machines/restore.asl.json, lambdas/restore-validate): every
 * malformed or dangerous input runs the WHOLE state machine locally (aws-local-stepfunctions) against
 * a vault with real backups of a real PostgreSQL database, and must end in `Cofre.BadInput` with the
 * exact cause the console shows, having created or changed nothing: no database on the server, no
 * history record, no vault object, the source database's rows as they were.
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { parseManifest } from '../../../core/catalog/manifest';
import { buildKeys, type Keys } from '../../../core/vault/crypto';
import { DEMO_TENANT_MODEL, loadDemoData } from '../../../core/local/demo-data';
import { jobDatabaseSchema } from '../../../core/aws/job';
import { runLocalJob, type LocalPipelineOptions } from '../../../core/local/state-machine-runner';
import { defaultTargetName, type RestoreDatabase } from '../../../core/aws/restore-validate';
import type { BackupTaskOutput, TenantTaskOutput } from '../../../core/aws/task';
import type { FileHistoryStore } from '../../../core/history/store';
import {
  createPostgresDatabase,
  describePostgres,
  PG_ADMIN_URL,
  rowCounts,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { localJobInput, localPipeline } from '../../helpers/orchestration';

const PREFIX = 'restore input rejected, nothing was changed';

describePostgres('restore state machine: rejected inputs (local executions)', () => {
  let db: TestDatabase;
  const dirs: string[] = [];
  let keys: Keys;
  let decryptKeys: Keys;
  let options: LocalPipelineOptions;
  let history: FileHistoryStore;
  let vaultDir: string;
  let fullId: string;
  let otherId: string;
  let tenantId: string;
  let tenantOf: string;
  let liveRows: Record<string, number>;

  const restoreDatabase = (id: string): RestoreDatabase => ({
    database: jobDatabaseSchema.parse(localJobInput(db.url, { id, tenants: DEMO_TENANT_MODEL }).database),
    taskDefinitionArn: `arn:aws:ecs:us-east-1:000000000000:task-definition/cofre-${id}:1`,
  });

  beforeAll(async () => {
    db = await createPostgresDatabase('rin');
    await loadDemoData(parseDatabaseUrl('postgres', db.url), { patientsPerTenant: 5 });
    const k = await testKeys();
    keys = k.keys;
    decryptKeys = await buildKeys({ keyFile: k.keyFile }, 'decrypt');
    const setup = localPipeline(db.url, { keys, decryptKeys }, dirs);
    vaultDir = path.join(setup.dir, 'vault');
    history = setup.history;
    options = { ...setup.options, restoreDatabases: [restoreDatabase('demo'), restoreDatabase('other')] };
    const demo = await runLocalJob('backup-database', localJobInput(db.url), options);
    expect(demo.status, `${demo.error}: ${demo.cause}`).toBe('succeeded');
    fullId = (demo.output?.dump as BackupTaskOutput).backups[0]!.backupId;
    const other = await runLocalJob('backup-database', localJobInput(db.url, { id: 'other' }), options);
    expect(other.status, `${other.error}: ${other.cause}`).toBe('succeeded');
    otherId = (other.output?.dump as BackupTaskOutput).backups[0]!.backupId;
    const tenants = await runLocalJob(
      'backup-tenants',
      localJobInput(db.url, { tenants: DEMO_TENANT_MODEL }),
      options,
    );
    expect(tenants.status, `${tenants.error}: ${tenants.cause}`).toBe('succeeded');
    const exported = (tenants.output?.batches as { exports: TenantTaskOutput['exports'] }[])[0]!.exports[0]!;
    tenantId = exported.backupId;
    tenantOf = exported.tenant;
    liveRows = await rowCounts('postgres', db.url);
  }, 120_000);

  afterAll(async () => {
    for (const name of await serverDatabases())
      if (name !== db.name)
        await withPostgresClient(PG_ADMIN_URL, (c) =>
          c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
        );
    await db.drop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Databases on the server whose name starts like the test database's. */
  async function serverDatabases(): Promise<string[]> {
    return withPostgresClient(PG_ADMIN_URL, async (c) => {
      const { rows } = await c.query<{ datname: string }>(
        'SELECT datname FROM pg_database WHERE left(datname, 20) = left($1, 20) ORDER BY 1',
        [db.name],
      );
      return rows.map((r) => r.datname);
    });
  }

  function vaultFiles(dir = vaultDir): string[] {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => path.join(e.parentPath, e.name))
      .sort();
  }

  /** Runs the restore state machine and checks it was rejected with exactly `lines`, changing nothing. */
  async function expectRejected(input: unknown, lines: string[]): Promise<void> {
    const databases = await serverDatabases();
    const files = vaultFiles();
    const records = await history.between('0000', '9999');
    const run = await runLocalJob('restore', input, options);
    expect(run.status).toBe('failed');
    expect(run.error).toBe('Cofre.BadInput');
    expect(run.cause).toBe(
      `${PREFIX} (${lines.length} problem${lines.length === 1 ? '' : 's'}):\n${lines.join('\n')}`,
    );
    // Rejected at the first state: neither task ran, nothing was recorded or notified.
    expect(run.events.some((e) => e.state === 'Restore')).toBe(false);
    expect(run.notifications).toEqual([]);
    expect(await serverDatabases()).toEqual(databases);
    expect(vaultFiles()).toEqual(files);
    expect(await history.between('0000', '9999')).toEqual(records);
    expect(await rowCounts('postgres', db.url)).toEqual(liveRows);
  }

  const ok = () => ({ kind: 'database', database: 'demo', backup: 'latest' });

  // ---- shape (zod) -----------------------------------------------------------------------

  it('1. fields given as null', () =>
    expectRejected({ kind: 'database', database: null, backup: null, targetDatabase: null }, [
      'database: expected the id of a configured database (databases[].id), got null',
      'backup: expected "latest" or a backup id like "20260102T020000123Z-0a1b2c3d" (cofre list), got null',
      'targetDatabase: expected the name of the database to restore into, got null',
    ]));

  it('2. no kind', () =>
    expectRejected({ database: 'demo', backup: 'latest' }, [
      'kind: expected one of "database", "table", "tenant", "point-in-time", "snapshot", got nothing',
    ]));

  it('3. an unknown kind', () =>
    expectRejected({ kind: 'everything', database: 'demo' }, [
      'kind: expected one of "database", "table", "tenant", "point-in-time", "snapshot", got "everything"',
    ]));

  it('4. a kind of the wrong type', () =>
    expectRejected({ kind: 1, database: 'demo' }, [
      'kind: expected one of "database", "table", "tenant", "point-in-time", "snapshot", got 1',
    ]));

  it('5. missing database and backup, both reported', () =>
    expectRejected({ kind: 'database' }, [
      'database: expected the id of a configured database (databases[].id), got nothing',
      'backup: expected "latest" or a backup id like "20260102T020000123Z-0a1b2c3d" (cofre list), got nothing',
    ]));

  it('6. an unknown field (force is not an input: replacing needs replace + confirm)', () =>
    expectRejected({ ...ok(), force: true }, [
      'force: unknown field, not part of a "database" restore (see README "Restore from the console")',
    ]));

  it('7. a backup id that is not one', () =>
    expectRejected({ ...ok(), backup: 'yesterday' }, [
      'backup: expected "latest" or a backup id like "20260102T020000123Z-0a1b2c3d" (cofre list), got "yesterday"',
    ]));

  it('8. a target database name with SQL in it', () =>
    expectRejected({ ...ok(), targetDatabase: 'x"; DROP DATABASE demo; --' }, [
      'targetDatabase: expected the name of the database to restore into: letters, digits and "_" (at most 63, not starting with a digit), got "x\\"; DROP DATABASE demo; --"',
    ]));

  it('9. a table name with SQL in it', () =>
    expectRejected(
      {
        kind: 'table',
        database: 'demo',
        backup: 'latest',
        table: 'patients; DROP TABLE clinics',
        confirm: 'x',
      },
      [
        'table: expected a table as "name" or "schema.name" (letters, digits and "_" only, no SQL), got "patients; DROP TABLE clinics"',
      ],
    ));

  it('10. dryRun as a string', () =>
    expectRejected(
      { kind: 'tenant', database: 'demo', backup: 'latest', tenant: 'clinica-sp', dryRun: 'false' },
      [
        'dryRun: expected true or false (false restores for real; the default true only reports), got "false"',
      ],
    ));

  it('11. wrong types and out-of-range values, every one reported at once', () =>
    expectRejected(
      { ...ok(), database: 42, replace: 'yes', requestedBy: '', timeoutMinutes: 100_000, extra: 1 },
      [
        'database: expected the id of a configured database (databases[].id), got 42',
        'requestedBy: expected who asks for the restore (a name or e-mail), got ""',
        'timeoutMinutes: expected minutes from 5 to 1440, got 100000',
        'replace: expected true or false (replace an existing target database), got "yes"',
        'extra: unknown field, not part of a "database" restore (see README "Restore from the console")',
      ],
    ));

  // ---- live state ------------------------------------------------------------------------

  it('12. a database that is not configured', () =>
    expectRejected({ ...ok(), database: 'nope' }, [
      'database: expected one of the configured databases (demo, other), got "nope"',
    ]));

  it('13. a backup id that does not exist', () =>
    expectRejected({ ...ok(), backup: '20200101T000000000Z-00000000' }, [
      `backup: expected a backup of demo in ${options.vault.url}, got 20200101T000000000Z-00000000, which does not exist (cofre list --vault ${options.vault.url})`,
    ]));

  it('14. a backup of another database', () =>
    expectRejected({ ...ok(), backup: otherId }, [
      `backup: expected a backup of demo, got ${otherId}, a backup of other`,
    ]));

  it('15. "latest" of a database that has no backup', () =>
    expectRejected({ ...ok(), sourceDatabase: 'ghost' }, [
      `backup: expected "latest" to find a backup of demo/ghost in ${options.vault.url}, found none (has backup-database run? cofre list --vault ${options.vault.url})`,
    ]));

  it("16. a sourceDatabase that is not the backup's", () =>
    expectRejected({ ...ok(), backup: fullId, sourceDatabase: 'ghost' }, [
      `sourceDatabase: expected "${db.name}" (backup ${fullId} is of that database) or nothing, got "ghost"`,
    ]));

  it('17. replace without confirm', () =>
    expectRejected({ ...ok(), targetDatabase: db.name, replace: true }, [
      `confirm: expected "${db.name}" (replace: true drops the existing database ${db.name} after the restore), got nothing`,
    ]));

  it('18. replace with the wrong confirm', () =>
    expectRejected({ ...ok(), targetDatabase: db.name, replace: true, confirm: 'yes' }, [
      `confirm: expected "${db.name}" (replace: true drops the existing database ${db.name} after the restore), got "yes"`,
    ]));

  it('19. confirm on a restore into a new database (it would confirm nothing)', () =>
    expectRejected({ ...ok(), confirm: db.name }, [
      `confirm: expected nothing (a restore into a new database changes nothing that exists; confirm goes with replace: true), got "${db.name}"`,
    ]));

  it('20. a table restore into the live database without confirm', () =>
    expectRejected({ kind: 'table', database: 'demo', backup: 'latest', table: 'public.patients' }, [
      `confirm: expected "${db.name}" (the restore replaces the rows of public.patients in the live database ${db.name}), got nothing`,
    ]));

  it('21. a table restore into a new table with the wrong confirm', () =>
    expectRejected(
      {
        kind: 'table',
        database: 'demo',
        backup: 'latest',
        table: 'patients',
        intoTable: 'patients_back',
        confirm: 'demo',
      },
      [
        `confirm: expected "${db.name}" (the restore adds the table patients_back to the live database ${db.name}), got "demo"`,
      ],
    ));

  it('22. a table that is not in the backup', () =>
    expectRejected(
      { kind: 'table', database: 'demo', backup: fullId, table: 'public.invoices', confirm: db.name },
      [
        `table: expected a table of backup ${fullId} (public.appointments, public.clinics, public.patients, public.prescriptions, public.specialties), got "public.invoices"`,
      ],
    ));

  it('23. intoTable equal to the table restored', () =>
    expectRejected(
      {
        kind: 'table',
        database: 'demo',
        backup: 'latest',
        table: 'patients',
        intoTable: 'patients',
        confirm: db.name,
      },
      [
        'intoTable: expected a new table\'s name, got "patients", the table being restored (leave intoTable out to replace its rows)',
      ],
    ));

  it('24. a real tenant restore (dryRun false) without confirm', () =>
    expectRejected(
      { kind: 'tenant', database: 'demo', backup: 'latest', tenant: 'clinica-sp', dryRun: false },
      [
        `confirm: expected "${db.name}" (dryRun: false replaces tenant clinica-sp's rows in the live database ${db.name}), got nothing`,
      ],
    ));

  it('25. confirm on a tenant dry run (the default), and acceptUnownedRows with it', () =>
    expectRejected(
      {
        kind: 'tenant',
        database: 'demo',
        backup: 'latest',
        tenant: 'clinica-sp',
        confirm: db.name,
        acceptUnownedRows: true,
      },
      [
        `confirm: expected nothing with a dry run (it changes nothing; set dryRun: false to restore), got "${db.name}"`,
        'acceptUnownedRows: expected nothing with a dry run (it deletes nothing)',
      ],
    ));

  it('26. a tenant restore into a new database left as a dry run', () =>
    expectRejected(
      {
        kind: 'tenant',
        database: 'demo',
        backup: 'latest',
        tenant: 'clinica-sp',
        intoDatabase: 'clinic_copy',
      },
      [
        'dryRun: expected false with intoDatabase (a restore into a new database), got nothing (true by default)',
      ],
    ));

  it('27. a tenant backup of another tenant', () => {
    const wrong = tenantOf === 'lab-poa' ? 'odonto-bh' : 'lab-poa';
    return expectRejected({ kind: 'tenant', database: 'demo', backup: tenantId, tenant: wrong }, [
      `tenant: expected "${tenantOf}" (the tenant backup ${tenantId} holds), got "${wrong}"`,
    ]);
  });

  it('28. a tenant backup used for a whole-database restore', () =>
    expectRejected({ ...ok(), backup: tenantId }, [
      `backup: expected a full backup for a database restore, got ${tenantId}, an export of tenant "${tenantOf}" (use kind "tenant")`,
    ]));

  it('29. a backup whose manifest was tampered with', async () => {
    const forged = '20200102T000000000Z-0badf00d';
    const dir = path.join(vaultDir, 'full', 'demo', db.name, forged);
    mkdirSync(dir, { recursive: true });
    const bytes = Buffer.from('{"formatVersion": 1, "backupId": "forged"}\n');
    writeFileSync(path.join(dir, 'manifest.json'), bytes);
    const parsed = parseManifest(bytes);
    const problems = 'problems' in parsed ? parsed.problems : [];
    expect(problems.length).toBeGreaterThan(0);
    try {
      await expectRejected({ ...ok(), backup: forged }, [
        `backup: expected a backup with a valid manifest, got ${forged}, whose manifest is invalid (${problems.join('; ')}); run cofre verify`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('30. a new target that already exists on the server: the task refuses before touching it', async () => {
    const databases = await serverDatabases();
    const records = (await history.between('0000', '9999')).length;
    const run = await runLocalJob('restore', { ...ok(), targetDatabase: db.name }, options);
    expect(run.status).toBe('failed');
    expect(run.error).toBe('Cofre.BadInput');
    expect(run.cause).toBe(
      `restore of demo into ${db.name} failed: Cofre.BadInput: ${PREFIX} (1 problem):\ntargetDatabase: expected the name of a new database, got "${db.name}", which already exists on 127.0.0.1:5432 (choose another name, or replace it with replace: true and confirm)`,
    );
    expect(run.events.some((e) => e.state === 'PostRestoreCheck')).toBe(false);
    expect(await serverDatabases()).toEqual(databases);
    expect(await rowCounts('postgres', db.url)).toEqual(liveRows);
    // The attempt is in the history (running → failed), and people were told.
    const all = await history.between('0000', '9999');
    expect(all.length).toBe(records + 1);
    expect(all.find((r) => r.kind === 'restore')).toMatchObject({ status: 'failed', database: 'demo' });
    expect(run.notifications[0]).toMatchObject({
      outcome: 'failed',
      job: 'restore',
      error: 'Cofre.BadInput',
    });
  });

  it('the default target is a new name derived from the source, never the live database', () => {
    const name = defaultTargetName('clinic-db', new Date('2026-01-02T03:04:05Z'));
    expect(name).toBe('clinic_db_restored_202601020304');
    expect(defaultTargetName('x'.repeat(80), new Date('2026-01-02T03:04:05Z'))).toHaveLength(63);
    expect(defaultTargetName('9lives', new Date('2026-01-02T03:04:05Z'))).toBe(
      '_9lives_restored_202601020304',
    );
  });
});
