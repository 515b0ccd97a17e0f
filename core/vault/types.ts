import type { Readable } from 'node:stream';

/** How a vault locks what it writes: an S3 Object Lock mode, or `none` (file vaults, buckets without Object Lock). */
export const LOCK_MODES = ['COMPLIANCE', 'GOVERNANCE', 'none'] as const;
export type LockMode = (typeof LOCK_MODES)[number];

/** An object's Object Lock as the storage service reports it. */
export interface StoredLock {
  readonly mode: string;
  readonly until: Date;
}

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
  /** The Object Lock S3 reports for the object (S3 vaults; `undefined` when it has none). */
  readonly lock?: StoredLock | undefined;
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
  /**
   * The lock every write with a `lockUntil` gets, from configuration (never detected): a write that
   * asks for a lock and cannot set it fails.
   */
  readonly objectLockMode: LockMode;
  write(key: string, body: Readable, options: WriteOptions): Promise<StoredObject>;
  read(key: string, signal?: AbortSignal): Promise<Readable>;
  /** The object's bytes, or `undefined` if there is no such object. */
  readBytes(key: string): Promise<Buffer | undefined>;
  /**
   * The SHA-256 (hex) of the object's bytes, read whole (a file vault's check of an artifact, which
   * has no stored checksum). `onChunk` sees each piece as it is hashed, valid only during the call.
   */
  sha256(key: string, onChunk?: (chunk: Buffer) => void): Promise<string>;
  stat(key: string): Promise<StoredObject | undefined>;
  /** Every key under `prefix` (relative to the vault root), sorted. */
  list(prefix: string): Promise<string[]>;
  /**
   * Creates a small object only if no object has this key (file: `O_EXCL`; S3: a conditional
   * PutObject with `If-None-Match: *`). Resolves `false` when the key exists: two writers can
   * never both succeed. For lock objects, never for backups.
   */
  createExclusive(key: string, bytes: Buffer): Promise<boolean>;
  /**
   * Replaces an object made by {@link createExclusive} only if its content is still `expected`
   * (compare-and-swap; S3: a conditional PutObject with `If-Match` on the ETag of the version whose
   * body is `expected`; file vault: a claim file for that content made with `O_EXCL`, then a rename).
   * Resolves `false` when the content is another (renewed or taken over by someone else) or gone:
   * of several writers replacing the same content, exactly one succeeds.
   */
  replaceExclusive(key: string, expected: Buffer, bytes: Buffer): Promise<boolean>;
  /**
   * Frees an object made by {@link createExclusive} so that the next `createExclusive` of the key
   * succeeds: a file vault deletes it; an S3 vault, from which Cofre never deletes (its writers may
   * not `s3:DeleteObject`), writes a new version marked released, conditional on the version it read.
   * With `expected`, only if the content is still that (a lock taken over is the new holder's).
   * No error when it is gone or already released.
   */
  release(key: string, expected?: Buffer): Promise<void>;
  /** Deletes a leftover file of a file vault; an S3 vault refuses (Object Lock and the lifecycle own its objects). */
  remove(key: string): Promise<void>;
}
