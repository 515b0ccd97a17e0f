import type { Progress } from '../core/backup/stream-encoder';
import {
  createProgressReporter,
  formatBytes,
  type ProgressReporter,
  type ProgressSample,
} from '../core/util/progress';
import type { CliIo } from './io';

export { formatBytes };

/**
 * Progress of a CLI command on its stderr (core/util/progress.ts): a bar redrawn in place on a terminal,
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

/** A backup's progress: bytes dumped (the total is unknown until the dump ends) and stored. */
export function backupSample(p: Progress): ProgressSample {
  return { bytes: p.rawBytes, verb: 'dumped', extra: `${formatBytes(p.storedBytes)} stored` };
}

/** `1 table`, `2 tables`: a count with its noun in the right number. */
export function count(n: number, singular: string, plural = `${singular}s`): string {
  return `${n} ${n === 1 ? singular : plural}`;
}
