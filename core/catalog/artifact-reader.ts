import { createHash } from 'node:crypto';
import { pipeline, Transform } from 'node:stream';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { decryptStream, type Keys } from '../vault/crypto';
import { IntegrityError } from '../util/errors';
import type { Artifact } from './manifest';
import type { Vault } from '../vault';

/**
 * The plaintext of an artifact as a stream: read from the vault, authenticated and decrypted
 * (bound to the artifact's encryption context), decompressed. A tampered or foreign artifact makes
 * the stream fail; callers that must not act on unauthenticated bytes check the artifact first
 * (`cofre verify --deep`).
 */
export async function plaintextOf(
  vault: Vault,
  folder: string,
  artifact: Artifact,
  keys: Keys,
  signal?: AbortSignal,
): Promise<Readable> {
  const source = await vault.read(`${folder}/${artifact.name}`, signal);
  const decompress = zlib.createZstdDecompress();
  return pipeline(
    source,
    decryptStream(keys, artifact.encryption.encryptionContext),
    decompress,
    () => undefined,
  );
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
