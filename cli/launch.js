// How cli/bin.js starts a command: streaming commands in a child Node process whose garbage
// collector is tuned for streams (issue 18), everything else in this process. Plain CommonJS: it
// runs before the bundle or tsx is loaded.
'use strict';
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

/**
 * V8 settings for the commands that stream a whole database through the process. Every chunk of a
 * dump lives in a Buffer outside the JavaScript heap; by default V8 answers each ~64 MB of such
 * memory with a full mark-compact of the whole heap (75 of them, 4 s of a 20 s backup in the
 * profile). Counting that memory in the global limit instead, and keeping the young generation at
 * 1 MB so the short-lived Buffers are freed by cheap scavenges, took the GC from ~1.7 s to ~0.1 s
 * per 750 MB and lowered the peak RSS (`npm run bench`, README "Benchmarks"). `--expose-gc` lets the
 * backup's compress stage ask for a scavenge every 8 MiB (core/util/young-gc.ts): with large reads
 * the stream's own allocations came too rarely to free the dead Buffers, and about half the backups
 * made ~40 mark-compacts instead of 1.
 */
const GC_FLAGS = ['--external-memory-accounted-in-global-limit', '--max-semi-space-size=1', '--expose-gc'];
/**
 * Added for the commands whose streams V8 otherwise collects too often. Each collection then lets
 * the heap and the external memory together grow to twice what survived. V8's own factor shrank to
 * ~1.2 when `verify --deep` read pg_restore's output back: a mark-compact every ~9 MB, 60–80 per
 * 600 MB. Side by side (median of 5, 2.5 M-row ledger): verify --deep 4.55 → 3.27 s wall, 7.2 → 5.0
 * CPU-seconds, peak RSS 254 → 173 MiB; a files sync of 10,000 objects at the same speed, peak RSS
 * 227 → 159 MiB. Not for `backup`: V8's factor there is larger and the fixed one made 22
 * mark-compacts of one.
 */
const MORE_GC_FLAGS = { verify: ['--heap-growing-percent=100'], files: ['--heap-growing-percent=100'] };

/** The V8 flags `command` runs with (empty: it runs in the launcher's own process). */
function gcFlagsFor(command) {
  if (!STREAMING.has(command)) return [];
  return [...GC_FLAGS, ...(MORE_GC_FLAGS[command] ?? [])];
}

/**
 * The commands worth a child process (about 40 ms and 40 MB more). Measured side by side on a
 * 750 MB dump: `backup` 15.4 → 9.2 CPU-seconds and 220 → 180 MiB peak RSS. `files` (sync,
 * restore, test: many small objects streamed S3 to S3): a first sync of 10,000 objects peaked at
 * 315 MiB instead of 422 MiB, at the same speed (`npm run bench -- --only files`). `verify --deep`
 * (2.5 M-row ledger): see `--heap-growing-percent` above. `restore` stays in one process: with
 * the flags it spends 27 % less CPU but is no faster (the server's COPY is its bound; two
 * side-by-side runs, medians of 4 and 5: 1.08 and 1.01 × the wall time) and its peak RSS rises
 * 206 → 235–241 MiB at 2.5 M rows, close to the 256 MiB bound of backup and restore.
 * The Fargate runner's image starts every command with GC_FLAGS (tasks/dump-runner/Dockerfile).
 */
const STREAMING = new Set(['backup', 'files', 'verify']);

/** A command-line argument with the password of any URL in it replaced by `***`. */
function redactArgument(arg) {
  // Up to the last "@": a password may hold an unencoded "@" (over-redacting is the safe side).
  return arg.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)\S+@/gi, '$1***@');
}

/**
 * Runs `script` again in a child with gcFlagsFor(command) when the command streams and they are not set
 * yet (COFRE_GC_TUNING=off skips it); returns whether it did. The parent shows the redacted
 * arguments, forwards SIGINT/SIGTERM/SIGHUP, and ends as the child ended (same code or signal);
 * the child is in its own process group, so a Ctrl-C reaches it once, through the parent. If the
 * parent dies (even by SIGKILL), the child dies the same way: it watches the IPC channel.
 */
function relaunch(script) {
  const command = process.argv[2];
  const flags = gcFlagsFor(command);
  if (flags.length === 0 || process.env.COFRE_GC_TUNING === 'off') return false;
  if (flags.every((flag) => process.execArgv.includes(flag))) return false;
  const args = process.argv.slice(2);
  const shown = args.map(redactArgument);
  if (shown.some((a, i) => a !== args[i])) process.title = ['cofre', ...shown].join(' ');
  const child = spawn(process.execPath, [...process.execArgv, ...flags, script, ...args], {
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  const forward = (signal) => () => {
    child.kill(signal);
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, forward(signal));
  child.once('error', (error) => {
    process.stderr.write(`cofre: cannot start ${process.execPath}: ${error.message}\n`);
    process.exit(1);
  });
  child.once('exit', (code, signal) => {
    if (signal) {
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
  return true;
}

/** The esbuild bundle of the CLI (dist/cofre.js, made by `npm run build:cli`). */
const BUNDLE = path.join(__dirname, '..', 'dist', 'cofre.js');

/** Whether the bundle exists and is newer than every source file of cli/ and core/. */
function bundleIsFresh() {
  const root = path.join(__dirname, '..');
  try {
    const built = fs.statSync(BUNDLE).mtimeMs;
    for (const dir of ['cli', 'core']) {
      for (const entry of fs.readdirSync(path.join(root, dir), { recursive: true, withFileTypes: true })) {
        if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
        if (fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs > built) return false;
      }
    }
    return true;
  } catch {
    return false;
  }
}

/** In the child: die with the parent (the IPC channel closes when it does, whatever killed it). */
function watchParent() {
  if (!process.channel) return;
  process.channel.unref();
  process.once('disconnect', () => {
    process.kill(process.pid, 'SIGKILL');
  });
}

module.exports = { BUNDLE, GC_FLAGS, bundleIsFresh, gcFlagsFor, redactArgument, relaunch, watchParent };
