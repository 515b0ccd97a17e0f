import { Readable } from 'node:stream';
import { MANIFEST_NAME, parseManifest, serializeManifest, sha256, type Manifest } from './manifest';
import { UsageError } from './errors';
import type { Vault } from './vault';

/**
 * Where backups live in a vault:
 *   full/<source id>/<database>/<backup id>/manifest.json      (+ the artifacts beside it)
 *   full/<source id>/=globals/<backup id>/…                     (PostgreSQL roles and tablespaces)
 *   tenants/<source id>/<database>/<tenant>/<backup id>/…       (one tenant's rows)
 * Path segments are URI-encoded, so any database name or tenant id is a safe single segment.
 */
export const FULL_PREFIX = 'full';
export const TENANT_PREFIX = 'tenants';
/** Every prefix that holds backups. */
export const BACKUP_PREFIXES = [`${FULL_PREFIX}/`, `${TENANT_PREFIX}/`] as const;
export const GLOBALS_SEGMENT = '=globals';

export function databaseSegment(database: string | null): string {
  return database === null ? GLOBALS_SEGMENT : encodeURIComponent(database);
}

export function backupFolder(sourceId: string, database: string | null, backupId: string): string {
  return [FULL_PREFIX, encodeURIComponent(sourceId), databaseSegment(database), backupId].join('/');
}

export function tenantBackupFolder(
  sourceId: string,
  database: string,
  tenant: string,
  backupId: string,
): string {
  return [TENANT_PREFIX, ...tenantSegments(sourceId, database, tenant), backupId].join('/');
}

function tenantSegments(sourceId: string, database: string, tenant: string): string[] {
  return [encodeURIComponent(sourceId), encodeURIComponent(database), encodeURIComponent(tenant)];
}

/** The folder a manifest's backup lives in (by its kind). */
export function folderOf(manifest: Manifest, backupId = manifest.backupId): string {
  return manifest.kind === 'tenant' && manifest.tenant
    ? tenantBackupFolder(manifest.sourceId, manifest.source.database ?? '', manifest.tenant.id, backupId)
    : backupFolder(manifest.sourceId, manifest.source.database, backupId);
}

/** The time a backup id was made (its sortable timestamp). */
export function backupIdTime(backupId: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z/.exec(backupId);
  if (!m) throw new Error(`not a backup id: ${backupId}`);
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!, +m[7]!));
}

/** One manifest found in a vault. */
export interface CatalogEntry {
  readonly backupId: string;
  /** Folder key of the backup. */
  readonly folder: string;
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly manifest?: Manifest | undefined;
  /** Why the manifest is not valid (then `manifest` is undefined). */
  readonly problems?: readonly string[] | undefined;
}

/** Manifest keys under a prefix (default: every backup prefix), oldest first. */
export async function manifestKeys(vault: Vault, prefix?: string): Promise<string[]> {
  const keys =
    prefix === undefined
      ? (await Promise.all(BACKUP_PREFIXES.map((p) => vault.list(p)))).flat()
      : await vault.list(prefix);
  return keys
    .filter((k) => k.endsWith(`/${MANIFEST_NAME}`))
    .sort((a, b) => backupIdOf(a).localeCompare(backupIdOf(b)));
}

function backupIdOf(manifestKey: string): string {
  const parts = manifestKey.split('/');
  return parts[parts.length - 2] ?? '';
}

async function readEntry(vault: Vault, key: string): Promise<CatalogEntry | undefined> {
  const bytes = await vault.readBytes(key);
  if (!bytes) return undefined;
  const folder = key.slice(0, -(MANIFEST_NAME.length + 1));
  const parsed = parseManifest(bytes);
  return {
    backupId: backupIdOf(key),
    folder,
    bytes,
    sha256: sha256(bytes),
    ...('manifest' in parsed ? { manifest: parsed.manifest } : { problems: parsed.problems }),
  };
}

