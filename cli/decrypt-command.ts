import type { Command } from 'commander';
import { decryptBackup } from '../core/offline/decrypt';
import { buildKeys } from '../core/vault/crypto';
import { openVault } from '../core/vault';
import type { CliIo } from './io';
import { kmsFor } from './options';
import { formatBytes, progressFor } from './progress';

interface DecryptOpts {
  readonly vault: string;
  readonly backup: string;
  readonly out: string;
  readonly keyFile?: string;
  readonly kmsKey?: string;
  readonly escrowPrivateKey?: string;
  readonly json?: boolean;
}

/** `cofre decrypt`: the plaintext dump of one backup, for the engine's own restore tools. */
export function addDecryptCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
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
        kmsFor(opts.kmsKey),
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
