/**
 * Renders the fault matrix rows the tests wrote (COFRE_FAULT_MATRIX=<file.jsonl> npx vitest run
 * test/core/faults.test.ts test/cli/faults-cli.test.ts test/cli/fs-faults.test.ts test/core/catalog/chain-lock.test.ts
 * test/core/catalog/manifest-fault-s3.test.ts)
 * as a markdown table on stdout: npx tsx scripts/fault-matrix.ts <file.jsonl>
 */
import { readFileSync } from 'node:fs';
import type { FaultCell } from '../test/helpers/fault-matrix';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: tsx scripts/fault-matrix.ts <rows.jsonl>\n');
  process.exit(2);
}
const rows = readFileSync(file, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as FaultCell)
  .sort((a, b) =>
    `${a.fault}\0${a.operation}\0${a.engine}`.localeCompare(`${b.fault}\0${b.operation}\0${b.engine}`),
  );
const cell = (t: string) => t.replace(/\|/g, '\\|');
const lines = [
  '| fault | operation | engine | outcome | reason (one line) | time to end | leftovers |',
  '| --- | --- | --- | --- | --- | ---: | --- |',
  ...rows.map(
    (r) =>
      `| ${cell(r.fault)} | ${cell(r.operation)} | ${r.engine} | ${cell(r.outcome)} | ${cell(r.reason)} | ${r.ms < 0 ? '—' : `${(r.ms / 1000).toFixed(1)} s`} | ${cell(r.leftovers)} |`,
  ),
];
process.stdout.write(`${lines.join('\n')}\n\n${rows.length} cases.\n`);
