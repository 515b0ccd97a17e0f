import { Readable } from 'node:stream';
import {
  BACKUP_ID,
  MANIFEST_NAME,
  parseManifest,
  serializeManifest,
  sha256,
  type Manifest,
} from './manifest';
import { CofreError, OperationalError, UsageError, messageOf } from '../util/errors';
import type { Vault } from '../vault';
import {
  BACKUP_PREFIXES,
  folderOf,
  backupIdTime,
  backupIdOf,
  chainPrefix,
  tenantChainPrefix,
  CHAIN_LOCK_NAME,
} from './keys';
import { acquireChainLock, type HeldChainLock } from './chain-lock';
import { withCancellableRun } from '../util/run-context';

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

/**
 * Earlier backups of one source and database, read from the vault's manifests (not the history
 * table): their ids (oldest first) and the newest good manifest.
 */
export async function priorBackupsOf(
  vault: Vault,
  sourceId: string,
  database: string | null,
  log?: (line: string) => void,
): Promise<{ backupIds: string[]; latest: CatalogEntry | undefined }> {
  return priorBackupsUnder(vault, chainPrefix(sourceId, database), log);
}

/** Earlier backups of one tenant: their ids (oldest first) and the newest good manifest. */
export function priorTenantBackupsOf(
  vault: Vault,
  sourceId: string,
  database: string,
  tenant: string,
  log?: (line: string) => void,
): Promise<{ backupIds: string[]; latest: CatalogEntry | undefined }> {
  return priorBackupsUnder(vault, tenantChainPrefix(sourceId, database, tenant), log);
}

/**
 * The chain's history. Only a backup that is one can be the previous link: a folder whose
 * manifest does not parse or validate, is another backup's manifest, is named like a backup made
 * in the future, or whose artifacts are missing or of the wrong size is skipped (and reported),
 * and the link goes to the newest good one before it.
 */
async function priorBackupsUnder(
  vault: Vault,
  prefix: string,
  log: (line: string) => void = () => undefined,
): Promise<{ backupIds: string[]; latest: CatalogEntry | undefined }> {
  const now = Date.now();
  const keys = (await manifestKeys(vault, prefix)).filter((k) => {
    const id = backupIdOf(k);
    // Only this chain's own folders (not a tenant's, below a database's prefix).
    if (k !== `${prefix}${id}/${MANIFEST_NAME}`) return false;
    if (!BACKUP_ID.test(id) || backupIdTime(id).getTime() > now + 5 * 60_000) {
      log(`ignoring ${vault.url}/${k}: "${id}" is not the id of a backup made by now`);
      return false;
    }
    return true;
  });
  let latest: CatalogEntry | undefined;
  for (let i = keys.length - 1; i >= 0 && !latest; i--) {
    const entry = await readEntry(vault, keys[i]!);
    const why = entry ? await unfitLink(vault, entry) : 'it is gone';
    if (why === undefined) latest = entry;
    else log(`not chaining to ${vault.url}/${keys[i]!}: ${why}`);
  }
  return { backupIds: keys.map(backupIdOf), latest };
}

