import { findBackup } from '../catalog/catalog';
import type { Connection } from '../sources/connection';
import type { Keys } from '../vault/crypto';
import { checkKeyFits } from '../offline/decrypt';
import { FieldError, UsageError } from '../util/errors';
import type { OnProgress } from '../util/progress';
import type { TableCount } from '../sources/types';
import { withCancellableRun } from '../util/run-context';
import { writableDirProblem } from '../util/fs-problems';
import type { Vault } from '../vault';
import { requireStoredIntact, requireValidManifest } from '../catalog/artifact-reader';
import { restorePostgresDatabase, restorePostgresTable } from './postgres';
import { restoreMysqlDatabase, restoreMysqlTable } from './mysql';

export interface RestoreOptions {
  readonly vault: Vault;
  readonly backupId: string;
  /** Look for the backup under these key prefixes only (default: the whole vault). */
  readonly prefixes?: readonly string[] | undefined;
  /** Keys that can open the backup (local AES key, KMS key or escrow private key). */
  readonly keys: Keys;
  /** The target server and database (the URL's database name). */
  readonly target: Connection;
  /** Restore one table (`schema.name` or `name`) instead of the whole database. */
  readonly table?: string | undefined;
  /** With `table`: load its rows into this new table (created like the original) instead. */
  readonly intoTable?: string | undefined;
  /** Replace a non-empty target database (or a non-empty table). */
  readonly force?: boolean | undefined;
  /** PostgreSQL: parallel pg_restore jobs (spills the dump to a local file). `auto` decides by size. */
  readonly jobs?: number | 'auto' | undefined;
  /** PostgreSQL: pg_restore --no-owner / --no-acl (a server without the source's roles). */
  readonly noOwner?: boolean | undefined;
  readonly noAcl?: boolean | undefined;
  /** MySQL: keep the dump's `DEFINER=` accounts instead of making the restoring user the definer. */
  readonly keepDefiners?: boolean | undefined;
  /** Where a spilled dump goes. Default: the OS temp directory. */
  readonly spillDir?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly log?: ((line: string) => void) | undefined;
  /** Bytes of the stored artifact read so far, of its total (see core/util/progress.ts). */
  readonly onProgress?: OnProgress | undefined;
  readonly now?: (() => Date) | undefined;
}

export interface RestoreReport {
  readonly backupId: string;
  readonly mode: 'database' | 'table';
  readonly target: {
    readonly host: string;
    readonly port: number;
    readonly database: string;
    readonly table?: string;
  };
  readonly tables: readonly TableCount[];
  readonly rows: number;
  readonly startedAt: string;
  readonly durationMs: number;
  /** PostgreSQL: how pg_restore read the dump. */
  readonly method?: 'stream' | 'spill';
  readonly jobs?: number;
  /** The non-empty target that `--force` dropped. */
  readonly replaced?: boolean;
}

/**
 * Restores a backup into `target`: the whole database, or one table.
 *
 * Whole database — PostgreSQL: into a new temporary database, streamed (or spilled for parallel
 * `pg_restore -j`), hashes and row counts checked, then renamed to the target (a non-empty target
 * is dropped only with `force`, and only after the new copy is complete). MySQL: into the created
 * target with a `__cofre_restore_in_progress` marker table that is removed last; on failure the
 * target is dropped. Either way a failed or interrupted restore leaves nothing that looks restored.
 */
export function restoreBackup(options: RestoreOptions): Promise<RestoreReport> {
  // One cancellation path: every tool and session of this restore stops with `options.signal`.
  return withCancellableRun({ signal: options.signal }, () => restoreBackupInRun(options));
}

async function restoreBackupInRun(options: RestoreOptions): Promise<RestoreReport> {
  const startedAt = (options.now ?? (() => new Date()))();
  if (options.spillDir !== undefined) {
    const unwritable = await writableDirProblem(options.spillDir);
    if (unwritable) throw new FieldError('spillDir', `${unwritable}; nothing was changed`);
  }
  const entry = await findBackup(options.vault, options.backupId, options.prefixes);
  const manifest = requireValidManifest(entry);
  const artifact = manifest.artifacts[0]!;
  if (!options.target.database)
    throw new UsageError('--target-url: expected a database name in the URL path');
  if (manifest.kind === 'globals')
    throw new UsageError(
      `--backup: ${manifest.backupId} holds server globals (roles, tablespaces); apply them with "cofre decrypt" and psql`,
    );
  if (manifest.engine !== options.target.engine)
    throw new UsageError(
      `--target-url: backup ${manifest.backupId} is a ${manifest.engine} backup, the target is ${options.target.engine}`,
    );
  if (options.intoTable && !options.table) throw new UsageError('--into-table: needs --table');
  // The cheap half of the check before anything is touched: the key is one the backup was
  // encrypted for, and the artifact is there, whole, unchanged.
  checkKeyFits(options.keys, artifact, `backup ${manifest.backupId}`);
  await requireStoredIntact(options.vault, `${entry.folder}/${artifact.name}`, artifact, options.onProgress);
  const input = { ...options, manifest, artifact, key: `${entry.folder}/${artifact.name}` };
  let result: Omit<RestoreReport, 'backupId' | 'startedAt' | 'durationMs'>;
  if (options.table) {
    result =
      manifest.engine === 'postgres' ? await restorePostgresTable(input) : await restoreMysqlTable(input);
  } else {
    result =
      manifest.engine === 'postgres'
        ? await restorePostgresDatabase(input)
        : await restoreMysqlDatabase(input);
  }
  const finished = (options.now ?? (() => new Date()))();
  return {
    backupId: manifest.backupId,
    startedAt: startedAt.toISOString(),
    durationMs: finished.getTime() - startedAt.getTime(),
    ...result,
  };
}
