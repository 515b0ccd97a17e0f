// cli/bin.js keeps V8's compiled bundle between runs, only in a private directory of this user's.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleIsFresh } from '../../cli/launch';
import { filesUnder, tempDir } from '../helpers/cli';

const BIN = path.join(__dirname, '..', '..', 'cli', 'bin.js');

// bin.js runs the bundle (and caches it) only when it is newer than every source file.
const fresh = bundleIsFresh();
if (!fresh && process.env.CI === 'true')
  throw new Error(
    'dist/cofre.js is missing or older than the sources (required because CI=true: npm ci builds it)',
  );
if (!fresh)
  process.stderr.write(
    'skipping the compile cache tests: dist/cofre.js is older than the sources (npm run build:cli)\n',
  );

/** `cofre --version` with `env` over this environment, without NODE_DISABLE_COMPILE_CACHE unless given. */
function runVersion(env: NodeJS.ProcessEnv): string {
  const { NODE_DISABLE_COMPILE_CACHE: _, ...rest } = process.env;
  return execFileSync(process.execPath, [BIN, '--version'], { env: { ...rest, ...env } }).toString();
}

describe.runIf(fresh)('the compile cache (cli/bin.js)', () => {
  it('is written under $XDG_CACHE_HOME/cofre/compile-cache, a directory only this user can open', () => {
    const home = tempDir('cache-home');
    expect(runVersion({ XDG_CACHE_HOME: home })).toMatch(/^\d+\.\d+\.\d+/);
    const dir = path.join(home, 'cofre', 'compile-cache');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(filesUnder(dir).length).toBeGreaterThan(0);
  });

  it('is not used in a directory that others can write', () => {
    const home = tempDir('cache-shared');
    const dir = path.join(home, 'cofre', 'compile-cache');
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o777);
    runVersion({ XDG_CACHE_HOME: home });
    expect(filesUnder(dir)).toEqual([]);
  });

  it('is off with NODE_DISABLE_COMPILE_CACHE=1', () => {
    const home = tempDir('cache-off');
    runVersion({ XDG_CACHE_HOME: home, NODE_DISABLE_COMPILE_CACHE: '1' });
    expect(filesUnder(path.join(home, 'cofre', 'compile-cache'))).toEqual([]);
  });
});
