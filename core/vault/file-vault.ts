import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, link, mkdir, open, readdir, readFile, rename, rmdir, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OperationalError, messageOf } from '../util/errors';
import { describeWriteError } from '../util/fs-problems';
import type { StoredObject, Vault, WriteOptions } from './types';

const PARTIAL = '.partial-';
/**
 * Temporary files of lock writes (`=lock.json.tmp-<hex>`): named apart from `.partial-` because a
 * backup holding its chain's lock removes `.partial-` files there, and a contender's lock file
 * being written is not a leftover. One older than {@link LOCK_TEMP_STALE_MS} is (its writer died).
 */
const LOCK_TEMP = '.tmp-';
const LOCK_TEMP_STALE_MS = 60_000;

/**
 * A vault in a local directory (`file:///abs/dir`): each object is written to a temporary name
 * beside its final one, fsynced, renamed into place and its directory fsynced, so a crash never
 * leaves a half-written file under a real name. Finished files are made read-only.
 */
export class FileVault implements Vault {
  readonly kind = 'file' as const;
  /** A directory has no Object Lock; `lockUntil` is the retention the manifest records. */
  readonly objectLockMode = 'none' as const;
  readonly url: string;

  constructor(public readonly root: string) {
    this.url = `file://${root}`;
  }

  private pathOf(key: string): string {
    const segments = key.split('/');
    // A "." or ".." segment would resolve outside the object's own folder (another tenant's chain).
    if (segments.some((s) => s === '.' || s === '..'))
      throw new OperationalError(`${this.url}: refusing key "${key}": it has a "." or ".." segment`);
    return path.join(this.root, ...segments);
  }

  async write(key: string, body: Readable, options: WriteOptions): Promise<StoredObject> {
    const final = this.pathOf(key);
    const dir = path.dirname(final);
    await mkdir(dir, { recursive: true }).catch((error: unknown) => this.writeFailed(error, key, final));
    const temp = `${final}${PARTIAL}${randomBytes(6).toString('hex')}`;
    // Opened before the body flows, so that a folder another run pruned meanwhile is made again.
    const handle = await this.openInFolder(temp, dir).catch((error: unknown) =>
      this.writeFailed(error, key, final),
    );
    try {
      await pipeline(body, handle.createWriteStream(), {
        signal: options.signal,
      });
      const written = await open(temp, 'r');
      try {
        await written.sync();
      } finally {
        await written.close();
      }
      await chmod(temp, 0o400);
      await rename(temp, final);
      await fsyncDir(dir);
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      // A failed or cancelled write leaves no folder it emptied behind (nothing that looks like a backup).
      await this.pruneEmptyFolders(dir);
      return this.writeFailed(error, key, final);
    }
    const info = await stat(final);
    return { key, bytes: info.size };
  }

  async read(key: string, signal?: AbortSignal): Promise<Readable> {
    const file = this.pathOf(key);
    await stat(file).catch((error: unknown) => {
      throw new OperationalError(`${this.url}: cannot read ${key}: ${messageOf(error)}`);
    });
    return createReadStream(file, { signal, highWaterMark: 1024 * 1024 });
  }

  /**
   * The SHA-256 (hex) of the stored file, read through one reused 1 MiB buffer: checking a
   * gigabyte artifact before a restore allocates nothing per chunk (a fresh Buffer per read left
   * ~100 MB of garbage, and of peak RSS, before the garbage collector ran). `onChunk` sees each
   * piece, valid only during the call.
   */
  async sha256(key: string, onChunk?: (chunk: Buffer) => void): Promise<string> {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(1024 * 1024);
    let file;
    try {
      file = await open(this.pathOf(key), 'r');
    } catch (error) {
      throw new OperationalError(`${this.url}: cannot read ${key}: ${messageOf(error)}`);
    }
    try {
      for (;;) {
        const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hash.update(chunk);
        onChunk?.(chunk);
      }
    } finally {
      await file.close();
    }
    return hash.digest('hex');
  }

