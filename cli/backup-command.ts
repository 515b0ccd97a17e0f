import { existsSync } from 'node:fs';
import path from 'node:path';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Command } from 'commander';
import { runBackup } from '../core/backup/backup';
import {
  DEFAULT_CHAIN_LOCK_STALE_MS,
  MIN_CHAIN_LOCK_STALE_MS,
  heartbeatMs,
} from '../core/catalog/chain-lock';
import { writableDirProblem } from '../core/util/fs-problems';
import { parseDuration } from '../core/util/run-context';
import { summarize } from '../core/catalog/manifest';
import { parseDatabaseUrl, resolveCredentials } from '../core/sources/connection';
import { buildKeys } from '../core/vault/crypto';
import { UsageError } from '../core/util/errors';
import { FileVault, openVault, parseLockMode } from '../core/vault';
import type { CliIo } from './io';
import {
  engineFor,
  keyOptions,
  type KeyOpts,
  type SessionLimitOpts,
  kmsFor,
  list,
  required,
  withEngineOption,
  withSessionLimitOptions,
  withTenantModelOptions,
} from './options';
import { backupSample, count, formatBytes, progressFor } from './progress';
import type { TenantBackupOpts } from './tenant-command';

/** The options of `cofre backup` as commander parses them (the flags below). */
export interface BackupOpts extends KeyOpts, SessionLimitOpts, TenantBackupOpts {
  readonly engine?: string;
  readonly url: string;
  readonly vault: string;
  readonly databases?: string;
  readonly exclude?: string[];
  readonly globals?: true;
  readonly id?: string;
  readonly class: string;
  readonly timeZone: string;
  readonly zstdLevel?: number;
  readonly secret?: string;
  readonly sseKmsKey?: string;
  readonly objectLock?: string;
  readonly chainLockStaleAfter?: string;
  readonly json?: true;
}

/** `--chain-lock-stale-after`: at least a second, so that renewals have time to happen. */
function chainLockStaleAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value, '--chain-lock-stale-after');
  if (ms < MIN_CHAIN_LOCK_STALE_MS)
    throw new UsageError(`--chain-lock-stale-after: expected at least 1s, got "${value}"`);
  return ms;
}

