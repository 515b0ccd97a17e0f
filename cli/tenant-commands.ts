import type { Command } from 'commander';
import { parseDatabaseUrl, parseEngine, resolveCredentials } from '../core/connection';
import { discoverTenantPlan, type TenantPlan } from '../core/tenants/plan';
import type { CliIo } from './cofre';

interface PlanOpts {
  readonly engine: string;
  readonly url: string;
  readonly tenantTable: string;
  readonly keyColumn: string;
  readonly tenantColumn: string;
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
    t.path.length === 0
      ? `${t.filterColumn} = :tenant`
      : `${t.path.map((h) => `(${h.columns.join(', ')}) → ${h.to.key}`).join(' → ')}.${t.filterColumn} = :tenant`,
  ]);
  const lines = [
    `tenant plan for ${plan.database}: tenant table ${plan.tenantTable.key} (key ${plan.model.keyColumn}), tenant column ${plan.model.tenantColumn}`,
    '',
    pad([['#', 'table (load order)', 'kind', 'rows selected by'], ...rows]),
    '',
    `shared (no path to a tenant, left out): ${plan.shared.length === 0 ? '(none)' : plan.shared.map((t) => t.key).join(', ')}`,
  ];
  for (const s of plan.selfReferences) {
    lines.push(
      `self-reference: ${s.table} (${s.columns.join(', ')}) → (${s.refColumns.join(', ')}): ${s.note}`,
    );
  }
  lines.push('delete in the reverse order.');
  return `${lines.join('\n')}\n`;
}

/** `cofre tenant plan`: which tables hold one tenant's rows, how they are selected, in which order. */
export function addTenantCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const tenant = program.command('tenant').description('per-tenant data: discover the tenant model');
  tenant
    .command('plan')
    .description(
      'read the catalog and print the tenant plan: tenant-owned tables in FK load order, with the FK path and SELECT for one tenant; shared tables',
    )
    .requiredOption('--engine <engine>', 'postgres or mysql')
    .requiredOption(
      '--url <url>',
      'postgres://user@host:5432/db or mysql://user@host:3306/db (password: prefer COFRE_DB_PASSWORD)',
    )
    .requiredOption('--tenant-table <table>', 'the tenant table, name or schema.name')
    .requiredOption('--key-column <column>', 'the key column of the tenant table (the tenant id)')
    .requiredOption('--tenant-column <column>', 'the column holding the tenant id on tenant-owned tables')
    .option('--json', 'print the plan as JSON on stdout')
    .action(async (opts: PlanOpts) => {
      const engine = parseEngine(opts.engine);
      const connection = await resolveCredentials(parseDatabaseUrl(engine, opts.url), { env: io.env });
      const plan = await discoverTenantPlan(connection, {
        table: opts.tenantTable,
        keyColumn: opts.keyColumn,
        tenantColumn: opts.tenantColumn,
      });
      if (opts.json) io.stdout(`${JSON.stringify(plan, null, 2)}\n`);
      else io.stdout(formatTenantPlan(plan));
      setExitCode(0);
    });
}
