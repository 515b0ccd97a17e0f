import { spawn } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import type { RowDataPacket } from 'mysql2';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  TRICKY_BIG_ROW,
  TRICKY_ROW_COUNTS,
  createDatabase,
  describeDatabase,
  loadTrickySchema,
  rowCounts,
  splitMysqlScript,
  tableChecksums,
  uniqueDatabaseName,
  withMysqlConnection,
  withPostgresClient,
  type Engine,
  type TableChecksum,
  type TestDatabase,
} from './databases';

test('uniqueDatabaseName is lowercase, safe and at most 63 characters', () => {
  const a = uniqueDatabaseName('Restore Test: São Paulo/tenant-1 '.repeat(5));
  const b = uniqueDatabaseName('x');
  expect(a).toMatch(/^cofre_t_[a-z0-9_]+_\d+_[0-9a-f]{8}$/);
  expect(a.length).toBeLessThanOrEqual(63);
  expect(b).toMatch(new RegExp(`^cofre_t_x_${process.pid}_[0-9a-f]{8}$`));
  expect(uniqueDatabaseName('x')).not.toBe(b);
});

test('splitMysqlScript honours DELIMITER like the mysql client', () => {
  const script = [
    '-- header',
    'SET NAMES utf8mb4;',
    'CREATE TABLE t (a INT);',
    'DELIMITER $$',
    'CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW',
    'BEGIN',
    '  SET @a = 1;',
    'END$$',
    'DELIMITER ;',
    '-- only a comment',
    'DELIMITER //',
    'DELIMITER ;',
    'DROP TABLE t;',
  ].join('\n');
  expect(splitMysqlScript(script)).toEqual([
    '-- header\nSET NAMES utf8mb4;\nCREATE TABLE t (a INT);',
    'CREATE TRIGGER x AFTER INSERT ON t FOR EACH ROW\nBEGIN\n  SET @a = 1;\nEND',
    'DROP TABLE t;',
  ]);
});

/** `producer | consumer` without a shell; rejects with the stderr of whichever side failed. */
function pipe(
  producer: [string, string[]],
  consumer: [string, string[]],
  env: NodeJS.ProcessEnv,
): Promise<void> {
  const run = (cmd: string, args: string[]) => {
    const child = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    const done = new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`${cmd} exited with ${code}: ${stderr}`));
      });
    });
    return { child, done };
  };
  const a = run(...producer);
  const b = run(...consumer);
  a.child.stdin.end();
  a.child.stdout.pipe(b.child.stdin);
  return Promise.all([a.done, b.done]).then(() => undefined);
}

/** Dumps `from` into `to` with the engine's stock tools; passwords go through the environment. */
function dumpAndRestore(engine: Engine, from: string, to: string): Promise<void> {
  const src = new URL(from);
  const dst = new URL(to);
  if (engine === 'postgres') {
    const env = { ...process.env, PGPASSWORD: decodeURIComponent(src.password) };
    src.password = '';
    dst.password = '';
    return pipe(
      ['pg_dump', ['--format=custom', `--dbname=${src.toString()}`]],
      ['pg_restore', ['--exit-on-error', '--no-owner', `--dbname=${dst.toString()}`]],
      env,
    );
  }
  const env = { ...process.env, MYSQL_PWD: decodeURIComponent(src.password) };
  const conn = (u: URL) => [
    `--host=${u.hostname}`,
    `--port=${u.port || '3306'}`,
    `--user=${decodeURIComponent(u.username)}`,
    '--default-character-set=utf8mb4',
  ];
  return pipe(
    ['mysqldump', [...conn(src), '--single-transaction', '--routines', '--triggers', src.pathname.slice(1)]],
    ['mysql', [...conn(dst), dst.pathname.slice(1)]],
    env,
  );
}

/** Runs one statement against the fixture database (mutations for the checksum tests). */
async function exec(engine: Engine, url: string, sql: string): Promise<void> {
  if (engine === 'postgres') {
    await withPostgresClient(url, async (c) => {
      await c.query(sql);
    });
  } else {
    await withMysqlConnection(url, async (c) => {
      await c.query(sql);
    });
  }
}

