import { createHash } from 'node:crypto';
import { PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ALGORITHM_SUITE_NAME, FRAME_LENGTH, encryptStream, type Keys } from '../vault/crypto';
import { CancelledError, CofreError, OperationalError, messageOf } from '../util/errors';
import type { RunningDump, TableCount } from '../sources/types';
import type { StoredObject, Vault, WriteOptions } from '../vault';
import { compressStage } from './compress-stage';

/** Default zstd level: chosen from `npm run bench` (see README, Benchmarks). */
export const DEFAULT_ZSTD_LEVEL = 1;

export interface Progress {
  /** Plaintext bytes read from the dump tool. */
  readonly rawBytes: number;
  /** Encrypted bytes sent to the vault. */
  readonly storedBytes: number;
}

export interface StreamResult {
  readonly rawBytes: number;
  readonly compressedBytes: number;
  readonly storedBytes: number;
  /** SHA-256 (hex) of the plaintext dump. */
  readonly plainSha256: string;
  /** SHA-256 (hex) of the stored (encrypted) bytes. */
  readonly storedSha256: string;
  /** What the vault reported for the object (S3: ETag, checksum, version). */
  readonly stored: StoredObject;
  /** The vault is S3: the manifest records what S3 reported. */
  readonly onS3: boolean;
  readonly tables: readonly TableCount[];
  readonly zstdLevel: number;
  /** How the bytes were encrypted: suite, frame length, the keys that can open them, the context. */
  readonly encryption: {
    readonly algorithmSuite: string;
    readonly frameLength: number;
    readonly keyIds: readonly string[];
    readonly encryptionContext: Record<string, string>;
  };
}

export interface StreamToVaultOptions {
  readonly dump: RunningDump;
  readonly vault: Vault;
  readonly key: string;
  readonly writeOptions: Omit<WriteOptions, 'signal'>;
  readonly keys: Keys;
  readonly encryptionContext: Record<string, string>;
  readonly zstdLevel?: number;
  readonly signal?: AbortSignal | undefined;
  readonly onProgress?: ((p: Progress) => void) | undefined;
}

/**
 * dump stdout → byte counter + SHA-256 → zstd → counter → AWS Encryption SDK → SHA-256 → vault,
 * with no temporary file. The end of the stream is held back until the dump tool has exited
 * cleanly and its row counts are known, so the vault completes the object only for a good dump;
 * any failure (tool, stream, storage, or `signal`) stops the tool and aborts the write.
 */
export async function streamToVault(options: StreamToVaultOptions): Promise<StreamResult> {
  try {
    return await run(options);
  } finally {
    // Whatever happened (even a throw before any stream was wired), the dump tool must not outlive us.
    if (!(await settled(options.dump.completed))) options.dump.abort();
    await options.dump.completed.catch(() => undefined);
  }
}

/** Whether a promise has already settled (without waiting for it). */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  const first = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    Promise.resolve(marker),
  ]);
  return first !== marker;
}

async function run(options: StreamToVaultOptions): Promise<StreamResult> {
  const { dump, signal } = options;
  let rawBytes = 0;
  let compressedBytes = 0;
  let storedBytes = 0;
  const plainHash = createHash('sha256');
  const storedHash = createHash('sha256');
  let tables: readonly TableCount[] = [];
  const report = () => options.onProgress?.({ rawBytes, storedBytes });

  const compress = compressStage({
    level: options.zstdLevel ?? DEFAULT_ZSTD_LEVEL,
    onPlain(chunk) {
      rawBytes += chunk.length;
      plainHash.update(chunk);
      dump.observe?.(chunk);
    },
    onCompressed(chunk) {
      compressedBytes += chunk.length;
    },
    // The end of the stream is held back until the dump tool has exited cleanly.
    beforeEnd: () =>
      dump.completed.then((counted) => {
        tables = counted;
      }),
  });
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      storedBytes += chunk.length;
      storedHash.update(chunk);
      report();
      callback(null, chunk);
    },
  });
  const body = new PassThrough();
  const controller = new AbortController();
  let firstError: unknown;
  const fail = (error: unknown) => {
    firstError ??= error;
    if (!controller.signal.aborted) controller.abort(error);
    dump.abort();
  };
  const onCancel = () => {
    fail(new CancelledError(String(signal?.reason ?? 'signal')));
  };
  if (signal?.aborted) onCancel();
  signal?.addEventListener('abort', onCancel, { once: true });
  dump.completed.catch(fail);

  const piping = pipeline(
    dump.stdout,
    compress,
    encryptStream(options.keys, options.encryptionContext),
    tap,
    body,
    { signal: controller.signal },
  );
  const writing = options.vault.write(options.key, body, {
    ...options.writeOptions,
    signal: controller.signal,
  });
  piping.catch(fail);
  writing.catch(fail);
  const [piped, written] = await Promise.allSettled([piping, writing]);
  signal?.removeEventListener('abort', onCancel);
  // Let the source release its connections before reporting.
  const dumpError: unknown = await dump.completed.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (piped.status === 'rejected' || written.status === 'rejected' || firstError !== undefined) {
    const writeError: unknown = written.status === 'rejected' ? written.reason : undefined;
    // The vault says what a failed write means ("no space left on the device at …"); the pipe
    // only sees the same error raw, often first.
    // Likewise the source says why it stopped (its session was killed); the pipe after it only
    // saw a "premature close".
    const told = [dumpError, writeError].find((e) => e instanceof CofreError);
    const error: unknown =
      firstError instanceof CofreError || told === undefined
        ? (firstError ?? (piped.status === 'rejected' ? piped.reason : writeError))
        : told;
    if (error instanceof CofreError) throw error;
    throw new OperationalError(`writing ${options.key} to ${options.vault.url} failed: ${messageOf(error)}`, {
      cause: error,
    });
  }
  return {
    rawBytes,
    compressedBytes,
    storedBytes,
    plainSha256: plainHash.digest('hex'),
    storedSha256: storedHash.digest('hex'),
    stored: written.value,
    onS3: options.vault.kind === 's3',
    tables,
    zstdLevel: options.zstdLevel ?? DEFAULT_ZSTD_LEVEL,
    encryption: {
      algorithmSuite: ALGORITHM_SUITE_NAME,
      frameLength: FRAME_LENGTH,
      keyIds: options.keys.keyIds,
      encryptionContext: options.encryptionContext,
    },
  };
}
