import type { Progress } from '../core/pipeline';
import { createProgressReporter, formatBytes, type ProgressReporter } from '../core/progress';
import type { CliIo } from './cofre';

export { formatBytes };

/**
 * Progress of a CLI command on its stderr (core/progress.ts): a bar redrawn in place on a terminal,
 * otherwise a line every 5 seconds and one at the end.
 */
export function progressFor(io: Pick<CliIo, 'stderr' | 'stderrIsTTY'>): ProgressReporter & {
  /** A log line, after ending a terminal's progress line. */
  log(line: string): void;
} {
  const reporter = createProgressReporter({ write: io.stderr, tty: io.stderrIsTTY ?? false });
  return {
    ...reporter,
    log(line) {
      reporter.interrupt();
      io.stderr(`${line}\n`);
    },
  };
}

/** Backup progress (dumped and stored bytes) on the process's stderr. */
export function progressReporter(stream: NodeJS.WriteStream = process.stderr): {
  update(label: string, p: Progress): void;
  done(): void;
} {
  const reporter = createProgressReporter({
    write: (t) => stream.write(t),
    tty: stream.isTTY,
    intervalMs: 10_000,
  });
  return {
    update(label, p) {
      reporter.update(label, {
        bytes: p.rawBytes,
        verb: 'dumped',
        extra: `${formatBytes(p.storedBytes)} stored`,
      });
    },
    done() {
      reporter.done();
    },
  };
}
