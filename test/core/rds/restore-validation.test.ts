/**
 * The snapshot restore test's validation against real servers: a real PostgreSQL and a real MariaDB
 * stand in for the temporary instance AWS Backup restores; the manifests are real Cofre backups of
 * those databases in a file vault. Pass (rows added after the backup: the snapshot is later), a table
 * short of rows, a missing table, an unreachable host, and no manifest before the snapshot.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBackup } from '../../../core/backup/backup';
import { parseDatabaseUrl, type Engine } from '../../../core/sources/connection';
import type { Keys } from '../../../core/vault/crypto';
import {
  manifestsBefore,
  validateRestoredInstance,
  type RestoreJobFacts,
  type RestoreTestedDatabase,
} from '../../../core/rds/restore-validation';
import { openVault, type Vault } from '../../../core/vault';
import {
  createDatabase,
  describeDatabase,
  withMysqlConnection,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { tempDir } from '../../helpers/temp';

const SQL: Record<Engine, string[]> = {
  postgres: [
    'CREATE TABLE public.patients (id int PRIMARY KEY, name text NOT NULL)',
    "INSERT INTO public.patients SELECT g, 'p' || g FROM generate_series(1, 40) g",
    'CREATE TABLE public.visits (id int PRIMARY KEY, patient_id int REFERENCES public.patients(id))',
    'INSERT INTO public.visits SELECT g, 1 + g % 40 FROM generate_series(1, 75) g',
  ],
  mysql: [
    'CREATE TABLE patients (id int PRIMARY KEY, name varchar(20) NOT NULL)',
    "INSERT INTO patients WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 40) SELECT n, CONCAT('p', n) FROM g",
    'CREATE TABLE visits (id int PRIMARY KEY, patient_id int, FOREIGN KEY (patient_id) REFERENCES patients(id))',
    'INSERT INTO visits WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 75) SELECT n, 1 + n % 40 FROM g',
  ],
};

async function run(engine: Engine, url: string, statements: string[]): Promise<void> {
  if (engine === 'postgres')
    await withPostgresClient(url, async (c) => {
      for (const s of statements) await c.query(s);
    });
  else
    await withMysqlConnection(url, async (c) => {
      for (const s of statements) await c.query(s);
    });
}

for (const engine of ['postgres', 'mysql'] as const) {
  describeDatabase(
    engine,
    `snapshot restore validation against a real ${engine} standing in for the restored instance`,
    () => {
      let db: TestDatabase;
      let vault: Vault;
      let keys: Keys;
      let tested: RestoreTestedDatabase;
      let snapshotAt: Date;
      let backupId: string;
      const patients = engine === 'postgres' ? 'public.patients' : 'patients';
      const visits = engine === 'postgres' ? 'public.visits' : 'visits';

      beforeAll(async () => {
        db = await createDatabase(engine, 'rds-validate');
        await run(engine, db.url, SQL[engine]);
        vault = openVault(`file://${tempDir('rds-vault')}`);
        ({ keys } = await testKeys());
        const [outcome] = await runBackup({
          connection: parseDatabaseUrl(engine, db.url),
          vault,
          keys,
          sourceId: 'app-prod',
          dataClass: 'health',
        });
        if (!outcome?.ok) throw new Error(`backup failed: ${JSON.stringify(outcome)}`);
        backupId = outcome.manifest.backupId;
        // The snapshot is taken after the dump; then the application writes on.
        snapshotAt = new Date(Date.now() + 1000);
        tested = {
          database: 'app-prod',
          engine,
          resourceArn: 'arn:aws:rds:sa-east-1:123456789012:db:app-prod',
          credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:123456789012:secret:app-prod-AbCdEf',
          databases: [db.name],
          excludeDatabases: [],
        };
      }, 120_000);

      afterAll(async () => {
        await db.drop();
      });

      const target = () => {
        const c = parseDatabaseUrl(engine, db.url);
        return {
          endpointOf: () => Promise.resolve({ host: c.host, port: c.port }),
          credentialsOf: () => Promise.resolve({ user: c.user, password: c.password }),
        };
      };
      const job = (over: Partial<RestoreJobFacts> = {}): RestoreJobFacts => ({
        restoreJobId: 'job-1',
        status: 'COMPLETED',
        creationDate: new Date('2026-11-01T07:00:00Z'),
        completionDate: new Date('2026-11-01T07:23:30Z'),
        sourceResourceArn: tested.resourceArn,
        recoveryPointArn: 'arn:aws:rds:sa-east-1:123456789012:snapshot:awsbackup:job-1',
        recoveryPointCreationDate: snapshotAt,
        createdResourceArn: 'arn:aws:rds:sa-east-1:123456789012:db:awsbackup-restore-test-1',
        ...over,
      });

      it('picks the newest full backup that finished before the snapshot, none from after it', async () => {
        const before = await manifestsBefore(vault, tested, snapshotAt);
        expect([...before.keys()]).toEqual([db.name]);
        expect(before.get(db.name)!.backupId).toBe(backupId);
        const earlier = await manifestsBefore(vault, tested, new Date(Date.now() - 3600_000));
        expect(earlier.size).toBe(0);
      });

      it('passes when every table has at least the rows of the manifest (rows added after the backup), with the restore time', async () => {
        await run(engine, db.url, [`INSERT INTO ${visits} (id, patient_id) VALUES (1000, 1)`]);
        const v = await validateRestoredInstance(job(), tested, { ...target(), vault });
        expect(v.message).not.toMatch(/failed/);
        expect(v.passed).toBe(true);
        expect(v.restoreSeconds).toBe(23 * 60 + 30);
        expect(v.backups).toEqual({ [db.name]: backupId });
        expect(v.tables).toEqual(
          expect.arrayContaining([
            { database: db.name, table: patients, expected: 40, restored: 40 },
            { database: db.name, table: visits, expected: 75, restored: 76 },
          ]),
        );
        expect(v.message).toMatch(/snapshot restored in 24 min; 2 table\(s\), 116 rows/);
      });

      it('fails naming the table that is short of rows', async () => {
        await run(engine, db.url, [`DELETE FROM ${visits} WHERE id IN (1, 2, 3)`]);
        try {
          const v = await validateRestoredInstance(job(), tested, { ...target(), vault });
          expect(v.passed).toBe(false);
          expect(v.message).toContain(
            `${db.name}.${visits}: 73 rows, fewer than the 75 of backup ${backupId}`,
          );
          expect(v.tables.filter((t) => t.problem)).toHaveLength(1);
        } finally {
          await run(engine, db.url, [`INSERT INTO ${visits} (id, patient_id) VALUES (1, 2), (2, 3), (3, 4)`]);
        }
      });

      it('fails naming a table the restored copy does not have', async () => {
        const renamed = engine === 'postgres' ? 'patients_gone' : 'patients_gone';
        await run(engine, db.url, [
          engine === 'postgres'
            ? `ALTER TABLE public.patients RENAME TO ${renamed}`
            : `RENAME TABLE patients TO ${renamed}`,
        ]);
        try {
          const v = await validateRestoredInstance(job(), tested, { ...target(), vault });
          expect(v.passed).toBe(false);
          expect(v.message).toMatch(new RegExp(`${db.name}\\.${patients.replace('.', '\\.')}: cannot count`));
        } finally {
          await run(engine, db.url, [
            engine === 'postgres'
              ? `ALTER TABLE public.${renamed} RENAME TO patients`
              : `RENAME TABLE ${renamed} TO patients`,
          ]);
        }
      });

      it('does not compare a database that was not in the latest backup run (dropped since), and says so', async () => {
        const gone = await createDatabase(engine, 'rds-gone');
        let goneName: string;
        try {
          await run(engine, gone.url, [SQL[engine][0]!, SQL[engine][1]!]);
          const [old] = await runBackup({
            connection: parseDatabaseUrl(engine, gone.url),
            vault,
            keys,
            sourceId: 'app-prod',
            dataClass: 'health',
            now: () => new Date(Date.now() - 10 * 86_400_000),
          });
          if (!old?.ok) throw new Error(`backup failed: ${JSON.stringify(old)}`);
          goneName = gone.name;
        } finally {
          await gone.drop();
        }
        const all = { ...tested, databases: 'all' as const };
        expect([...(await manifestsBefore(vault, all, snapshotAt)).keys()].sort()).toEqual(
          [db.name, goneName].sort(),
        );
        const v = await validateRestoredInstance(job(), all, { ...target(), vault });
        expect(v.passed).toBe(true);
        expect(Object.keys(v.backups)).toEqual([db.name]);
        expect(v.message).toMatch(
          new RegExp(`not compared \\(not in the latest backup run\\): ${goneName} \\(last backup `),
        );
      }, 60_000);

      it('reports an unreachable instance as FAILED (no crash), naming every table it could not check', async () => {
        const v = await validateRestoredInstance(job(), tested, {
          endpointOf: () => Promise.resolve({ host: '127.0.0.1', port: 1 }),
          credentialsOf: target().credentialsOf,
          vault,
        });
        expect(v.passed).toBe(false);
        expect(v.message).toMatch(/cannot connect: cannot connect to (PostgreSQL|MySQL) at 127\.0\.0\.1:1/);
        expect(v.tables.every((t) => t.problem !== undefined)).toBe(true);
        expect(v.restoreSeconds).toBe(1410);
      });

      it('fails when no Cofre backup finished before the snapshot, and when RDS gives no endpoint', async () => {
        const early = await validateRestoredInstance(
          job({ recoveryPointCreationDate: new Date('2020-01-01T00:00:00Z') }),
          tested,
          { ...target(), vault },
        );
        expect(early.passed).toBe(false);
        expect(early.message).toMatch(
          /no Cofre full backup finished before the snapshot \(2020-01-01T00:00:00\.000Z\)/,
        );
        const gone = await validateRestoredInstance(job(), tested, {
          ...target(),
          endpointOf: () => Promise.reject(new Error('DBInstanceNotFound')),
          vault,
        });
        expect(gone.passed).toBe(false);
        expect(gone.message).toMatch(/cannot reach the restored instance .*: DBInstanceNotFound/);
      });
    },
  );
}
