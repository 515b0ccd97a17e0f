import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { checkedCopy, requireValidManifest } from '../catalog/artifact-reader';
import { byteMeter, type OnProgress } from '../util/progress';
import { findBackup } from '../catalog/catalog';
import {
  CancelledError,
  CofreError,
  FieldError,
  IntegrityError,
  OperationalError,
  messageOf,
} from '../util/errors';
import { MANIFEST_NAME, type Manifest } from '../catalog/manifest';
import { writableDirProblem } from '../util/fs-problems';
import { restoreInstructions } from './restore-instructions';
import { FileVault, type Vault } from '../vault';
import { fsyncDir } from '../vault/file-vault';

/** Written last at the root of an export: marks a complete offline copy of one backup. */
export const EXPORT_MARKER = 'EXPORT.json';
export const CHECKSUM_FILE = 'checksum.sha256';
export const INSTRUCTIONS_FILE = 'RESTORE_INSTRUCTIONS.md';

/** The content of `EXPORT.json`. */
export interface ExportMarker {
  readonly backupId: string;
  readonly exportedAt: string;
  /** The vault the backup was copied from. */
  readonly from: string;
}

export interface ExportOptions {
  readonly vault: Vault;
  readonly backupId: string;
  /** A directory that does not exist yet (its parent must) or is empty. */
  readonly to: string;
  readonly signal?: AbortSignal | undefined;
  /** Bytes of each artifact copied so far (see core/util/progress.ts). */
  readonly onProgress?: OnProgress | undefined;
  readonly now?: () => Date;
}

export interface ExportReport {
  readonly backupId: string;
  readonly from: string;
  /** Absolute path of the export. */
  readonly to: string;
  /** The backup's folder inside the export. */
  readonly folder: string;
  /** The files checked by `checksum.sha256`, relative to `to`. */
  readonly files: readonly { readonly path: string; readonly bytes: number; readonly sha256: string }[];
  readonly bytes: number;
  readonly durationMs: number;
}

