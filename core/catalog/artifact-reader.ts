/**
 * The one way to read a backup back: its manifest required valid, its artifact required present and
 * unchanged, and its bytes streamed through the checks (stored bytes' size and SHA-256, Encryption
 * SDK authentication and decryption, zstd, the plaintext's size and SHA-256). Restore, tenant
 * restore, `verify --deep`, `decrypt` and `export` read through here.
 */
import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { decryptStream, type Keys } from '../vault/crypto';
import { CofreError, IntegrityError, messageOf } from '../util/errors';
import { byteMeter, type OnProgress } from '../util/progress';
import type { CatalogEntry } from './catalog';
import { MANIFEST_NAME, type Artifact, type Manifest } from './manifest';
import type { Vault } from '../vault';

/**
 * The entry's manifest, or an {@link IntegrityError} (exit 3) listing why it is not valid: nothing
 * is read from a backup whose manifest cannot be trusted.
 */
export function requireValidManifest(entry: CatalogEntry): Manifest {
  if (entry.manifest) return entry.manifest;
  const problems = entry.problems ?? [];
  throw new IntegrityError(
    `backup ${entry.backupId} has an invalid manifest: ${problems.join('; ')}`,
    problems.map((p) => `${entry.folder}/${MANIFEST_NAME}: ${p}`),
  );
}

/** One artifact to read: where it is, what its manifest records, the keys that open it. */
export interface ArtifactToRead {
  readonly vault: Vault;
  /** Its key in the vault (`<folder>/<artifact name>`). */
  readonly key: string;
  readonly artifact: Artifact;
  readonly keys: Keys;
  readonly signal?: AbortSignal | undefined;
  /** Stored bytes read so far, of their total. */
  readonly onProgress?: OnProgress | undefined;
}

/**
 * The checking stages between the stored bytes and the plaintext, in order: a check of the stored
 * bytes (size, SHA-256), authenticated decryption bound to the artifact's encryption context, zstd,
 * a check of the plaintext (size, SHA-256). A check fails at the end of its stream with an
 * {@link IntegrityError}; decryption fails at the first frame that does not authenticate.
 */
export function plaintextStages(
  input: Pick<ArtifactToRead, 'key' | 'artifact' | 'keys' | 'onProgress'>,
  onPlain?: (chunk: Buffer) => void,
): { stored: Transform; decrypt: Duplex; decompress: Transform; plain: Transform } {
  const { artifact } = input;
  return {
    stored: checkedCopy(
      `artifact ${input.key} (stored bytes)`,
      { bytes: artifact.bytes.stored, sha256: artifact.sha256.stored },
      byteMeter(input.onProgress, artifact.bytes.stored),
    ),
    decrypt: decryptStream(input.keys, artifact.encryption.encryptionContext),
    decompress: zlib.createZstdDecompress({ chunkSize: 1024 * 1024 }),
    plain: checkedCopy(
      `artifact ${input.key} (decrypted dump)`,
      { bytes: artifact.bytes.raw, sha256: artifact.sha256.plain },
      onPlain,
    ),
  };
}

/**
 * A stream that passes bytes through, counting and hashing them, and fails at its end when they
 * differ from what the manifest recorded (so a write consuming it never completes).
 */
export function checkedCopy(
  label: string,
  expected: { readonly bytes: number; readonly sha256: string },
  onChunk?: (chunk: Buffer) => void,
): Transform {
  const hash = createHash('sha256');
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      bytes += chunk.length;
      hash.update(chunk);
      onChunk?.(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      const digest = hash.digest('hex');
      if (bytes !== expected.bytes || digest !== expected.sha256) {
        const problem = `${label}: read ${bytes} bytes with SHA-256 ${digest}; the manifest records ${expected.bytes} bytes with SHA-256 ${expected.sha256}`;
        cb(new IntegrityError(problem, [problem]));
      } else cb();
    },
  });
}

/**
 * The artifact is in the vault with the size and checksum its manifest records, checked before
 * anything is touched: on S3 from the stored SHA-256 checksum and ETag (no download); in a file
 * vault by hashing the file once. The restore's own stream checks every byte again.
 */
export async function requireStoredIntact(
  vault: Vault,
  key: string,
  artifact: Artifact,
  onProgress?: OnProgress,
): Promise<void> {
  const stat = await vault.stat(key);
  if (!stat) throw new IntegrityError(`artifact ${key} is missing; nothing was restored`);
  if (stat.bytes !== artifact.bytes.stored)
    throw new IntegrityError(
      `artifact ${key} has ${stat.bytes} bytes, the manifest records ${artifact.bytes.stored}; nothing was restored`,
    );
  if (vault.kind === 'file') {
    // A local file has no stored checksum: read it once and hash it (local disk reads at several
    // hundred MB/s, a small part of a restore), so a corrupted artifact fails here, before the
    // target or a temporary database exists.
    const digest = await vault.sha256(key, byteMeter(onProgress, artifact.bytes.stored, 'checked'));
    if (digest !== artifact.sha256.stored)
      throw new IntegrityError(
        `artifact ${key} has SHA-256 ${digest}, the manifest records ${artifact.sha256.stored}; nothing was restored`,
      );
    return;
  }
  const s3 = artifact.s3;
  if (s3?.checksumSha256 && stat.checksumSha256 && s3.checksumSha256 !== stat.checksumSha256)
    throw new IntegrityError(
      `artifact ${key}: its S3 SHA-256 checksum differs from the manifest's; nothing was restored`,
    );
  if (s3?.etag && stat.etag && s3.etag !== stat.etag)
    throw new IntegrityError(
      `artifact ${key}: its S3 ETag differs from the manifest's; nothing was restored`,
    );
}

/**
 * The artifact's plaintext, checked as it streams: the SHA-256 and size of the stored bytes and of
 * the plaintext must match the manifest, or the stream fails at its end (before the consumer's
 * `end`), with an {@link IntegrityError}. Authentication failures (tampering, wrong key) fail it too.
 */
export async function verifiedPlaintext(input: ArtifactToRead): Promise<Readable> {
  const source = await input.vault.read(input.key, input.signal);
  const { stored: tapStored, decrypt, decompress, plain: tapPlain } = plaintextStages(input);
  // `out` is fed with .pipe(), outside the pipeline: a failing stage must not destroy it with the
  // raw error before it can be given the clear one below.
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  tapPlain.pipe(out, { end: false });
  // A consumer that stops early (a failed tool, a cancelled run) stops the read: otherwise the
  // pipeline stalls on back-pressure forever, holding the vault's file or connection open.
  out.once('close', () => {
    if (!source.destroyed && !source.readableEnded) source.destroy();
  });
  pipeline(source, tapStored, decrypt, decompress, tapPlain).then(
    () => {
      tapPlain.once('end', () => out.end());
      if (tapPlain.readableEnded) out.end();
    },
    (error: unknown) => {
      out.destroy(
        error instanceof CofreError
          ? error
          : new IntegrityError(
              // The key was checked to be one the artifact is encrypted for: this is damage.
              `artifact ${input.key} is damaged: it fails authentication while decrypting (${messageOf(error)}); nothing of it was kept`,
            ),
      );
    },
  );
  // A consumer that attaches after the stream has already failed (a tiny corrupt artifact fails
  // before the first read) still gets the error from its pipeline or iterator; without this
  // listener the 'error' event would crash the process first.
  out.on('error', () => undefined);
  return out;
}
