import { pipeline } from 'node:stream';
import type { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { decryptStream, type Keys } from './crypto';
import type { Artifact } from './manifest';
import type { Vault } from './vault';

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
