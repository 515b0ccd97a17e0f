/**
 * `npm run bench`: the backup engine against its limit and against the seeds' pipeline, side by
 * side in one run, on a generated PostgreSQL database of ~700 MB with realistic entropy.
 *
 *   npm run bench                       # generate 3 M rows, measure, drop the database
 *   npm run bench -- --rows 500000      # smaller
 *   npm run bench -- --url postgres://postgres@127.0.0.1:5432/existing   # reuse a database (kept)
 *   npm run bench -- --levels 1,3,6     # zstd levels to compare (default 1,3,6)
 *   npm run bench -- --only backup      # only the full backup / restore part
 *   npm run bench -- --only tenants [--tenants 1000 --scale 80]   # only per-tenant (bench-tenants.ts)
 *   npm run bench -- --only tenant-fuzz [--schemas 1000 --seed 1]  # the tenant property test on
 *       1,000 random schemas per engine (test/core/tenants/fuzz.test.ts; npm test runs 40)
 *   npm run bench -- --only files [--objects 100000 --size 2048]   # cofre files sync of small
 *       objects on a local S3 (bench-files.ts): objects/s and peak RSS
 *
 * Figures (goals from the backup-engine issue):
 *   cofre ÷ raw pg_dump -Fc -Z0 > /dev/null        goal ≤ 1.4 (wall time)
 *   cofre ÷ seeds' pg_dump -Z9 + openssl + copy    goal ≤ 0.2 (wall time)
 *   cofre stored bytes ÷ seeds' stored bytes       goal ≤ 0.9
 *   peak RSS of the cofre process                  goal ≤ 256 MB
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { generateBenchData } from './bench-data-lib';
import { benchFiles } from './bench-files';
import { benchPipeline } from './bench-pipeline';
import { benchTenants } from './bench-tenants';
import { sh, timed, type Run } from './bench-run';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const ADMIN = process.env.COFRE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const rows = Number(arg('rows') ?? 3_000_000);
const levels = (arg('levels') ?? '1,3,6').split(',').map(Number);
const BIN = path.join(__dirname, '..', 'cli', 'bin.js');

function dirBytes(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((n, e) => n + statSync(path.join(e.parentPath, e.name)).size, 0);
}

async function main(): Promise<void> {
  let url = arg('url');
  let dropAfter: string | undefined;
  if (!url) {
    const name = `cofre_bench_${randomBytes(4).toString('hex')}`;
    url = `${ADMIN.replace(/\/[^/]*$/, '')}/${name}`;
    dropAfter = name;
    process.stderr.write(`generating ${rows} rows into ${name}…\n`);
    await generateBenchData({ engine: 'postgres', url, rows });
  }
  const work = mkdtempSync(path.join(os.tmpdir(), 'cofre-bench-'));
  try {
    const u = new URL(url);
    const database = decodeURIComponent(u.pathname.slice(1));
    const pgEnv = {
      ...process.env,
      PGHOST: u.hostname,
      PGPORT: u.port || '5432',
      PGUSER: decodeURIComponent(u.username) || 'postgres',
      PGPASSWORD: decodeURIComponent(u.password),
      PGDATABASE: database,
    };
    const c = new Client({ connectionString: url });
    await c.connect();
    const size = Number(
      (await c.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s')).rows[0]!.s,
    );
    await c.end();
    const keyFile = path.join(work, 'key');
    execFileSync(process.execPath, [BIN, 'keygen', '--out', keyFile], { stdio: 'ignore' });
    const passFile = path.join(work, 'openssl-pass');
    writeFileSync(passFile, randomBytes(32).toString('hex'), { mode: 0o600 });

    process.stderr.write(`database ${database}: ${(size / 1e6).toFixed(0)} MB; ${os.cpus().length} cores\n`);
    // Warm the cache once so every contender reads from memory alike.
    await sh('pg_dump -Fc -Z0 > /dev/null', pgEnv);

    const raw = await sh('pg_dump -Fc -Z0 > /dev/null', pgEnv);
    process.stderr.write(`raw pg_dump -Fc -Z0 > /dev/null: ${raw.seconds.toFixed(1)} s\n`);

    const shell = await sh(
      `pg_dump -Fc -Z0 | zstd -1 -q | openssl enc -aes-256-ctr -pbkdf2 -pass file:${passFile} | sha256sum > /dev/null`,
      pgEnv,
    );
    process.stderr.write(`shell pg_dump | zstd -1 | openssl | sha256sum: ${shell.seconds.toFixed(1)} s\n`);

    const seedsDir = path.join(work, 'seeds');
    const seeds = await sh(
      `mkdir -p ${seedsDir}/vault && pg_dump -Fc -Z9 -f ${seedsDir}/db.dump && ` +
        `openssl enc -aes-256-cbc -pbkdf2 -pass file:${passFile} -in ${seedsDir}/db.dump -out ${seedsDir}/db.dump.enc && ` +
        `cp ${seedsDir}/db.dump.enc ${seedsDir}/vault/ && sync`,
      pgEnv,
    );
    seeds.storedBytes = statSync(path.join(seedsDir, 'vault', 'db.dump.enc')).size;
    rmSync(seedsDir, { recursive: true, force: true });
    process.stderr.write(
      `seeds' pg_dump -Z9 + openssl + copy: ${seeds.seconds.toFixed(1)} s, ${seeds.storedBytes} bytes\n`,
    );

    const cofre: Record<number, Run> = {};
    for (const level of levels) {
      const vaultDir = path.join(work, `vault-${level}`);
      const run = await timed(
        process.execPath,
        [
          BIN,
          'backup',
          '--engine',
          'postgres',
          '--url',
          url,
          '--vault',
          `file://${vaultDir}`,
          '--key-file',
          keyFile,
          '--zstd-level',
          String(level),
        ],
        process.env,
        true,
      );
      execFileSync('sync');
      run.storedBytes = dirBytes(vaultDir);
      rmSync(vaultDir, { recursive: true, force: true });
      cofre[level] = run;
      process.stderr.write(
        `cofre backup, zstd ${level}: ${run.seconds.toFixed(1)} s, ${run.storedBytes} bytes, peak RSS ${run.peakRssMiB!.toFixed(0)} MiB\n`,
      );
    }

    // Restore: cofre restore (streamed, and spilled with 2 jobs) against pg_restore of the same
    // dump from a local uncompressed file (the limit), each into a fresh database.
    const restoreLevel = levels[0]!;
    const restoreVault = path.join(work, 'vault-restore');
    execFileSync(
      process.execPath,
      [
        BIN,
        'backup',
        '--engine',
        'postgres',
        '--url',
        url,
        '--vault',
        `file://${restoreVault}`,
        '--key-file',
        keyFile,
        '--zstd-level',
        String(restoreLevel),
        '--json',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const listed = JSON.parse(
      execFileSync(process.execPath, [BIN, 'list', '--vault', `file://${restoreVault}`, '--json']).toString(),
    ) as { backups: { backupId: string }[] };
    const backupId = listed.backups[0]!.backupId;
    const dumpFile = path.join(work, 'plain.dump');
    await sh(`pg_dump -Fc -Z0 -f ${dumpFile}`, pgEnv);
    const targets: string[] = [];
    const freshDb = (label: string) => {
      const name = `cofre_bench_rs_${label}_${randomBytes(3).toString('hex')}`;
      targets.push(name);
      return name;
    };
    const restores: Record<string, Run> = {};
    try {
      // Once untimed, to warm the caches alike for every contender.
      await sh(
        `createdb ${freshDb('warm')} && pg_restore --exit-on-error -d ${targets[0]!} ${dumpFile}`,
        pgEnv,
      );
      for (const jobs of [1, 2]) {
        const db = freshDb(`pg${jobs}`);
        restores[`pg_restore ${jobs > 1 ? `-j ${jobs} ` : ''}from a local file`] = await sh(
          `createdb ${db} && pg_restore --exit-on-error ${jobs > 1 ? `-j ${jobs}` : ''} -d ${db} ${dumpFile}`,
          pgEnv,
        );
      }
      for (const jobs of [1, 2]) {
        const db = freshDb(`cofre${jobs}`);
        const target = `${url.replace(/\/[^/]*$/, '')}/${db}`;
        restores[`cofre restore ${jobs > 1 ? `--jobs ${jobs} (spill)` : '(stream)'}`] = await timed(
          process.execPath,
          [
            BIN,
            'restore',
            '--vault',
            `file://${restoreVault}`,
            '--backup',
            backupId,
            '--key-file',
            keyFile,
            '--target-url',
            target,
            '--jobs',
            String(jobs),
            '--spill-dir',
            work,
          ],
          process.env,
          true,
        );
      }
    } finally {
      const admin = new Client({ connectionString: ADMIN });
      await admin.connect();
      for (const name of targets) await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
    }
    const limit = restores['pg_restore from a local file']!.seconds;
    for (const [label, run] of Object.entries(restores))
      process.stderr.write(
        `${label}: ${run.seconds.toFixed(1)} s${run.peakRssMiB ? `, peak RSS ${run.peakRssMiB.toFixed(0)} MiB` : ''}\n`,
      );

    const lines = [
      `| figure | ${levels.map((l) => `zstd ${l}`).join(' | ')} | goal |`,
      `|---|${levels.map(() => '---').join('|')}|---|`,
      `| cofre wall time (s) | ${levels.map((l) => cofre[l]!.seconds.toFixed(1)).join(' | ')} | |`,
      `| ÷ raw pg_dump -Fc -Z0 (${raw.seconds.toFixed(1)} s) | ${levels.map((l) => (cofre[l]!.seconds / raw.seconds).toFixed(2)).join(' | ')} | ≤ 1.4 |`,
      `| ÷ seeds' pipeline (${seeds.seconds.toFixed(1)} s) | ${levels.map((l) => (cofre[l]!.seconds / seeds.seconds).toFixed(2)).join(' | ')} | ≤ 0.2 |`,
      `| stored bytes ÷ seeds' (${(seeds.storedBytes / 1e6).toFixed(1)} MB) | ${levels.map((l) => (cofre[l]!.storedBytes! / seeds.storedBytes!).toFixed(2)).join(' | ')} | ≤ 0.9 |`,
      `| stored MB | ${levels.map((l) => (cofre[l]!.storedBytes! / 1e6).toFixed(1)).join(' | ')} | |`,
      `| peak RSS (MiB) | ${levels.map((l) => cofre[l]!.peakRssMiB!.toFixed(0)).join(' | ')} | ≤ 256 |`,
      '',
      `database ${(size / 1e6).toFixed(0)} MB (${rows} rows); shell pg_dump | zstd -1 | openssl | sha256sum: ${shell.seconds.toFixed(1)} s (${(shell.seconds / raw.seconds).toFixed(2)} × raw)`,
      '',
      `| restore (zstd ${restoreLevel} backup) | wall time | ÷ pg_restore from a local file (goal ≤ 1.15) |`,
      '|---|---|---|',
      ...Object.entries(restores).map(
        ([label, run]) => `| ${label} | ${run.seconds.toFixed(1)} s | ${(run.seconds / limit).toFixed(2)} |`,
      ),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    if (dropAfter) {
      const c = new Client({ connectionString: ADMIN });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS "${dropAfter}" WITH (FORCE)`);
      await c.end();
    }
  }
}

/** The tenant property test at bench size: vitest on test/core/tenants/fuzz.test.ts. */
async function tenantFuzz(): Promise<void> {
  const schemas = Number(arg('schemas') ?? 1000);
  const seed = Number(arg('seed') ?? 1);
  if (!Number.isInteger(schemas) || schemas < 1) throw new Error(`--schemas: expected a whole number ≥ 1`);
  if (!Number.isInteger(seed)) throw new Error(`--seed: expected a whole number`);
  const vitest = path.join(__dirname, '..', 'node_modules', 'vitest', 'vitest.mjs');
  const child = spawn(process.execPath, [vitest, 'run', 'test/core/tenants/fuzz.test.ts'], {
    cwd: path.join(__dirname, '..'),
    env: { ...process.env, COFRE_FUZZ_SCHEMAS: String(schemas), COFRE_FUZZ_SEED: String(seed) },
    stdio: 'inherit',
  });
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0)
    throw new Error(`the tenant property test failed on ${schemas} schemas (exit ${String(code)})`);
}

