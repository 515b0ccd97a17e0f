import type { Command } from 'commander';
import { escrowKeygen, keygen } from '../core/vault/crypto';
import type { CliIo } from './io';
import { required } from './options';

/** `cofre keygen`: a raw AES-256 key file for local vaults, or (`--escrow`) an escrow RSA pair. */
export function addKeygenCommand(program: Command, io: CliIo, _setExitCode: (code: number) => void): void {
  program
    .command('keygen')
    .description(
      'create a raw AES-256 key file for local vaults (mode 0600), or with --escrow an offline RSA escrow key pair',
    )
    .requiredOption(
      '--out <path>',
      required(
        'where to write the key (its folder is created, mode 0700; never overwritten); with --escrow: the folder of the pair',
      ),
    )
    .option(
      '--escrow',
      'create escrow-public.pem (for backups: --escrow-public-key) and escrow-private.pem (for the safe: --escrow-private-key) in --out',
    )
    .option('--json', 'print the result as JSON on stdout')
    .action(async (opts: { out: string; escrow?: boolean; json?: boolean }) => {
      if (opts.escrow) {
        const pair = await escrowKeygen(opts.out);
        io.stderr(
          `wrote a new RSA escrow key pair (fingerprint ${pair.fingerprint}, recorded as escrow:${pair.fingerprint} in manifests):\n` +
            `  ${pair.publicKey}: give it to backups (--escrow-public-key)\n` +
            `  ${pair.privateKey}: move it to the safe (offline); with it alone, any backup wrapped for this key can be read (--escrow-private-key)\n`,
        );
        if (opts.json) io.stdout(`${JSON.stringify(pair)}\n`);
        return;
      }
      const id = await keygen(opts.out);
      io.stderr(
        `wrote a new AES-256 key to ${opts.out} (${id}); keep a copy offline: without it the backups cannot be read\n`,
      );
      if (opts.json) io.stdout(`${JSON.stringify({ keyFile: opts.out, keyId: id })}\n`);
    });
}