/** Keys whose checksum differs between two snapshots. */
function changedTables(a: Record<string, TableChecksum>, b: Record<string, TableChecksum>): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].filter((k) => a[k]?.sha256 !== b[k]?.sha256 || a[k]?.rows !== b[k]?.rows).sort();
}

interface Case {
  engine: Engine;
  t: (table: string) => string;
  /** [description, table key, mutation, reverting statement] */
  mutations: [string, string, string, string][];
}

const cases: Case[] = [
  {
    engine: 'postgres',
    t: (table) => `public.${table}`,
    mutations: [
      [
        'one byte of the 10 MiB bytea',
        'public.attachments',
        'UPDATE public.attachments SET content = set_byte(content, 7340033, get_byte(content, 7340033) # 1) WHERE id = 5',
        'UPDATE public.attachments SET content = set_byte(content, 7340033, get_byte(content, 7340033) # 1) WHERE id = 5',
      ],
      [
        "a NULL that becomes ''",
        'public.tenants',
        "UPDATE public.tenants SET legal_name = '' WHERE id = 'clinica-rj'",
        "UPDATE public.tenants SET legal_name = NULL WHERE id = 'clinica-rj'",
      ],
      [
        "an '' that becomes NULL",
        'public.specialties',
        "UPDATE public.specialties SET description = NULL WHERE code = 'DER'",
        "UPDATE public.specialties SET description = '' WHERE code = 'DER'",
      ],
      [
        'a JSON null that becomes SQL NULL',
        'public.patients',
        'ALTER TABLE public.patients DISABLE TRIGGER patients_audit; UPDATE public.patients SET allergies = NULL WHERE id = 2; ALTER TABLE public.patients ENABLE TRIGGER patients_audit',
        "ALTER TABLE public.patients DISABLE TRIGGER patients_audit; UPDATE public.patients SET allergies = 'null' WHERE id = 2; ALTER TABLE public.patients ENABLE TRIGGER patients_audit",
      ],
      [
        'an accent in a quoted mixed-case table',
        'public.ClinicUnits',
        `UPDATE public."ClinicUnits" SET city = 'Sao Paulo' WHERE "tenantId" = 'clinica-sp' AND "unitId" = 1`,
        `UPDATE public."ClinicUnits" SET city = 'São Paulo' WHERE "tenantId" = 'clinica-sp' AND "unitId" = 1`,
      ],
    ],
  },
  {
    engine: 'mysql',
    t: (table) => table,
    mutations: [
      [
        'one byte of the 10 MiB LONGBLOB',
        'attachments',
        'UPDATE attachments SET content = CONCAT(SUBSTRING(content, 1, 7340032), CHAR(ASCII(SUBSTRING(content, 7340033, 1)) ^ 1), SUBSTRING(content, 7340034)) WHERE id = 5',
        'UPDATE attachments SET content = CONCAT(SUBSTRING(content, 1, 7340032), CHAR(ASCII(SUBSTRING(content, 7340033, 1)) ^ 1), SUBSTRING(content, 7340034)) WHERE id = 5',
      ],
      [
        "a NULL that becomes ''",
        'tenants',
        "UPDATE tenants SET legal_name = '' WHERE id = 'clinica-rj'",
        "UPDATE tenants SET legal_name = NULL WHERE id = 'clinica-rj'",
      ],
      [
        "an '' that becomes NULL",
        'specialties',
        "UPDATE specialties SET description = NULL WHERE code = 'DER'",
        "UPDATE specialties SET description = '' WHERE code = 'DER'",
      ],
      [
        'a trailing NUL byte in a VARBINARY',
        'prescriptions',
        "UPDATE prescriptions SET signature = CONCAT(signature, X'00') WHERE id = 1",
        'UPDATE prescriptions SET signature = SUBSTRING(signature, 1, 32) WHERE id = 1',
      ],
      [
        'an accent in a mixed-case table',
        'ClinicUnits',
        "UPDATE `ClinicUnits` SET city = 'Sao Paulo' WHERE `tenantId` = 'clinica-sp' AND `unitId` = 1",
        "UPDATE `ClinicUnits` SET city = 'São Paulo' WHERE `tenantId` = 'clinica-sp' AND `unitId` = 1",
      ],
    ],
  },
];

