/**
 * The tenant part of the monthly restore test: one tenant, chosen in turn, is restored from its
 * latest tenant backup into a scratch copy of the schema (`restoreTenant` with `intoDatabase`), its
 * rows there are read back with the same export code, and each table's content digest must equal
 * the digest the backup recorded of the source's rows at backup time. The scratch copy is dropped.
 */
import { readCatalog, type CatalogEntry } from '../catalog/catalog';
import { sourcePrefixes, tenantDatabasePrefix } from '../catalog/keys';
import type { Connection } from '../sources/connection';
import type { Keys } from '../vault/crypto';
import { IntegrityError, UsageError } from '../util/errors';
import { dropDatabaseIfExists } from '../sources/admin';
import type { Vault } from '../vault';
import { startTenantExport } from './export';
import { discoverTenantPlan } from './plan';
import { restoreTenant } from './restore';

export interface TenantRestoreCheck {
  readonly database: string;
  readonly tenant: string;
  readonly backupId: string;
  readonly scratchDatabase: string;
  readonly tables: number;
  readonly rows: number;
  readonly durationMs: number;
}

export interface TenantRestoreCheckOptions {
  readonly vault: Vault;
  readonly keys: Keys;
  /** The live server and the tenants' database (its schema and shared tables are copied). */
  readonly connection: Connection;
  readonly sourceId: string;
  /** Which tenant: the `turn`-th (modulo) of the tenants with a backup, by id. */
  readonly turn: number;
  /** The scratch database to create (and drop). */
  readonly scratchDatabase: string;
  /** {@link latestTenantBackups} when the caller has already read it (default: read here). */
  readonly latest?: ReadonlyMap<string, CatalogEntry> | undefined;
  readonly log?: ((line: string) => void) | undefined;
}

/** The newest tenant backup of each tenant of `database` (with its content digests), by tenant id. */
export async function latestTenantBackups(
  vault: Vault,
  sourceId: string,
  database: string,
): Promise<Map<string, CatalogEntry>> {
  const prefix = tenantDatabasePrefix(sourceId, database);
  const latest = new Map<string, CatalogEntry>();
  for (const entry of await readCatalog(vault, prefix)) {
    const tenant = entry.manifest?.tenant;
    if (!tenant || !tenant.tables.some((t) => t.contentHash)) continue;
    const seen = latest.get(tenant.id);
    if (!seen || seen.backupId < entry.backupId) latest.set(tenant.id, entry);
  }
  return new Map([...latest.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Restores one tenant into a scratch copy and compares content digests; throws IntegrityError on a difference. */
export async function checkTenantRestore(options: TenantRestoreCheckOptions): Promise<TenantRestoreCheck> {
  const started = Date.now();
  const database = options.connection.database;
  if (!database) throw new UsageError('database: expected the tenants’ database');
  const latest = options.latest ?? (await latestTenantBackups(options.vault, options.sourceId, database));
  if (latest.size === 0)
    throw new UsageError(`no tenant backup with content digests of ${database} in ${options.vault.url}`);
  const [tenant, entry] = [...latest.entries()][options.turn % latest.size]!;
  const manifest = entry.manifest!;
  options.log?.(
    `tenant restore test of ${database}: tenant ${tenant} from ${entry.backupId} into ${options.scratchDatabase}`,
  );
  try {
    await restoreTenant({
      vault: options.vault,
      backupId: entry.backupId,
      // The dump task may list only its own source's prefixes.
      prefixes: sourcePrefixes(options.sourceId),
      keys: options.keys,
      target: options.connection,
      tenant,
      intoDatabase: options.scratchDatabase,
      log: options.log,
    });
    const scratch = { ...options.connection, database: options.scratchDatabase };
    const plan = await discoverTenantPlan(scratch, manifest.tenant!.model);
    const dump = await startTenantExport(scratch, plan, tenant);
    dump.stdout.resume();
    const counts = await dump.completed;
    const hashes = dump.contentHashes();
    const differ = manifest.tenant!.tables.filter((t) => t.contentHash && hashes[t.key] !== t.contentHash);
    if (differ.length)
      throw new IntegrityError(
        `tenant ${tenant} restored from ${entry.backupId} differs from its rows at backup time in: ${differ.map((t) => t.key).join(', ')}`,
      );
    return {
      database,
      tenant,
      backupId: entry.backupId,
      scratchDatabase: options.scratchDatabase,
      tables: counts.length,
      rows: counts.reduce((n, t) => n + t.rows, 0),
      durationMs: Date.now() - started,
    };
  } finally {
    await dropDatabaseIfExists(options.connection, options.scratchDatabase).catch(() => undefined);
  }
}
