import { existsSync } from 'node:fs';
import path from 'node:path';
import { KMS } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { Command, CommanderError } from 'commander';
import { runBackup } from '../core/backup';
import { findBackup, findLeftovers, readCatalog } from '../core/catalog';
import { DEFAULT_CHAIN_LOCK_STALE_MS, MIN_CHAIN_LOCK_STALE_MS, heartbeatMs } from '../core/chain-lock';
import { parseDatabaseUrl, parseEngine, resolveCredentials } from '../core/connection';
import { buildKeys, keygen, type KeyOptions } from '../core/crypto';
import { CofreError, IntegrityError, UsageError, messageOf } from '../core/errors';
import { restoreBackup } from '../core/restore';
import { runPointInTimeRestore } from './restore-rds';
import {
  CANCEL_GRACE_MS,
  DEFAULT_LOCK_TIMEOUT_MS,
  DEFAULT_STATEMENT_TIMEOUT_MS,
  parseDuration,
  withRun,
} from '../core/run-context';
import { killAllTools } from '../core/sources/process';
import { verifyBackup, type VerifyReport } from '../core/verify';
import { writableDirProblem } from '../core/fs-problems';
import { FileVault, openVault, parseLockMode } from '../core/vault';
import { addConfigCommands } from './config-commands';
import { addExportCommands } from './export-commands';
import { addFilesCommand } from './files-command';
import { addLocalCommand } from './local-command';
import { addRdsCommand } from './rds-command';
import { addReportCommand } from './report-command';
import {
  addTenantCommands,
  backupTenants,
  restoreOneTenant,
  withTenantModelOptions,
} from './tenant-commands';
import type { ProgressSample } from '../core/progress';
import { backupSample, formatBytes, progressFor } from './progress';

/** Where the CLI writes: stdout for `--json` results, stderr for people. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** Cancels the running command (SIGTERM / SIGINT). */
  readonly signal?: AbortSignal;
  /** stderr is a terminal: progress is a bar redrawn in place, else a line every few seconds. */
  readonly stderrIsTTY?: boolean;
}

const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

function keyOptions(opts: Record<string, unknown>): KeyOptions {
  return {
    keyFile: opts.keyFile as string | undefined,
    kmsKeyArn: opts.kmsKey as string | undefined,
    escrowPublicKey: opts.escrowPublicKey as string | undefined,
    escrowPrivateKey: opts.escrowPrivateKey as string | undefined,
  };
}

/** `--lock-timeout` / `--statement-timeout`: the database session limits of a backup or restore. */
function withSessionLimitOptions<C extends Command>(command: C): C {
  command
    .option(
      '--lock-timeout <duration>',
      `how long a database statement waits for a lock before the run fails (e.g. 30s, 5m; default ${DEFAULT_LOCK_TIMEOUT_MS / 1000}s)`,
    )
    .option(
      '--statement-timeout <duration>',
      `how long one database statement may run (e.g. 90m, 6h; 0: no limit; default ${DEFAULT_STATEMENT_TIMEOUT_MS / 3600_000}h)`,
    );
  return command;
}

/** `--chain-lock-stale-after`: at least a second, so that renewals have time to happen. */
function chainLockStaleAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value, '--chain-lock-stale-after');
  if (ms < MIN_CHAIN_LOCK_STALE_MS)
    throw new UsageError(`--chain-lock-stale-after: expected at least 1s, got "${value}"`);
  return ms;
}

/**
 * The session limits given on the command line. Read before commander runs the action, so that the
 * whole action runs inside one run context (core/run-context.ts) with them and with the signal.
 */
function sessionLimits(argv: readonly string[]): { lockTimeoutMs?: number; statementTimeoutMs?: number } {
  const value = (flag: string): string | undefined => {
    const i = argv.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
    if (i === -1) return undefined;
    return argv[i]!.includes('=') ? argv[i]!.slice(flag.length + 1) : argv[i + 1];
  };
  const lock = value('--lock-timeout');
  const statement = value('--statement-timeout');
  return {
    ...(lock !== undefined ? { lockTimeoutMs: parseDuration(lock, '--lock-timeout') } : {}),
    ...(statement !== undefined
      ? { statementTimeoutMs: parseDuration(statement, '--statement-timeout', { allowZero: true }) }
      : {}),
  };
}

function kmsFor(arn: string | undefined) {
  return () => new KMS(arn ? { region: arn.split(':')[3] } : {});
}