/** Why a manifest cannot be a previous link, or `undefined` when it can. */
async function unfitLink(vault: Vault, entry: CatalogEntry): Promise<string | undefined> {
  const m = entry.manifest;
  if (!m) return `its manifest is invalid (${(entry.problems ?? []).join('; ')})`;
  if (m.backupId !== entry.backupId || folderOf(m) !== entry.folder)
    return `its manifest is the manifest of backup ${m.backupId} (${folderOf(m)})`;
  for (const a of m.artifacts) {
    const stat = await vault.stat(`${entry.folder}/${a.name}`);
    if (!stat) return `its artifact ${a.name} is missing`;
    if (stat.bytes !== a.bytes.stored)
      return `its artifact ${a.name} has ${stat.bytes} bytes, the manifest records ${a.bytes.stored}`;
    if (a.s3?.checksumSha256 && stat.checksumSha256 && a.s3.checksumSha256 !== stat.checksumSha256)
      return `its artifact ${a.name} has another S3 checksum than the manifest records`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The chain lock

/** Something a run that did not finish left in a vault. */
export interface Leftover {
  readonly key: string;
  readonly why: string;
}

/**
 * What runs that did not finish left under `prefix`: temporary files of a file vault (`*.partial-*`,
 * after a SIGKILL) and backup folders without a manifest (an artifact whose manifest was never
 * written: ENOSPC, a kill between the two). Stale chain locks are reported by {@link withChainLock}.
 */
export async function findLeftovers(vault: Vault, prefix?: string): Promise<Leftover[]> {
  const prefixes = prefix === undefined ? [...BACKUP_PREFIXES] : [prefix];
  const out: Leftover[] = [];
  for (const p of prefixes) {
    const partial = vault as Vault & { partialKeys?: (prefix: string) => Promise<string[]> };
    for (const key of (await partial.partialKeys?.(p)) ?? [])
      out.push({ key, why: 'a temporary file of a write that never finished' });
    const keys = await vault.list(p);
    const manifests = new Set(keys.filter((k) => k.endsWith(`/${MANIFEST_NAME}`)));
    for (const key of keys) {
      const folder = key.slice(0, key.lastIndexOf('/'));
      const id = folder.slice(folder.lastIndexOf('/') + 1);
      if (BACKUP_ID.test(id) && !manifests.has(`${folder}/${MANIFEST_NAME}`))
        out.push({ key, why: 'an artifact without a manifest (its backup never finished)' });
    }
  }
  return out;
}

/**
 * Removes what runs that did not finish left in a chain's folder. Called holding the chain's lock,
 * so nothing there can belong to a running backup. A file vault's leftovers are removed; an S3
 * vault's are only reported (Object Lock keeps them; the lifecycle expires them by their tier tag).
 */
async function cleanLeftovers(vault: Vault, prefix: string, log: (line: string) => void): Promise<void> {
  for (const l of await findLeftovers(vault, prefix)) {
    if (vault.kind === 'file') {
      log(`removing ${vault.url}/${l.key}: ${l.why}`);
      await vault.remove(l.key);
    } else log(`found ${vault.url}/${l.key}: ${l.why} (kept: S3 Object Lock; the lifecycle expires it)`);
  }
}

/**
 * Runs `fn` holding the chain's lock (core/catalog/chain-lock.ts): an object created only if absent (file:
 * `O_EXCL`; S3: `If-None-Match: *`), so two backups of the same database into the same vault can
 * never both run and fork the chain (two with the same `previous`, two yearlies). The second one
 * fails at once (exit 1), before it writes anything. The lock is renewed while `fn` runs; a lock
 * not renewed for `staleAfterMs` (a run that crashed or lost the vault) is taken over by the next
 * run, saying whose it was. If this run loses its lock, `fn`'s tools and sessions are stopped and
 * `lock.confirm()`, called before the manifest is written, fails: nothing is committed.
 */
export async function withChainLock<T>(
  vault: Vault,
  prefix: string,
  fn: (lock: HeldChainLock) => Promise<T>,
  log: (line: string) => void = () => undefined,
  options: { readonly staleAfterMs?: number | undefined } = {},
): Promise<T> {
  const key = `${prefix}${CHAIN_LOCK_NAME}`;
  const lock = await acquireChainLock(vault, key, {
    chain: prefix.replace(/\/$/, ''),
    staleAfterMs: options.staleAfterMs,
    log,
  });
  try {
    await cleanLeftovers(vault, prefix, log);
    // A lost lock stops the run's tools and sessions like a cancellation.
    return await withCancellableRun({ signal: lock.lost }, () => fn(lock));
  } finally {
    await lock.release().catch((error: unknown) => {
      log(`could not release the chain lock ${vault.url}/${key}: ${messageOf(error)}`);
    });
  }
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

/**
 * Writes a backup's manifest, last: from then on the backup exists. Returns the bytes written. When
 * the manifest cannot be written (a full disk, a lost connection), the backup's artifacts are not a
 * backup: a file vault's are removed at once (the folder is this run's own, by its new backup id);
 * an S3 vault's stay under Object Lock, are reported by `verify` and expire by their tier.
 */
export async function writeManifest(
  vault: Vault,
  folder: string,
  manifest: Manifest,
  options: { tags: Record<string, string>; lockUntil: Date; signal?: AbortSignal | undefined },
): Promise<Buffer> {
  const bytes = serializeManifest(manifest);
  try {
    await vault.write(`${folder}/${MANIFEST_NAME}`, Readable.from([bytes]), {
      ...options,
      contentType: 'application/json',
    });
  } catch (error) {
    const keys = manifest.artifacts.map((a) => `${folder}/${a.name}`);
    let what: string;
    if (vault.kind === 'file') {
      const kept: string[] = [];
      for (const key of keys) await vault.remove(key).catch(() => kept.push(key));
      what = kept.length
        ? `; could not remove ${kept.join(', ')} (the next backup removes it)`
        : '; its artifact was removed';
    } else
      what = `; its artifact ${keys.join(', ')} stays under Object Lock without a manifest (not a backup; verify reports it, the lifecycle expires it)`;
    // A cancellation or usage error keeps its own kind and code.
    if (error instanceof CofreError && !(error.constructor === OperationalError)) throw error;
    throw new OperationalError(`manifest not written: ${messageOf(error)}${what}`, { cause: error });
  }
  return bytes;
}
