/** Where the CLI writes: stdout for `--json` results, stderr for people. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: NodeJS.ProcessEnv;
  /** Cancels the running command (SIGTERM / SIGINT). */
  readonly signal?: AbortSignal;
  /** stderr is a terminal: progress is a bar redrawn in place, else a line every few seconds. */
  readonly stderrIsTTY?: boolean;
}
