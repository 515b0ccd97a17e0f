import { Command, CommanderError } from 'commander';
import { COFRE_VERSION } from '../core/util/version';
import { killAllTools } from '../core/sources/process';
import { CofreError, messageOf } from '../core/util/errors';
import { CANCEL_GRACE_MS, parseDuration, withRun } from '../core/util/run-context';
import { cliMessage } from './flags';
import type { CliIo } from './io';
import { redactArgument } from './launch';

export type { CliIo } from './io';

/**
 * The session limits given on the command line. Read before commander runs the action, so that the
 * whole action runs inside one run context (core/util/run-context.ts) with them and with the signal.
 */
function sessionLimits(argv: readonly string[]): { lockTimeoutMs?: number; statementTimeoutMs?: number } {
  const value = (flag: string): string | undefined => {
    const i = argv.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
    if (i === -1) return undefined;
    return argv[i]!.includes('=') ? argv[i]!.slice(flag.length + 1) : argv[i + 1];
  };
  const lock = value('--lock-timeout');
  const statement = value('--statement-timeout');
  return {
    ...(lock !== undefined ? { lockTimeoutMs: parseDuration(lock, '--lock-timeout') } : {}),
    ...(statement !== undefined
      ? { statementTimeoutMs: parseDuration(statement, '--statement-timeout', { allowZero: true }) }
      : {}),
  };
}

type AddCommand = (program: Command, io: CliIo, setExitCode: (code: number) => void) => void;

/**
 * Every command, in the order `cofre --help` lists them, each loaded only when asked for: a run
 * loads the modules of its own command alone (`cofre restore` does not load the RDS, SSM, Step
 * Functions or MySQL code). That halves the JavaScript heap a streaming command carries, and with
 * it the cost of each garbage collection and ~38 MiB of resident memory (issue 18).
 */
const COMMANDS: Readonly<Record<string, () => Promise<AddCommand>>> = {
  keygen: async () => (await import('./keygen-command.js')).addKeygenCommand,
  backup: async () => (await import('./backup-command.js')).addBackupCommand,
  list: async () => (await import('./list-command.js')).addListCommand,
  verify: async () => (await import('./verify-command.js')).addVerifyCommand,
  restore: async () => (await import('./restore-command.js')).addRestoreCommand,
  export: async () => (await import('./export-command.js')).addExportCommand,
  decrypt: async () => (await import('./decrypt-command.js')).addDecryptCommand,
  tenant: async () => (await import('./tenant-command.js')).addTenantCommand,
  local: async () => (await import('./local-command.js')).addLocalCommand,
  report: async () => (await import('./report-command.js')).addReportCommand,
  config: async () => (await import('./config-command.js')).addConfigCommand,
  rds: async () => (await import('./rds-command.js')).addRdsCommand,
  files: async () => (await import('./files-command.js')).addFilesCommand,
};

/**
 * The commands to register: the one `argv` names (its first argument), none for `--version`, or
 * all of them for the program's own help and usage errors (an unknown command is then reported
 * with the commands that exist).
 */
async function commandsFor(argv: readonly string[]): Promise<AddCommand[]> {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) return [];
  const named = argv[0] !== undefined && Object.hasOwn(COMMANDS, argv[0]) ? [argv[0]] : Object.keys(COMMANDS);
  return Promise.all(named.map((name) => COMMANDS[name]!()));
}

/** Runs `cofre` with `argv` (without node and script); returns the exit code. */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = 0;
  const program = new Command('cofre')
    .description('Cofre: verified, encrypted backups of PostgreSQL and MySQL/MariaDB')
    .version(COFRE_VERSION)
    .exitOverride()
    // Help and --version are the output asked for (stdout); usage errors go to stderr.
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run "cofre --help" for usage)');

  const setExitCode = (c: number) => (exitCode = c);
  for (const add of await commandsFor(argv)) add(program, io, setExitCode);
  try {
    const limits = sessionLimits(argv);
    await withRun({ signal: io.signal, ...limits }, () => program.parseAsync([...argv], { from: 'user' }));
    return interrupted(io, exitCode);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not errors; every usage mistake is exit 2.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof CofreError) {
      io.stderr(`cofre: ${cliMessage(error)}\n`);
      return interrupted(io, error.exitCode);
    }
    io.stderr(`cofre: ${messageOf(error)}\n`);
    return interrupted(io, 1);
  }
}

/** A run stopped by Ctrl-C (SIGINT) exits 130 (128 + 2), as shells expect; SIGTERM keeps its code. */
function interrupted(io: CliIo, code: number): number {
  return code !== 0 && io.signal?.aborted && io.signal.reason === 'SIGINT' ? 130 : code;
}

/** A command-line argument with the password of any URL in it replaced by `***` (cli/launch.js). */
export { redactArgument };

/** The process entry point: wires signals, stdout/stderr and the exit code. */
export function run(): void {
  const controller = new AbortController();
  const cancel = (reason: string) => {
    if (controller.signal.aborted) return;
    controller.abort(reason);
    // Cleanup (rollback, dropping what the run made) gets a bounded time: a run that cannot stop
    // by itself still ends, its tools killed; what it left is reported and removed by the next run.
    setTimeout(() => {
      const killed = killAllTools();
      process.stderr.write(
        `cofre: cleanup did not finish within ${CANCEL_GRACE_MS / 1000} s after ${reason}; exiting${killed ? ` (killed ${killed} database tools)` : ''}\n`,
      );
      process.exit(1);
    }, CANCEL_GRACE_MS).unref();
  };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      if (controller.signal.aborted) {
        // A second signal: stop now.
        killAllTools();
        process.exit(1);
      }
      process.stderr.write(`\ncofre: received ${sig}, stopping and cleaning up…\n`);
      cancel(sig);
    });
  }
  // A closed pipe (`cofre list --json | head`) ends the run like a signal, not with a crash.
  for (const stream of [process.stdout, process.stderr])
    stream.on('error', (error: NodeJS.ErrnoException) => {
      cancel(error.code === 'EPIPE' ? 'closed pipe' : `output error ${error.code ?? error.message}`);
    });
  // The password of a --url / --target-url is read from this copy; the process's own argv (and so
  // `ps` and /proc/<pid>/cmdline) shows it as *** for the whole run.
  const argv = process.argv.slice(2);
  const shown = argv.map(redactArgument);
  if (shown.some((a, i) => a !== argv[i])) {
    process.argv = [...process.argv.slice(0, 2), ...shown];
    process.title = ['cofre', ...shown].join(' ');
  }
  main(argv, {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    env: process.env,
    signal: controller.signal,
    stderrIsTTY: process.stderr.isTTY,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`cofre: ${messageOf(error)}\n`);
      process.exitCode = 1;
    },
  );
}
