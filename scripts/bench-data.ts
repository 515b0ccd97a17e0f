/**
 * Fills a benchmark database with realistic data (see scripts/bench-data-lib.ts).
 *
 *   npx tsx scripts/bench-data.ts --engine postgres --rows 3000000 --url postgres://postgres@127.0.0.1:5432/cofre_bench
 *   npx tsx scripts/bench-data.ts --engine mysql --url mysql://root@127.0.0.1:3306/cofre_bench
 *
 * Creates the database if absent, resumes from the highest existing document id, prints
 * progress on stderr and one JSON summary line on stdout (engine, database, rows, bytes, seconds).
 * Pass the password in the URL or, better, through PGPASSWORD-style tooling of your own: the URL
 * is never printed.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_BENCH_ROWS, generateBenchData, type BenchEngine } from './bench-data-lib';

const USAGE =
  'usage: npx tsx scripts/bench-data.ts --engine postgres|mysql --url URL [--rows N] [--batch-size N] [--seed S]';

function fail(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) fail(`--${name} must be a positive integer, got ${value}`);
  return n;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        engine: { type: 'string' },
        url: { type: 'string' },
        rows: { type: 'string' },
        'batch-size': { type: 'string' },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err));
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const engine = values.engine;
  if (engine !== 'postgres' && engine !== 'mysql') fail('--engine must be postgres or mysql');
  if (!values.url) fail('--url is required');
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !(seed >= -1 && seed <= 1)) fail('--seed must be a number in [-1, 1]');
  const result = await generateBenchData({
    engine: engine satisfies BenchEngine,
    url: values.url,
    rows: positiveInt('rows', values.rows) ?? DEFAULT_BENCH_ROWS[engine],
    batchSize: positiveInt('batch-size', values['batch-size']),
    seed,
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-data failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
