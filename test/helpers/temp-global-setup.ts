import { chmodSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * One private temporary directory per test run (vitest globalSetup, first in the list): TMPDIR points
 * into it for every test file and every process they start, so what a test leaves behind is found
 * here and not among other runs' files. At the end of the run, a `cofre-*` entry left in it fails the
 * run, naming each one (every test removes what it creates); the directory is removed either way.
 */
export default function setup(): () => void {
  const previous = process.env.TMPDIR;
  const runDir = mkdtempSync(path.join(previous ?? os.tmpdir(), 'vitest-run-'));
  // Like /tmp: the embedded PostgreSQL runs as another user and reads files made here.
  chmodSync(runDir, 0o1777);
  process.env.TMPDIR = runDir;
  return () => {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
    const left = readdirSync(runDir).filter((name) => name.startsWith('cofre-'));
    rmSync(runDir, { recursive: true, force: true });
    if (left.length)
      throw new Error(
        `the tests left ${left.length} temporary folder(s) behind (each test must remove what it creates): ${left.sort().join(', ')}`,
      );
  };
}
