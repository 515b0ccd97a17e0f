import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cliMessage, flagOf, FLAG_OF_FIELD } from '../../cli/flags';
import { FieldError, OperationalError, UsageError } from '../../core/util/errors';
import { cofre, filesUnder, tempDir } from '../helpers/cli';
import { testKeys } from '../helpers/engine';

const ROOT = path.join(__dirname, '..', '..');

/** Every .ts file under a folder of the repository, with its text. */
function sources(folder: string): { file: string; text: string }[] {
  return readdirSync(path.join(ROOT, folder), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: path.join(folder, f), text: readFileSync(path.join(ROOT, folder, f), 'utf8') }));
}

describe('CLI vocabulary stays in cli/: core names fields, the CLI names flags', () => {
  it('maps a core field to its flag', () => {
    expect(flagOf('zstdLevel')).toBe('--zstd-level');
    expect(flagOf('kmsKeyArn')).toBe('--kms-key');
    expect(flagOf('sourceId')).toBe('--id');
    expect(flagOf('dataClass')).toBe('--class');
    expect(flagOf('model.table')).toBe('--tenant-table');
    expect(flagOf('model.tenantColumn')).toBe('--tenant-column');
    // A field the table does not list still reads as a flag, never as core's name.
    expect(flagOf('intoDatabase')).toBe('--into-database');
  });

  it('prints a FieldError with the flag, and any other error as it is', () => {
    const error = new FieldError('zstdLevel', 'expected a whole number from 1 to 19, got 40');
    // What a Lambda or the Fargate task reports: core's own name.
    expect(error.message).toBe('zstdLevel: expected a whole number from 1 to 19, got 40');
    expect(error).toBeInstanceOf(UsageError);
    expect(error.exitCode).toBe(2);
    // What a person at the command line reads.
    expect(cliMessage(error)).toBe('--zstd-level: expected a whole number from 1 to 19, got 40');
    expect(cliMessage(new FieldError('kmsKeyArn', 'no KMS client available'))).toBe(
      '--kms-key: no KMS client available',
    );
    expect(cliMessage(new UsageError('--jobs: expected "auto"'))).toBe('--jobs: expected "auto"');
    expect(cliMessage(new OperationalError('disk full'))).toBe('disk full');
    expect(cliMessage('a string')).toBe('a string');
  });

  it('lists every field core throws, and no field core never throws', () => {
    const core = sources('core');
    const thrown = new Set(
      core.flatMap(({ text }) => [...text.matchAll(/new FieldError\(\s*'([^']+)'/g)].map((m) => m[1]!)),
    );
    // readPem names its field through a parameter: its callers pass these literals.
    for (const { text } of core)
      for (const m of text.matchAll(/readPem\([^,]+,\s*'([^']+)'/g)) thrown.add(m[1]!);
    expect(thrown.size).toBeGreaterThan(10);
    expect([...thrown].filter((f) => !(f in FLAG_OF_FIELD))).toEqual([]);
    expect(Object.keys(FLAG_OF_FIELD).filter((f) => !thrown.has(f))).toEqual([]);
  });

  it('maps each field to a flag some command really has', async () => {
    let help = '';
    for (const command of [
      ['backup'],
      ['restore'],
      ['export'],
      ['decrypt'],
      ['verify'],
      ['tenant', 'plan'],
    ]) {
      const r = await cofre([...command, '--help']);
      expect(r.code).toBe(0);
      help += r.stdout;
    }
    const missing = Object.values(FLAG_OF_FIELD).filter(
      (flag) => !new RegExp(`(^|[\\s,])${flag}(?![\\w-])`, 'm').test(help),
    );
    expect(missing).toEqual([]);
  });

  it('has no `opts.x as` cast and no untyped options object in cli/', () => {
    const casts = sources('cli').flatMap(({ file, text }) =>
      text
        .split('\n')
        .map((line, i) => ({ line: line.trim(), at: `${file}:${i + 1}` }))
        .filter(
          ({ line }) => /\bopts\.[\w.]+\)?\s+as\s/.test(line) || /opts: Record<string, unknown>/.test(line),
        )
        .map(({ at, line }) => `${at}: ${line}`),
    );
    expect(casts).toEqual([]);
  });

  it('the test above finds a cast when there is one', () => {
    const line = 'const engine = engineFor(opts.engine as string | undefined, String(opts.url));';
    expect(/\bopts\.[\w.]+\)?\s+as\s/.test(line)).toBe(true);
    expect(/\bopts\.[\w.]+\)?\s+as\s/.test('sseKmsKeyId: (opts.sseKmsKey ?? opts.kmsKey) as string,')).toBe(
      true,
    );
  });
});

describe('a core field error reads as its flag at the command line (exit 2, nothing written)', () => {
  let keyFile: string;
  beforeAll(async () => {
    ({ keyFile } = await testKeys());
  });

  it.each([
    [
      ['--time-zone', 'Mars/Base'],
      'cofre: --time-zone: expected an IANA time zone such as "America/Sao_Paulo", got "Mars/Base"\n',
    ],
    [
      ['--id', '-bad id'],
      'cofre: --id: expected letters, digits, ".", "_" or "-" (at most 63), got "-bad id"\n',
    ],
  ])('%j', async (extra, expected) => {
    const vaultDir = path.join(tempDir('flags'), 'vault');
    const args = [
      'backup',
      '--url',
      'postgres://h/db',
      '--vault',
      `file://${vaultDir}`,
      '--key-file',
      keyFile,
    ];
    const r = await cofre([...args, ...extra]);
    expect(r.stderr).toBe(expected);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(filesUnder(path.dirname(vaultDir))).toEqual([]);
  });

  it('a malformed --kms-key', async () => {
    const vaultDir = path.join(tempDir('flags'), 'vault');
    const r = await cofre([
      'backup',
      '--url',
      'postgres://h/db',
      '--vault',
      `file://${vaultDir}`,
      '--kms-key',
      'alias/cofre',
    ]);
    expect(r.stderr).toBe(
      'cofre: --kms-key: expected a KMS key ARN like "arn:aws:kms:sa-east-1:123456789012:key/…", got "alias/cofre"\n',
    );
    expect(r.code).toBe(2);
    expect(filesUnder(path.dirname(vaultDir))).toEqual([]);
  });

  it('a missing --escrow-public-key file', async () => {
    const dir = tempDir('flags');
    const pem = path.join(dir, 'nope.pem');
    const r = await cofre([
      'backup',
      '--url',
      'postgres://h/db',
      '--vault',
      `file://${path.join(dir, 'vault')}`,
      '--key-file',
      keyFile,
      '--escrow-public-key',
      pem,
    ]);
    expect(r.stderr).toMatch(new RegExp(`^cofre: --escrow-public-key: cannot read ${pem}: `));
    expect(r.code).toBe(2);
    expect(filesUnder(dir)).toEqual([]);
  });
});
