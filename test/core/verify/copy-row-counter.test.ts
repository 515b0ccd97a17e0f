/**
 * CopyRowCounter (verify --deep's recount of pg_restore's COPY rows) against a line-by-line
 * reference, on generated SQL split at random chunk boundaries (seeded: a failure prints its seed).
 */
import { describe, expect, it } from 'vitest';
import { CopyRowCounter } from '../../../core/verify/verify';

function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

/** The obvious way: split the whole text into lines. */
function reference(text: string): Map<string, number> {
  const rows = new Map<string, number>();
  let table: string | undefined;
  for (const line of text.split('\n').slice(0, -1)) {
    if (table !== undefined) {
      if (line === '\\.') table = undefined;
      else rows.set(table, rows.get(table)! + 1);
      continue;
    }
    const m = /^COPY ((?:"(?:[^"]|"")*"|[^".\s]+))\.((?:"(?:[^"]|"")*"|[^".\s(]+)) .*FROM stdin;$/.exec(line);
    if (!m) continue;
    const unquote = (n: string) => (n.startsWith('"') ? n.slice(1, -1).replace(/""/g, '"') : n);
    table = `${unquote(m[1]!)}.${unquote(m[2]!)}`;
    rows.set(table, rows.get(table) ?? 0);
  }
  return rows;
}

function generate(random: () => number): string {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
  const cell = () =>
    pick([
      '',
      '\\N',
      '\\\\.',
      '.',
      '\\.x',
      'ação',
      'a\\tb',
      'x'.repeat(Math.floor(random() * 300)),
      '\\\\',
      '\\',
    ]);
  const lines: string[] = ['SET statement_timeout = 0;', ''];
  for (let t = 0; t < 1 + Math.floor(random() * 5); t++) {
    const name = pick(['t', '"Odd ""name"""', '"a.b"', 'ação', 'x1']);
    lines.push(`COPY ${pick(['public', '"S p"'])}.${name} (a, b) FROM stdin;`);
    for (let r = Math.floor(random() * 40); r > 0; r--) lines.push([cell(), cell()].join('\t'));
    lines.push('\\.', '', pick(['SELECT 1;', '', '-- \\.']));
  }
  return `${lines.join('\n')}\n`;
}

describe('CopyRowCounter', () => {
  it('counts what a line-by-line reading counts, whatever the chunk boundaries (200 generated dumps)', () => {
    const seed = Number(process.env.COFRE_FUZZ_SEED ?? 18);
    for (let i = 0; i < 200; i++) {
      const random = rng(seed * 1000 + i);
      const text = generate(random);
      const bytes = Buffer.from(text);
      const counter = new CopyRowCounter();
      for (let at = 0; at < bytes.length;) {
        const size = 1 + Math.floor(random() * (random() < 0.3 ? 3 : 200));
        counter.push(bytes.subarray(at, at + size));
        at += size;
      }
      expect(new Map(counter.rows), `seed ${seed}, case ${i}`).toEqual(reference(text));
    }
  });

  it('a truncated dump counts the rows of its open COPY block so far', () => {
    const counter = new CopyRowCounter();
    counter.push(Buffer.from('COPY public.t (a) FROM stdin;\n1\n2\n3'));
    expect(counter.rows.get('public.t')).toBe(2);
    counter.push(Buffer.from('\n4\n'));
    expect(counter.rows.get('public.t')).toBe(4);
  });
});