/** Runs `cofre` with `argv` (without node and script); returns the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('cofre')
    .description('Cofre: verified, encrypted backups of PostgreSQL and MySQL/MariaDB')
    .exitOverride()
    .configureOutput({ writeOut: io.stderr, writeErr: io.stderr })
    .showHelpAfterError('(run "cofre --help" for usage)');

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

  const backupCommand = program
    .command('backup')
    .description(
      'dump databases (or tenants: --tenant, --all-tenants) into encrypted, verified backups in a vault',
    )
    .requiredOption('--engine <engine>', 'postgres or mysql')
    .requiredOption(
      '--url <url>',
      'postgres://user@host:5432/db or mysql://user@host:3306/db (password: prefer --secret or COFRE_DB_PASSWORD)',
    )
    .requiredOption('--vault <vault>', 's3://bucket/prefix or file:///absolute/dir')
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
    .option('--concurrency <n>', 'per-tenant: tenants exported at the same time (default 2)')
    .option(
      '--chain-lock-stale-after <duration>',
      `a chain lock its backup has not renewed for this long is stale and taken over (e.g. 10m; default ${DEFAULT_CHAIN_LOCK_STALE_MS / 60_000}m; renewed every ${heartbeatMs(DEFAULT_CHAIN_LOCK_STALE_MS) / 1000} s)`,
    )
    .option('--json', 'print one JSON summary on stdout');
  withSessionLimitOptions(backupCommand);
  withTenantModelOptions(backupCommand).action(async (opts: Record<string, unknown>) => {
    const engine = parseEngine(String(opts.engine));
    const connection = parseDatabaseUrl(engine, String(opts.url));
    const chainLockStaleAfterMs = chainLockStaleAfter(opts.chainLockStaleAfter as string | undefined);
    const databasesOpt = opts.databases as string | undefined;
    const databases =
      databasesOpt === undefined ? undefined : databasesOpt === 'all' ? 'all' : list(databasesOpt);
    if (Array.isArray(databases) && databases.length === 0)
      throw new UsageError('--databases: expected at least one name, or "all"');
    const vault = openVault(String(opts.vault), {
      env: io.env,
      sseKmsKeyId: (opts.sseKmsKey ?? opts.kmsKey) as string | undefined,
      objectLockMode:
        opts.objectLock === undefined ? undefined : parseLockMode(opts.objectLock as string, '--object-lock'),
    });
    // Cofre creates the vault folder itself, never the path above it (an unmounted disk).
    if (vault instanceof FileVault && !existsSync(path.dirname(vault.root)))
      throw new UsageError(
        `--vault: the parent directory ${path.dirname(vault.root)} does not exist (is the disk mounted?); Cofre creates only ${path.basename(vault.root)} itself`,
      );
    // A read-only disk (or one this user may not write) is refused before anything starts.
    const unwritable = vault instanceof FileVault ? await writableDirProblem(vault.root) : undefined;
    if (unwritable) throw new UsageError(`--vault: ${unwritable}; nothing was written`);
    const keys = await buildKeys(keyOptions(opts), 'encrypt', kmsFor(opts.kmsKey as string | undefined));
    const resolved = await resolveCredentials(connection, {
      env: io.env,
      secretArn: opts.secret as string | undefined,
      secrets: opts.secret
        ? new SecretsManagerClient({ region: (opts.secret as string).split(':')[3] })
        : undefined,
    });
    const common = {
      connection: resolved,
      sourceId: opts.id as string | undefined,
      vault,
      keys,
      dataClass: opts.class as string,
      timeZone: opts.timeZone as string,
      zstdLevel: opts.zstdLevel as number | undefined,
      signal: io.signal,
      chainLockStaleAfterMs,
    };
    if (opts.tenant !== undefined || opts.allTenants) {
      exitCode = await backupTenants(opts, io, common);
      return;
    }
    const progress = progressFor(io);
    const outcomes = await runBackup({
      ...common,
      databases,
      excludeDatabases: opts.exclude as string[] | undefined,
      globals: opts.globals as boolean | undefined,
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
              {
                backupId: o.manifest.backupId,
                database: o.database,
                tier: o.manifest.tier,
                location: `${vault.url}/${o.folder}`,
                rawBytes: o.manifest.artifacts[0]!.bytes.raw,
                storedBytes: o.manifest.artifacts[0]!.bytes.stored,
                durationMs: o.manifest.durationMs,
                tables: o.manifest.artifacts[0]!.tables.length,
                rows: o.manifest.artifacts[0]!.tables.reduce((n, t) => n + t.rows, 0),
              },
            ]
          : [],
      ),
      failures: outcomes.flatMap((o) => (o.ok ? [] : [{ database: o.database, error: o.error }])),
    };
    for (const b of summary.backups)
      io.stderr(
        `OK ${b.backupId} ${b.database ?? 'globals'} (${b.tier}): ${formatBytes(b.rawBytes)} → ${formatBytes(b.storedBytes)}, ${b.tables} tables, ${b.rows} rows, ${(b.durationMs / 1000).toFixed(1)} s\n`,
      );
    if (opts.json) io.stdout(`${JSON.stringify(summary)}\n`);
    exitCode = Math.max(0, ...outcomes.map((o) => (o.ok ? 0 : o.exitCode)));
  });

  program
    .command('list')
    .description('list the backups in a vault')
    .requiredOption('--vault <vault>', 's3://bucket/prefix or file:///absolute/dir')
    .option('--json', 'print JSON on stdout')
    .action(async (opts: { vault: string; json?: boolean }) => {
      const vault = openVault(opts.vault, { env: io.env });
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
        const a = m.artifacts[0]!;
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
          rawBytes: a.bytes.raw,
          storedBytes: m.artifacts.reduce((n, x) => n + x.bytes.stored, 0),
          tables: a.tables.length,
          rows: a.tables.reduce((n, t) => n + t.rows, 0),
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
    .action(async (opts: Record<string, unknown>) => {
      if (!opts.backup === !opts.all) throw new UsageError('--backup ID or --all: expected exactly one');
      const vault = openVault(String(opts.vault), {
        env: io.env,
        objectLockMode:
          opts.objectLock === undefined
            ? undefined
            : parseLockMode(opts.objectLock as string, '--object-lock'),
      });
      const keys = opts.deep
        ? await buildKeys(keyOptions(opts), 'decrypt', kmsFor(opts.kmsKey as string | undefined))
        : undefined;
      const ids = opts.all ? (await readCatalog(vault)).map((e) => e.backupId) : [String(opts.backup)];
      // What killed runs left behind is no backup, but the operator should know of it.
      const leftovers = opts.all ? await findLeftovers(vault) : [];
      for (const l of leftovers)
        io.stderr(`LEFTOVER ${l.key}: ${l.why} (the next backup of that database removes it)\n`);
      if (ids.length === 0) {
        // Nothing verified is not a pass: a wrong path, an unmounted disk or an emptied bucket.
        if (vault instanceof FileVault && !existsSync(vault.root))
          throw new UsageError(`--vault: ${vault.root} does not exist (is the disk mounted?)`);
        throw new IntegrityError(`no backups in ${vault.url}: nothing was verified`);
      }
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
      if (failed.length) exitCode = 3;
    });

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
  withTenantModelOptions(restoreCommand).action(async (opts: Record<string, unknown>) => {
    if (opts.pointInTime !== undefined || opts.snapshot !== undefined) {
      exitCode = await runPointInTimeRestore(opts, io);
      return;
    }
    const missing = (['vault', 'backup', 'targetUrl'] as const).filter((k) => opts[k] === undefined);
    if (missing.length)
      throw new UsageError(
        `${missing.map((k) => `--${k.replace('targetUrl', 'target-url')}`).join(', ')}: required (or --point-in-time for an RDS/Aurora restore)`,
      );
    if (opts.tenant === undefined && (opts.dryRun || opts.intoDatabase !== undefined))
      throw new UsageError('--dry-run / --into-database: only with --tenant ID');
    const vault = openVault(String(opts.vault), { env: io.env });
    const backupId = String(opts.backup);
    const entry = await findBackup(vault, backupId);
    const engine = entry.manifest?.engine ?? 'postgres';
    const scheme = /^([a-z]+):/i.exec(String(opts.targetUrl))?.[1]?.toLowerCase();
    const urlEngine = scheme === 'mysql' || scheme === 'mariadb' ? 'mysql' : 'postgres';
    if (scheme && ['postgres', 'postgresql', 'mysql', 'mariadb'].includes(scheme) && urlEngine !== engine)
      throw new UsageError(
        `--target-url: backup ${backupId} is a ${engine} backup, the target URL is ${urlEngine} (${scheme}://); nothing was changed`,
      );
    const target = await resolveCredentials(
      parseDatabaseUrl(engine, String(opts.targetUrl), '--target-url'),
      {
        env: io.env,
        secretArn: opts.secret as string | undefined,
        secrets: opts.secret
          ? new SecretsManagerClient({ region: (opts.secret as string).split(':')[3] })
          : undefined,
      },
    );
    const jobsOpt = String(opts.jobs);
    const jobs = jobsOpt === 'auto' ? 'auto' : Number(jobsOpt);
    if (jobs !== 'auto' && (!Number.isInteger(jobs) || jobs < 1 || jobs > 64))
      throw new UsageError(`--jobs: expected "auto" or a whole number from 1 to 64, got "${jobsOpt}"`);
    const keys = await buildKeys(keyOptions(opts), 'decrypt', kmsFor(opts.kmsKey as string | undefined));
    const progress = progressFor(io);
    const onProgress = (s: ProgressSample) => {
      progress.update(`restore ${backupId}`, s);
    };
    if (opts.tenant !== undefined) {
      exitCode = await restoreOneTenant(opts, io, {
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
      return;
    }
    const report = await restoreBackup({
      vault,
      backupId,
      keys,
      target,
      table: opts.table as string | undefined,
      intoTable: opts.intoTable as string | undefined,
      force: opts.force as boolean | undefined,
      jobs,
      noOwner: opts.owner === false,
      noAcl: opts.acl === false,
      keepDefiners: opts.keepDefiners as boolean | undefined,
      spillDir: opts.spillDir as string | undefined,
      signal: io.signal,
      onProgress,
      log: (line) => {
        progress.log(line);
      },
    }).finally(() => {
      progress.done();
    });
    io.stderr(
      `OK restored ${report.backupId} into ${report.target.database}${report.target.table ? ` (table ${report.target.table})` : ''}: ${report.tables.length} tables, ${report.rows} rows, ${(report.durationMs / 1000).toFixed(1)} s\n`,
    );
    if (opts.json) io.stdout(`${JSON.stringify(report)}\n`);
  });

  addExportCommands(program, io, (c) => (exitCode = c));
  addTenantCommands(program, io, (c) => (exitCode = c));
  addLocalCommand(program, io, (c) => (exitCode = c));
  addReportCommand(program, io);
  addConfigCommands(program, io, (c) => (exitCode = c));
  addRdsCommand(program, io, (c) => (exitCode = c));
  addFilesCommand(program, io, (c) => (exitCode = c));
  try {
    const limits = sessionLimits(argv);
    await withRun({ signal: io.signal, ...limits }, () => program.parseAsync([...argv], { from: 'user' }));
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not errors; every usage mistake is exit 2.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof CofreError) {
      io.stderr(`cofre: ${error.message}\n`);
      return error.exitCode;
    }
    io.stderr(`cofre: ${messageOf(error)}\n`);
    return 1;
  }
}

/** A command-line argument with the password of any URL in it replaced by `***`. */
export function redactArgument(arg: string): string {
  // Up to the last "@": a password may hold an unencoded "@" (over-redacting is the safe side).
  return arg.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)\S+@/gi, '$1***@');
}

