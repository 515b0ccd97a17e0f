import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  RETENTION_KINDS,
  retentionFor,
  type ArchiveStorageClass,
  type RetentionSettings,
} from '../../core/policy/retention';
import { parseConfig } from '../../lib/config';
import { dataClassesOf, retentionRuleSpecs } from '../../lib/constructs/vault-lifecycle';
import { exampleConfig } from '../helpers/cdk';

const BEGIN = '<!-- retention-matrix:begin (checked by test/lib/vault-readme.test.ts) -->';
const END = '<!-- retention-matrix:end -->';

const NAMES: Record<ArchiveStorageClass, string> = {
  GLACIER: 'Glacier Flexible Retrieval',
  GLACIER_IR: 'Glacier Instant Retrieval',
  DEEP_ARCHIVE: 'Glacier Deep Archive',
};

/** The retention matrix (kind × data class) as the README shows it. */
export function retentionMatrix(settings: RetentionSettings): string {
  const specs = retentionRuleSpecs(settings);
  const rows = [
    '| kind (`cofre:tier`) | data class (`cofre:class`) | transitions (days after creation) | expires after | lifecycle rule |',
    '|---|---|---|---|---|',
  ];
  for (const kind of RETENTION_KINDS) {
    for (const dataClass of dataClassesOf(settings)) {
      const r = retentionFor(kind, dataClass, settings);
      const transitions =
        r.transitions.map((t) => `${NAMES[t.storageClass]} at ${t.afterDays}`).join(', ') || '—';
      const rule = specs.find(
        (s) => s.kind === kind && (s.dataClass === undefined || s.dataClass === dataClass),
      )!;
      rows.push(`| ${kind} | ${dataClass} | ${transitions} | ${r.expireAfterDays} days | \`${rule.id}\` |`);
    }
  }
  return rows.join('\n');
}

describe('README.md, Vault section', () => {
  const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');

  it('shows the retention matrix that retentionFor() gives the default configuration', () => {
    const begin = readme.indexOf(BEGIN);
    const end = readme.indexOf(END);
    expect(begin, 'retention matrix markers').toBeGreaterThan(0);
    const shown = readme.slice(begin + BEGIN.length, end).trim();
    expect(shown).toBe(retentionMatrix(parseConfig(exampleConfig()).retention));
  });

  it('sits after Deploy and before Operations', () => {
    const at = (heading: string) => readme.indexOf(`\n## ${heading}\n`);
    expect(at('Deploy')).toBeLessThan(at('Vault'));
    expect(at('Vault')).toBeLessThan(at('Operations'));
  });
});
