import { KMS } from '@aws-sdk/client-kms';
import type { Command } from 'commander';
import { buildKeys } from '../core/vault/crypto';
import { decryptBackup } from '../core/offline/decrypt';
import { exportBackup } from '../core/offline/export';
import { openVault } from '../core/vault';
import type { CliIo } from './cofre';
import { formatBytes, progressFor } from './progress';

interface ExportOpts {
  readonly vault: string;
  readonly backup: string;
  readonly to: string;
  readonly json?: boolean;
}

interface DecryptOpts {
  readonly vault: string;
  readonly backup: string;
  readonly out: string;
  readonly keyFile?: string;
  readonly kmsKey?: string;
  readonly escrowPrivateKey?: string;
  readonly json?: boolean;
}

/** `cofre export` (offline copy of one backup) and `cofre decrypt` (its plaintext dump). */
export function addExportCommands(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
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

  program
    .command('decrypt')
    .description(
      'write the plaintext dump of a backup (decrypted and decompressed, checked against the manifest) to a new file, for the engine’s own restore tools',
    )
    .requiredOption('--vault <vault>', 's3://bucket/prefix or file:///absolute/dir')
    .requiredOption('--backup <id>', 'the backup to decrypt')
    .requiredOption('--out <file>', 'the plaintext dump to write (never overwritten; mode 0600)')
    .option('--escrow-private-key <pem>', 'offline escrow RSA private key (no AWS needed)')
    .option('--key-file <file>', 'raw AES-256 key (cofre keygen)')
    .option('--kms-key <arn>', 'KMS key ARN of the vault')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: DecryptOpts) => {
      const vault = openVault(opts.vault, { env: io.env });
      const keys = await buildKeys(
        { keyFile: opts.keyFile, kmsKeyArn: opts.kmsKey, escrowPrivateKey: opts.escrowPrivateKey },
        'decrypt',
        () => new KMS(opts.kmsKey ? { region: opts.kmsKey.split(':')[3] } : {}),
      );
      const progress = progressFor(io);
      const report = await decryptBackup({
        vault,
        backupId: opts.backup,
        keys,
        out: opts.out,
        signal: io.signal,
        onProgress: (s) => {
          progress.update(`decrypt ${opts.backup}`, s);
        },
      }).finally(() => {
        progress.done();
      });
      io.stderr(
        `OK decrypted ${report.backupId} (${report.format}) to ${report.out}: ${formatBytes(report.bytes)}, SHA-256 ${report.sha256} as in the manifest, ${(report.durationMs / 1000).toFixed(1)} s\n` +
          `  this file holds the data in clear (mode 0600): keep it on an encrypted disk and delete it when done\n`,
      );
      if (opts.json) io.stdout(`${JSON.stringify({ ok: true, ...report })}\n`);
      setExitCode(0);
    });
}
