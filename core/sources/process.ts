import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { OperationalError, UsageError } from '../util/errors';
import { currentRun, onRunAbort } from '../util/run-context';

/** A running dump (or restore) tool. */
export interface ToolProcess {
  readonly stdout: Readable;
  readonly stdin: Writable | null;
  /** Resolves when the tool exited 0 without writing an error; rejects with a clear message otherwise. */
  readonly finished: Promise<void>;
  /** Stops the tool (SIGTERM, then SIGKILL after 3 s). */
  kill(): void;
}

export interface SpawnToolOptions {
  /** Extra environment (e.g. PGPASSWORD); the password goes here or in `optionFile`, never in argv. */
  readonly env?: Record<string, string | undefined>;
  /**
   * A secret option file for the tool, readable by it as `/dev/fd/4` (MySQL's
   * `--defaults-extra-file=/dev/fd/4`). It travels through pipes only: Node hands it over on a
   * socket, which `open("/dev/fd/N")` cannot read, so a `sh` wrapper copies it into a real pipe
   * with `cat`. Nothing is written to disk and nothing appears in argv.
   */
  readonly optionFile?: string;
  /** Pipe stdin (restore tools). */
  readonly stdin?: boolean;
  /** stderr lines that are failures even when the tool exits 0. */
  readonly errorPattern?: RegExp;
  /** Strings to blank out of any message (passwords). */
  readonly secrets?: readonly (string | undefined)[];
  /** Stops the tool when it aborts. Default: the run's signal (see `core/util/run-context.ts`). */
  readonly signal?: AbortSignal | undefined;
  /**
   * The tool streams a large stdout to us through C stdio's `stdout` (pg_dump, mysqldump), whose
   * buffer on a pipe is 4 KiB: ~150,000 writes per 600 MB, each a wake-up and a stream chunk here
   * (1.5 CPU-seconds of ours for a 680 MB mysqldump). With this set the tool runs under coreutils'
   * `stdbuf -o1M` when `stdbuf` is on PATH, so it writes 1 MiB at a time; without stdbuf it runs as
   * it is. No use for `pg_restore --file=-`, which writes through its own FILE (still 4 KiB).
   */
  readonly largeStdout?: boolean;
  /**
   * The same for a tool that reads a large stdin through C stdio's `stdin` (pg_restore reading an
   * archive): `stdbuf -i1M`, so it reads up to a pipe's 64 KiB at a time instead of 4 KiB (pg_restore
   * of a 622 MB archive: 152,000 reads → 9,600), and we are woken to write far less often.
   */
  readonly largeStdin?: boolean;
}

/** After SIGTERM, how long a tool has before SIGKILL. */
const KILL_AFTER_MS = 3000;

/** Every tool still running in this process, so that a last-resort exit can kill them all. */
const running = new Set<(sig: NodeJS.Signals) => void>();

/** Sends SIGKILL to every tool still running (the CLI's last resort before it exits). */
export function killAllTools(): number {
  const n = running.size;
  for (const kill of running) kill('SIGKILL');
  return n;
}

const STDERR_LIMIT = 16 * 1024;

/** The stdio buffer of a tool with a large stdout or stdin (`stdbuf -o` / `-i`). */
export const TOOL_STDIO_BUFFER = '1M';

let stdbuf: string | null | undefined;

/** coreutils' `stdbuf` on PATH, or null (looked up once per process). */
export function stdbufPath(): string | null {
  if (stdbuf === undefined) {
    stdbuf = null;
    for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
      if (!dir) continue;
      try {
        accessSync(path.join(dir, 'stdbuf'), constants.X_OK);
        stdbuf = path.join(dir, 'stdbuf');
        break;
      } catch {
        // not in this directory
      }
    }
  }
  return stdbuf;
}

/** Removes every secret from a text. */
export function scrub(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 1) out = out.split(s).join('***');
  return out;
}

/**
 * Starts a database tool. Its arguments must never contain a password; its stderr is kept (the
 * last 16 KiB, secrets scrubbed) for the error message.
 */
