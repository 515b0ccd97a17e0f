import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { link, lstat, open, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { findBackup } from '../catalog/catalog';
import { type Keys } from '../vault/crypto';
import { CofreError, FieldError, IntegrityError, UsageError, messageOf } from '../util/errors';
import { plaintextStages, requireValidManifest } from '../catalog/artifact-reader';
import { type OnProgress } from '../util/progress';
import { writableDirProblem } from '../util/fs-problems';
import { failure } from './export';
import { type Artifact } from '../catalog/manifest';
import type { Vault } from '../vault';

export interface DecryptOptions {
  readonly vault: Vault;
  readonly backupId: string;
  /** Any key the backup was encrypted for (`buildKeys(…, 'decrypt')`). */
  readonly keys: Keys;
  /** The plaintext dump to write; must not exist (its directory must). */
  readonly out: string;
  readonly signal?: AbortSignal | undefined;
  /** Bytes of the stored artifact read so far (see core/util/progress.ts). */
  readonly onProgress?: OnProgress | undefined;
}

export interface DecryptReport {
  readonly backupId: string;
  /** Absolute path of the plaintext dump. */
  readonly out: string;
  readonly format: Artifact['format'];
  /** Plaintext bytes written. */
  readonly bytes: number;
  /** SHA-256 of the plaintext (equal to the manifest's). */
  readonly sha256: string;
  readonly storedBytes: number;
  readonly durationMs: number;
}

/**
 * Refuses, before reading any data, a local or escrow key that the artifact was not encrypted for
 * (key ids hold the key's fingerprint). KMS keys are left to the SDK: an alias ARN and a key ARN
 * can name the same key.
 */
export function checkKeyFits(keys: Keys, artifact: Artifact, what: string): void {
  const recorded = artifact.encryption.keyIds;
  for (const id of keys.keyIds) {
    if (id.startsWith('kms:') || recorded.includes(id)) return;
  }
  throw new UsageError(
    `KEY: the given key (${keys.keyIds.join(', ')}) is not one that ${what} was encrypted for (${recorded.join(', ')})`,
  );
}

/** The ESDK's words when none of the keyring's keys unwraps the data key. */
const NO_DATA_KEY = /unencryptedDataKey has not been set|unable to decrypt data key/i;

async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new FieldError('out', `cannot use ${file}: ${messageOf(error)}`);
  }
}

/** Moves `temp` to `final` without ever replacing a file that appeared there meanwhile. */
async function publish(temp: string, final: string): Promise<void> {
  try {
    await link(temp, final);
    await unlink(temp);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST')
      throw new FieldError('out', `${final} appeared meanwhile; Cofre never overwrites a file`);
    // File systems without hard links (FAT/exFAT disks): check, then rename.
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw error;
    if (await exists(final))
      throw new FieldError('out', `${final} appeared meanwhile; Cofre never overwrites a file`);
    await rename(temp, final);
  }
}

/**
 * Writes the plaintext dump of a backup (decrypted and decompressed: a `pg_dump` custom archive or
 * a SQL script) to `out`, mode 0600. The stored bytes and the plaintext are counted and hashed as
 * they stream and must match the manifest; the file appears under its name only then (temporary
 * name, fsync, no-replace link), and never replaces an existing file.
 */
export async function decryptBackup(options: DecryptOptions): Promise<DecryptReport> {
  const started = Date.now();
  const out = path.resolve(options.out);
  if (await exists(out)) throw new FieldError('out', `${out} already exists; Cofre never overwrites a file`);
  const dir = path.dirname(out);
  if (!(await lstat(dir).catch(() => undefined))?.isDirectory())
    throw new FieldError('out', `the directory ${dir} does not exist`);
  const unwritable = await writableDirProblem(dir);
  if (unwritable) throw new FieldError('out', `${unwritable}; nothing was written`);
  const entry = await findBackup(options.vault, options.backupId);
  const manifest = requireValidManifest(entry);
  if (manifest.artifacts.length !== 1)
    throw new UsageError(
      `--backup: ${manifest.backupId} has ${manifest.artifacts.length} artifacts; cofre decrypt writes one dump`,
    );
  const artifact = manifest.artifacts[0]!;
  const key = `${entry.folder}/${artifact.name}`;
  checkKeyFits(options.keys, artifact, `backup ${manifest.backupId}`);

  const temp = `${out}.partial-${randomBytes(6).toString('hex')}`;
  let plainBytes = 0;
  // Which stage failed decides the exit code: reading or writing is operational (1), anything in
  // between (authentication, decryption, decompression, the hashes) means the bytes are not the backup's (3).
  let stage: 'read' | 'check' | 'write' | undefined;
  const source = await options.vault.read(key, options.signal);
  const sink = createWriteStream(temp, { flags: 'wx', mode: 0o600 });
  const stages = plaintextStages(
    { key, artifact, keys: options.keys, onProgress: options.onProgress },
    (c) => {
      plainBytes += c.length;
    },
  );
  const checks = [stages.stored, stages.decrypt, stages.decompress, stages.plain] as const;
  // A failing stream emits its error first; the pipeline then destroys the others with it.
  source.once('error', () => (stage ??= 'read'));
  for (const c of checks) c.once('error', () => (stage ??= 'check'));
  sink.once('error', () => (stage ??= 'write'));
  try {
    await pipeline(source, checks[0], checks[1], checks[2], checks[3], sink, { signal: options.signal });
    stage = 'write';
    const handle = await open(temp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await publish(temp, out);
    const handleDir = await open(dir, 'r');
    try {
      await handleDir.sync();
    } finally {
      await handleDir.close();
    }
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    const what = `decrypt of backup ${manifest.backupId} stopped and wrote nothing to ${out}`;
    if (error instanceof CofreError || options.signal?.aborted || (stage !== undefined && stage !== 'check'))
      throw failure(error, options.signal, what);
    const message = messageOf(error);
    if (plainBytes === 0 && NO_DATA_KEY.test(message))
      throw new UsageError(
        `KEY: the given key (${options.keys.keyIds.join(', ')}) does not open backup ${manifest.backupId} (it was encrypted for ${artifact.encryption.keyIds.join(', ')}); nothing was written`,
      );
    const problem = `artifact ${key}: cannot be authenticated, decrypted and decompressed: ${message}`;
    throw new IntegrityError(`${what}: ${problem}`, [problem], { cause: error });
  }
  return {
    backupId: manifest.backupId,
    out,
    format: artifact.format,
    bytes: plainBytes,
    sha256: artifact.sha256.plain,
    storedBytes: artifact.bytes.stored,
    durationMs: Date.now() - started,
  };
}
