import type { Command } from 'commander';
import { findLeftovers, readCatalog } from '../core/catalog/catalog';
import { buildKeys } from '../core/vault/crypto';
import { IntegrityError, UsageError } from '../core/util/errors';
import { openVault, parseLockMode } from '../core/vault';
import { verifyBackup, type VerifyReport } from '../core/verify/verify';
import type { CliIo } from './io';
import { keyOptions, kmsFor, requireExistingVault, type KeyOpts } from './options';
import { progressFor } from './progress';

/** The options of `cofre verify`, as declared below. */
interface VerifyOpts extends KeyOpts {
  readonly vault: string;
  readonly backup?: string;
  readonly all?: boolean;
  readonly deep?: boolean;
  readonly objectLock?: string;
  readonly json?: boolean;
}

/** `cofre verify`: one backup (or `--all`) against its manifest, `--deep` decrypts and re-hashes. */
export function addVerifyCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command('verify')
    .description('check a backup against its manifest (quick), or decrypt and re-hash it (--deep)')
    .requiredOption('--vault <vault>', 's3://bucket/prefix or file:///absolute/dir')
    .option('--backup <id>', 'the backup to verify')
    .option('--all', 'verify every backup in the vault')
    .option('--deep', 'stream, authenticate, decrypt, decompress and re-hash; needs a KEY')
    .option('--key-file <file>', 'raw AES-256 key (cofre keygen)')
    .option('--kms-key <arn>', 'KMS key ARN of the vault')
    .option('--escrow-private-key <pem>', 'offline escrow RSA private key')
    .option(
      '--object-lock <mode>',
      'the Object Lock expected of backups whose manifest does not record one: COMPLIANCE, GOVERNANCE or none (default: $COFRE_OBJECT_LOCK_MODE, else COMPLIANCE)',
    )
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: VerifyOpts) => {
      if (!opts.backup === !opts.all) throw new UsageError('--backup ID or --all: expected exactly one');
      const vault = requireExistingVault(
        openVault(opts.vault, {
          env: io.env,
          objectLockMode:
            opts.objectLock === undefined ? undefined : parseLockMode(opts.objectLock, '--object-lock'),
        }),
      );
      const keys = opts.deep ? await buildKeys(keyOptions(opts), 'decrypt', kmsFor(opts.kmsKey)) : undefined;
      const ids = opts.all ? (await readCatalog(vault)).map((e) => e.backupId) : [String(opts.backup)];
      // What killed runs left behind is no backup, but the operator should know of it.
      const leftovers = opts.all ? await findLeftovers(vault) : [];
      for (const l of leftovers)
        io.stderr(`LEFTOVER ${l.key}: ${l.why} (the next backup of that database removes it)\n`);
      // Nothing verified is not a pass: an emptied vault (a missing folder was refused above).
      if (ids.length === 0) throw new IntegrityError(`no backups in ${vault.url}: nothing was verified`);
      const reports: (VerifyReport | { backupId: string; status: 'failed'; problems: readonly string[] })[] =
        [];
      for (const backupId of ids) {
        try {
          const progress = progressFor(io);
          const report = await verifyBackup({
            vault,
            backupId,
            deep: keys,
            signal: io.signal,
            onProgress: (s) => {
              progress.update(`verify --deep ${backupId}`, s);
            },
          }).finally(() => {
            progress.done();
          });
          reports.push(report);
          io.stderr(
            `${report.status === 'ok' ? 'OK' : 'EXPIRED'} ${backupId}${report.deep ? ' (deep)' : ''}\n${report.checked.map((c) => `  ${c}\n`).join('')}`,
          );
        } catch (error) {
          if (!(error instanceof IntegrityError)) throw error;
          reports.push({ backupId, status: 'failed', problems: error.problems });
          io.stderr(`FAILED ${backupId}\n${error.problems.map((p) => `  ${p}\n`).join('')}`);
        }
      }
      const failed = reports.filter((r) => r.status === 'failed');
      if (opts.json)
        io.stdout(`${JSON.stringify({ ok: failed.length === 0, vault: vault.url, reports, leftovers })}\n`);
      if (failed.length) setExitCode(3);
    });
}
