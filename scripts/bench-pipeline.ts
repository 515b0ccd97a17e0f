/**
 * `npm run bench -- --only pipeline` (issue 18): Cofre's pipeline against the database tools alone,
 * side by side in one run, each figure the median of `--rounds` (3) interleaved rounds, on two
 * PostgreSQL datasets (the documents dataset of bench-data-lib.ts, where the server is the slow
 * part, and the text-heavy ledger of bench-fast-data.ts, where it streams fast) and the ledger on
 * MariaDB:
 *
 *   cofre backup ÷ pg_dump -Fc -Z0 > /dev/null            goal ≤ 1.25 (fast), ≤ 1.1 (documents)
 *   cofre restore ÷ pg_restore of an uncompressed file     goal ≤ 1.10
 *   cofre verify --deep ÷ cofre backup                     goal ≤ 0.6
 *   cofre backup ÷ mysqldump … > /dev/null (MariaDB)       goal ≤ 1.25
 *   peak RSS of backup and restore                         goal ≤ 256 MiB
 *
 * Beside them, the floor of any compressing backup on this machine: the dump tool piped into the
 * zstd command-line tool at level 1 (Cofre's level), in 1 MiB writes as Cofre runs it, into
 * /dev/null. Where that alone is above a goal, the goal is out of reach on this machine.
 *
 * `--jobs-cores` also restores with `--jobs 1` and `--jobs 2` under `taskset` on 1 and 2 cores.
 * `--rss-rows N` adds one backup and restore of an N-row ledger for the peak RSS at size
 * (13 000 000 rows ≈ 3 GB of dump).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';
import { stdbufPath, TOOL_STDIO_BUFFER } from '../core/sources/process';
import { generateBenchData } from './bench-data-lib';
import { generateFastData } from './bench-fast-data';
import { median, sh, timed, type Run } from './bench-run';

const BIN = path.join(__dirname, '..', 'cli', 'bin.js');

export interface PipelineBenchOptions {
  readonly pgAdminUrl: string;
  readonly mysqlAdminUrl: string;
  readonly rounds: number;
  /** Rows of each PostgreSQL dataset (documents: 3 000 000 ≈ 700 MB; ledger: 2 500 000 ≈ 720 MB). */
  readonly documentRows: number;
  readonly ledgerRows: number;
  /** Rows of the MariaDB ledger (0 skips MariaDB). */
  readonly mysqlRows: number;
  readonly jobsCores: boolean;
  /** Rows of an extra, large ledger measured once for peak RSS (0 skips it). */
  readonly rssRows: number;
  readonly log: (line: string) => void;
}

interface Dataset {
  readonly label: string;
  readonly url: string;
  readonly database: string;
}

function dirBytes(dir: string): number {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .reduce((n, e) => n + statSync(path.join(e.parentPath, e.name)).size, 0);
}

