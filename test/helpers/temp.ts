import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

const made: string[] = [];

// Every directory made by tempDir in this test file is removed when the file's tests are done
// (test/helpers/temp-global-setup.ts fails the run on any cofre-* folder left behind).
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A new empty directory under the OS temp directory, removed after this test file's tests. */
export function tempDir(label: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), `cofre-${label}-`));
  made.push(dir);
  return dir;
}