/** The process entry point: wires signals, stdout/stderr and the exit code. */
export function run(): void {
  const controller = new AbortController();
  const cancel = (reason: string) => {
    if (controller.signal.aborted) return;
    controller.abort(reason);
    // Cleanup (rollback, dropping what the run made) gets a bounded time: a run that cannot stop
    // by itself still ends, its tools killed; what it left is reported and removed by the next run.
    setTimeout(() => {
      const killed = killAllTools();
      process.stderr.write(
        `cofre: cleanup did not finish within ${CANCEL_GRACE_MS / 1000} s after ${reason}; exiting${killed ? ` (killed ${killed} database tools)` : ''}\n`,
      );
      process.exit(1);
    }, CANCEL_GRACE_MS).unref();
  };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (controller.signal.aborted) {
        // A second signal: stop now.
        killAllTools();
        process.exit(1);
      }
      process.stderr.write(`\ncofre: received ${sig}, stopping and cleaning up…\n`);
      cancel(sig);
    });
  }
  // A closed pipe (`cofre list --json | head`) ends the run like a signal, not with a crash.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (error: NodeJS.ErrnoException) => {
      cancel(error.code === 'EPIPE' ? 'closed pipe' : `output error ${error.code ?? error.message}`);
    });
  // The password of a --url / --target-url is read from this copy; the process's own argv (and so
  // `ps` and /proc/<pid>/cmdline) shows it as *** for the whole run.
  const argv = process.argv.slice(2);
  const shown = argv.map(redactArgument);
  if (shown.some((a, i) => a !== argv[i])) {
    process.argv = [...process.argv.slice(0, 2), ...shown];
    process.title = ['cofre', ...shown].join(' ');
  }
  main(argv, {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    signal: controller.signal,
    stderrIsTTY: process.stderr.isTTY,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`cofre: ${messageOf(error)}\n`);
      process.exitCode = 1;
    },
  );
}
