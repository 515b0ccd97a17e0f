import { constants } from 'node:fs';
import { access, lstat } from 'node:fs/promises';
import path from 'node:path';

/**
 * What a file-system error means for a person, naming the path, or `undefined` for errors that are
 * not about the place itself (those keep their own message). A read-only mount, a permission, a
 * full disk: each is said as what it is, never as "no such file" (Node's recursive mkdir reports a
 * read-only parent as ENOENT; see {@link writableDirProblem}).
 */
export function fsProblem(error: unknown, at: string): string | undefined {
  switch ((error as NodeJS.ErrnoException | undefined)?.code) {
    case 'EROFS':
      return `read-only file system at ${at}`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied at ${at}`;
    case 'ENOSPC':
      return `no space left on the device at ${at}`;
    case 'EDQUOT':
      return `disk quota exceeded at ${at}`;
    default:
      return undefined;
  }
}

/** The nearest existing directory at or above `dir` (the root at worst). */
export async function nearestExisting(dir: string): Promise<string> {
  let at = path.resolve(dir);
  for (;;) {
    const info = await lstat(at).catch(() => undefined);
    if (info) return at;
    const up = path.dirname(at);
    if (up === at) return at;
    at = up;
  }
}

/**
 * Why nothing can be created in `dir` (or, when it does not exist yet, in the nearest directory above
 * it that does): a read-only file system or a missing permission, naming that directory; `undefined`
 * when it is writable. Asked before a run writes anything, so a read-only disk is refused up front
 * with nothing changed.
 */
export async function writableDirProblem(dir: string): Promise<string | undefined> {
  const at = await nearestExisting(dir);
  try {
    await access(at, constants.W_OK | constants.X_OK);
    return undefined;
  } catch (error) {
    return fsProblem(error, at) ?? `cannot write in ${at}: ${(error as Error).message}`;
  }
}

/**
 * `error` described for a write at `file` (its message when it is not about the place): a recursive
 * mkdir that says ENOENT on a read-only mount is asked again, so the message says what it is.
 */
export async function describeWriteError(error: unknown, file: string): Promise<string> {
  const direct = fsProblem(error, path.dirname(file));
  if (direct) return direct;
  if ((error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    const why = await writableDirProblem(path.dirname(file));
    if (why) return why;
  }
  return (error as Error | undefined)?.message ?? String(error);
}
