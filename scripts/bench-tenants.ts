/**
 * The per-tenant part of `npm run bench`: restoring one tenant out of 1,000 in a PostgreSQL
 * database of 1 GB+, against restoring the whole database (goal ≤ 5 % of the full restore: what
 * makes the 30-minute tenant RTO reachable). Also times the tenant's backup and a backup of every
 * tenant (`--all-tenants`, the nightly job).
 *
 *   npm run bench -- --only tenants                      # 1,000 tenants at scale 80 (~1.1 GB)
 *   npm run bench -- --only tenants --tenants 200 --scale 20   # smaller
 *
 * The data is the generated clinic of the per-tenant tests (test/fixtures/tenant-clinic.ts), made
 * set-based in SQL (same ids and FK shape), with padded text and bytea so the rows weigh.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { perTenantRows, TENANT_CLINIC_SCHEMA } from '../test/fixtures/tenant-clinic';

const BIN = path.join(__dirname, '..', 'cli', 'bin.js');
const MODEL = ['--tenant-table', 'tenants', '--key-column', 'id', '--tenant-column', 'tenant_id'];

export interface TenantBenchOptions {
  readonly adminUrl: string;
  readonly tenants: number;
  readonly scale: number;
  readonly log: (line: string) => void;
}

/** Runs the CLI; its wall time in seconds and its JSON output. */
async function cofre(args: string[]): Promise<{ seconds: number; json: unknown }> {
  const start = process.hrtime.bigint();
  const child = spawn(process.execPath, [BIN, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`cofre ${args.join(' ')} failed (${String(code)}): ${stderr}`);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, json: JSON.parse(stdout) };
}

/** The clinic for `tenants` tenants at `scale`, generated in SQL (same ids as tenantRows()). */
function generationSql(tenants: number, scale: number): string[] {
  const n = perTenantRows(scale);
  const P = n.professionals!;
  const PA = n.patients!;
  const A = n.appointments!;
  const PR = n.prescriptions!;
  const I = n.prescription_items!;
  const NO = n.item_notes!;
  const each = (count: number) =>
    `FROM generate_series(1, ${tenants}) AS t CROSS JOIN generate_series(0, ${count - 1}) AS k`;
  return [
    `INSERT INTO specialties (id, name) SELECT i, 'Especialidade ' || i FROM generate_series(1, 5) AS i`,
    `INSERT INTO tenants (id, name) SELECT t, 'Clínica ' || t FROM generate_series(1, ${tenants}) AS t`,
    `INSERT INTO professionals (id, tenant_id, supervisor_id, specialty_id, name)
       SELECT t * ${P} + k + 1, t, CASE WHEN k % 3 = 2 THEN NULL ELSE t * ${P} + (k - k % 3 + 2) + 1 END,
              1 + (t + k) % 5, 'Dr(a). ' || t || '-' || k ${each(P)}`,
    `INSERT INTO patients (id, tenant_id, name, born, notes, seen_at)
       SELECT t * ${PA} + k + 1, t, 'Paciente ' || t || '/' || k, DATE '1950-01-01' + (k * 37) % 20000,
              repeat(md5(t::text || k::text), 6), TIMESTAMPTZ '2024-01-01' + k * interval '17 minutes' ${each(PA)}`,
    `INSERT INTO appointments (id, tenant_id, patient_id, professional_id, at, price)
       SELECT t * ${A} + k + 1, t, t * ${PA} + k % ${PA} + 1, CASE WHEN k % 7 = 0 THEN NULL ELSE t * ${P} + k % ${P} + 1 END,
              TIMESTAMP '2025-01-01' + k * interval '41 minutes', (100 + k % 900) + (k % 100) / 100.0 ${each(A)}`,
    `INSERT INTO prescriptions (id, appointment_id, issued)
       SELECT t * ${PR} + k + 1, t * ${A} + k * 2 + 1, DATE '2025-03-01' + k % 28 ${each(PR)}`,
    `INSERT INTO prescription_items (id, prescription_id, drug, dose)
       SELECT t * ${I} + k + 1, t * ${PR} + k / 2 + 1, 'Droga-' || k % 13 || ' ' || md5(k::text), k + 0.125 ${each(I)}`,
    `INSERT INTO item_notes (id, item_id, note, scan)
       SELECT t * ${NO} + k + 1, t * ${I} + k * 2 + 1, 'nota ' || t || '-' || k || ' ' || repeat(md5((t * k)::text), 4),
              decode(repeat(md5(t::text || '/' || k::text), 16), 'hex') ${each(NO)}`,
    'ANALYZE',
  ];
}

