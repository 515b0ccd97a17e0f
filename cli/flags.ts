/**
 * Core speaks in domain terms: its `FieldError`s name the option of the engine's options object
 * (`zstdLevel`, `kmsKeyArn`, `model.table`). The CLI names that option by its flag, so a person reads
 * `--zstd-level: expected a whole number from 1 to 19, got 25`.
 */
import { FieldError, messageOf } from '../core/util/errors';

/**
 * The flag of each field core names in a `FieldError` (every field thrown in core/ is listed:
 * test/cli/flags.test.ts checks it, and that each flag is an option of some command).
 */
export const FLAG_OF_FIELD: Readonly<Record<string, string>> = {
  // Backups (core/backup/backup.ts, core/tenants/backup.ts).
  dataClass: '--class',
  zstdLevel: '--zstd-level',
  sourceId: '--id',
  timeZone: '--time-zone',
  globals: '--globals',
  concurrency: '--concurrency',
  // Keys (core/vault/crypto.ts).
  keyFile: '--key-file',
  kmsKeyArn: '--kms-key',
  escrowPublicKey: '--escrow-public-key',
  escrowPrivateKey: '--escrow-private-key',
  // Vault (core/vault/index.ts).
  vault: '--vault',
  // Restores (core/restore/restore.ts).
  spillDir: '--spill-dir',
  // Offline copies (core/offline/export.ts, core/offline/decrypt.ts).
  to: '--to',
  out: '--out',
  // The tenant model (core/tenants/plan.ts).
  'model.table': '--tenant-table',
  'model.keyColumn': '--key-column',
  'model.tenantColumn': '--tenant-column',
};

/** The flag that sets a core field: from the table, else the field in kebab case (`fooBar` → `--foo-bar`). */
export function flagOf(field: string): string {
  return FLAG_OF_FIELD[field] ?? `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** An error's message as the CLI prints it: a core field named by its flag. */
export function cliMessage(error: unknown): string {
  return error instanceof FieldError ? `${flagOf(error.field)}: ${error.detail}` : messageOf(error);
}