async function all(): Promise<void> {
  const only = arg('only');
  if (only === 'tenant-fuzz') return tenantFuzz();
  if (only === 'files') {
    const result = await benchFiles({
      objects: Number(arg('objects') ?? 100_000),
      size: Number(arg('size') ?? 2048),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(
      `\n| files sync (local S3) | value |\n|---|---|\n${Object.entries(result)
        .map(([k, v]) => `| ${k} | ${v} |`)
        .join('\n')}\n`,
    );
    return;
  }
  if (only !== undefined && !['backup', 'pipeline', 'tenants'].includes(only))
    throw new Error(
      `--only: expected "backup", "pipeline", "tenants", "tenant-fuzz" or "files", got "${only}"`,
    );
  if (only === undefined || only === 'pipeline') {
    const count = (name: string, fallback: number) => {
      const n = Number(arg(name) ?? fallback);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: expected a whole number ≥ 0`);
      return n;
    };
    const table = await benchPipeline({
      pgAdminUrl: ADMIN,
      mysqlAdminUrl: process.env.COFRE_BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/mysql',
      rounds: Math.max(1, count('rounds', 3)),
      documentRows: count('rows', 3_000_000),
      ledgerRows: count('ledger-rows', 2_500_000),
      mysqlRows: count('mysql-rows', 2_500_000),
      jobsCores: args.includes('--jobs-cores'),
      rssRows: count('rss-rows', 0),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`\n${table}\n`);
    if (only === 'pipeline') return;
  }
  if (only !== 'tenants') await main();
  if (only !== 'backup') {
    const result = await benchTenants({
      adminUrl: ADMIN,
      tenants: Number(arg('tenants') ?? 1000),
      scale: Number(arg('scale') ?? 80),
      log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(
      `\n| per-tenant (PostgreSQL) | value |\n|---|---|\n${Object.entries(result)
        .map(([k, v]) => `| ${k} | ${v} |`)
        .join('\n')}\n`,
    );
  }
}

all().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
