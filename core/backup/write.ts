import { chainLink, writeManifest, type CatalogEntry } from '../catalog/catalog';
import { MANIFEST_FORMAT_VERSION, artifactEntry, type Manifest } from '../catalog/manifest';
import type { Retention, RetentionSettings } from '../policy/retention';
import type { RunningDump } from '../sources/types';
import type { Vault } from '../vault';
import type { Keys } from '../vault/crypto';
import { streamToVault, type Progress, type StreamResult } from './stream-encoder';

/** Where and how every backup run writes: full, globals and tenant backups alike. */
export interface BackupRunSettings {
  readonly vault: Vault;
  readonly keys: Keys;
  readonly dataClass?: string | undefined;
  readonly retention?: RetentionSettings | undefined;
  readonly timeZone?: string | undefined;
  readonly zstdLevel?: number | undefined;
  readonly signal?: AbortSignal | undefined;
  /** A chain lock not renewed for this long is stale and taken over (default 10 minutes). */
  readonly chainLockStaleAfterMs?: number | undefined;
  readonly log?: ((line: string) => void) | undefined;
  readonly now?: (() => Date) | undefined;
}

/** The manifest fields the writer of a backup decides; `writeBackup` adds the rest. */
export type ManifestBody = Omit<
  Manifest,
  'formatVersion' | 'startedAt' | 'finishedAt' | 'durationMs' | 'retention' | 'artifacts' | 'previous'
>;

export interface WriteBackupOptions {
  readonly vault: Vault;
  readonly keys: Keys;
  /** The backup's folder in the vault (core/catalog/catalog.ts). */
  readonly folder: string;
  readonly artifactName: string;
  /** The running dump or export whose stdout becomes the artifact. */
  readonly dump: RunningDump;
  readonly tags: Record<string, string>;
  readonly retention: Retention;
  readonly encryptionContext: Record<string, string>;
  readonly zstdLevel: number;
  /** The newest good backup of the chain: the manifest's `previous` link. */
  readonly latest: CatalogEntry | undefined;
  readonly startedAt: Date;
  readonly now: () => Date;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((p: Progress) => void) | undefined;
  /** The commit point, just before the manifest is written (the chain lock is still this run's). */
  readonly beforeManifest?: (() => Promise<void>) | undefined;
  /** The rest of the manifest, asked for once the dump has finished (a tenant's content hashes are known only then). */
  readonly body: () => ManifestBody;
}

export interface WrittenBackup {
  readonly manifest: Manifest;
  /** The manifest as stored. */
  readonly manifestBytes: Buffer;
  readonly result: StreamResult;
}

/**
 * Writes one backup: the dump streamed into its artifact (locked until the retention's date from
 * now), then its manifest (artifact entry, timings, retention, the link to the chain's previous
 * backup), which is written last, so a failed backup leaves no manifest. Shared by full, globals
 * and tenant backups.
 */
export async function writeBackup(o: WriteBackupOptions): Promise<WrittenBackup> {
  const lockUntil = o.retention.lockUntil(o.now());
  const result = await streamToVault({
    dump: o.dump,
    vault: o.vault,
    key: `${o.folder}/${o.artifactName}`,
    writeOptions: { tags: o.tags, lockUntil },
    keys: o.keys,
    encryptionContext: o.encryptionContext,
    zstdLevel: o.zstdLevel,
    signal: o.signal,
    onProgress: o.onProgress,
  });
  const finishedAt = o.now();
  const manifest: Manifest = {
    formatVersion: MANIFEST_FORMAT_VERSION,
    ...o.body(),
    startedAt: o.startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    durationMs: finishedAt.getTime() - o.startedAt.getTime(),
    retention: {
      expireAfterDays: o.retention.expireAfterDays,
      lockUntil: lockUntil.toISOString(),
      lockMode: o.vault.objectLockMode,
    },
    artifacts: [
      artifactEntry({
        name: o.artifactName,
        format: o.dump.format,
        result,
        largestStatementBytes: o.dump.largestStatementBytes?.(),
      }),
    ],
    previous: chainLink(o.latest, lockUntil),
  };
  await o.beforeManifest?.();
  const manifestBytes = await writeManifest(o.vault, o.folder, manifest, {
    tags: o.tags,
    lockUntil: o.retention.lockUntil(o.now()),
    signal: o.signal,
  });
  return { manifest, manifestBytes, result };
}