function serverUrl(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const cofre = (args: string[]) => [BIN, ...args];

/** The zstd command-line tool, for the floor column (absent: the column says so). */
const HAS_ZSTD = (() => {
  try {
    execFileSync('zstd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
/** `dump` (a shell command writing to stdout) into zstd -1, as Cofre runs the dump tools. */
const floorCommand = (dump: string) =>
  `${stdbufPath() ? `stdbuf -o${TOOL_STDIO_BUFFER} ` : ''}${dump} | zstd -1 -q > /dev/null`;
const NO_ZSTD = 'n/a (no zstd)';

export async function benchPipeline(options: PipelineBenchOptions): Promise<string> {
  const { log } = options;
  const work = mkdtempSync(path.join(os.tmpdir(), 'cofre-bench-pipeline-'));
  const pgDatabases: string[] = [];
  const myDatabases: string[] = [];
  const name = (what: string) => `cofre_bench_${what}_${randomBytes(3).toString('hex')}`;
  const lines: string[] = [];
  try {
    const keyFile = path.join(work, 'key');
    execFileSync(process.execPath, [BIN, 'keygen', '--out', keyFile], { stdio: 'ignore' });

    const documents: Dataset = { label: 'documents (server-bound)', database: name('docs'), url: '' };
    pgDatabases.push(documents.database);
    const ledger: Dataset = { label: 'ledger (fast server)', database: name('ledger'), url: '' };
    pgDatabases.push(ledger.database);
    const datasets: Dataset[] = [];
    // --rows 0 / --ledger-rows 0 leave a dataset out.
    if (options.documentRows > 0) {
      const data = { ...documents, url: serverUrl(options.pgAdminUrl, documents.database) };
      log(`generating ${options.documentRows} documents into ${data.database}…`);
      await generateBenchData({
        engine: 'postgres',
        url: data.url,
        rows: options.documentRows,
        seed: 0.42,
        log: () => undefined,
      });
      datasets.push(data);
    }
    if (options.ledgerRows > 0) {
      const data = { ...ledger, url: serverUrl(options.pgAdminUrl, ledger.database) };
      log(`generating ${options.ledgerRows} ledger rows into ${data.database}…`);
      await generateFastData({
        engine: 'postgres',
        url: data.url,
        rows: options.ledgerRows,
        log: () => undefined,
      });
      datasets.push(data);
    }

    lines.push(
      `| PostgreSQL (median of ${options.rounds}) | dump MB | pg_dump -Fc -Z0 | cofre backup | ÷ | floor: pg_dump \\| zstd -1 | ÷ | verify --deep | ÷ backup | pg_restore (file) | cofre restore | ÷ | backup RSS | restore RSS | stored MB |`,
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const data of datasets) lines.push(await pgRound(data, keyFile, work, options, pgDatabases));

    if (options.mysqlRows > 0) {
      const db = name('myledger');
      myDatabases.push(db);
      const url = serverUrl(options.mysqlAdminUrl, db);
      log(`generating ${options.mysqlRows} ledger rows into MariaDB ${db}…`);
      await generateFastData({ engine: 'mysql', url, rows: options.mysqlRows, log: () => undefined });
      lines.push('', ...(await mysqlRound(url, db, keyFile, work, options)));
    }
    const fast = datasets.find((d) => d.database === ledger.database);
    if (options.jobsCores && fast)
      lines.push('', ...(await jobsByCores(fast, keyFile, work, options, pgDatabases)));
    if (options.rssRows > 0) {
      const big: Dataset = { label: `ledger, ${options.rssRows} rows`, database: name('big'), url: '' };
      pgDatabases.push(big.database);
      const url = serverUrl(options.pgAdminUrl, big.database);
      log(`generating ${options.rssRows} ledger rows into ${big.database} (peak RSS at size)…`);
      await generateFastData({ engine: 'postgres', url, rows: options.rssRows, log: () => undefined });
      lines.push('', ...(await rssAtSize({ ...big, url }, keyFile, work, options, pgDatabases)));
    }
    return lines.join('\n');
  } finally {
    rmSync(work, { recursive: true, force: true });
    const pg = new Client({ connectionString: options.pgAdminUrl });
    await pg.connect();
    for (const db of pgDatabases) await pg.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await pg.end();
    if (myDatabases.length) {
      const u = new URL(options.mysqlAdminUrl);
      const my = await createConnection({
        host: u.hostname,
        port: Number(u.port || 3306),
        user: decodeURIComponent(u.username) || 'root',
        password: decodeURIComponent(u.password),
      });
      for (const db of myDatabases) await my.query(`DROP DATABASE IF EXISTS \`${db}\``);
      await my.end();
    }
  }
}

function pgEnv(url: string): NodeJS.ProcessEnv {
  const u = new URL(url);
  return {
    ...process.env,
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username) || 'postgres',
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
  };
}

async function backupOnce(url: string, vault: string, keyFile: string): Promise<Run> {
  const run = await timed(
    process.execPath,
    cofre(['backup', '--url', url, '--vault', `file://${vault}`, '--key-file', keyFile]),
    process.env,
    true,
  );
  execFileSync('sync');
  return { ...run, storedBytes: dirBytes(vault) };
}

/** `cofre restore` of backup `id` from the file vault into `targetUrl`, then `extra` options. */
function restoreArgs(
  vault: string,
  id: string,
  keyFile: string,
  targetUrl: string,
  extra: string[] = [],
): string[] {
  return cofre([
    'restore',
    '--vault',
    `file://${vault}`,
    '--backup',
    id,
    '--key-file',
    keyFile,
    '--target-url',
    targetUrl,
    ...extra,
  ]);
}

function restoreOnce(vault: string, id: string, keyFile: string, targetUrl: string): Promise<Run> {
  return timed(process.execPath, restoreArgs(vault, id, keyFile, targetUrl), process.env, true);
}

function onlyBackupId(vault: string): string {
  const listed = JSON.parse(
    execFileSync(process.execPath, [BIN, 'list', '--vault', `file://${vault}`, '--json']).toString(),
  ) as {
    backups: { backupId: string }[];
  };
  return listed.backups[0]!.backupId;
}

async function pgRound(
  data: Dataset,
  keyFile: string,
  work: string,
  options: PipelineBenchOptions,
  created: string[],
): Promise<string> {
  const { log } = options;
  const env = pgEnv(data.url);
  const dumpFile = path.join(work, `${data.database}.dump`);
  await sh(`pg_dump -Fc -Z0 -f ${dumpFile}`, env); // also warms the cache
  const dumpBytes = statSync(dumpFile).size;
  const runs: Record<string, Run[]> = {
    dump: [],
    floor: [],
    backup: [],
    verify: [],
    pgRestore: [],
    restore: [],
  };
  let stored = 0;
  const admin = new Client({ connectionString: serverUrl(data.url, 'postgres') });
  await admin.connect();
  const fresh = async (what: string) => {
    const db = `${data.database}_${what}`;
    created.push(db);
    await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    return db;
  };
  try {
    for (let round = 1; round <= options.rounds; round++) {
      runs.dump!.push(await sh('pg_dump -Fc -Z0 > /dev/null', env));
      if (HAS_ZSTD) runs.floor!.push(await sh(floorCommand('pg_dump -Fc -Z0'), env));
      const vault = path.join(work, `vault-${data.database}-${round}`);
      const backup = await backupOnce(data.url, vault, keyFile);
      stored = backup.storedBytes!;
      runs.backup!.push(backup);
      const id = onlyBackupId(vault);
      runs.verify!.push(
        await timed(
          process.execPath,
          cofre(['verify', '--vault', `file://${vault}`, '--backup', id, '--deep', '--key-file', keyFile]),
          process.env,
          true,
        ),
      );
      const a = await fresh(`pr${round}`);
      runs.pgRestore!.push(await sh(`createdb ${a} && pg_restore --exit-on-error -d ${a} ${dumpFile}`, env));
      await admin.query(`DROP DATABASE "${a}" WITH (FORCE)`);
      const b = await fresh(`cr${round}`);
      runs.restore!.push(await restoreOnce(vault, id, keyFile, serverUrl(data.url, b)));
      await admin.query(`DROP DATABASE "${b}" WITH (FORCE)`);
      rmSync(vault, { recursive: true, force: true });
      log(
        `${data.label} round ${round}: pg_dump ${runs.dump!.at(-1)!.seconds.toFixed(1)} s, floor ${runs.floor!.at(-1)?.seconds.toFixed(1) ?? NO_ZSTD}, backup ${backup.seconds.toFixed(1)} s, verify --deep ${runs.verify!.at(-1)!.seconds.toFixed(1)} s, pg_restore ${runs.pgRestore!.at(-1)!.seconds.toFixed(1)} s, restore ${runs.restore!.at(-1)!.seconds.toFixed(1)} s`,
      );
    }
  } finally {
    await admin.end();
    rmSync(dumpFile, { force: true });
  }
  const m = Object.fromEntries(
    Object.entries(runs)
      .filter(([, v]) => v.length > 0)
      .map(([k, v]) => [k, median(v)]),
  ) as Record<string, Run>;
  const r = (a: Run, b: Run) => (a.seconds / b.seconds).toFixed(2);
  return `| ${data.label} | ${(dumpBytes / 1e6).toFixed(0)} | ${m.dump!.seconds.toFixed(1)} s | ${m.backup!.seconds.toFixed(1)} s | **${r(m.backup!, m.dump!)}** | ${floorCells(m.floor, m.dump!)} | ${m.verify!.seconds.toFixed(1)} s | **${r(m.verify!, m.backup!)}** | ${m.pgRestore!.seconds.toFixed(1)} s | ${m.restore!.seconds.toFixed(1)} s | **${r(m.restore!, m.pgRestore!)}** | ${m.backup!.peakRssMiB!.toFixed(0)} MiB | ${m.restore!.peakRssMiB!.toFixed(0)} MiB | ${(stored / 1e6).toFixed(1)} |`;
}

async function mysqlRound(
  url: string,
  database: string,
  keyFile: string,
  work: string,
  options: PipelineBenchOptions,
): Promise<string[]> {
  const u = new URL(url);
  const cnf = path.join(work, 'my.cnf');
  execFileSync('bash', [
    '-c',
    `umask 077; printf '[client]\\nuser=%s\\npassword=%s\\nhost=%s\\nport=%s\\n' '${decodeURIComponent(u.username) || 'root'}' '${decodeURIComponent(u.password)}' '${u.hostname}' '${u.port || 3306}' > ${cnf}`,
  ]);
  // The options cofre gives mysqldump (core/sources/mysql.ts mysqldumpArgs), into /dev/null.
  const mysqldump = `mysqldump --defaults-extra-file=${cnf} --single-transaction --quick --routines --triggers --events --hex-blob --no-tablespaces --default-character-set=utf8mb4 --skip-lock-tables --max-allowed-packet=1G -- ${database} > /dev/null`;
  await sh(mysqldump, process.env); // warm
  const floorDump = mysqldump.replace(/ > \/dev\/null$/, '');
  const dumps: Run[] = [];
  const floors: Run[] = [];
  const backups: Run[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    dumps.push(await sh(mysqldump, process.env));
    if (HAS_ZSTD) floors.push(await sh(floorCommand(floorDump), process.env));
    const vault = path.join(work, `vault-my-${round}`);
    backups.push(await backupOnce(url, vault, keyFile));
    rmSync(vault, { recursive: true, force: true });
    options.log(
      `MariaDB ledger round ${round}: mysqldump ${dumps.at(-1)!.seconds.toFixed(1)} s, floor ${floors.at(-1)?.seconds.toFixed(1) ?? NO_ZSTD}, backup ${backups.at(-1)!.seconds.toFixed(1)} s`,
    );
  }
  const d = median(dumps);
  const b = median(backups);
  return [
    `| MariaDB (median of ${options.rounds}) | mysqldump > /dev/null | cofre backup | ÷ | floor: mysqldump \\| zstd -1 | ÷ | backup RSS |`,
    '|---|---|---|---|---|---|---|',
    `| ledger (${options.mysqlRows} rows) | ${d.seconds.toFixed(1)} s | ${b.seconds.toFixed(1)} s | **${(b.seconds / d.seconds).toFixed(2)}** | ${floorCells(floors.length ? median(floors) : undefined, d)} | ${b.peakRssMiB!.toFixed(0)} MiB |`,
  ];
}

/** The floor's two cells: its time and its ratio to the bare dump. */
function floorCells(floor: Run | undefined, dump: Run): string {
  return floor
    ? `${floor.seconds.toFixed(1)} s | ${(floor.seconds / dump.seconds).toFixed(2)}`
    : `${NO_ZSTD} | –`;
}

/** `cofre restore --jobs 1|2` and `pg_restore [-j 2]` under taskset on 1 and 2 cores. */
async function jobsByCores(
  data: Dataset,
  keyFile: string,
  work: string,
  options: PipelineBenchOptions,
  created: string[],
): Promise<string[]> {
  const env = pgEnv(data.url);
  const dumpFile = path.join(work, 'jobs.dump');
  await sh(`pg_dump -Fc -Z0 -f ${dumpFile}`, env);
  const vault = path.join(work, 'vault-jobs');
  await backupOnce(data.url, vault, keyFile);
  const id = onlyBackupId(vault);
  const admin = new Client({ connectionString: serverUrl(data.url, 'postgres') });
  await admin.connect();
  const out = ['| restore under taskset | 1 core | 2 cores |', '|---|---|---|'];
  try {
    const contenders: [string, (db: string, cores: string) => Promise<Run>][] = [
      [
        'pg_restore (file)',
        (db, cores) =>
          sh(`createdb ${db} && taskset -c ${cores} pg_restore --exit-on-error -d ${db} ${dumpFile}`, env),
      ],
      [
        'pg_restore -j 2 (file)',
        (db, cores) =>
          sh(
            `createdb ${db} && taskset -c ${cores} pg_restore --exit-on-error -j 2 -d ${db} ${dumpFile}`,
            env,
          ),
      ],
      ...[1, 2].map(
        (jobs) =>
          [
            `cofre restore --jobs ${jobs}`,
            (db: string, cores: string) =>
              timed(
                'taskset',
                [
                  '-c',
                  cores,
                  process.execPath,
                  ...restoreArgs(vault, id, keyFile, serverUrl(data.url, db), [
                    '--jobs',
                    String(jobs),
                    '--spill-dir',
                    work,
                  ]),
                ],
                process.env,
              ),
          ] as [string, (db: string, cores: string) => Promise<Run>],
      ),
    ];
    for (const [label, run] of contenders) {
      const cells: string[] = [];
      for (const cores of ['0', '0,1']) {
        const db = `${data.database}_j${randomBytes(2).toString('hex')}`;
        created.push(db);
        const r = await run(db, cores);
        await admin.query(`DROP DATABASE "${db}" WITH (FORCE)`);
        cells.push(`${r.seconds.toFixed(1)} s`);
        options.log(`${label} on ${cores}: ${r.seconds.toFixed(1)} s`);
      }
      out.push(`| ${label} | ${cells.join(' | ')} |`);
    }
  } finally {
    await admin.end();
    rmSync(vault, { recursive: true, force: true });
    rmSync(dumpFile, { force: true });
  }
  out.push(
    '',
    '(taskset pins the restore tools and cofre; the PostgreSQL server itself runs on both cores.)',
  );
  return out;
}

async function rssAtSize(
  data: Dataset,
  keyFile: string,
  work: string,
  options: PipelineBenchOptions,
  created: string[],
): Promise<string[]> {
  const vault = path.join(work, 'vault-big');
  const backup = await backupOnce(data.url, vault, keyFile);
  const id = onlyBackupId(vault);
  const db = `${data.database}_r`;
  created.push(db);
  const restore = await restoreOnce(vault, id, keyFile, serverUrl(data.url, db));
  const listed = JSON.parse(
    execFileSync(process.execPath, [BIN, 'list', '--vault', `file://${vault}`, '--json']).toString(),
  ) as {
    backups: { rawBytes?: number }[];
  };
  rmSync(vault, { recursive: true, force: true });
  options.log(
    `peak RSS at size: backup ${backup.peakRssMiB!.toFixed(0)} MiB, restore ${restore.peakRssMiB!.toFixed(0)} MiB`,
  );
  return [
    '| peak RSS at size | dump | backup | restore |',
    '|---|---|---|---|',
    `| ${data.label} | ${listed.backups[0]?.rawBytes ? `${(listed.backups[0].rawBytes / 1e9).toFixed(2)} GB` : '?'} | ${backup.peakRssMiB!.toFixed(0)} MiB (${backup.seconds.toFixed(0)} s) | ${restore.peakRssMiB!.toFixed(0)} MiB (${restore.seconds.toFixed(0)} s) |`,
  ];
}
