import type { Readable } from 'node:stream';

/** How an object is stored. */
export interface WriteOptions {
  /** Object tags (`cofre:tier`, `cofre:class`) that the vault's lifecycle rules filter on. */
  readonly tags: Readonly<Record<string, string>>;
  /** Object Lock retain-until date (S3 vaults with Object Lock enabled). */
  readonly lockUntil?: Date | undefined;
  readonly contentType?: string | undefined;
  /** Aborting it aborts the write; nothing is left behind. */
  readonly signal?: AbortSignal | undefined;
}

/** What a vault knows about one stored object without reading it. */
export interface StoredObject {
  readonly key: string;
  readonly bytes: number;
  /** S3 ETag (quotes removed). */
  readonly etag?: string | undefined;
  /** S3's stored SHA-256 checksum (base64; `…-N` composite for multipart objects). */
  readonly checksumSha256?: string | undefined;
  readonly versionId?: string | undefined;
}

/**
 * Where backups live: `s3://bucket/prefix` or `file:///dir`. Keys are relative to the vault root
 * and use `/`. A write is atomic: the object exists only if `write` resolves; if the body stream
 * fails or the signal aborts, the multipart upload is aborted or the temporary file removed.
 */
export interface Vault {
  /** The vault's URL, for messages. */
  readonly url: string;
  readonly kind: 's3' | 'file';
  write(key: string, body: Readable, options: WriteOptions): Promise<StoredObject>;
  read(key: string, signal?: AbortSignal): Promise<Readable>;
  /** The object's bytes, or `undefined` if there is no such object. */
  readBytes(key: string): Promise<Buffer | undefined>;
  stat(key: string): Promise<StoredObject | undefined>;
  /** Every key under `prefix` (relative to the vault root), sorted. */
  list(prefix: string): Promise<string[]>;
}

/** Joins key segments with `/`, refusing segments that could escape the vault layout. */
export function vaultKey(...segments: string[]): string {
  for (const s of segments) {
    if (!s || s === '.' || s === '..' || s.includes('/') || s.includes('\\') || s.includes('\0'))
      throw new Error(`invalid key segment "${s}"`);
  }
  return segments.join('/');
}
