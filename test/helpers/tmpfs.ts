/**
 * A real small file system for fault tests: a tmpfs of a few MB (a full disk is ENOSPC for real)
 * that can be remounted read-only (EROFS for real). Mounting needs root and the mount capability
 * (a kernel permission, not something to install); without it the tests that need one are skipped
 * with the printed reason.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Tmpfs {
  readonly dir: string;
  /** Free bytes as the file system reports them (statfs). */
  free(): number;
  readOnly(): void;
  readWrite(): void;
  unmount(): void;
}

function run(args: string[]): void {
  execFileSync('mount', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Mounts a tmpfs of `megabytes` MB on a new directory, or returns why it cannot. */
export function mountTmpfs(label: string, megabytes: number): Tmpfs | string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `cofre-${label}-`));
  try {
    run(['-t', 'tmpfs', '-o', `size=${megabytes}m,mode=0755`, 'tmpfs', dir]);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim();
    return `cannot mount a tmpfs (needs root and the mount capability): ${stderr || (error as Error).message}`;
  }
  return {
    dir,
    free: () => {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    readOnly: () => {
      run(['-o', 'remount,ro', dir]);
    },
    readWrite: () => {
      run(['-o', 'remount,rw', dir]);
    },
    unmount: () => {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
