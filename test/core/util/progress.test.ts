import { describe, expect, it } from 'vitest';
import { byteMeter, createProgressReporter } from '../../../core/util/progress';

const MiB = 1024 * 1024;

function clockedReporter(tty: boolean) {
  let t = 1_000_000;
  const out: string[] = [];
  const reporter = createProgressReporter({ write: (s) => out.push(s), tty, now: () => t });
  return {
    reporter,
    out,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('progress reporter', () => {
  it('not a terminal: a line every 5 seconds with bytes of the total, percent, rate and elapsed, and one at the end', () => {
    const { reporter, out, advance } = clockedReporter(false);
    const total = 120 * MiB;
    for (let s = 1; s <= 12; s++) {
      advance(1000);
      reporter.update('restore B1', { bytes: s * 10 * MiB, total });
    }
    expect(out).toEqual([
      // The clock starts at the first report (10 MiB in).
      'restore B1: 60.0 MiB of 120.0 MiB (50 %) read, 12.0 MiB/s, 00:05\n',
      'restore B1: 110.0 MiB of 120.0 MiB (91 %) read, 11.0 MiB/s, 00:10\n',
    ]);
    reporter.done();
    expect(out.at(-1)).toBe('restore B1: 120.0 MiB of 120.0 MiB (100 %) read, 10.9 MiB/s, 00:11\n');
    reporter.done();
    expect(out).toHaveLength(3);
  });

  it('a terminal: one line redrawn in place with a bar, ended with the final state', () => {
    const { reporter, out, advance } = clockedReporter(true);
    advance(1);
    reporter.update('export B2', { bytes: 0, total: 4 * MiB, verb: 'copied' });
    for (let i = 1; i <= 4; i++) {
      advance(250);
      reporter.update('export B2', { bytes: i * MiB, total: 4 * MiB, verb: 'copied' });
    }
    expect(out[0]).toBe(
      '\r[=====               ] export B2: 1.0 MiB of 4.0 MiB (25 %) copied, 4.0 MiB/s, 00:00\x1b[K',
    );
    expect(out).toHaveLength(4);
    reporter.interrupt();
    expect(out.at(-1)).toBe('\n');
    reporter.done();
    expect(out.at(-1)).toBe(
      '\r[====================] export B2: 4.0 MiB of 4.0 MiB (100 %) copied, 4.0 MiB/s, 00:01\x1b[K\n',
    );
  });

  it('costs nothing measurable: a million chunk updates (64 TiB at 64 KiB chunks) take well under a second', () => {
    const reporter = createProgressReporter({ write: () => undefined, tty: false });
    const meter = byteMeter((s) => {
      reporter.update('verify', s);
    }, 1024 ** 4)!;
    const chunk = Buffer.alloc(64 * 1024);
    const started = performance.now();
    for (let i = 0; i < 1_000_000; i++) meter(chunk);
    const ms = performance.now() - started;
    console.log(`progress: ${(ms * 1000) / 1_000_000} µs per chunk`);
    expect(ms).toBeLessThan(1000);
  });

  it('no listener, no meter: the engines skip it', () => {
    expect(byteMeter(undefined, 10)).toBeUndefined();
  });
});
