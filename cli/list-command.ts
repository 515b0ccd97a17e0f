import type { Command } from 'commander';
import { readCatalog } from '../core/catalog/catalog';
import { openVault } from '../core/vault';
import { summarize } from '../core/catalog/manifest';
import type { CliIo } from './io';
import { requireExistingVault } from './options';
import { formatBytes } from './progress';

/** `cofre list`: the backups in a vault, one line (or JSON object) each. */
export function addListCommand(program: Command, io: CliIo, _setExitCode: (code: number) => void): void {
  program
    .command('list')
    .description('list the backups in a vault')
    .requiredOption('--vault <vault>', 's3://bucket/prefix or file:///absolute/dir')
    .option('--json', 'print JSON on stdout')
    .action(async (opts: { vault: string; json?: boolean }) => {
      const vault = requireExistingVault(openVault(opts.vault, { env: io.env }));
      const catalog = await readCatalog(vault);
      const now = Date.now();
      type Row =
        | { backupId: string; location: string; status: 'invalid'; problems: readonly string[] }
        | {
            backupId: string;
            sourceId: string;
            database: string | null;
            tenant?: string;
            engine: string;
            kind: string;
            tier: string;
            dataClass: string;
            startedAt: string;
            durationMs: number;
            rawBytes: number;
            storedBytes: number;
            tables: number;
            rows: number;
            lockUntil: string;
            status: 'ok' | 'expired' | 'missing';
            location: string;
          };
      // A backup whose artifact is gone is not "ok", whatever its manifest says.
      const missing = new Set<string>();
      for (const e of catalog)
        for (const a of e.manifest?.artifacts ?? [])
          if (!(await vault.stat(`${e.folder}/${a.name}`))) missing.add(e.backupId);
      const rows = catalog.map((e): Row => {
        const m = e.manifest;
        if (!m)
          return { backupId: e.backupId, location: e.folder, status: 'invalid', problems: e.problems ?? [] };
        const s = summarize(m);
        return {
          backupId: m.backupId,
          sourceId: m.sourceId,
          database: m.source.database,
          ...(m.tenant ? { tenant: m.tenant.id } : {}),
          engine: m.engine,
          kind: m.kind,
          tier: m.tier,
          dataClass: m.dataClass,
          startedAt: m.startedAt,
          durationMs: m.durationMs,
          rawBytes: s.rawBytes,
          storedBytes: s.storedBytes,
          tables: s.tables,
          rows: s.rows,
          lockUntil: m.retention.lockUntil,
          status:
            new Date(m.retention.lockUntil).getTime() <= now
              ? 'expired'
              : missing.has(e.backupId)
                ? 'missing'
                : 'ok',
          location: e.folder,
        };
      });
      if (opts.json) {
        io.stdout(`${JSON.stringify({ vault: vault.url, backups: rows })}\n`);
        return;
      }
      if (rows.length === 0) {
        io.stderr(`no backups in ${vault.url}\n`);
        return;
      }
      const header = [
        'BACKUP ID',
        'SOURCE',
        'DATABASE',
        'ENGINE',
        'TIER',
        'STARTED',
        'SIZE',
        'ROWS',
        'STATUS',
      ];
      const table: string[][] = rows.map((r) =>
        r.status === 'invalid'
          ? [r.backupId, '?', '?', '?', '?', '?', '?', '?', `invalid manifest: ${r.problems.join('; ')}`]
          : [
              r.backupId,
              r.sourceId,
              r.tenant !== undefined
                ? `${r.database ?? ''} (tenant ${r.tenant})`
                : (r.database ?? '(globals)'),
              r.engine,
              r.tier,
              r.startedAt.slice(0, 19).replace('T', ' '),
              formatBytes(r.storedBytes),
              String(r.rows),
              r.status,
            ],
      );
      const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
      const line = (cells: string[]) =>
        cells
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd();
      io.stdout(`${[line(header), ...table.map(line)].join('\n')}\n`);
    });
}
