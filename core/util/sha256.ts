import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

/**
 * The SHA-256 (hex) and size of a stream, read to its end (an S3 object's body, streamed).
 * `onChunk` sees each piece as it is hashed.
 */
export async function sha256Of(
  body: Readable,
  onChunk?: (chunk: Buffer) => void,
): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of body) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
    onChunk?.(chunk as Buffer);
  }
  return { sha256: hash.digest('hex'), bytes };
}
