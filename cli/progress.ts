import type { Progress } from '../core/pipeline';

const MiB = 1024 * 1024;

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < MiB) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
}

function elapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/**
 * Progress on stderr: on a terminal, one line redrawn in place with a moving bar; otherwise a line
 * every 10 seconds (so CI and CloudWatch logs stay readable).
 */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr): {
  update(label: string, p: Progress): void;
  done(): void;
} {
  const tty = stream.isTTY;
  let started = Date.now();
  let last = 0;
  let label = '';
  let drawn = false;
  return {
    update(name, p) {
      const now = Date.now();
      if (name !== label) {
        label = name;
        started = now;
        last = 0;
      }
      // The encryption header comes out before any data: nothing to report yet.
      if (p.rawBytes === 0 || now - last < (tty ? 200 : 10_000)) return;
      last = now;
      const secs = Math.max((now - started) / 1000, 0.001);
      const rate = p.rawBytes / MiB / secs;
      const text = `${label}: ${formatBytes(p.rawBytes)} dumped, ${formatBytes(p.storedBytes)} stored, ${rate.toFixed(1)} MiB/s, ${elapsed(now - started)}`;
      if (tty) {
        const width = 20;
        const pos = Math.floor(now / 150) % width;
        const bar = Array.from({ length: width }, (_, i) => (i === pos ? '=' : ' ')).join('');
        stream.write(`\r[${bar}] ${text}\x1b[K`);
        drawn = true;
      } else stream.write(`${text}\n`);
    },
    done() {
      if (tty && drawn) stream.write('\n');
      drawn = false;
    },
  };
}