  async readBytes(key: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(key));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async stat(key: string): Promise<StoredObject | undefined> {
    try {
      const info = await stat(this.pathOf(key));
      return info.isFile() ? { key, bytes: info.size } : undefined;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async list(prefix: string): Promise<string[]> {
    const base = this.pathOf(prefix.replace(/\/$/, ''));
    const out: string[] = [];
    let entries;
    try {
      entries = await readdir(base, { recursive: true, withFileTypes: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    for (const entry of entries) {
      if (!entry.isFile() || entry.name.includes(PARTIAL) || entry.name.includes(LOCK_TEMP)) continue;
      out.push(path.relative(this.root, path.join(entry.parentPath, entry.name)).split(path.sep).join('/'));
    }
    return out.sort();
  }

  async createExclusive(key: string, bytes: Buffer): Promise<boolean> {
    const file = this.pathOf(key);
    await mkdir(path.dirname(file), { recursive: true }).catch((error: unknown) =>
      this.writeFailed(error, key, file),
    );
    // Written whole under a temporary name, then hard-linked to the key: link() fails if the key
    // exists (O_EXCL's guarantee), and a reader never sees a lock half written.
    const temp = await this.writeTemp(key, file, bytes);
    try {
      await link(temp, file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') return false;
      // File systems without hard links (FAT/exFAT disks): O_EXCL, written in place.
      if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP')
        return await this.createInPlace(key, file, bytes);
      return await this.writeFailed(error, key, file);
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    await fsyncDir(path.dirname(file));
    return true;
  }

  async replaceExclusive(key: string, expected: Buffer, bytes: Buffer): Promise<boolean> {
    return this.withClaim(key, expected, async (file) => {
      const temp = await this.writeTemp(key, file, bytes);
      try {
        await rename(temp, file);
      } catch (error) {
        await unlink(temp).catch(() => undefined);
        return this.writeFailed(error, key, file);
      }
      await fsyncDir(path.dirname(file));
    });
  }

  async release(key: string, expected?: Buffer): Promise<void> {
    if (expected === undefined) return this.remove(key);
    await this.withClaim(key, expected, async (file) => {
      await unlink(file);
    });
    // The chain folder a released lock leaves empty goes too (a cancelled first backup leaves no folder).
    await this.pruneEmptyFolders(path.dirname(this.pathOf(key)));
  }

  /**
   * Runs `change` on the key's file only if its content is `expected`, holding a claim for that
   * content (`<key>.claim-<sha256>`, made with `O_EXCL`): two writers changing the same content
   * cannot both pass the check. False when the claim is taken or the content is another.
   */
  private async withClaim(
    key: string,
    expected: Buffer,
    change: (file: string) => Promise<void>,
  ): Promise<boolean> {
    const file = this.pathOf(key);
    const claim = `${file}.claim-${createHash('sha256').update(expected).digest('hex').slice(0, 16)}`;
    try {
      await (await open(claim, 'wx', 0o600)).close();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // ENOENT: the folder is gone (pruned), so the key's file is too: its content is not `expected`.
      if (code === 'EEXIST' || code === 'ENOENT') return false;
      return this.writeFailed(error, key, claim);
    }
    try {
      const current = await readFile(file).catch((error: unknown) => {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw error;
      });
      if (!current?.equals(expected)) return false;
      await change(file);
      return true;
    } finally {
      await unlink(claim).catch(() => undefined);
    }
  }

  private async createInPlace(key: string, file: string, bytes: Buffer): Promise<boolean> {
    let handle;
    try {
      handle = await open(file, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
      return this.writeFailed(error, key, file);
    }
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } catch (error) {
      await handle.close().catch(() => undefined);
      await unlink(file).catch(() => undefined);
      return this.writeFailed(error, key, file);
    }
    await handle.close();
    return true;
  }

  /** `bytes` in a new fsynced temporary file beside `file`; returns its path. */
  private async writeTemp(key: string, file: string, bytes: Buffer): Promise<string> {
    const temp = `${file}${LOCK_TEMP}${randomBytes(6).toString('hex')}`;
    try {
      const handle = await this.openInFolder(temp, path.dirname(file));
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      return this.writeFailed(error, key, file);
    }
    return temp;
  }

  /**
   * Throws a write's file-system error as what it is ("read-only file system at …", "no space left
   * on the device at …"), naming the vault and key; a cancellation or any other error unchanged.
   */
  private async writeFailed(error: unknown, key: string, file: string): Promise<never> {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code) || code === 'ERR_STREAM_PREMATURE_CLOSE')
      throw error;
    throw new OperationalError(`${this.url}: cannot write ${key}: ${await describeWriteError(error, file)}`, {
      cause: error,
    });
  }

  async remove(key: string): Promise<void> {
    const file = this.pathOf(key);
    await unlink(file).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    });
    await this.pruneEmptyFolders(path.dirname(file));
  }

  /**
   * Removes `dir` and the folders above it while they are empty, up to (not including) the vault
   * root. A writer that made one of them meanwhile makes it again (openInFolder, createExclusive).
   */
  private async pruneEmptyFolders(dir: string): Promise<void> {
    for (let d = dir; d.startsWith(`${this.root}${path.sep}`); d = path.dirname(d)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (or gone): the folders above hold something too
      }
    }
  }

  /** Opens a new file (O_EXCL, mode 0600) in `dir`, making the folder (again) if it is missing. */
  private async openInFolder(file: string, dir: string) {
    for (let attempt = 0; ; attempt++) {
      await mkdir(dir, { recursive: true });
      try {
        return await open(file, 'wx', 0o600);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 2) throw error;
      }
    }
  }

  /** Keys of the temporary files of unfinished writes under `prefix` (a run that was killed left them). */
  async partialKeys(prefix: string): Promise<string[]> {
    const base = path.join(this.root, ...prefix.replace(/\/$/, '').split('/').filter(Boolean));
    const entries = await readdir(base, { recursive: true, withFileTypes: true }).catch(() => []);
    const keys: string[] = [];
    for (const e of entries) {
      if (!e.isFile()) continue;
      const file = path.join(e.parentPath, e.name);
      if (!e.name.includes(PARTIAL)) {
        if (!e.name.includes(LOCK_TEMP)) continue;
        const info = await stat(file).catch(() => undefined);
        if (!info || Date.now() - info.mtimeMs < LOCK_TEMP_STALE_MS) continue;
      }
      keys.push(path.relative(this.root, file).split(path.sep).join('/'));
    }
    return keys.sort();
  }

  /** Temporary files of unfinished writes (there should be none once a run has ended). */
  async partials(): Promise<string[]> {
    const entries = await readdir(this.root, { recursive: true, withFileTypes: true }).catch(() => []);
    return entries
      .filter((e) => e.isFile() && (e.name.includes(PARTIAL) || e.name.includes(LOCK_TEMP)))
      .map((e) => path.join(e.parentPath, e.name));
  }
}

/** Makes a rename or new entry in `dir` durable (the directory's own fsync). */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
