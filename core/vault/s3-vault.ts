import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import { sha256Of } from '../util/sha256';
import { OperationalError, messageOf } from '../util/errors';
import type { LockMode, StoredObject, Vault, WriteOptions } from './types';

/** Settings of an S3 vault. */
export interface S3VaultOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/` ('' for the bucket root). */
  readonly prefix: string;
  /** KMS key for SSE-KMS (the vault's bucket policy requires it); `undefined` sends no SSE headers. */
  readonly sseKmsKeyId?: string | undefined;
  /**
   * Object Lock mode of every write with a `lockUntil`, from configuration (the vault's
   * `objectLock.mode`), never detected: a bucket whose configuration the caller cannot read would
   * otherwise get no retain-until date at all. Each such object is read back after the write and the
   * write fails unless S3 reports this mode and a date no earlier than `lockUntil`. `none` writes no
   * lock (a bucket without Object Lock).
   */
  readonly objectLockMode: LockMode;
  /** Multipart part size in bytes. @default 16 MiB (10,000 parts: up to 160 GiB per artifact) */
  readonly partSize?: number;
  /** Parts uploaded at once (memory: partSize × (queueSize + 1)). @default 2 */
  readonly queueSize?: number;
}

/**
 * A vault in an S3 bucket: streamed multipart uploads with `@aws-sdk/lib-storage`, SHA-256 S3
 * checksums, SSE-KMS with the vault key and bucket keys, tags and Object Lock retain-until set in
 * the same request. A failed body aborts the multipart upload, so no object appears.
 */
export class S3Vault implements Vault {
  readonly kind = 's3' as const;
  readonly url: string;
  readonly objectLockMode: LockMode;

  constructor(private readonly options: S3VaultOptions) {
    this.url = `s3://${options.bucket}${options.prefix ? `/${options.prefix}` : ''}`;
    this.objectLockMode = options.objectLockMode;
  }

  private keyOf(key: string): string {
    return this.options.prefix ? `${this.options.prefix}/${key}` : key;
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<StoredObject> {
    const lockMode = options.lockUntil && this.objectLockMode !== 'none' ? this.objectLockMode : undefined;
    const upload = new Upload({
      client: this.options.client,
      partSize: this.options.partSize ?? 16 * 1024 * 1024,
      queueSize: this.options.queueSize ?? 2,
      leavePartsOnError: false,
      params: {
        Bucket: this.options.bucket,
        Key: this.keyOf(key),
        Body: body,
        ContentType: options.contentType ?? 'application/octet-stream',
        ChecksumAlgorithm: 'SHA256',
        Tagging: new URLSearchParams(options.tags).toString(),
        ...(this.options.sseKmsKeyId
          ? { ServerSideEncryption: 'aws:kms', SSEKMSKeyId: this.options.sseKmsKeyId, BucketKeyEnabled: true }
          : {}),
        ...(lockMode && options.lockUntil
          ? { ObjectLockMode: lockMode, ObjectLockRetainUntilDate: options.lockUntil }
          : {}),
      },
    });
    // Abort by failing the body: lib-storage then aborts the multipart upload *before* done()
    // rejects (Upload.abort() would reject first and abort later).
    const onAbort = () => body.destroy(new Error('upload aborted'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let bodyError: unknown;
    body.once('error', (error) => (bodyError ??= error));
    try {
      const out = await upload.done();
      const stored = await this.stat(key);
      if (lockMode && options.lockUntil) this.requireLock(key, stored, lockMode, options.lockUntil);
      return {
        key,
        bytes: stored?.bytes ?? 0,
        etag: out.ETag?.replace(/"/g, '') ?? stored?.etag,
        checksumSha256: out.ChecksumSHA256 ?? stored?.checksumSha256,
        versionId: out.VersionId ?? stored?.versionId,
        lock: stored?.lock,
      };
    } catch (error) {
      if (error instanceof LockNotSetError) throw error;
      if (!body.destroyed) body.destroy();
      // lib-storage reports the failure of its AbortMultipartUpload instead of the body's error.
      const cause = bodyError ?? error;
      const abortFailed = bodyError !== undefined && error !== bodyError && upload.uploadId !== undefined;
      throw new OperationalError(
        abortFailed
          ? `${this.url}: upload of ${key} failed: ${messageOf(cause)}; aborting multipart upload ${upload.uploadId} also failed (${messageOf(error)}), the vault's lifecycle rule removes it within a day`
          : `${this.url}: upload of ${key} failed, nothing was stored: ${messageOf(cause)}`,
        { cause },
      );
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Fails unless S3 reports the lock that was asked for (the object stays: S3 may keep it locked). */
  private requireLock(key: string, stored: StoredObject | undefined, mode: string, until: Date): void {
    const problem = lockProblem(stored?.lock, mode, until);
    if (problem)
      throw new LockNotSetError(
        `${this.url}: ${key} was written, but its Object Lock is not what the backup needs: ${problem}. ` +
          `Is Object Lock enabled on bucket ${this.options.bucket}, and may this role s3:PutObjectRetention and s3:GetObjectRetention? ` +
          `The backup fails: its manifest is not written, so the object is not a backup.`,
      );
  }

  async read(key: string, signal?: AbortSignal): Promise<Readable> {
    try {
      const out = await this.options.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key) }),
        { abortSignal: signal },
      );
      return out.Body as Readable;
    } catch (error) {
      if ((error as { name?: string }).name === 'InvalidObjectState') {
        const tier = (error as { StorageClass?: string }).StorageClass ?? 'an archive storage class';
        throw new OperationalError(
          `${this.url}: ${key} is in ${tier} and must be brought back before it can be read: run "aws s3api restore-object --bucket ${this.options.bucket} --key ${this.keyOf(key)} --restore-request Days=7,GlacierJobParameters={Tier=Standard}" for each object of the backup (hours for GLACIER, up to 12 h for DEEP_ARCHIVE), then retry`,
          { cause: error },
        );
      }
      throw new OperationalError(`${this.url}: cannot read ${key}: ${messageOf(error)}`, { cause: error });
    }
  }

  async sha256(key: string, onChunk?: (chunk: Buffer) => void): Promise<string> {
    return (await sha256Of(await this.read(key), onChunk)).sha256;
  }

  async readBytes(key: string): Promise<Buffer | undefined> {
    try {
      const out = await this.options.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key) }),
      );
      return Buffer.from(await out.Body!.transformToByteArray());
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw new OperationalError(`${this.url}: cannot read ${key}: ${messageOf(error)}`, { cause: error });
    }
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const out = await this.options.client.send(
        new HeadObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key), ChecksumMode: 'ENABLED' }),
      );
      return {
        key,
        bytes: out.ContentLength ?? 0,
        etag: out.ETag?.replace(/"/g, ''),
        checksumSha256: out.ChecksumSHA256,
        versionId: out.VersionId,
        lock:
          out.ObjectLockMode && out.ObjectLockRetainUntilDate
            ? { mode: out.ObjectLockMode, until: out.ObjectLockRetainUntilDate }
            : undefined,
      };
    } catch (error) {
      if (error instanceof NotFound || (error as { name?: string }).name === 'NotFound') return undefined;
      throw new OperationalError(`${this.url}: cannot stat ${key}: ${messageOf(error)}`, { cause: error });
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    const strip = this.options.prefix ? this.options.prefix.length + 1 : 0;
    let token: string | undefined;
    try {
      do {
        const out = await this.options.client.send(
          new ListObjectsV2Command({
            Bucket: this.options.bucket,
            Prefix: this.keyOf(prefix),
            ContinuationToken: token,
          }),
        );
        for (const object of out.Contents ?? []) if (object.Key) keys.push(object.Key.slice(strip));
        token = out.IsTruncated ? out.NextContinuationToken : undefined;
      } while (token);
    } catch (error) {
      throw new OperationalError(`${this.url}: cannot list ${prefix}: ${messageOf(error)}`, { cause: error });
    }
    return keys.sort();
  }

  /**
   * Conditional writes (S3 since 2024): `If-None-Match: *` creates the object only when the key is
   * free, so of two concurrent writers exactly one succeeds. A key that holds a released marker
   * ({@link release}) is taken over with `If-Match` on the marker's ETag, again by exactly one.
   */
  async createExclusive(key: string, bytes: Buffer): Promise<boolean> {
    if (await this.conditionalPut(key, bytes, { IfNoneMatch: '*' })) return true;
    const current = await this.currentVersion(key);
    if (current === undefined) return this.conditionalPut(key, bytes, { IfNoneMatch: '*' });
    if (!current.released) return false;
    return this.conditionalPut(key, bytes, { IfMatch: current.etag });
  }

  /** Replaces the current version only if its body is `expected`, with `If-Match` on its ETag. */
  async replaceExclusive(key: string, expected: Buffer, bytes: Buffer): Promise<boolean> {
    const current = await this.currentVersion(key);
    if (current === undefined || !current.body.equals(expected)) return false;
    return this.conditionalPut(key, bytes, { IfMatch: current.etag });
  }

  /** Writes a released marker over the current version (conditional on it): S3 objects are never deleted here. */
  async release(key: string, expected?: Buffer): Promise<void> {
    const current = await this.currentVersion(key);
    if (current === undefined || current.released) return;
    if (expected !== undefined && !current.body.equals(expected)) return; // another run's now
    const marker = Buffer.from(`${JSON.stringify({ released: true, at: new Date().toISOString() })}\n`);
    // 412: someone took it over meanwhile (it was stale); it is theirs now, nothing to release.
    await this.conditionalPut(key, marker, { IfMatch: current.etag });
  }

  remove(key: string): Promise<void> {
    return Promise.reject(
      new OperationalError(
        `${this.url}: ${key} is not deleted: Cofre never deletes from an S3 vault (Object Lock and the lifecycle own its objects)`,
      ),
    );
  }

  private async currentVersion(
    key: string,
  ): Promise<{ etag: string; released: boolean; body: Buffer } | undefined> {
    try {
      const out = await this.options.client.send(
        new GetObjectCommand({ Bucket: this.options.bucket, Key: this.keyOf(key) }),
      );
      const body = Buffer.from(await out.Body!.transformToByteArray());
      const text = body.toString('utf8');
      let released = false;
      try {
        released = (JSON.parse(text) as { released?: unknown }).released === true;
      } catch {
        // not JSON: a lock body that is not ours to interpret as released
      }
      return { etag: out.ETag!, released, body };
    } catch (error) {
      if (error instanceof NoSuchKey || (error as { name?: string }).name === 'NoSuchKey') return undefined;
      throw new OperationalError(`${this.url}: cannot read ${key}: ${messageOf(error)}`, { cause: error });
    }
  }

  /** A small conditional PutObject; false when S3 answers 412 (the condition did not hold). */
  private async conditionalPut(
    key: string,
    bytes: Buffer,
    condition: { IfNoneMatch: '*' } | { IfMatch: string },
  ): Promise<boolean> {
    try {
      await this.options.client.send(
        new PutObjectCommand({
          Bucket: this.options.bucket,
          Key: this.keyOf(key),
          Body: bytes,
          ...condition,
          ContentType: 'application/json',
          ChecksumAlgorithm: 'SHA256',
          ...(this.options.sseKmsKeyId
            ? {
                ServerSideEncryption: 'aws:kms',
                SSEKMSKeyId: this.options.sseKmsKeyId,
                BucketKeyEnabled: true,
              }
            : {}),
        }),
      );
      return true;
    } catch (error) {
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || (error as Error).name === 'PreconditionFailed') return false;
      throw new OperationalError(`${this.url}: cannot write ${key}: ${messageOf(error)}`, { cause: error });
    }
  }
}

/** A write asked for an Object Lock that S3 does not report afterwards. */
export class LockNotSetError extends OperationalError {}

/**
 * Why `lock` (as S3 reports it) does not protect an object in `mode` until `until`, or `undefined`
 * when it does. COMPLIANCE satisfies a GOVERNANCE request (it is stronger); S3 keeps retain-until
 * dates to the second, so a date up to a second early is the same date.
 */
export function lockProblem(lock: StoredObject['lock'], mode: string, until: Date): string | undefined {
  if (!lock) return `no Object Lock, where ${mode} until ${until.toISOString()} was expected`;
  if (lock.mode !== mode && !(mode === 'GOVERNANCE' && lock.mode === 'COMPLIANCE'))
    return `Object Lock ${lock.mode}, where ${mode} was expected${mode === 'COMPLIANCE' ? ' (GOVERNANCE can be lifted by a privileged user)' : ''}`;
  if (lock.until.getTime() < until.getTime() - 1000)
    return `locked only until ${lock.until.toISOString()}, where ${until.toISOString()} was expected`;
  return undefined;
}

/** Reads a whole small stream into memory (for tests and manifests). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}
