import type { Command } from 'commander';
import { keygen } from '../core/vault/crypto';
import type { CliIo } from './io';

/** `cofre keygen`: a raw AES-256 key file for local vaults. */
export function addKeygenCommand(program: Command, io: CliIo, _setExitCode: (code: number) => void): void {
  program
    .command('keygen')
    .description('create a raw AES-256 key file for local vaults (mode 0600)')
    .requiredOption('--out <file>', 'where to write the key (never overwritten)')
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: { out: string; json?: boolean }) => {
      const id = await keygen(opts.out);
      io.stderr(
        `wrote a new AES-256 key to ${opts.out} (${id}); keep a copy offline: without it the backups cannot be read\n`,
      );
      if (opts.json) io.stdout(`${JSON.stringify({ keyFile: opts.out, keyId: id })}\n`);
    });
}
