import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/temp';

const root = path.join(__dirname, '..', '..');

function runApp(configSource: string) {
  const dir = tempDir('config');
  const configFile = path.join(dir, 'cofre.config.ts');
  writeFileSync(configFile, configSource);
  return spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'bin', 'cofre.ts')], {
    cwd: root,
    env: { ...process.env, COFRE_CONFIG: configFile, CDK_OUTDIR: path.join(dir, 'out') },
    encoding: 'utf8',
  });
}

describe('bin/cofre.ts', () => {
  it('stops the synth with exit code 2 and one line per problem on a bad configuration', () => {
    const result = runApp(`export default {
      account: '111111111111',
      regions: { primary: 'sa-east-1', dr: 'mars-north-1' },
      databases: [],
      alerts: { emails: ['ops-at-example.com'] },
      schedules: { fullBackup: 'cron(0 2 * * ?)' },
    };`);
    expect(result.status).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/cofre\.config\.ts: Invalid Cofre configuration \(3 problems\):$/);
    expect(lines.slice(1)).toEqual([
      '  - regions.dr: expected an AWS region code such as "sa-east-1", got "mars-north-1"',
      '  - schedules.fullBackup: cron needs 6 fields (minutes hours day-of-month month day-of-week year), got 5 in "cron(0 2 * * ?)"',
      '  - alerts.emails[0]: expected an e-mail address like "ops@example.com", got "ops-at-example.com"',
    ]);
  });

  it('synthesizes a valid configuration', () => {
    const result = runApp(`export default {
      account: '222222222222',
      regions: { primary: 'sa-east-1', dr: 'us-east-2' },
      alerts: { emails: ['ops@example.com'] },
    };`);
    expect(result.stderr).not.toMatch(/Invalid Cofre configuration/);
    expect(result.status).toBe(0);
  });
});
