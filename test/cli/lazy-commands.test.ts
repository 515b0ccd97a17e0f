import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, type CliIo } from '../../cli/cofre';

const root = path.join(__dirname, '..', '..');

/**
 * The files and packages a source file loads when it is loaded: its value imports (`import … from`,
 * `export … from`), followed through the project's own files; `import type` and `import()` (loaded
 * when called) are not followed.
 */
function staticClosure(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(path.join(root, file), 'utf8');
    for (const m of source.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?\bfrom\s+'([^']+)';/gm)) {
      const spec = m[1]!;
      if (!spec.startsWith('.')) {
        seen.add(spec);
        continue;
      }
      const base = path.join(path.dirname(file), spec.replace(/\.js$/, ''));
      const next = [`${base}.ts`, path.join(base, 'index.ts'), `${base}.js`].find((f) =>
        existsSync(path.join(root, f)),
      );
      if (next) visit(next);
    }
  };
  visit(entry);
  return seen;
}

describe('each command loads only its own code (cli/cofre.ts, issue 18)', () => {
  it('cli/cofre.ts loads no command module until a command is named', () => {
    const loaded = [...staticClosure('cli/cofre.ts')];
    expect(loaded.filter((f) => f.endsWith('-command.ts'))).toEqual([]);
  });

  it('a restore or backup from a vault does not load the RDS, Step Functions or tenant code', () => {
    for (const command of ['cli/restore-command.ts', 'cli/backup-command.ts', 'cli/verify-command.ts']) {
      const loaded = [...staticClosure(command)];
      expect(
        loaded.filter(
          (f) =>
            f === 'cli/tenant-command.ts' ||
            f === 'cli/restore-rds.ts' ||
            f === '@aws-sdk/client-rds' ||
            f === 'aws-local-stepfunctions' ||
            (f.endsWith('-command.ts') && f !== command),
        ),
        command,
      ).toEqual([]);
    }
  });

  it('`cofre --help` still lists every command, in order', async () => {
    let out = '';
    const io: CliIo = { stdout: (t) => (out += t), stderr: () => undefined, env: {} };
    expect(await main(['--help'], io)).toBe(0);
    const listed = [...out.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]);
    expect(listed).toEqual([
      'keygen',
      'backup',
      'list',
      'verify',
      'restore',
      'export',
      'decrypt',
      'tenant',
      'local',
      'report',
      'config',
      'rds',
      'files',
      'help',
    ]);
  });

  it('an unknown command is a usage error naming it (exit 2)', async () => {
    let err = '';
    const io: CliIo = { stdout: () => undefined, stderr: (t) => (err += t), env: {} };
    expect(await main(['restor'], io)).toBe(2);
    expect(err).toMatch(/unknown command 'restor'/);
    expect(err).toMatch(/Did you mean restore\?/);
  });
});
