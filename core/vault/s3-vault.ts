import {
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  NotFound,
  type ObjectLockMode,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import { OperationalError, messageOf } from '../errors';
import type { StoredObject, Vault, WriteOptions } from './types';

/** Settings of an S3 vault. */
export interface S3VaultOptions {
  readonly client: S3Client;
  readonly bucket: string;
  /** Key prefix inside the bucket, without leading or trailing `/` ('' for the bucket root). */
  readonly prefix: string;
  /** KMS key for SSE-KMS (the vault's bucket policy requires it); `undefined` sends no SSE headers. */
  readonly sseKmsKeyId?: string | undefined;
  /**
   * Object Lock mode for per-object retain-until dates. `'detect'` reads the bucket's Object Lock
   * configuration once (none when the bucket has none or the server does not implement it).
   */
  readonly objectLockMode?: ObjectLockMode | 'detect' | 'off';
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
  private lockMode: Promise<ObjectLockMode | undefined> | undefined;

  constructor(private readonly options: S3VaultOptions) {
    this.url = `s3://${options.bucket}${options.prefix ? `/${options.prefix}` : ''}`;
  }

  private keyOf(key: string): string {
    return this.options.prefix ? `${this.options.prefix}/${key}` : key;
  }

  private objectLockMode(): Promise<ObjectLockMode | undefined> {
    const mode = this.options.objectLockMode ?? 'detect';
    if (mode === 'off') return Promise.resolve(undefined);
    if (mode !== 'detect') return Promise.resolve(mode);
    this.lockMode ??= this.options.client
      .send(new GetObjectLockConfigurationCommand({ Bucket: this.options.bucket }))
      .then((out) =>
        out.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled'
          ? (out.ObjectLockConfiguration.Rule?.DefaultRetention?.Mode ?? 'COMPLIANCE')
          : undefined,
      )
      .catch(() => undefined);
    return this.lockMode;
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<StoredObject> {
    const lockMode = options.lockUntil ? await this.objectLockMode() : undefined;
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
      return {
        key,
        bytes: stored?.bytes ?? 0,
        etag: out.ETag?.replace(/"/g, '') ?? stored?.etag,
        checksumSha256: out.ChecksumSHA256 ?? stored?.checksumSha256,
        versionId: out.VersionId ?? stored?.versionId,
      };
    } catch (error) {
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
}

/** Reads a whole small stream into memory (for tests and manifests). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream)
    chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}
