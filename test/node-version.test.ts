import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/** Issue 17, item 6f: the README, package.json `engines` and the pinned Node agree. */

const root = path.join(__dirname, '..');
const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  engines: { node: string };
  devDependencies: Record<string, string>;
};
const quickStart = /^## Quick start\n([\s\S]*?)^## /m.exec(readme)?.[1] ?? '';

describe('which Node', () => {
  it('engines.node is the machine Node the README asks for (it only runs npm)', () => {
    const min = /Node\.js ≥ (\d+)/.exec(quickStart)?.[1];
    expect(min).toBeDefined();
    expect(pkg.engines.node).toBe(`>=${min}`);
  });

  it('the README names the Node the project pins for itself, which runs the scripts and cofre', () => {
    const pinned = /^\^?(\d+)\./.exec(pkg.devDependencies.node ?? '')?.[1];
    expect(pinned).toBe('24');
    expect(quickStart).toContain(`its own Node ${pinned}`);
    expect(quickStart).toContain(`\`node\` devDependency`);
    // This test runs through the project's scripts / npx: on the pinned Node, not the machine's.
    expect(process.versions.node.split('.')[0]).toBe(pinned);
    // cofre itself refuses an older Node (zstd streams).
    expect(readFileSync(path.join(root, 'cli', 'bin.js'), 'utf8')).toContain(`if (major < ${pinned})`);
  });
});