/** `cofre backup`: databases (or tenants, with `--tenant` / `--all-tenants`) into a vault. */
export function addBackupCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const backupCommand = program
    .command('backup')
    .description(
      'dump databases (or tenants: --tenant, --all-tenants) into encrypted, verified backups in a vault',
    )
    .requiredOption(
      '--url <url>',
      required(
        'postgres://user@host:5432/db or mysql://user@host:3306/db (password: prefer --secret or COFRE_DB_PASSWORD)',
      ),
    )
    .requiredOption('--vault <vault>', required('s3://bucket/prefix or file:///absolute/dir'))
    .option('--databases <names>', 'comma-separated databases, or "all" (default: the database in --url)')
    .option('--exclude <names>', 'databases to leave out of "all"', list)
    .option('--globals', 'also back up PostgreSQL roles and tablespaces (default with --databases all)')
    .option(
      '--id <id>',
      "id of the source in the vault layout (default: each database's own name; globals: the host)",
    )
    .option('--class <class>', 'data class: general, health, accounting, labour', 'general')
    .option('--time-zone <tz>', 'time zone of tier decisions', 'America/Sao_Paulo')
    .option('--zstd-level <n>', 'zstd compression level 1-19', (v) => Number(v))
    .option('--secret <arn>', 'Secrets Manager secret with the credentials (RDS JSON format)')
    .option('--key-file <file>', 'raw AES-256 key (cofre keygen)')
    .option('--kms-key <arn>', 'KMS key ARN of the vault')
    .option('--escrow-public-key <pem>', 'also wrap data keys for this offline RSA key')
    .option('--sse-kms-key <arn>', 'SSE-KMS key for S3 vaults (default: --kms-key)')
    .option(
      '--object-lock <mode>',
      'Object Lock of S3 vault writes: COMPLIANCE, GOVERNANCE or none (default: $COFRE_OBJECT_LOCK_MODE, else COMPLIANCE); never detected',
    )
    .option('--tenant <ids>', 'back up these tenants (comma-separated ids), one backup each')
    .option('--all-tenants', 'back up every tenant, one backup each')
    .option(
      '--accept-unowned-rows',
      'with --all-tenants: go ahead although the coverage check finds rows owned by no tenant or by more than one',
    )
    .option('--concurrency <n>', 'per-tenant: tenants exported at the same time (default 2)', (v) =>
      Number(v),
    )
    .option(
      '--chain-lock-stale-after <duration>',
      `a chain lock its backup has not renewed for this long is stale and taken over (e.g. 10m; default ${DEFAULT_CHAIN_LOCK_STALE_MS / 60_000}m; renewed every ${heartbeatMs(DEFAULT_CHAIN_LOCK_STALE_MS) / 1000} s)`,
    )
    .option('--json', 'print one JSON summary on stdout');
  withEngineOption(backupCommand);
  withSessionLimitOptions(backupCommand);
  withTenantModelOptions(backupCommand).action(async (opts: BackupOpts) => {
    const engine = engineFor(opts.engine, opts.url);
    const connection = parseDatabaseUrl(engine, opts.url);
    const chainLockStaleAfterMs = chainLockStaleAfter(opts.chainLockStaleAfter);
    const databasesOpt = opts.databases;
    const databases =
      databasesOpt === undefined ? undefined : databasesOpt === 'all' ? 'all' : list(databasesOpt);
    if (Array.isArray(databases) && databases.length === 0)
      throw new UsageError('--databases: expected at least one name, or "all"');
    if (opts.exclude !== undefined && databases !== 'all')
      throw new UsageError(
        `--exclude: only with --databases all (got ${databasesOpt === undefined ? 'no --databases' : `--databases ${databasesOpt}`})`,
      );
    const vault = openVault(opts.vault, {
      env: io.env,
      sseKmsKeyId: opts.sseKmsKey ?? opts.kmsKey,
      objectLockMode:
        opts.objectLock === undefined ? undefined : parseLockMode(opts.objectLock, '--object-lock'),
    });
    // Cofre creates the vault folder itself, never the path above it (an unmounted disk).
    if (vault instanceof FileVault && !existsSync(path.dirname(vault.root)))
      throw new UsageError(
        `--vault: the parent directory ${path.dirname(vault.root)} does not exist (is the disk mounted?); Cofre creates only ${path.basename(vault.root)} itself`,
      );
    // A read-only disk (or one this user may not write) is refused before anything starts.
    const unwritable = vault instanceof FileVault ? await writableDirProblem(vault.root) : undefined;
    if (unwritable) throw new UsageError(`--vault: ${unwritable}; nothing was written`);
    const keys = await buildKeys(keyOptions(opts), 'encrypt', kmsFor(opts.kmsKey));
    const resolved = await resolveCredentials(connection, {
      env: io.env,
      secretArn: opts.secret,
      secrets: opts.secret ? new SecretsManagerClient({ region: opts.secret.split(':')[3] }) : undefined,
    });
    const common = {
      connection: resolved,
      sourceId: opts.id,
      vault,
      keys,
      dataClass: opts.class,
      timeZone: opts.timeZone,
      zstdLevel: opts.zstdLevel,
      signal: io.signal,
      chainLockStaleAfterMs,
    };
    if (opts.tenant !== undefined || opts.allTenants) {
      const { backupTenants } = await import('./tenant-command.js');
      setExitCode(await backupTenants(opts, io, common));
      return;
    }
    const progress = progressFor(io);
    const outcomes = await runBackup({
      ...common,
      databases,
      excludeDatabases: opts.exclude,
      globals: opts.globals,
      onProgress: (db, p) => {
        progress.update(db, backupSample(p));
      },
      log: (line) => {
        progress.done();
        io.stderr(`${line}\n`);
      },
    });
    progress.done();
    const failures = outcomes.filter((o) => !o.ok);
    const summary = {
      ok: failures.length === 0,
      vault: vault.url,
      backups: outcomes.flatMap((o) =>
        o.ok
          ? [
              ((s) => ({
                backupId: s.backupId,
                database: o.database,
                tier: s.tier,
                location: `${vault.url}/${o.folder}`,
                rawBytes: s.rawBytes,
                storedBytes: s.storedBytes,
                durationMs: s.durationMs,
                tables: s.tables,
                rows: s.rows,
              }))(summarize(o.manifest)),
            ]
          : [],
      ),
      failures: outcomes.flatMap((o) => (o.ok ? [] : [{ database: o.database, error: o.error }])),
    };
    for (const b of summary.backups)
      io.stderr(
        `OK ${b.backupId} ${b.database ?? 'globals'} (${b.tier}): ${formatBytes(b.rawBytes)} → ${formatBytes(b.storedBytes)}, ${count(b.tables, 'table')}, ${count(b.rows, 'row')}, ${(b.durationMs / 1000).toFixed(1)} s\n`,
      );
    if (opts.json) io.stdout(`${JSON.stringify(summary)}\n`);
    setExitCode(Math.max(0, ...outcomes.map((o) => (o.ok ? 0 : o.exitCode))));
  });
}
