import { existsSync } from 'node:fs';
import { KMS } from '@aws-sdk/client-kms';
import type { Command } from 'commander';
import { engineOfUrl, parseEngine, type Engine } from '../core/sources/connection';
import type { KeyOptions } from '../core/vault/crypto';
import { UsageError } from '../core/util/errors';
import { FileVault, type Vault } from '../core/vault';
import { DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_STATEMENT_TIMEOUT_MS } from '../core/util/run-context';

/** A comma-separated option value as a list (blanks dropped). */
export const list = (value: string) =>
  value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);

/** The KEY options as commander parses them (each `<value>` option is a string when given). */
export interface KeyOpts {
  readonly keyFile?: string;
  readonly kmsKey?: string;
  readonly escrowPublicKey?: string;
  readonly escrowPrivateKey?: string;
}

/** KEY: `--key-file`, `--kms-key`, `--escrow-public-key`, `--escrow-private-key`, in core's words. */
export function keyOptions(opts: KeyOpts): KeyOptions {
  return {
    keyFile: opts.keyFile,
    kmsKeyArn: opts.kmsKey,
    escrowPublicKey: opts.escrowPublicKey,
    escrowPrivateKey: opts.escrowPrivateKey,
  };
}

/** A KMS client in the key's own region (from its ARN). */
export function kmsFor(arn: string | undefined) {
  return () => new KMS(arn ? { region: arn.split(':')[3] } : {});
}

/**
 * `--lock-timeout` / `--statement-timeout` as commander parses them. cli/cofre.ts reads them from argv
 * before the action runs (they set the run context); the action itself does not use them.
 */
export interface SessionLimitOpts {
  readonly lockTimeout?: string;
  readonly statementTimeout?: string;
}

/** `--lock-timeout` / `--statement-timeout`: the database session limits of a backup or restore. */
export function withSessionLimitOptions<C extends Command>(command: C): C {
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

/** Help text of an option that must be given. */
export const required = (description: string) => `${description} (required)`;

/** `--engine`: optional, the database URL's scheme names it; a contradiction is refused by parseDatabaseUrl. */
export function withEngineOption<C extends Command>(command: C): C {
  command.option(
    '--engine <engine>',
    'postgres (or postgresql) or mysql (or mariadb); default: from the --url scheme',
  );
  return command;
}

/** The engine given with `--engine`, else the one the URL's scheme names. */
export function engineFor(engine: string | undefined, url: string, urlField = '--url'): Engine {
  return engine !== undefined ? parseEngine(engine) : engineOfUrl(url, urlField);
}

/**
 * A vault read from (list, verify) must exist: a file vault whose folder is missing is most often an
 * unmounted disk, which must not read as "no backups".
 */
export function requireExistingVault<V extends Vault>(vault: V): V {
  if (vault instanceof FileVault && !existsSync(vault.root))
    throw new UsageError(`--vault: no such vault at ${vault.root}; is the disk mounted?`);
  return vault;
}

/** Adds the tenant model options to a command. */
export function withTenantModelOptions(command: Command): Command {
  return command
    .option('--tenant-table <table>', 'per-tenant: the tenant table, name or schema.name')
    .option('--key-column <column>', 'per-tenant: the key column of the tenant table (the tenant id)')
    .option(
      '--tenant-column <column>',
      'per-tenant: the column holding the tenant id on tenant-owned tables',
    );
}
