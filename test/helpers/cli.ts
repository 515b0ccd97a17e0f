import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { main } from '../../cli/cofre';

/** Runs `cofre` in-process: its exit code and what it wrote. */
export async function cofre(args: string[], env: NodeJS.ProcessEnv = process.env) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    env,
  });
  return { code, stdout, stderr };
}

export { tempDir } from './temp';

/** Absolute paths of every file under `dir` (none when it does not exist). */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name));
}
