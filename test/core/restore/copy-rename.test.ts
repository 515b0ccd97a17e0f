import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { renameCopyTarget } from '../../../core/restore/postgres';
import { readAll } from '../../../core/vault';

/** The data-only script pg_restore writes for one table, with multibyte UTF-8 in its rows. */
const SCRIPT = Buffer.from(
  [
    '--',
    '-- PostgreSQL database dump',
    "SET client_encoding = 'UTF8';",
    '',
    'COPY public.pacientes (id, nome) FROM stdin;',
    '1\tJoão Conceição 🙂',
    '2\tMaria d’Ávila ™',
    '\\.',
    '',
  ].join('\n'),
);
const EXPECTED = Buffer.from(
  SCRIPT.toString('utf8').replace('COPY public.pacientes (', 'COPY public."pacientes_cmp" ('),
);

async function rewrite(chunks: Buffer[]): Promise<Buffer> {
  return readAll(Readable.from(chunks).pipe(renameCopyTarget('public."pacientes_cmp"')));
}

describe('--into-table rewrites the COPY line as bytes', () => {
  it('keeps every multibyte character whole wherever the chunks split (issue 16, item 8)', async () => {
    for (let cut = 1; cut < SCRIPT.length; cut++) {
      const out = await rewrite([SCRIPT.subarray(0, cut), SCRIPT.subarray(cut)]);
      expect({ cut, out: out.toString('hex') }).toEqual({ cut, out: EXPECTED.toString('hex') });
    }
    const bytes = [...SCRIPT].map((b) => Buffer.from([b]));
    expect((await rewrite(bytes)).equals(EXPECTED)).toBe(true);
  });
});
