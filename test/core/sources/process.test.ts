import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { runTool, spawnTool, stdbufPath, TOOL_STDIO_BUFFER } from '../../../core/sources/process';

// A large-stdout tool runs under coreutils' stdbuf, which tells the tool's C stdio its buffer size
// through _STDBUF_O (and loads libstdbuf.so with LD_PRELOAD): that variable is what the tool sees.
const hasStdbuf = stdbufPath() !== null;
if (!hasStdbuf && process.env.CI === 'true')
  throw new Error('coreutils stdbuf is not on PATH (required because CI=true: the dump runner image has it)');
if (!hasStdbuf) process.stderr.write('skipping the stdbuf cases: coreutils stdbuf is not on PATH\n');

const seen = (options: Parameters<typeof spawnTool>[2], script = 'printf %s "${_STDBUF_O-unset}"') =>
  runTool('sh', ['-c', script], options);

describe('spawnTool largeStdout and largeStdin', () => {
  test.runIf(hasStdbuf)('runs the tool under stdbuf with a 1 MiB stdout buffer', async () => {
    expect(TOOL_STDIO_BUFFER).toBe('1M');
    expect(await seen({ largeStdout: true })).toBe(String(1024 * 1024));
  });

  test.runIf(hasStdbuf)('a large stdin gets a 1 MiB stdin buffer, alone or with stdout', async () => {
    const both = 'printf %s "${_STDBUF_I-unset} ${_STDBUF_O-unset}"';
    const mib = String(1024 * 1024);
    expect(await seen({ largeStdin: true }, both)).toBe(`${mib} unset`);
    expect(await seen({ largeStdin: true, largeStdout: true }, both)).toBe(`${mib} ${mib}`);
  });

  test('leaves other tools alone', async () => {
    expect(await seen({})).toBe('unset');
  });

  test.runIf(hasStdbuf)('keeps the secret option file on /dev/fd/4 (the MySQL path)', async () => {
    expect(
      await seen(
        { largeStdout: true, optionFile: '[client]\npassword=s3cret\n' },
        'cat /dev/fd/4; printf %s "$_STDBUF_O"',
      ),
    ).toBe(`[client]\npassword=s3cret\n${1024 * 1024}`);
  });

  test('the output is byte for byte what the tool wrote', async () => {
    const expected = execFileSync('seq', ['1', '300000'], { maxBuffer: 1 << 24 }).toString();
    expect(await runTool('seq', ['1', '300000'], { largeStdout: true })).toBe(expected);
  });

  test("passes the tool's exit code and error lines through", async () => {
    await expect(seen({ largeStdout: true }, 'echo "error: disk full" >&2; exit 3')).rejects.toThrow(
      'sh failed (exit code 3): error: disk full',
    );
  });

  test('a missing tool is "not installed", with or without stdbuf', async () => {
    for (const largeStdout of [false, true])
      await expect(runTool('cofre-no-such-tool', [], { largeStdout })).rejects.toThrow(
        'cofre-no-such-tool is not installed or not on PATH (install the database client tools)',
      );
  });
});

test('the Fargate dump runner image has stdbuf (its build fails without it)', () => {
  const dockerfile = readFileSync(path.join(__dirname, '../../../tasks/dump-runner/Dockerfile'), 'utf8');
  expect(dockerfile).toMatch(/mysql --version; \\\n(\s*#.*\n)?\s*stdbuf --version\n/);
});
