/**
 * The console restore state machine (state-machines/restore.asl.json) run locally end to end with
 * aws-local-stepfunctions, on PostgreSQL and MariaDB: the Fargate task (in process) runs the REAL
 * restore from a vault with real backups, the post-restore check counts the live rows, and the
 * content of what was restored is compared with what the database held at backup time (checksums
 * over every row, taken independently of Cofre). Also: the post-check failing, and a restore stopped
 * mid-way leaving nothing half-made.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { buildKeys, type Keys } from '../../../core/vault/crypto';
import { formatAlert, type NotifyEvent } from '../../../core/alerts/message';
import { jobDatabaseSchema, type ContainerJob } from '../../../core/aws/job';
import { runRestoreCheck } from '../../../core/aws/restore-task';
import { recordStoppedRestore } from '../../../core/aws/restore-stopped';
import { runLocalJob, type LocalPipelineOptions } from '../../../core/local/state-machine-runner';
import type { RestoreDatabase } from '../../../core/aws/restore-validate';
import type { BackupTaskOutput, TenantTaskOutput } from '../../../core/aws/task';
import {
  createDatabase,
  describeDatabase,
  MYSQL_ADMIN_URL,
  PG_ADMIN_URL,
  tableChecksums,
  withMysqlConnection,
  withPostgresClient,
  type TableChecksum,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { localJobInput, localPipeline } from '../../helpers/orchestration';
import { loadTenantFixture, TENANT_MODEL } from '../../helpers/tenant-fixture';

for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(engine, `restore state machine, ${engine}: real restores from the console input`, () => {
    let db: TestDatabase;
    const dirs: string[] = [];
    let keys: Keys;
    let decryptKeys: Keys;
    let options: LocalPipelineOptions;
    let atBackup: Record<string, TableChecksum>;
    let fullId: string;

    const adminUrl = engine === 'postgres' ? PG_ADMIN_URL : MYSQL_ADMIN_URL;
    const urlOf = (name: string) => {
      const u = new URL(adminUrl);
      u.pathname = `/${name}`;
      return u.toString();
    };
    const jobInput = () => {
      const base = localJobInput(db.url, { tenants: { ...TENANT_MODEL } });
      return {
        ...base,
        database: { ...base.database, engine, port: engine === 'postgres' ? 5432 : 3306 },
      };
    };
    const restoreDatabases = (): RestoreDatabase[] => [
      {
        database: jobDatabaseSchema.parse(jobInput().database),
        taskDefinitionArn: 'arn:aws:ecs:us-east-1:000000000000:task-definition/cofre-demo:1',
      },
    ];

    const key = (t: string) => (engine === 'postgres' ? `public.${t}` : t);

    async function exec(sql: string, database = db.name): Promise<void> {
      if (engine === 'postgres')
        await withPostgresClient(urlOf(database), async (c) => {
          await c.query(sql);
        });
      else
        await withMysqlConnection(urlOf(database), async (c) => {
          await c.query(sql);
        });
    }

    /** Databases on the server that start like the test database (its restores, temporary copies). */
    async function related(): Promise<string[]> {
      const prefix = db.name.slice(0, 24);
      if (engine === 'postgres')
        return withPostgresClient(PG_ADMIN_URL, async (c) => {
          const { rows } = await c.query<{ n: string }>(
            'SELECT datname AS n FROM pg_database WHERE left(datname, 24) = $1 ORDER BY 1',
            [prefix],
          );
          return rows.map((r) => r.n);
        });
      return withMysqlConnection(MYSQL_ADMIN_URL, async (c) => {
        const [rows] = await c.query('SELECT SCHEMA_NAME AS n FROM information_schema.SCHEMATA ORDER BY 1');
        return (rows as { n: string }[]).map((r) => r.n).filter((n) => n.slice(0, 24) === prefix);
      });
    }

    async function drop(name: string): Promise<void> {
      if (engine === 'postgres')
        await withPostgresClient(PG_ADMIN_URL, (c) =>
          c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
        );
      else await withMysqlConnection(MYSQL_ADMIN_URL, (c) => c.query(`DROP DATABASE IF EXISTS \`${name}\``));
    }

    beforeAll(async () => {
      db = await createDatabase(engine, 'rcr');
      await loadTenantFixture(engine, db.url, { tenants: 4 });
      const k = await testKeys();
      keys = k.keys;
      decryptKeys = await buildKeys({ keyFile: k.keyFile }, 'decrypt');
      const setup = localPipeline(db.url, { keys, decryptKeys }, dirs, {
        connect: (job) =>
          Promise.resolve({
            ...parseDatabaseUrl(engine, db.url),
            database: Array.isArray(job.database.databases) ? job.database.databases[0] : undefined,
          }),
      });
      options = { ...setup.options, restoreDatabases: restoreDatabases() };
      atBackup = await tableChecksums(engine, db.url);
      const backup = await runLocalJob('backup-database', jobInput(), options);
      expect(backup.status, `${backup.error}: ${backup.cause}`).toBe('succeeded');
      fullId = (backup.output?.dump as BackupTaskOutput).backups[0]!.backupId;
    }, 180_000);

    afterAll(async () => {
      for (const name of await related()) await drop(name);
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it('database: "latest" into a new database (the default name), content equal to the source at backup time, recorded with its RTO and notified with next steps', async () => {
      // The live database changes after the backup: the restore must bring back the backup's content.
      await exec('DELETE FROM item_notes');
      const run = await runLocalJob(
        'restore',
        { kind: 'database', database: 'demo', backup: 'latest', requestedBy: 'oncall@example.com' },
        options,
      );
      expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
      const restore = run.output?.restore as { targetDatabase: string; backupId: string; rows: number };
      expect(restore.backupId).toBe(fullId);
      expect(restore.targetDatabase).toMatch(new RegExp(`^${db.name}_restored_\\d{12}$`));
      expect(await tableChecksums(engine, urlOf(restore.targetDatabase))).toEqual(atBackup);
      // The source was not touched.
      expect((await tableChecksums(engine, db.url))[key('item_notes')]!.rows).toBe(0);
      expect(atBackup[key('item_notes')]!.rows).toBeGreaterThan(0);
      const check = run.output?.check as {
        tablesCompared: number;
        rowsCompared: number;
        manifestBackupId: string;
      };
      expect(check.manifestBackupId).toBe(fullId);
      expect(check.tablesCompared).toBe(Object.keys(atBackup).length);
      expect(check.rowsCompared).toBe(Object.values(atBackup).reduce((n, t) => n + t.rows, 0));

      const record = await options.history.latest('demo', 'restore');
      expect(record).toMatchObject({
        kind: 'restore',
        status: 'succeeded',
        requestedBy: 'oncall@example.com',
        executionArn: run.executionArn,
      });
      expect(record!.message).toMatch(/RTO \(start to checked copy\) [\d.]+ s \(\d+ ms\)/);
      expect(Date.parse(record!.finishedAt!) - Date.parse(record!.startedAt)).toBeGreaterThanOrEqual(0);
      const event = run.notifications[0]!;
      expect(event).toMatchObject({
        outcome: 'succeeded',
        job: 'restore',
        database: 'demo',
        kind: 'restore',
      });
      const body = formatAlert(event, { region: 'local' }).body;
      expect(body).toContain(`The restored copy is the database ${restore.targetDatabase}`);
      expect(body).toContain(`Drop ${restore.targetDatabase} when you are done`);
      // The check reports progress per table counted (the task's heartbeat while a large copy is counted).
      let counted = 0;
      const job = (run.output?.validated as { result: { job: ContainerJob } }).result.job;
      await runRestoreCheck(job, {
        connection: await options.connect(job),
        vault: options.vault,
        keys: decryptKeys,
        onProgress: () => {
          counted++;
        },
      });
      expect(counted).toBe(Object.keys(atBackup).length);
      await drop(restore.targetDatabase);
    });

    it('table: into a new table (the live one untouched), then into the live table, both confirmed, rows equal to the backup', async () => {
      await exec('DELETE FROM item_notes WHERE id % 2 = 0');
      const before = await tableChecksums(engine, db.url);
      const run = await runLocalJob(
        'restore',
        {
          kind: 'table',
          database: 'demo',
          backup: fullId,
          table: 'item_notes',
          intoTable: 'item_notes_restored',
          confirm: db.name,
        },
        options,
      );
      expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
      const after = await tableChecksums(engine, db.url);
      expect(after[key('item_notes_restored')]).toEqual(atBackup[key('item_notes')]);
      expect(after[key('item_notes')]).toEqual(before[key('item_notes')]);
      await exec('DROP TABLE item_notes_restored');
      // Into the live table itself (confirmed): its rows are the backup's again.
      const live = await runLocalJob(
        'restore',
        { kind: 'table', database: 'demo', backup: fullId, table: 'item_notes', confirm: db.name },
        options,
      );
      expect(live.status, `${live.error}: ${live.cause}`).toBe('succeeded');
      expect((await tableChecksums(engine, db.url))[key('item_notes')]).toEqual(atBackup[key('item_notes')]);
    });

    it('tenant: a dry run by default changes nothing; the confirmed real run brings the tenant back, the others untouched', async () => {
      const tenants = await runLocalJob('backup-tenants', jobInput(), options);
      expect(tenants.status, `${tenants.error}: ${tenants.cause}`).toBe('succeeded');
      const exports = (tenants.output?.batches as { exports: TenantTaskOutput['exports'] }[]).flatMap(
        (b) => b.exports,
      );
      const tenant2 = exports.find((e) => e.tenant === '2')!;
      const before = await tableChecksums(engine, db.url);
      // Tenant 2's patients are overwritten after the backup.
      await exec("UPDATE patients SET notes = 'overwritten' WHERE tenant_id = 2");
      const damaged = await tableChecksums(engine, db.url);
      expect(damaged).not.toEqual(before);

      const dry = await runLocalJob(
        'restore',
        { kind: 'tenant', database: 'demo', backup: tenant2.backupId, tenant: '2' },
        options,
      );
      expect(dry.status, `${dry.error}: ${dry.cause}`).toBe('succeeded');
      expect(dry.output?.restore).toMatchObject({ kind: 'tenant', dryRun: true, tenant: '2' });
      expect(await tableChecksums(engine, db.url)).toEqual(damaged);
      expect(formatAlert(dry.notifications[0]!, { region: 'local' }).body).toContain(
        `"dryRun": false and "confirm": "${db.name}"`,
      );

      const real = await runLocalJob(
        'restore',
        {
          kind: 'tenant',
          database: 'demo',
          backup: tenant2.backupId,
          tenant: '2',
          dryRun: false,
          confirm: db.name,
        },
        options,
      );
      expect(real.status, `${real.error}: ${real.cause}`).toBe('succeeded');
      expect(await tableChecksums(engine, db.url)).toEqual(before);
      expect(real.output?.check).toMatchObject({ manifestBackupId: tenant2.backupId });
    });

    it('the post-restore check fails when the restored copy differs from the manifest: recorded failed, notified with what to do', async () => {
      const run = await runLocalJob(
        'restore',
        { kind: 'database', database: 'demo', backup: fullId, targetDatabase: `${db.name.slice(0, 24)}_pc` },
        {
          ...options,
          around: async (state, input, next) => {
            // Someone writes into the new copy between the restore and its check.
            if (state === 'PostRestoreCheck')
              await exec(
                "DELETE FROM app_settings WHERE `key` = 'maintenance'".replace(
                  /`/g,
                  engine === 'postgres' ? '"' : '`',
                ),
                `${db.name.slice(0, 24)}_pc`,
              );
            return next();
          },
        },
      );
      expect(run.status).toBe('failed');
      expect(run.error).toBe('Cofre.PostCheckFailed');
      const table = engine === 'postgres' ? 'public.app_settings' : `${db.name}.app_settings`;
      expect(run.cause).toContain(`${table}: 1 rows, the manifest of ${fullId} has 2`);
      const record = await options.history.latest('demo', 'restore');
      expect(record).toMatchObject({ status: 'failed' });
      const body = formatAlert(run.notifications[0]!, { region: 'local' }).body;
      expect(body).toContain('does NOT match the backup');
      await drop(`${db.name.slice(0, 24)}_pc`);
    });

    it('a restore stopped mid-way leaves nothing half-made: no target, no temporary copy', async () => {
      const target = `${db.name.slice(0, 24)}_stop`;
      const controller = new AbortController();
      const existing = await related();
      let sawWork = false;
      const run = await runLocalJob(
        'restore',
        { kind: 'database', database: 'demo', backup: fullId, targetDatabase: target },
        {
          ...options,
          signal: controller.signal,
          around: async (state, input, next) => {
            if (state !== 'Restore') return next();
            // Stop the execution as soon as the restore has made something on the server.
            const watch = setInterval(() => {
              void related().then((names) => {
                if (!sawWork && names.some((n) => !existing.includes(n))) {
                  sawWork = true;
                  controller.abort();
                }
              });
            }, 5);
            try {
              return await next();
            } finally {
              clearInterval(watch);
            }
          },
        },
      );
      expect(sawWork).toBe(true);
      expect(run.status).toBe('failed');
      await expect.poll(() => related(), { timeout: 15_000, interval: 200 }).toEqual(existing);
      // A stop runs no Catch: the validation's record is still running, until the status-change
      // event (as EventBridge sends it) reaches restore-stopped, which marks it failed and notifies.
      const running = await options.history.recent('demo', 'restore', 'running', 50);
      const mine = running.find((r) => r.executionArn === run.executionArn);
      expect(mine).toBeDefined();
      const notified: NotifyEvent[] = [];
      const stopped = await recordStoppedRestore(
        {
          source: 'aws.states',
          'detail-type': 'Step Functions Execution Status Change',
          detail: {
            executionArn: run.executionArn,
            stateMachineArn: run.executionArn.replace(':execution:', ':stateMachine:').replace(/:[^:]+$/, ''),
            name: run.executionArn.split(':').pop(),
            status: 'ABORTED',
            startDate: Date.now() - run.durationMs,
            stopDate: Date.now(),
            input: JSON.stringify({
              kind: 'database',
              database: 'demo',
              backup: fullId,
              targetDatabase: target,
            }),
          },
        },
        { history: options.history, notify: (e) => Promise.resolve(void notified.push(e)) },
      );
      expect(stopped.record).toMatchObject({ id: mine!.id, status: 'failed' });
      const after = await options.history.recent('demo', 'restore', 'running', 50);
      expect(after.find((r) => r.executionArn === run.executionArn)).toBeUndefined();
      expect(notified).toHaveLength(1);
      expect(notified[0]).toMatchObject({
        outcome: 'failed',
        error: 'Cofre.RestoreStopped',
        database: 'demo',
      });
    });
  });
}
