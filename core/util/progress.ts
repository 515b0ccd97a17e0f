/**
 * Progress of long work (backup, restore, verify --deep, export, decrypt, tenant restore, the
 * restore test), one module for all: bytes, rate and elapsed time on stderr (or a log). On a
 * terminal one line redrawn in place with a bar (a percentage when the total is known); otherwise a
 * line every few seconds and one when the work ends, so CI and CloudWatch logs stay readable.
 *
 * Cost: the engines call {@link byteMeter}'s function once per chunk (about 1 MiB): an addition and,
 * for the reporter, a clock read; text is written at most every 200 ms (terminal) or 5 s.
 */

const MiB = 1024 * 1024;

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < MiB) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
}

export function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** How far one piece of work is. */
export interface ProgressSample {
  /** Bytes done so far. */
  readonly bytes: number;
  /** Bytes in all, when known (a bar and a percentage then). */
  readonly total?: number | undefined;
  /** What the bytes are: `read`, `dumped`, `copied`, … */
  readonly verb?: string | undefined;
  /** More to say after the bytes (`1.2 MiB stored`). */
  readonly extra?: string | undefined;
}

export type OnProgress = (sample: ProgressSample) => void;

/**
 * A per-chunk counter for a stream of `total` bytes (or undefined when nobody listens, so the engines
 * pay nothing).
 */
export function byteMeter(
  onProgress: OnProgress | undefined,
  total?: number,
  verb = 'read',
): ((chunk: Buffer) => void) | undefined {
  if (!onProgress) return undefined;
  let bytes = 0;
  return (chunk) => {
    bytes += chunk.length;
    onProgress({ bytes, total, verb });
  };
}

export interface ProgressReporterOptions {
  /** Where text goes (stderr, or a log line function with `tty: false`). */
  readonly write: (text: string) => void;
  /** Redraw one line in place (a terminal). */
  readonly tty: boolean;
  /** Milliseconds between lines when not a terminal. Default 5000. */
  readonly intervalMs?: number;
  readonly now?: () => number;
}

export interface ProgressReporter {
  /** Reports `label`'s progress; a new label starts a new clock. Cheap when nothing is due. */
  update(label: string, sample: ProgressSample): void;
  /** Ends the current line: on a terminal a newline, otherwise a last line with the totals. */
  done(): void;
  /** Before another line is written: ends a terminal's progress line (the clock goes on). */
  interrupt(): void;
}

export function createProgressReporter(options: ProgressReporterOptions): ProgressReporter {
  const now = options.now ?? Date.now;
  const interval = options.tty ? 200 : (options.intervalMs ?? 5000);
  let label = '';
  let started = 0;
  let last = 0;
  let latest: ProgressSample | undefined;
  let drawn = false;
  let pending = false;

  const line = (t: number, sample: ProgressSample) => {
    const secs = Math.max((t - started) / 1000, 0.001);
    const rate = sample.bytes / MiB / secs;
    const of =
      sample.total !== undefined && sample.total > 0
        ? ` of ${formatBytes(sample.total)} (${Math.min(100, Math.floor((sample.bytes / sample.total) * 100))} %)`
        : '';
    const extra = sample.extra ? `, ${sample.extra}` : '';
    return `${label}: ${formatBytes(sample.bytes)}${of} ${sample.verb ?? 'read'}${extra}, ${rate.toFixed(1)} MiB/s, ${formatElapsed(t - started)}`;
  };
  const bar = (t: number, sample: ProgressSample) => {
    const width = 20;
    if (sample.total !== undefined && sample.total > 0) {
      const filled = Math.min(width, Math.floor((sample.bytes / sample.total) * width));
      return `[${'='.repeat(filled)}${' '.repeat(width - filled)}]`;
    }
    const pos = Math.floor(t / 150) % width;
    return `[${Array.from({ length: width }, (_, i) => (i === pos ? '=' : ' ')).join('')}]`;
  };
  const flush = () => {
    if (options.tty) {
      if (pending && latest) options.write(`\r${bar(now(), latest)} ${line(now(), latest)}\x1b[K\n`);
      else if (drawn) options.write('\n');
    } else if (pending && latest) options.write(`${line(now(), latest)}\n`);
    drawn = false;
    pending = false;
    latest = undefined;
  };

  return {
    update(name, sample) {
      const t = now();
      if (name !== label) {
        flush();
        label = name;
        started = t;
        last = t;
      }
      latest = sample;
      // An encryption header comes out before any data: nothing to report yet.
      if (sample.bytes === 0) return;
      pending = true;
      if (t - last < interval) return;
      last = t;
      if (options.tty) {
        options.write(`\r${bar(t, sample)} ${line(t, sample)}\x1b[K`);
        drawn = true;
      } else {
        options.write(`${line(t, sample)}\n`);
        pending = false;
      }
    },
    done() {
      flush();
      label = '';
    },
    interrupt() {
      if (options.tty && drawn) {
        options.write('\n');
        drawn = false;
      }
    },
  };
}

/**
 * Calls `onProgress` every `intervalMs` while `probe` says the work moves (one probe at a time). A
 * probe that fails says nothing: no progress, and the heartbeat it feeds decides. Returns the
 * function that stops probing.
 */
export function probeProgress(
  probe: () => Promise<boolean>,
  onProgress: () => void,
  intervalMs: number,
): () => void {
  let busy = false;
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    probe()
      .then((working) => {
        if (working) onProgress();
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  timer.unref();
  return () => {
    clearInterval(timer);
  };
}
