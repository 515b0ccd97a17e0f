import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Command } from 'commander';
import { findBackup } from '../core/catalog/catalog';
import { restoreBackup } from '../core/restore/restore';
import { parseDatabaseUrl, resolveCredentials } from '../core/sources/connection';
import type { ProgressSample } from '../core/util/progress';
import { UsageError } from '../core/util/errors';
import { buildKeys } from '../core/vault/crypto';
import { openVault } from '../core/vault';
import type { CliIo } from './io';
import {
  keyOptions,
  kmsFor,
  withSessionLimitOptions,
  withTenantModelOptions,
  type KeyOpts,
  type SessionLimitOpts,
} from './options';
import { count, progressFor } from './progress';
import type { PointInTimeOptions } from './restore-rds';
import type { TenantRestoreOpts } from './tenant-command';

/** The options of `cofre restore` as commander parses them (the flags below). */
export interface RestoreOpts extends KeyOpts, SessionLimitOpts, TenantRestoreOpts, PointInTimeOptions {
  readonly vault?: string;
  readonly backup?: string;
  readonly targetUrl?: string;
  readonly jobs: string;
  /** `--no-owner` makes it false. */
  readonly owner: boolean;
  /** `--no-acl` makes it false. */
  readonly acl: boolean;
  readonly spillDir?: string;
  readonly keepDefiners?: true;
  readonly secret?: string;
}