/** Every manifest in the vault (valid or not), oldest first. */
export async function readCatalog(vault: Vault, prefix?: string): Promise<CatalogEntry[]> {
  const out: CatalogEntry[] = [];
  const keys = await manifestKeys(vault, prefix);
  // A few reads at a time: vaults hold thousands of manifests.
  for (let i = 0; i < keys.length; i += 16) {
    const batch = await Promise.all(keys.slice(i, i + 16).map((k) => readEntry(vault, k)));
    for (const entry of batch) if (entry) out.push(entry);
  }
  return out;
}

/**
 * The key prefixes of one source's backups (`full/<id>/`, `tenants/<id>/`): all its dump task may
 * list in the vault (the task role's `s3:ListBucket` is limited to them).
 */
export function sourcePrefixes(sourceId: string): string[] {
  const id = encodeURIComponent(sourceId);
  return [`${FULL_PREFIX}/${id}/`, `${TENANT_PREFIX}/${id}/`];
}

/**
 * The backup with this id, or a usage error naming it. Looks under `prefixes` only when given
 * (a dump task may list only its own source's prefixes), else in the whole vault.
 */
export async function findBackup(
  vault: Vault,
  backupId: string,
  prefixes?: readonly string[],
): Promise<CatalogEntry> {
  if (!/^[0-9A-Za-z-]+$/.test(backupId)) throw new UsageError(`--backup: "${backupId}" is not a backup id`);
  const keys = prefixes
    ? (await Promise.all(prefixes.map((p) => manifestKeys(vault, p)))).flat()
    : await manifestKeys(vault);
  const key = keys.find((k) => backupIdOf(k) === backupId);
  const entry = key ? await readEntry(vault, key) : undefined;
  if (!entry)
    throw new UsageError(
      `--backup: no backup "${backupId}" in ${vault.url} (run "cofre list --vault ${vault.url}")`,
    );
  return entry;
}

/** Earlier backups of one source and database: their ids (oldest first) and the newest manifest. */
export async function historyOf(
  vault: Vault,
  sourceId: string,
  database: string | null,
): Promise<{ backupIds: string[]; latest: CatalogEntry | undefined }> {
  return historyUnder(
    vault,
    `${[FULL_PREFIX, encodeURIComponent(sourceId), databaseSegment(database)].join('/')}/`,
  );
}

/** Earlier backups of one tenant: their ids (oldest first) and the newest manifest. */
export function tenantHistoryOf(
  vault: Vault,
  sourceId: string,
  database: string,
  tenant: string,
): Promise<{ backupIds: string[]; latest: CatalogEntry | undefined }> {
  return historyUnder(vault, `${[TENANT_PREFIX, ...tenantSegments(sourceId, database, tenant)].join('/')}/`);
}

async function historyUnder(
  vault: Vault,
  prefix: string,
): Promise<{ backupIds: string[]; latest: CatalogEntry | undefined }> {
  const keys = await manifestKeys(vault, prefix);
  const latestKey = keys[keys.length - 1];
  return {
    backupIds: keys.map(backupIdOf),
    latest: latestKey ? await readEntry(vault, latestKey) : undefined,
  };
}

/**
 * The hash-chain link to the newest earlier backup of the same source (and database or tenant):
 * its id, its manifest's SHA-256, and how long it is kept (so a verify can tell "expired" from
 * "deleted"); `null` for the first backup.
 */
export function chainLink(latest: CatalogEntry | undefined, lockUntil: Date): Manifest['previous'] {
  if (latest === undefined) return null;
  return {
    backupId: latest.backupId,
    sha256: latest.sha256,
    lockUntil: latest.manifest?.retention.lockUntil ?? lockUntil.toISOString(),
  };
}

/** Writes a backup's manifest, last: from then on the backup exists. Returns the bytes written. */
export async function writeManifest(
  vault: Vault,
  folder: string,
  manifest: Manifest,
  options: { tags: Record<string, string>; lockUntil: Date; signal?: AbortSignal | undefined },
): Promise<Buffer> {
  const bytes = serializeManifest(manifest);
  await vault.write(`${folder}/${MANIFEST_NAME}`, Readable.from([bytes]), {
    ...options,
    contentType: 'application/json',
  });
  return bytes;
}
