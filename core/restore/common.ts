/** What both engines' restores share: the checked plaintext stream, feeding a tool, spilling, table names and counts. */

import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, pipeline as pipeStages, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { checkedCopy } from '../catalog/artifact-reader';
import { decryptStream } from '../vault/crypto';
import {
  CancelledError,
  CofreError,
  IntegrityError,
  OperationalError,
  UsageError,
  messageOf,
} from '../util/errors';
import type { Artifact, Manifest } from '../catalog/manifest';
import { byteMeter, type OnProgress } from '../util/progress';
import type { ToolProcess } from '../sources/process';
import type { TableCount } from '../sources/types';
import type { Vault } from '../vault';
import type { RestoreOptions } from './restore';

export interface Input extends RestoreOptions {
  readonly manifest: Manifest;
  readonly artifact: Artifact;
  readonly key: string;
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
    const hash = createHash('sha256');
    const meter = byteMeter(onProgress, artifact.bytes.stored, 'checked');
    for await (const chunk of await vault.read(key)) {
      hash.update(chunk as Buffer);
      meter?.(chunk as Buffer);
    }
    const digest = hash.digest('hex');
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
export async function verifiedPlaintext(
  input: Pick<Input, 'vault' | 'key' | 'artifact' | 'keys' | 'signal' | 'onProgress'>,
): Promise<Readable> {
  const { artifact } = input;
  const source = await input.vault.read(input.key, input.signal);
  const tapStored = checkedCopy(
    `artifact ${input.key} (stored bytes)`,
    { bytes: artifact.bytes.stored, sha256: artifact.sha256.stored },
    byteMeter(input.onProgress, artifact.bytes.stored),
  );
  const tapPlain = checkedCopy(`artifact ${input.key} (decrypted dump)`, {
    bytes: artifact.bytes.raw,
    sha256: artifact.sha256.plain,
  });
  // `out` is fed with .pipe(), outside the pipeline: a failing stage must not destroy it with the
  // raw error before it can be given the clear one below.
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  tapPlain.pipe(out, { end: false });
  // A consumer that stops early (a failed tool, a cancelled run) stops the read: otherwise the
  // pipeline stalls on back-pressure forever, holding the vault's file or connection open.
  out.once('close', () => {
    if (!source.destroyed && !source.readableEnded) source.destroy();
  });
  pipeline(
    source,
    tapStored,
    decryptStream(input.keys, artifact.encryption.encryptionContext),
    zlib.createZstdDecompress({ chunkSize: 1024 * 1024 }),
    tapPlain,
  ).then(
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

export function compareCounts(
  expected: readonly TableCount[],
  actual: readonly TableCount[],
  where: string,
): void {
  const wrong = expected.filter((t, i) => actual[i]?.rows !== t.rows);
  if (wrong.length)
    throw new IntegrityError(
      `row counts in ${where} differ from the manifest: ${wrong
        .map(
          (t) => `${t.schema}.${t.name} has ${actual[expected.indexOf(t)]?.rows ?? '?'}, expected ${t.rows}`,
        )
        .join('; ')}`,
    );
}

/** Streams the verified plaintext into a tool's stdin; the tool and the stream must both succeed. */
export async function feedTool(
  input: Input,
  tool: ToolProcess,
  options: { transforms?: Transform[]; prefix?: string; suffix?: string } = {},
): Promise<void> {
  const plaintext = await verifiedPlaintext(input);
  const stages: (Readable | Transform)[] = [plaintext];
  stages.push(...(options.transforms ?? []));
  let first: unknown;
  const stopped = new EventEmitter();
  const isStopped = () => first !== undefined;
  const stop = (error: unknown) => {
    first ??= error;
    tool.kill();
    plaintext.destroy();
    stopped.emit('stop');
  };
  const onAbort = () => {
    stop(new CancelledError(String(input.signal?.reason ?? 'signal')));
  };
  if (input.signal?.aborted) onAbort();
  input.signal?.addEventListener('abort', onAbort, { once: true });
  tool.finished.catch(stop);
  try {
    const stdin = tool.stdin!;
    stdin.on('error', () => undefined);
    if (options.prefix) stdin.write(options.prefix);
    for await (const chunk of chainTransforms(stages)) {
      if (first !== undefined) break;
      // A tool that stopped reading (it failed, its backend was killed) has a closed stdin: waiting
      // for 'drain' or 'close' then would wait forever, so the stop is awaited too.
      if (!stdin.write(chunk as Buffer) && !stdin.destroyed)
        await new Promise<void>((resolve) => {
          const done = () => {
            stdin.off('drain', done);
            stdin.off('close', done);
            stopped.off('stop', done);
            resolve();
          };
          stdin.on('drain', done);
          stdin.on('close', done);
          stopped.on('stop', done);
          if (isStopped() || stdin.destroyed) done();
        });
      if (isStopped()) break;
    }
    if (first === undefined) {
      if (options.suffix) stdin.write(options.suffix);
      stdin.end();
    }
  } catch (error) {
    stop(error);
  } finally {
    input.signal?.removeEventListener('abort', onAbort);
  }
  try {
    await tool.finished;
  } catch (error) {
    first ??= error;
  }
  if (first !== undefined) throw first instanceof Error ? first : new OperationalError(messageOf(first));
}

/** The stages joined so that a failure anywhere fails the last one (plain .pipe() would hang). */
function chainTransforms(stages: (Readable | Transform)[]): Readable {
  if (stages.length === 1) return stages[0] as Readable;
  return pipeStages(stages as unknown as [Readable, Transform], () => undefined) as unknown as Readable;
}

/** Writes the verified plaintext to a private local file, runs the tool on it, removes the file. */
export async function spillAndRun(
  input: Input,
  run: (file: string) => ToolProcess | Promise<ToolProcess>,
): Promise<void> {
  const dir = await mkdtemp(path.join(input.spillDir ?? os.tmpdir(), 'cofre-restore-'));
  try {
    const file = path.join(dir, 'dump');
    await pipeline(await verifiedPlaintext(input), createWriteStream(file, { mode: 0o600 }), {
      signal: input.signal,
    });
    const tool = await run(file);
    const onAbort = () => {
      tool.kill();
    };
    input.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await tool.finished;
    } finally {
      input.signal?.removeEventListener('abort', onAbort);
    }
    if (input.signal?.aborted) throw new CancelledError(String(input.signal.reason));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function splitTable(table: string, defaultSchema: string): { schema: string; name: string } {
  const dot = table.indexOf('.');
  return dot === -1
    ? { schema: defaultSchema, name: table }
    : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

export function findManifestTable(input: Input, defaultSchema: string): TableCount {
  const wanted = splitTable(input.table!, defaultSchema);
  const match = input.artifact.tables.find((t) => t.schema === wanted.schema && t.name === wanted.name);
  if (!match)
    throw new UsageError(
      `--table: backup ${input.manifest.backupId} has no table "${input.table!}" (it has ${input.artifact.tables
        .slice(0, 12)
        .map((t) => (input.manifest.engine === 'postgres' ? `${t.schema}.${t.name}` : t.name))
        .join(', ')}${input.artifact.tables.length > 12 ? ', …' : ''})`,
    );
  return match;
}