export function spawnTool(
  command: string,
  args: readonly string[],
  options: SpawnToolOptions = {},
): ToolProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, ...options.env, LC_ALL: 'C.UTF-8' };
  const viaShell = options.optionFile !== undefined;
  const buffer = options.largeStdout || options.largeStdin ? stdbufPath() : null;
  const modes = [
    ...(options.largeStdin ? [`-i${TOOL_STDIO_BUFFER}`] : []),
    ...(options.largeStdout ? [`-o${TOOL_STDIO_BUFFER}`] : []),
  ];
  // stdbuf execs the tool in its place: same process, same exit code and signals.
  const argv = buffer ? [buffer, ...modes, command, ...args] : [command, ...args];
  const stdio = [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(viaShell ? ['pipe'] : [])] as const;
  const child = spawn(
    viaShell ? '/bin/sh' : argv[0]!,
    viaShell ? ['-c', 'exec 5<&0; cat <&3 | "$@" 4<&0 0<&5 5<&- 3<&-', 'sh', ...argv] : argv.slice(1),
    // Its own process group, so that stopping it also stops the tool under the shell.
    { env, stdio: stdio as unknown as ['pipe', 'pipe', 'pipe'], detached: viaShell },
  ) as ChildProcessByStdio<Writable | null, Readable, Readable>;
  if (viaShell) {
    const fd3 = child.stdio[3] as Writable;
    fd3.on('error', () => undefined);
    fd3.end(options.optionFile);
  }
  const sendSignal = (sig: NodeJS.Signals) => {
    try {
      if (viaShell && child.pid) process.kill(-child.pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };
  running.add(sendSignal);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-STDERR_LIMIT);
  });
  let killTimer: NodeJS.Timeout | undefined;
  const notInstalled = () =>
    new UsageError(`${command} is not installed or not on PATH (install the database client tools)`);
  const finished = new Promise<void>((resolve, reject) => {
    child.once('error', (error: NodeJS.ErrnoException) => {
      running.delete(sendSignal);
      reject(
        error.code === 'ENOENT'
          ? notInstalled()
          : new OperationalError(`${command} could not start: ${error.message}`),
      );
    });
    child.once('close', (code, signal) => {
      if (killTimer) clearTimeout(killTimer);
      running.delete(sendSignal);
      unsubscribe();
      const text = scrub(stderr.trim(), options.secrets);
      if (buffer && code === 127 && /^\S*stdbuf: failed to run command/.test(text)) {
        reject(notInstalled());
        return;
      }
      const errorLines = options.errorPattern
        ? text.split('\n').filter((l) => options.errorPattern!.test(l))
        : [];
      if (code === 0 && errorLines.length === 0) {
        resolve();
        return;
      }
      // The lines that say "error" first (a tool may echo a huge failing statement after them),
      // each clipped, so the message stays readable.
      const lines = text.split('\n');
      const important = lines.filter((l) => /error|fatal|could not|couldn't|denied|refused/i.test(l));
      const shown = (important.length ? important : lines.slice(-20)).map((l) =>
        l.length > 400 ? `${l.slice(0, 400)}… (${l.length} characters)` : l,
      );
      reject(
        new OperationalError(
          `${command} failed (${signal ? `killed by ${signal}` : `exit code ${String(code)}`})${
            shown.length && text ? `: ${shown.join('\n').slice(-4000)}` : ''
          }`,
        ),
      );
    });
  });
  // Keep an unobserved rejection from crashing the process before the caller awaits it.
  finished.catch(() => undefined);
  const kill = () => {
    if (child.exitCode !== null || child.signalCode !== null || killTimer) return;
    sendSignal('SIGTERM');
    killTimer = setTimeout(() => {
      sendSignal('SIGKILL');
    }, KILL_AFTER_MS);
    killTimer.unref();
  };
  // The run's cancellation (SIGTERM, a failed stage) stops the tool, whoever started it.
  const unsubscribe = onRunAbort(kill, options.signal ?? currentRun().signal);
  return { stdout: child.stdout, stdin: child.stdin, finished, kill };
}

/** Runs a tool to completion and returns its stdout (small outputs: versions, lists). */
export async function runTool(
  command: string,
  args: readonly string[],
  options: SpawnToolOptions = {},
): Promise<string> {
  const tool = spawnTool(command, args, options);
  const chunks: Buffer[] = [];
  tool.stdout.on('data', (c: Buffer) => chunks.push(c));
  await tool.finished;
  return Buffer.concat(chunks).toString('utf8');
}
