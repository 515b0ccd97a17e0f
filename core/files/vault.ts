import type { S3Client } from '@aws-sdk/client-s3';
import { UsageError } from '../util/errors';
import { S3Vault, type LockMode } from '../vault';

/**
 * The files vault: an S3 bucket (versioned, Object Lock, SSE-KMS) that holds copies of the objects
 * of S3-compatible sources and their catalogues. Versions are the point: every copy of a key is a
 * version, and a catalogue names the version that was current at its run. A `file://` vault has no
 * versions, so it cannot be one.
 */
export interface FilesVault {
  /** `s3://bucket/prefix`, for messages. */
  readonly url: string;
  readonly client: S3Client;
  readonly bucket: string;
  /** Key prefix in the bucket, no leading or trailing `/` ('' for the root). */
  readonly prefix: string;
  readonly sseKmsKeyId?: string | undefined;
  /** Object Lock mode of every write (from configuration, never detected). */
  readonly objectLockMode: LockMode;
  /** The same bucket and prefix as a backup vault: manifests, catalogues, the run lock. */
  readonly root: S3Vault;
  /** The bucket key of a key relative to the vault root. */
  keyOf(key: string): string;
}

export interface FilesVaultOptions {
  readonly client: S3Client;
  readonly sseKmsKeyId?: string | undefined;
  readonly objectLockMode: LockMode;
}

/** Opens `s3://bucket[/prefix]` as a files vault; `flag` names the option in errors. */
export function openFilesVault(url: string, options: FilesVaultOptions, flag = '--vault'): FilesVault {
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (!match)
    throw new UsageError(
      `${flag}: expected s3://bucket/prefix (a files vault is a versioned S3 bucket; file:// vaults keep no versions), got "${url}"`,
    );
  const bucket = match[1]!;
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
  const root = new S3Vault({
    client: options.client,
    bucket,
    prefix,
    sseKmsKeyId: options.sseKmsKeyId,
    objectLockMode: options.objectLockMode,
  });
  return {
    url: root.url,
    client: options.client,
    bucket,
    prefix,
    sseKmsKeyId: options.sseKmsKeyId,
    objectLockMode: options.objectLockMode,
    root,
    keyOf: (key) => (prefix ? `${prefix}/${key}` : key),
  };
}
