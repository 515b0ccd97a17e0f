import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { withConfigReference } from '../lib/config/reference';

const root = path.join(__dirname, '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');

describe('README.md', () => {
  it('has the configuration reference generated from the current schema (run `npm run docs:config`)', () => {
    expect(readme).toBe(withConfigReference(readme));
  });

  it('shows the two quick-start commands', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toMatch(/^npm test\b/m);
  });

  it('only mentions npm scripts that exist', () => {
    const scripts = (
      JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    const mentioned = [...readme.matchAll(/npm run ([a-z:]+)/g)].map((m) => m[1]!);
    expect(mentioned.filter((name) => !(name in scripts))).toEqual([]);
  });

  describe('"Where things live"', () => {
    const section = /^## Where things live\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';
    const paths = [...section.matchAll(/`([a-z][\w./-]*\/[\w./-]*)`/g)].map((m) => m[1]!);

    it('is there, with paths', () => {
      expect(paths.length).toBeGreaterThan(10);
    });

    it('names only paths that exist', () => {
      expect(paths.filter((p) => !existsSync(path.join(root, p)))).toEqual([]);
    });

    it('lists every folder of core/', () => {
      const folders = readdirSync(path.join(root, 'core'), { withFileTypes: true })
        .filter((e) => e.isDirectory())
        .map((e) => `core/${e.name}/`);
      const listed = new Set(paths.map((p) => (p.startsWith('core/') ? `core/${p.split('/')[1]!}/` : p)));
      expect(folders.filter((f) => !listed.has(f))).toEqual([]);
    });
  });
});
