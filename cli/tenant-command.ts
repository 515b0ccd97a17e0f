import type { Command } from 'commander';
import { parseDatabaseUrl, resolveCredentials } from '../core/sources/connection';
import { UsageError } from '../core/util/errors';
import { runTenantBackup, type TenantBackupOptions } from '../core/tenants/backup';
import { checkCoverage, coverageProblems, formatCoverage, impactLines } from '../core/tenants/coverage';
import { discoverTenantPlan, type TenantModel, type TenantPlan } from '../core/tenants/plan';
import { restoreTenant, type TenantRestoreOptions } from '../core/tenants/restore';
import { summarize } from '../core/catalog/manifest';
import type { CliIo } from './io';
import { backupSample, count, formatBytes, progressFor } from './progress';
import { engineFor, required } from './options';

interface PlanOpts {
  readonly engine?: string;
  readonly url: string;
  readonly tenantTable: string;
  readonly keyColumn: string;
  readonly tenantColumn: string;
  readonly check?: boolean;
  readonly json?: boolean;
}

function pad(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** The plan for people: tables in load order with kind and FK path, then shared tables. */
export function formatTenantPlan(plan: TenantPlan): string {
  const rows = plan.tables.map((t, i) => [
    String(i + 1),
    t.key,
    t.kind,
    t.paths.length === 0
      ? `${t.filterColumn} = :tenant`
      : t.paths
          .map(
            (p) =>
              `${p.hops.map((h) => `(${h.columns.join(', ')}) → ${h.to.key}`).join(' → ')}.${p.filterColumn} = :tenant`,
          )
          .join('  OR  '),
  ]);
  const lines = [
    `tenant plan for ${plan.database}: tenant table ${plan.tenantTable.key} (key ${plan.model.keyColumn}), tenant column ${plan.model.tenantColumn}`,
    '',
    pad([['#', 'table (load order)', 'kind', 'rows selected by'], ...rows]),
    '',
    `shared (no path to a tenant, left out): ${plan.shared.length === 0 ? '(none)' : plan.shared.map((t) => t.key).join(', ')}`,
  ];
  for (const t of plan.tables)
    if (t.otherPaths.length)
      lines.push(
        `nullable paths of ${t.key} set aside (its NOT NULL path decides; --check still follows them): ${t.otherPaths.map((p) => p.hops.map((h) => h.constraint).join(' → ')).join(', ')}`,
      );
  for (const s of plan.selfReferences) {
    lines.push(
      `self-reference: ${s.table} (${s.columns.join(', ')}) → (${s.refColumns.join(', ')}): ${s.note}`,
    );
  }
  lines.push('delete in the reverse order.');
  if (plan.unindexedForeignKeys.length) {
    lines.push(
      '',
      'slow tenant restores: these foreign keys into tenant tables have no index on their columns, so deleting',
      "a tenant's rows scans the referencing table once per deleted row; create the indexes:",
      ...plan.unindexedForeignKeys.map(
        (f) => `  ${f.createIndex}   -- ${f.table}.${f.constraint} → ${f.references}`,
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `cofre tenant plan`: which tables hold one tenant's rows, how they are selected, in which order. */
export function addTenantCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const tenant = program.command('tenant').description('per-tenant data: discover the tenant model');
  tenant
    .command('plan')
    .description(
      'read the catalog and print the tenant plan: tenant-owned tables in FK load order, with the FK path and SELECT for one tenant; shared tables',
    )
    .option(
      '--engine <engine>',
      'postgres (or postgresql) or mysql (or mariadb); default: from the --url scheme',
    )
    .requiredOption(
      '--url <url>',
      required(
        'postgres://user@host:5432/db or mysql://user@host:3306/db (password: prefer COFRE_DB_PASSWORD)',
      ),
    )
    .requiredOption('--tenant-table <table>', required('the tenant table, name or schema.name'))
    .requiredOption('--key-column <column>', required('the key column of the tenant table (the tenant id)'))
    .requiredOption(
      '--tenant-column <column>',
      required('the column holding the tenant id on tenant-owned tables'),
    )
    .option(
      '--check',
      'also prove coverage: per tenant table, in one snapshot, the rows owned by no tenant and by more than one (exit 3 if any)',
    )
    .option('--json', 'print the plan as JSON on stdout')
    .action(async (opts: PlanOpts) => {
      const engine = engineFor(opts.engine, opts.url);
      const connection = await resolveCredentials(parseDatabaseUrl(engine, opts.url), { env: io.env });
      const plan = await discoverTenantPlan(connection, {
        table: opts.tenantTable,
        keyColumn: opts.keyColumn,
        tenantColumn: opts.tenantColumn,
      });
      const coverage = opts.check ? await checkCoverage(connection, plan) : undefined;
      if (opts.json) io.stdout(`${JSON.stringify(coverage ? { ...plan, coverage } : plan, null, 2)}\n`);
      else io.stdout(formatTenantPlan(plan) + (coverage ? `\n${formatCoverage(coverage)}` : ''));
      setExitCode(coverage && coverageProblems(coverage).length ? 3 : 0);
    });
}

/** `--tenant-table`, `--key-column`, `--tenant-column` as commander parses them (per-tenant commands). */
export interface TenantModelOpts {
  readonly tenantTable?: string;
  readonly keyColumn?: string;
  readonly tenantColumn?: string;
}

/** The per-tenant options of `cofre backup` (the flags in cli/backup-command.ts). */
export interface TenantBackupOpts extends TenantModelOpts {
  readonly tenant?: string;
  readonly allTenants?: true;
  readonly acceptUnownedRows?: true;
  readonly concurrency?: number;
  /** Refused with --tenant / --all-tenants. */
  readonly databases?: string;
  readonly exclude?: string[];
  readonly globals?: true;
  readonly json?: true;
}

/** The per-tenant options of `cofre restore` (the flags in cli/restore-command.ts). */
export interface TenantRestoreOpts extends TenantModelOpts {
  readonly tenant?: string;
  readonly dryRun?: true;
  readonly intoDatabase?: string;
  readonly fireTriggers?: true;
  readonly acceptUnownedRows?: true;
  /** Refused with --tenant. */
  readonly table?: string;
  readonly intoTable?: string;
  readonly force?: true;
  readonly json?: true;
}

/** The tenant model from `--tenant-table`, `--key-column`, `--tenant-column` (all three or none). */
export function tenantModelOption(opts: TenantModelOpts): TenantModel | undefined {
  const { tenantTable, keyColumn, tenantColumn } = opts;
  if (tenantTable === undefined && keyColumn === undefined && tenantColumn === undefined) return undefined;
  if (tenantTable === undefined || keyColumn === undefined || tenantColumn === undefined)
    throw new UsageError('--tenant-table, --key-column and --tenant-column: give all three, or none');
  return { table: tenantTable, keyColumn, tenantColumn };
}

/** `cofre backup --tenant ID,… | --all-tenants`: one backup per tenant. Returns the exit code. */
export async function backupTenants(
  opts: TenantBackupOpts,
  io: CliIo,
  options: Omit<TenantBackupOptions, 'model' | 'tenants' | 'concurrency'>,
): Promise<number> {
  if (opts.tenant !== undefined && opts.allTenants)
    throw new UsageError('--tenant and --all-tenants: choose one');
  for (const flag of ['databases', 'exclude', 'globals'] as const)
    if (opts[flag] !== undefined)
      throw new UsageError(
        `--${flag}: not with --tenant / --all-tenants (a tenant backup covers the one database in --url)`,
      );
  const model = tenantModelOption(opts);
  if (!model)
    throw new UsageError(
      '--tenant-table, --key-column and --tenant-column: needed for per-tenant backups (see "cofre tenant plan")',
    );
  const tenants = opts.allTenants
    ? 'all'
    : (opts.tenant ?? '')
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
  const progress = progressFor(io);
  const outcomes = await runTenantBackup({
    ...options,
    model,
    tenants,
    concurrency: opts.concurrency,
    acceptUnownedRows: opts.acceptUnownedRows,
    onProgress: (tenant, p) => {
      progress.update(`tenant ${tenant}`, backupSample(p));
    },
    log: (line) => {
      progress.done();
      io.stderr(`${line}\n`);
    },
  });
  progress.done();
  const ok = outcomes.filter((o) => o.ok);
  const failed = outcomes.filter((o) => !o.ok);
  for (const o of ok) {
    const s = summarize(o.manifest);
    io.stderr(
      `OK ${s.backupId} tenant ${o.tenant}: ${count(s.tables, 'table')}, ${count(s.rows, 'row')}, ${formatBytes(s.rawBytes)} → ${formatBytes(s.storedBytes)}\n`,
    );
  }
  if (failed.length)
    io.stderr(
      `FAILED ${failed.length} of ${outcomes.length} tenants: ${failed.map((o) => o.tenant).join(', ')}\n`,
    );
  if (opts.json)
    io.stdout(
      `${JSON.stringify({
        ok: failed.length === 0,
        vault: options.vault.url,
        backups: ok.map((o) => ({
          backupId: o.manifest.backupId,
          tenant: o.tenant,
          location: `${options.vault.url}/${o.folder}`,
          rawBytes: summarize(o.manifest).rawBytes,
          storedBytes: summarize(o.manifest).storedBytes,
          durationMs: o.manifest.durationMs,
          tables: o.manifest.artifacts[0]!.tables,
        })),
        failures: failed.map((o) => ({ tenant: o.tenant, error: o.error })),
      })}\n`,
    );
  return Math.max(0, ...outcomes.map((o) => (o.ok ? 0 : o.exitCode)));
}

/** `cofre restore --tenant ID [--dry-run | --into-database NEW]`. Returns the exit code. */
export async function restoreOneTenant(
  opts: TenantRestoreOpts & { readonly tenant: string },
  io: CliIo,
  options: Omit<TenantRestoreOptions, 'tenant' | 'model' | 'dryRun' | 'intoDatabase'>,
): Promise<number> {
  for (const flag of ['table', 'intoTable', 'force'] as const)
    if (opts[flag] !== undefined)
      throw new UsageError(`--${flag.replace('intoTable', 'into-table')}: not with --tenant`);
  const report = await restoreTenant({
    ...options,
    tenant: opts.tenant,
    model: tenantModelOption(opts),
    dryRun: opts.dryRun,
    intoDatabase: opts.intoDatabase,
    fireTriggers: opts.fireTriggers,
    acceptUnownedRows: opts.acceptUnownedRows,
  });
  const rows = [
    [
      'table',
      report.mode === 'dry-run' ? 'would delete' : 'deleted',
      report.mode === 'dry-run' ? 'would load' : 'loaded',
    ],
    ...report.tables.map((t) => [t.table, String(t.deleted), String(t.loaded)]),
  ];
  io.stderr(`${pad(rows)}\n`);
  const reach = impactLines(report.impact, report.tenant);
  if (reach.length)
    io.stderr(
      `${report.mode === 'dry-run' ? 'the deletes would reach rows beyond the tenant (the restore refuses without --accept-unowned-rows)' : 'accepted (--accept-unowned-rows): the deletes reach rows beyond the tenant'}:\n  ${reach.join('\n  ')}\n`,
    );
  else if (report.mode === 'dry-run')
    io.stderr(
      `the deletes reach no row beyond tenant ${report.tenant}'s (no cascade, SET NULL or blocking foreign key)\n`,
    );
  const { names, handling } = report.triggers;
  if (names.length)
    io.stderr(
      `triggers on the tenant's tables (${names.join(', ')}): ${
        {
          disabled: 'switched off for the restore transaction',
          fired: 'fired for every row',
          refused:
            'MySQL cannot switch them off in a transaction: the restore would be refused (use --into-database or --fire-triggers)',
          none: '',
        }[handling]
      }\n`,
    );
  if (report.sequences.length)
    io.stderr(`sequences moved above the restored ids: ${report.sequences.join(', ')}\n`);
  io.stderr(
    report.mode === 'dry-run'
      ? `DRY RUN tenant ${report.tenant} from ${report.backupId}: would delete ${report.deleted} rows and load ${report.loaded} into ${report.target.database}; nothing was changed\n`
      : `OK restored tenant ${report.tenant} from ${report.backupId} (${report.from}) into ${report.target.database}: ${report.deleted} rows deleted, ${report.loaded} loaded, ${(report.durationMs / 1000).toFixed(1)} s\n`,
  );
  if (opts.json) io.stdout(`${JSON.stringify(report)}\n`);
  return 0;
}