function dbUrl(adminUrl: string, name: string): string {
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return u.toString();
}

/** Generates the database, times full and per-tenant backup and restore, drops what it made. */
export async function benchTenants(o: TenantBenchOptions): Promise<Record<string, number | string>> {
  const name = `cofre_bench_t_${randomBytes(4).toString('hex')}`;
  const restored = `${name}_full`;
  const url = dbUrl(o.adminUrl, name);
  const admin = new Client({ connectionString: o.adminUrl });
  await admin.connect();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cofre-bench-tenants-'));
  try {
    await admin.query(`CREATE DATABASE ${name}`);
    o.log(`generating ${o.tenants} tenants at scale ${o.scale} into ${name}…`);
    const genStart = Date.now();
    const db = new Client({ connectionString: url });
    await db.connect();
    try {
      for (const s of TENANT_CLINIC_SCHEMA.postgres) await db.query(s);
      for (const s of generationSql(o.tenants, o.scale)) await db.query(s);
    } finally {
      await db.end();
    }
    const { rows: size } = await admin.query<{ b: string }>('SELECT pg_database_size($1) AS b', [name]);
    const dbBytes = Number(size[0]!.b);
    o.log(
      `generated ${(dbBytes / 2 ** 30).toFixed(2)} GiB in ${((Date.now() - genStart) / 1000).toFixed(0)} s`,
    );

    const keyFile = path.join(dir, 'bench.key');
    await cofre(['keygen', '--out', keyFile]);
    const vault = `file://${dir}/vault`;
    const tenant = String(Math.ceil(o.tenants / 2));
    const base = ['--engine', 'postgres', '--url', url, '--vault', vault, '--key-file', keyFile];

    const fullBackup = await cofre(['backup', ...base]);
    const fullId = (fullBackup.json as { backups: { backupId: string }[] }).backups[0]!.backupId;
    o.log(`full backup: ${fullBackup.seconds.toFixed(1)} s`);
    const restoreBase = ['--vault', vault, '--key-file', keyFile];
    const fullRestore = await cofre([
      'restore',
      ...restoreBase,
      '--backup',
      fullId,
      '--target-url',
      dbUrl(o.adminUrl, restored),
    ]);
    o.log(`full restore: ${fullRestore.seconds.toFixed(1)} s`);

    const tenantBackup = await cofre(['backup', ...base, '--tenant', tenant, ...MODEL]);
    const tenantId = (tenantBackup.json as { backups: { backupId: string }[] }).backups[0]!.backupId;
    o.log(`tenant ${tenant} backup: ${tenantBackup.seconds.toFixed(2)} s`);
    const tenantRestore = await cofre([
      'restore',
      ...restoreBase,
      '--backup',
      tenantId,
      '--target-url',
      url,
      '--tenant',
      tenant,
    ]);
    const report = tenantRestore.json as { deleted: number; loaded: number; durationMs: number };
    o.log(
      `tenant ${tenant} restore: ${tenantRestore.seconds.toFixed(2)} s (${report.deleted} rows deleted, ${report.loaded} loaded)`,
    );

    const allStart = process.hrtime.bigint();
    const all = await cofre(['backup', ...base, '--all-tenants', '--concurrency', '2', ...MODEL]);
    const allSeconds = Number(process.hrtime.bigint() - allStart) / 1e9;
    const allCount = (all.json as { backups: unknown[] }).backups.length;
    o.log(`all ${allCount} tenants backed up: ${allSeconds.toFixed(1)} s`);

    return {
      tenants: o.tenants,
      databaseGiB: Number((dbBytes / 2 ** 30).toFixed(2)),
      rowsPerTenant: report.loaded,
      fullBackupSeconds: Number(fullBackup.seconds.toFixed(1)),
      fullRestoreSeconds: Number(fullRestore.seconds.toFixed(1)),
      tenantBackupSeconds: Number(tenantBackup.seconds.toFixed(2)),
      tenantRestoreSeconds: Number(tenantRestore.seconds.toFixed(2)),
      tenantRestoreInsideCofreSeconds: Number((report.durationMs / 1000).toFixed(2)),
      tenantRestoreOverFullRestore: Number((tenantRestore.seconds / fullRestore.seconds).toFixed(4)),
      allTenantsBackupSeconds: Number(allSeconds.toFixed(1)),
      goal: 'tenantRestoreOverFullRestore ≤ 0.05',
    };
  } finally {
    for (const d of [name, restored])
      await admin.query(`DROP DATABASE IF EXISTS ${d} WITH (FORCE)`).catch(() => undefined);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}