for (const { engine, t, mutations } of cases) {
  describeDatabase(engine, `tricky ${engine} fixture`, () => {
    let db: TestDatabase | undefined;
    let baseline: Record<string, TableChecksum> = {};

    beforeAll(async () => {
      db = await createDatabase(engine, 'fixture');
      const started = performance.now();
      await loadTrickySchema(engine, db.url);
      console.info(
        `[cofre tests] tricky-${engine}.sql loaded in ${Math.round(performance.now() - started)} ms`,
      );
    });

    afterAll(async () => {
      await db?.drop();
    });

    test('loads with the expected row counts in every table', async () => {
      expect(await rowCounts(engine, db!.url)).toEqual(TRICKY_ROW_COUNTS[engine]);
    });

    test('holds a ≥ 10 MiB incompressible value', async () => {
      const big = TRICKY_BIG_ROW[engine];
      let content: Buffer;
      if (engine === 'postgres') {
        content = await withPostgresClient(db!.url, async (c) => {
          const { rows } = await c.query<{ content: Buffer }>(
            `SELECT ${big.column} AS content FROM ${big.table} WHERE id = $1`,
            [big.id],
          );
          return rows[0]!.content;
        });
      } else {
        content = await withMysqlConnection(db!.url, async (c) => {
          const [rows] = await c.query<RowDataPacket[]>(
            `SELECT ${big.column} AS content FROM ${big.table} WHERE id = ?`,
            [big.id],
          );
          return rows[0]!.content as Buffer;
        });
      }
      expect(content.length).toBe(big.bytes);
      expect(content.length).toBeGreaterThanOrEqual(10 * 1024 * 1024);
      expect(gzipSync(content, { level: 1 }).length).toBeGreaterThan(content.length * 0.99);
    });

    test('tableChecksums covers every table and is stable across calls', async () => {
      baseline = await tableChecksums(engine, db!.url);
      expect(Object.keys(baseline).sort()).toEqual(Object.keys(TRICKY_ROW_COUNTS[engine]).sort());
      for (const [key, sum] of Object.entries(baseline)) {
        expect(sum.rows, key).toBe(TRICKY_ROW_COUNTS[engine][key]);
        expect(sum.sha256, key).toMatch(/^[0-9a-f]{64}$/);
      }
      expect(baseline[t('waiting_list')]!.sha256).not.toBe(baseline[t('tenants')]!.sha256);
      expect(await tableChecksums(engine, db!.url)).toEqual(baseline);
    });

    if (engine === 'postgres') {
      test('tableChecksums ignores physical row order', async () => {
        // An UPDATE writes new tuple versions at the end of the heap: same values, another order.
        await exec(engine, db!.url, 'UPDATE public.prescription_items SET dosage = dosage WHERE "order" = 1');
        expect(changedTables(baseline, await tableChecksums(engine, db!.url))).toEqual([]);
      });
    }

    test('a stock dump and restore reproduces every checksum', async () => {
      const copy = await createDatabase(engine, 'fixture_copy');
      try {
        await dumpAndRestore(engine, db!.url, copy.url);
        expect(await tableChecksums(engine, copy.url)).toEqual(baseline);
      } finally {
        await copy.drop();
      }
    });

    for (const [description, key, change, revert] of mutations) {
      test(`tableChecksums detects ${description}`, async () => {
        await exec(engine, db!.url, change);
        const changed = await tableChecksums(engine, db!.url);
        expect(changedTables(baseline, changed)).toEqual([key]);
        expect(changed[key]!.rows).toBe(baseline[key]!.rows);
        await exec(engine, db!.url, revert);
        expect(changedTables(baseline, await tableChecksums(engine, db!.url))).toEqual([]);
      });
    }
  });
}
