/**
 * A console restore of kind `database` onto a NAMED restore target (`databases[].restoreTargets`):
 * the whole state machine run locally (aws-local-stepfunctions), the restore task reading the
 * target's secret from the local AWS (moto's Secrets Manager) and running the real restore there.
 *
 * The "target server" is the same local PostgreSQL reached with a different connection: its own
 * login role (not a superuser; CREATEDB only) from the target's secret, and the host from the
 * target's config entry (the secret's host does not resolve). The restored database belonging to
 * that role proves the restore ran with the target's credentials, not the source's.
 */
import { rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatAlert } from '../../../core/alerts/message';
import { jobDatabaseSchema, type JobDatabase } from '../../../core/aws/job';
import { validateRestore, type RestoreDatabase } from '../../../core/aws/restore-validate';
import { restoreTargetsOf, targetConnection } from '../../../core/aws/restore-target';
import { runLocalJob, type LocalPipelineOptions } from '../../../core/local/state-machine-runner';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import type { BackupTaskOutput } from '../../../core/aws/task';
import { buildKeys, type Keys } from '../../../core/vault/crypto';
import {
  createDatabase,
  describePostgres,
  PG_ADMIN_URL,
  tableChecksums,
  withPostgresClient,
  type TableChecksum,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { createSecret, describeLocalAws, localAws, type LocalAws } from '../../helpers/local-aws';
import { localJobInput, localPipeline } from '../../helpers/orchestration';
import { loadTenantFixture, TENANT_MODEL } from '../../helpers/tenant-fixture';

const PREFIX = 'restore input rejected, nothing was changed';
const TARGET_NETWORK = { subnetIds: ['subnet-0000000a'], securityGroupId: 'sg-0000000a' };

describePostgres('restore state machine: a database restored onto a named restore target', () => {
  describeLocalAws('with the target secret in the local AWS', () => {
    let aws: LocalAws;
    let db: TestDatabase;
    const dirs: string[] = [];
    let options: LocalPipelineOptions;
    let atBackup: Record<string, TableChecksum>;
    let fullId: string;
    let role: string;
    let database: JobDatabase;
    const made: string[] = [];

    const urlOf = (name: string, user = 'postgres') => {
      const u = new URL(PG_ADMIN_URL);
      u.username = user;
      u.password = '';
      u.pathname = `/${name}`;
      return u.toString();
    };
    const owner = (name: string) =>
      withPostgresClient(PG_ADMIN_URL, async (c) => {
        const { rows } = await c.query<{ owner: string }>(
          'SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1',
          [name],
        );
        return rows[0]?.owner;
      });
    const exists = async (name: string) => (await owner(name)) !== undefined;
    const drop = (name: string) =>
      withPostgresClient(PG_ADMIN_URL, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    const newName = (label: string) => {
      const name = `${db.name.slice(0, 24)}_${label}`;
      made.push(name);
      return name;
    };

    beforeAll(async () => {
      aws = localAws();
      db = await createDatabase('postgres', 'rtg');
      await loadTenantFixture('postgres', db.url, { tenants: 3 });
      role = `cofre_rtg_${randomBytes(4).toString('hex')}`;
      const password = `pw-${randomBytes(6).toString('hex')}`;
      await withPostgresClient(PG_ADMIN_URL, (c) =>
        c.query(`CREATE ROLE "${role}" LOGIN CREATEDB PASSWORD '${password}'`),
      );
      const u = new URL(PG_ADMIN_URL);
      // The secret's host does not resolve: restoreTargets[].host (127.0.0.1) must win.
      const secretArn = await createSecret(
        aws.secrets,
        { username: role, password, host: 'target-db.invalid', port: Number(u.port || 5432) },
        'restore-target',
      );
      const missingArn = secretArn.replace(/secret:.*$/, 'secret:cofre-t-no-such-secret-AbCdEf');
      const base = localJobInput(db.url, { tenants: { ...TENANT_MODEL } });
      database = jobDatabaseSchema.parse({
        ...base.database,
        restoreTargets: [
          { name: 'staging', host: u.hostname, credentialsSecretArn: secretArn, network: TARGET_NETWORK },
          { name: 'gone', host: u.hostname, credentialsSecretArn: missingArn },
        ],
      });
      const k = await testKeys();
      const decryptKeys: Keys = await buildKeys({ keyFile: k.keyFile }, 'decrypt');
      const setup = localPipeline(db.url, { keys: k.keys, decryptKeys }, dirs, {
        connect: (job) =>
          Promise.resolve({
            ...parseDatabaseUrl('postgres', db.url),
            database: Array.isArray(job.database.databases) ? job.database.databases[0] : undefined,
          }),
      });
      const restoreDatabases: RestoreDatabase[] = [
        { database, taskDefinitionArn: 'arn:aws:ecs:us-east-1:000000000000:task-definition/cofre-demo:1' },
      ];
      options = { ...setup.options, restoreDatabases, secrets: aws.secrets };
      atBackup = await tableChecksums('postgres', db.url);
      const backup = await runLocalJob('backup-database', base, options);
      expect(backup.status, `${backup.error}: ${backup.cause}`).toBe('succeeded');
      fullId = (backup.output?.dump as BackupTaskOutput).backups[0]!.backupId;
    }, 180_000);

    afterAll(async () => {
      for (const name of made) await drop(name);
      await (db as TestDatabase | undefined)?.drop();
      if (role)
        await withPostgresClient(PG_ADMIN_URL, async (c) => {
          await c.query(`DROP OWNED BY "${role}"`).catch(() => undefined);
          await c.query(`DROP ROLE IF EXISTS "${role}"`);
        });
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it('restores into a new database on the target with its credentials and network: content equal to the backup table by table, checked, recorded and notified', async () => {
      const target = newName('tgt');
      const networks: Record<string, unknown> = {};
      const run = await runLocalJob(
        'restore',
        {
          kind: 'database',
          database: 'demo',
          backup: fullId,
          target: 'staging',
          targetDatabase: target,
          requestedBy: 'oncall@example.com',
        },
        {
          ...options,
          around: (state, input, next) => {
            const cfg = (input as { NetworkConfiguration?: { AwsvpcConfiguration?: unknown } })
              .NetworkConfiguration;
            if (cfg) networks[state] = cfg.AwsvpcConfiguration;
            return next();
          },
        },
      );
      expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
      // The restore task and its check ran in the target's network, not the database's.
      const expected = {
        Subnets: TARGET_NETWORK.subnetIds,
        SecurityGroups: [TARGET_NETWORK.securityGroupId],
        AssignPublicIp: 'DISABLED',
      };
      expect(networks).toEqual({ Restore: expected, PostRestoreCheck: expected });
      // Made with the target's credentials: the restored database belongs to the target's role.
      expect(await owner(target)).toBe(role);
      // Content compared table by table with the source at backup time.
      const restored = await tableChecksums('postgres', urlOf(target, role));
      expect(Object.keys(restored).sort()).toEqual(Object.keys(atBackup).sort());
      for (const [table, sum] of Object.entries(atBackup))
        expect(restored[table], `table ${table}`).toEqual(sum);
      expect(Object.values(atBackup).some((t) => t.rows > 0)).toBe(true);
      const check = run.output?.check as { tablesCompared: number; checks: string[] };
      expect(check.tablesCompared).toBe(Object.keys(atBackup).length);
      expect(check.checks[0]).toContain(`connected to ${target} on restore target staging (127.0.0.1:`);
      const record = await options.history.latest('demo', 'restore');
      expect(record).toMatchObject({ status: 'succeeded', requestedBy: 'oncall@example.com' });
      expect(record!.message).toContain(`restored into the new database ${target} on restore target staging`);
      const body = formatAlert(run.notifications[0]!, { region: 'local' }).body;
      expect(body).toContain(`The restored copy is the database ${target} on restore target staging`);
    });

    it('a target database name that already exists on the target server: refused by the task before anything is touched', async () => {
      const target = newName('taken');
      await withPostgresClient(PG_ADMIN_URL, (c) => c.query(`CREATE DATABASE "${target}" OWNER "${role}"`));
      await withPostgresClient(urlOf(target), (c) =>
        c.query('CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (1)'),
      );
      const before = await tableChecksums('postgres', urlOf(target));
      const port = Number(new URL(PG_ADMIN_URL).port || 5432);
      const run = await runLocalJob(
        'restore',
        { kind: 'database', database: 'demo', backup: fullId, target: 'staging', targetDatabase: target },
        options,
      );
      expect(run.status).toBe('failed');
      expect(run.error).toBe('Cofre.BadInput');
      expect(run.cause).toBe(
        `restore of demo into ${target} failed: Cofre.BadInput: ${PREFIX} (1 problem):\ntargetDatabase: expected the name of a new database, got "${target}", which already exists on restore target staging (127.0.0.1:${port}) (choose another name, or replace it with replace: true and confirm)`,
      );
      expect(run.events.some((e) => e.state === 'PostRestoreCheck')).toBe(false);
      expect(await tableChecksums('postgres', urlOf(target))).toEqual(before);
    });

    it('replace: true with confirm replaces an existing database on the target (the existing rules)', async () => {
      const target = newName('repl');
      await withPostgresClient(PG_ADMIN_URL, (c) => c.query(`CREATE DATABASE "${target}" OWNER "${role}"`));
      await withPostgresClient(urlOf(target, role), (c) => c.query('CREATE TABLE old_stuff (id int)'));
      const run = await runLocalJob(
        'restore',
        {
          kind: 'database',
          database: 'demo',
          backup: fullId,
          target: 'staging',
          targetDatabase: target,
          replace: true,
          confirm: target,
        },
        options,
      );
      expect(run.status, `${run.error}: ${run.cause}`).toBe('succeeded');
      expect(await tableChecksums('postgres', urlOf(target, role))).toEqual(atBackup);
    });

    it('a target whose secret cannot be read fails naming the target and the secret; nothing is made', async () => {
      const target = newName('gone');
      const run = await runLocalJob(
        'restore',
        { kind: 'database', database: 'demo', backup: fullId, target: 'gone', targetDatabase: target },
        options,
      );
      expect(run.status).toBe('failed');
      expect(run.cause).toMatch(
        new RegExp(
          `restore target gone: could not read its secret arn:aws:secretsmanager:[^ ]+no-such-secret-AbCdEf: `,
        ),
      );
      expect(await exists(target)).toBe(false);
    });

    it('an unlisted target is rejected by the validation, naming the field and the allowed names; nothing is recorded', async () => {
      const records = (await options.history.between('0000', '9999')).length;
      const run = await runLocalJob(
        'restore',
        { kind: 'database', database: 'demo', backup: fullId, target: 'production' },
        options,
      );
      expect(run.status).toBe('failed');
      expect(run.error).toBe('Cofre.BadInput');
      expect(run.cause).toBe(
        `${PREFIX} (1 problem):\ntarget: expected one of the restore targets of demo (staging, gone), or nothing for its own server, got "production"`,
      );
      expect(run.events.some((e) => e.state === 'Restore')).toBe(false);
      expect((await options.history.between('0000', '9999')).length).toBe(records);
    });

    it('a database without restore targets names none; target is not part of other kinds; a malformed name is refused', async () => {
      const plain = jobDatabaseSchema.parse(localJobInput(db.url).database);
      const deps = {
        databases: [
          { database: plain, taskDefinitionArn: 'arn:aws:ecs:us-east-1:000000000000:task-definition/x:1' },
        ],
        vault: options.vault,
        history: options.history,
      };
      const cause = async (input: unknown) => {
        try {
          await validateRestore({ input, executionId: 'local' }, deps);
        } catch (error) {
          return (error as Error).message;
        }
        throw new Error('accepted');
      };
      expect(await cause({ kind: 'database', database: 'demo', backup: fullId, target: 'staging' })).toBe(
        `${PREFIX} (1 problem):\ntarget: expected one of the restore targets of demo (none configured: databases[].restoreTargets in cofre.config.ts), or nothing for its own server, got "staging"`,
      );
      expect(
        await cause({
          kind: 'table',
          database: 'demo',
          backup: fullId,
          table: 'patients',
          target: 'staging',
        }),
      ).toBe(
        `${PREFIX} (1 problem):\ntarget: unknown field, not part of a "table" restore (see README "Restore from the console")`,
      );
      expect(
        await cause({ kind: 'database', database: 'demo', backup: fullId, target: 'Staging; DROP' }),
      ).toBe(
        `${PREFIX} (1 problem):\ntarget: expected the name of a restore target of the database (databases[].restoreTargets[].name), got "Staging; DROP"`,
      );
    });

    it("the target connection: the config's host and port win over the secret's; the secret's user and password are used", async () => {
      const target = restoreTargetsOf(database)[0]!;
      const c = await targetConnection(
        'postgres',
        { name: 'staging', host: '10.0.0.9', port: 6543, credentialsSecretArn: target.credentialsSecretArn },
        aws.secrets,
      );
      expect(c).toMatchObject({ engine: 'postgres', host: '10.0.0.9', port: 6543, user: role });
      const fromSecret = await targetConnection(
        'postgres',
        { name: 'staging', credentialsSecretArn: target.credentialsSecretArn },
        aws.secrets,
      );
      expect(fromSecret).toMatchObject({ host: 'target-db.invalid', user: role });
    });
  });
});
