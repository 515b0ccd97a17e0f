import type { Command } from 'commander';
import { exportBackup } from '../core/offline/export';
import { openVault } from '../core/vault';
import type { CliIo } from './io';
import { formatBytes, progressFor } from './progress';

interface ExportOpts {
  readonly vault: string;
  readonly backup: string;
  readonly to: string;
  readonly json?: boolean;
}

/** `cofre export`: an offline copy of one backup (artifacts, manifest, checksums, instructions). */
export function addExportCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command('export')
    .description(
      'copy one backup into a new or empty directory (an external disk): the encrypted artifacts unchanged, manifest.json, checksum.sha256 and RESTORE_INSTRUCTIONS.md',
    )
    .requiredOption('--vault <vault>', 's3://bucket/prefix or file:///absolute/dir')
    .requiredOption('--backup <id>', 'the backup to copy')
    .requiredOption('--to <dir>', 'a directory that does not exist yet (its parent must) or is empty')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: ExportOpts) => {
      const vault = openVault(opts.vault, { env: io.env });
      const progress = progressFor(io);
      const report = await exportBackup({
        vault,
        backupId: opts.backup,
        to: opts.to,
        signal: io.signal,
        onProgress: (s) => {
          progress.update(`export ${opts.backup}`, s);
        },
      }).finally(() => {
        progress.done();
      });
      io.stderr(
        `OK exported ${report.backupId} from ${report.from} to ${report.to}: ${report.files.length} files, ${formatBytes(report.bytes)}, every SHA-256 matches the manifest, ${(report.durationMs / 1000).toFixed(1)} s\n` +
          `  check it:  cd ${report.to} && sha256sum -c checksum.sha256\n` +
          `  then read: ${report.to}/RESTORE_INSTRUCTIONS.md\n`,
      );
      if (opts.json) io.stdout(`${JSON.stringify({ ok: true, ...report })}\n`);
      setExitCode(0);
    });
}