/** Checks an output directory: absent with an existing parent, or an empty directory. */
async function checkTarget(to: string): Promise<{ existed: boolean }> {
  let info;
  try {
    info = await lstat(to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new FieldError('to', `cannot use ${to}: ${messageOf(error)}`);
    const parent = path.dirname(to);
    const parentInfo = await lstat(parent).catch(() => undefined);
    if (!parentInfo?.isDirectory())
      throw new FieldError(
        'to',
        `the parent directory ${parent} does not exist (is the disk mounted?); Cofre creates only ${path.basename(to)} itself`,
      );
    return { existed: false };
  }
  if (!info.isDirectory()) throw new FieldError('to', `${to} exists and is not a directory`);
  const entries = await readdir(to);
  if (entries.length)
    throw new FieldError(
      'to',
      `${to} is not empty (${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, e.g. ${entries.sort()[0]!}); export into a new or empty directory`,
    );
  return { existed: true };
}

/** Why a copy failed, as the CLI reports it. */
export function failure(error: unknown, signal: AbortSignal | undefined, what: string): CofreError {
  if (signal?.aborted) return new CancelledError(String(signal.reason ?? 'aborted'));
  if (error instanceof IntegrityError)
    return new IntegrityError(`${what}: ${error.message}`, error.problems, { cause: error });
  if (error instanceof CofreError) return error;
  return new OperationalError(`${what}: ${messageOf(error)}`, { cause: error });
}

/**
 * Copies one backup into the directory `to` so that the directory is a file vault holding just
 * that backup (`full/<id>/<database>/<backup id>/manifest.json` and its encrypted artifacts, byte
 * for byte), with `checksum.sha256` (`sha256sum -c` format), `RESTORE_INSTRUCTIONS.md` and, last,
 * `EXPORT.json` at its root. Artifacts are streamed and re-hashed on the way: a difference from the
 * manifest is an {@link IntegrityError}. Every file is written to a temporary name, fsynced and
 * renamed. On any failure everything written is removed (and `to`, if this created it).
 */
export async function exportBackup(options: ExportOptions): Promise<ExportReport> {
  const started = Date.now();
  const to = path.resolve(options.to);
  if (options.vault instanceof FileVault) {
    const root = path.resolve(options.vault.root);
    if (to === root || to.startsWith(`${root}${path.sep}`))
      throw new FieldError('to', `${to} is inside the vault ${options.vault.url}; export to another place`);
  }
  const { existed } = await checkTarget(to);
  const unwritable = await writableDirProblem(to);
  if (unwritable) throw new FieldError('to', `${unwritable}; nothing was written`);
  const entry = await findBackup(options.vault, options.backupId);
  const manifest: Manifest = requireValidManifest(entry);
  if (options.signal?.aborted) throw new CancelledError(String(options.signal.reason ?? 'aborted'));

  if (!existed) await mkdir(to);
  const dest = new FileVault(to);
  const files: { path: string; bytes: number; sha256: string }[] = [];
  try {
    for (const artifact of manifest.artifacts) {
      const key = `${entry.folder}/${artifact.name}`;
      const source = await options.vault.read(key, options.signal);
      const body = pipeline(
        source,
        checkedCopy(
          `artifact ${key} in ${options.vault.url}`,
          { bytes: artifact.bytes.stored, sha256: artifact.sha256.stored },
          byteMeter(options.onProgress, artifact.bytes.stored, 'copied'),
        ),
        () => undefined,
      );
      await dest.write(key, body, { tags: {}, signal: options.signal });
      files.push({ path: key, bytes: artifact.bytes.stored, sha256: artifact.sha256.stored });
    }
    const manifestKey = `${entry.folder}/${MANIFEST_NAME}`;
    await dest.write(manifestKey, Readable.from([entry.bytes]), { tags: {}, signal: options.signal });
    files.push({ path: manifestKey, bytes: entry.bytes.length, sha256: entry.sha256 });

    const checksums = files.map((f) => `${f.sha256}  ${f.path}\n`).join('');
    await dest.write(CHECKSUM_FILE, Readable.from([Buffer.from(checksums, 'utf8')]), { tags: {} });
    const instructions = restoreInstructions({ manifest, folder: entry.folder });
    await dest.write(INSTRUCTIONS_FILE, Readable.from([Buffer.from(instructions, 'utf8')]), { tags: {} });
    const marker: ExportMarker = {
      backupId: manifest.backupId,
      exportedAt: (options.now?.() ?? new Date()).toISOString(),
      from: options.vault.url,
    };
    await dest.write(EXPORT_MARKER, Readable.from([Buffer.from(`${JSON.stringify(marker, null, 2)}\n`)]), {
      tags: {},
    });
    // The new directories' own entries, down from the export root (and the root's, if created here).
    const segments = entry.folder.split('/');
    for (let i = segments.length - 1; i >= 0; i--) await fsyncDir(path.join(to, ...segments.slice(0, i)));
    if (!existed) await fsyncDir(path.dirname(to));
  } catch (error) {
    if (existed)
      for (const name of await readdir(to).catch(() => []))
        await rm(path.join(to, name), { recursive: true, force: true });
    else await rm(to, { recursive: true, force: true });
    throw failure(
      error,
      options.signal,
      `export of backup ${manifest.backupId} stopped and nothing was kept in ${to}`,
    );
  }
  return {
    backupId: manifest.backupId,
    from: options.vault.url,
    to,
    folder: entry.folder,
    files,
    bytes: files.reduce((n, f) => n + f.bytes, 0),
    durationMs: Date.now() - started,
  };
}

/**
 * The backup id named by `EXPORT.json` at the root of a file vault made by `cofre export`, or
 * `undefined` for any other vault.
 */
export async function exportedBackupId(vault: Vault): Promise<string | undefined> {
  if (vault.kind !== 'file') return undefined;
  const bytes = await vault.readBytes(EXPORT_MARKER);
  if (!bytes) return undefined;
  try {
    const marker = JSON.parse(bytes.toString('utf8')) as Partial<ExportMarker>;
    return typeof marker.backupId === 'string' ? marker.backupId : undefined;
  } catch {
    return undefined;
  }
}