/** `cofre restore`: a whole database, one table (`--table`) or one tenant (`--tenant`). */
export function addRestoreCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const restoreCommand = program
    .command('restore')
    .description(
      'restore a backup into a database: the whole database, one table (--table) or one tenant (--tenant)',
    )
    .option(
      '--vault <vault>',
      's3://bucket/prefix or file:///absolute/dir (an exported folder is a file vault); required unless --point-in-time',
    )
    .option('--backup <id>', 'the backup to restore; required unless --point-in-time')
    .option(
      '--target-url <url>',
      'postgres://user@host:5432/newdb or mysql://user@host:3306/newdb; required unless --point-in-time',
    )
    .option(
      '--point-in-time <time>',
      'RDS/Aurora: restore --rds-instance or --rds-cluster to this ISO-8601 time (or "latest") into a NEW instance or cluster',
    )
    .option(
      '--snapshot <arn>',
      'RDS/Aurora: restore this AWS Backup recovery point (primary or DR region) of --rds-instance or --rds-cluster into a NEW instance or cluster in its region',
    )
    .option(
      '--subnet-group <name>',
      'with --snapshot: the DB subnet group of the new resource (required in the DR region)',
    )
    .option(
      '--security-group-ids <ids>',
      'with --snapshot: its security groups, comma-separated (required in the DR region)',
    )
    .option('--rds-instance <id>', 'with --point-in-time: the source RDS instance')
    .option('--rds-cluster <id>', 'with --point-in-time: the source Aurora cluster')
    .option(
      '--target-identifier <id>',
      'with --point-in-time: the new identifier (default <source>-restore-<time>)',
    )
    .option(
      '--instance-class <class>',
      "with --point-in-time: the new instance's class (default: the source's)",
    )
    .option('--multi-az', 'with --point-in-time: a Multi-AZ copy (default: as the source)')
    .option('--no-multi-az', 'with --point-in-time: a single-AZ copy')
    .option('--timeout-minutes <n>', 'with --point-in-time: give up waiting after this long (default 360)')
    .option('--poll-seconds <n>', 'with --point-in-time: seconds between two status checks (default 30)')
    .option('--table <name>', 'restore only this table (schema.name or name)')
    .option(
      '--into-table <name>',
      'with --table: load the rows into this new table, to compare before swapping',
    )
    .option('--force', 'replace a non-empty target database (or the rows of a non-empty table)')
    .option(
      '--jobs <n>',
      'PostgreSQL: parallel pg_restore jobs (spills the dump to a local file); "auto" decides by size',
      'auto',
    )
    .option('--no-owner', 'PostgreSQL: do not restore object ownership')
    .option('--no-acl', 'PostgreSQL: do not restore privileges')
    .option('--spill-dir <dir>', 'where a spilled dump is written (default: the temp directory)')
    .option(
      '--keep-definers',
      "MySQL: keep the dump's DEFINER accounts (default: the restoring user becomes the definer)",
    )
    .option('--secret <arn>', 'Secrets Manager secret with the target credentials (RDS JSON format)')
    .option('--key-file <file>', 'raw AES-256 key (cofre keygen)')
    .option('--kms-key <arn>', 'KMS key ARN of the vault')
    .option('--escrow-private-key <pem>', 'offline escrow RSA private key')
    .option('--tenant <id>', "restore one tenant's rows in one transaction, the other tenants untouched")
    .option('--dry-run', 'with --tenant: print what would be deleted and loaded per table; change nothing')
    .option('--into-database <name>', 'with --tenant: restore into this new copy of the schema instead')
    .option(
      '--fire-triggers',
      "with --tenant: let the target's triggers fire (default: PostgreSQL switches user triggers off for the restore; MySQL refuses tables with triggers)",
    )
    .option(
      '--accept-unowned-rows',
      'with --tenant: go ahead although the deletes reach rows not owned by this tenant alone (every removed row is still accounted for)',
    )
    .option('--json', 'print the restore report as JSON on stdout');
  withSessionLimitOptions(restoreCommand);
  withTenantModelOptions(restoreCommand).action(async (opts: RestoreOpts) => {
    if (opts.pointInTime !== undefined || opts.snapshot !== undefined) {
      // Loaded when asked for: a restore from a vault does not carry the RDS code (cli/cofre.ts).
      const { runPointInTimeRestore } = await import('./restore-rds.js');
      setExitCode(await runPointInTimeRestore(opts, io));
      return;
    }
    const { vault: vaultUrl, backup: backupId, targetUrl } = opts;
    if (vaultUrl === undefined || backupId === undefined || targetUrl === undefined) {
      const missing = (['vault', 'backup', 'targetUrl'] as const).filter((k) => opts[k] === undefined);
      throw new UsageError(
        `${missing.map((k) => `--${k.replace('targetUrl', 'target-url')}`).join(', ')}: required (or --point-in-time for an RDS/Aurora restore)`,
      );
    }
    if (opts.tenant === undefined && (opts.dryRun || opts.intoDatabase !== undefined))
      throw new UsageError('--dry-run / --into-database: only with --tenant ID');
    const vault = openVault(vaultUrl, { env: io.env });
    const entry = await findBackup(vault, backupId);
    const engine = entry.manifest?.engine ?? 'postgres';
    const scheme = /^([a-z]+):/i.exec(targetUrl)?.[1]?.toLowerCase();
    const urlEngine = scheme === 'mysql' || scheme === 'mariadb' ? 'mysql' : 'postgres';
    if (scheme && ['postgres', 'postgresql', 'mysql', 'mariadb'].includes(scheme) && urlEngine !== engine)
      throw new UsageError(
        `--target-url: backup ${backupId} is a ${engine} backup, the target URL is ${urlEngine} (${scheme}://); nothing was changed`,
      );
    const target = await resolveCredentials(parseDatabaseUrl(engine, targetUrl, '--target-url'), {
      env: io.env,
      secretArn: opts.secret,
      secrets: opts.secret ? new SecretsManagerClient({ region: opts.secret.split(':')[3] }) : undefined,
    });
    const jobsOpt = opts.jobs;
    const jobs = jobsOpt === 'auto' ? 'auto' : Number(jobsOpt);
    if (jobs !== 'auto' && (!Number.isInteger(jobs) || jobs < 1 || jobs > 64))
      throw new UsageError(`--jobs: expected "auto" or a whole number from 1 to 64, got "${jobsOpt}"`);
    const keys = await buildKeys(keyOptions(opts), 'decrypt', kmsFor(opts.kmsKey));
    const progress = progressFor(io);
    const onProgress = (s: ProgressSample) => {
      progress.update(`restore ${backupId}`, s);
    };
    if (opts.tenant !== undefined) {
      const { restoreOneTenant } = await import('./tenant-command.js');
      const code = await restoreOneTenant({ ...opts, tenant: opts.tenant }, io, {
        vault,
        backupId,
        keys,
        target,
        signal: io.signal,
        onProgress,
        log: (line) => {
          progress.log(line);
        },
      }).finally(() => {
        progress.done();
      });
      setExitCode(code);
      return;
    }
    const report = await restoreBackup({
      vault,
      backupId,
      keys,
      target,
      table: opts.table,
      intoTable: opts.intoTable,
      force: opts.force,
      jobs,
      noOwner: !opts.owner,
      noAcl: !opts.acl,
      keepDefiners: opts.keepDefiners,
      spillDir: opts.spillDir,
      signal: io.signal,
      onProgress,
      log: (line) => {
        progress.log(line);
      },
    }).finally(() => {
      progress.done();
    });
    io.stderr(
      `OK restored ${report.backupId} into ${report.target.database}${report.target.table ? ` (table ${report.target.table})` : ''}: ${count(report.tables.length, 'table')}, ${count(report.rows, 'row')}, ${(report.durationMs / 1000).toFixed(1)} s\n`,
    );
    if (opts.json) io.stdout(`${JSON.stringify(report)}\n`);
  });
}
