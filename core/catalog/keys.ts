/** The vault's key layout, in one place: every key and prefix Cofre writes or lists is built here. */

import type { Manifest } from './manifest';

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
  return database === null ? GLOBALS_SEGMENT : segment(database);
}

export function backupFolder(sourceId: string, database: string | null, backupId: string): string {
  return [FULL_PREFIX, segment(sourceId), databaseSegment(database), backupId].join('/');
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
  return [segment(sourceId), segment(database), segment(tenant)];
}

/**
 * One path segment: URI-encoded, and "." / ".." (which encodeURIComponent leaves as they are, and
 * which a file vault would resolve to the folder itself or its parent) with their dots encoded.
 */
function segment(value: string): string {
  const encoded = encodeURIComponent(value);
  return /^\.+$/.test(encoded) ? encoded.replace(/\./g, '%2E') : encoded;
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

export function backupIdOf(manifestKey: string): string {
  const parts = manifestKey.split('/');
  return parts[parts.length - 2] ?? '';
}

/**
 * The key prefixes of one source's backups (`full/<id>/`, `tenants/<id>/`): all its dump task may
 * list in the vault (the task role's `s3:ListBucket` is limited to them).
 */
export function sourcePrefixes(sourceId: string): string[] {
  return [fullSourcePrefix(sourceId), tenantSourcePrefix(sourceId)];
}

/** The folder (ending in `/`) of one source's full and globals backups: `full/<source>/`. */
export function fullSourcePrefix(sourceId: string): string {
  return `${FULL_PREFIX}/${encodeURIComponent(sourceId)}/`;
}

/** The folder (ending in `/`) of one source's tenant backups: `tenants/<source>/`. */
export function tenantSourcePrefix(sourceId: string): string {
  return `${TENANT_PREFIX}/${encodeURIComponent(sourceId)}/`;
}

/** The folder (ending in `/`) of the tenant backups of one database: `tenants/<source>/<database>/`. */
export function tenantDatabasePrefix(sourceId: string, database: string): string {
  return `${tenantSourcePrefix(sourceId)}${encodeURIComponent(database)}/`;
}

/** The folder (ending in `/`) that holds one chain: the backups of one source and database. */
export function chainPrefix(sourceId: string, database: string | null): string {
  return `${[FULL_PREFIX, segment(sourceId), databaseSegment(database)].join('/')}/`;
}

/** The folder (ending in `/`) that holds one tenant's chain. */
export function tenantChainPrefix(sourceId: string, database: string, tenant: string): string {
  return `${[TENANT_PREFIX, ...tenantSegments(sourceId, database, tenant)].join('/')}/`;
}

// ---------------------------------------------------------------------------------------------
// The chain lock

/** The lock object of a chain, beside its backups: only one backup of a chain runs at a time. */
export const CHAIN_LOCK_NAME = '=lock.json';
