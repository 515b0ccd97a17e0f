import { Command, CommanderError } from 'commander';
import { COFRE_VERSION } from '../core/backup/backup';
import { killAllTools } from '../core/sources/process';
import { CofreError, messageOf } from '../core/util/errors';
import { CANCEL_GRACE_MS, parseDuration, withRun } from '../core/util/run-context';
import { addBackupCommand } from './backup-command';
import { addConfigCommand } from './config-command';
import { addDecryptCommand } from './decrypt-command';
import { addExportCommand } from './export-command';
import { addFilesCommand } from './files-command';
import { cliMessage } from './flags';
import type { CliIo } from './io';
import { addKeygenCommand } from './keygen-command';
import { addListCommand } from './list-command';
import { addLocalCommand } from './local-command';
import { addRdsCommand } from './rds-command';
import { addReportCommand } from './report-command';
import { addRestoreCommand } from './restore-command';
import { addTenantCommand } from './tenant-command';
import { addVerifyCommand } from './verify-command';
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

  addKeygenCommand(program, io, (c) => (exitCode = c));
  addBackupCommand(program, io, (c) => (exitCode = c));
  addListCommand(program, io, (c) => (exitCode = c));
  addVerifyCommand(program, io, (c) => (exitCode = c));
  addRestoreCommand(program, io, (c) => (exitCode = c));
  addExportCommand(program, io, (c) => (exitCode = c));
  addDecryptCommand(program, io, (c) => (exitCode = c));
  addTenantCommand(program, io, (c) => (exitCode = c));
  addLocalCommand(program, io, (c) => (exitCode = c));
  addReportCommand(program, io);
  addConfigCommand(program, io, (c) => (exitCode = c));
  addRdsCommand(program, io, (c) => (exitCode = c));
  addFilesCommand(program, io, (c) => (exitCode = c));
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
