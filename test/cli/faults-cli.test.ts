/**
 * Issue 16, items 10-12: tenant ids "." and "..", a vault path that is not there, and the
 * database password in the cofre process's own command line.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tenantBackupFolder } from '../../core/catalog/keys';
import { FileVault } from '../../core/vault';
import { redactArgument } from '../../cli/cofre';
import { cofre, tempDir } from '../helpers/cli';
import { testKeys } from '../helpers/engine';

describe('tenant ids "." and ".." stay inside their tenant folder', () => {
  it('encodes their dots, and a file vault refuses a key that climbs out', async () => {
    expect(tenantBackupFolder('src', 'db', '..', 'ID')).toBe('tenants/src/db/%2E%2E/ID');
    expect(tenantBackupFolder('src', 'db', '.', 'ID')).toBe('tenants/src/db/%2E/ID');
    expect(tenantBackupFolder('src', 'db', 'a.b', 'ID')).toBe('tenants/src/db/a.b/ID');
    const vault = new FileVault(tempDir('dots'));
    await expect(
      vault.write('tenants/src/db/../7/ID/manifest.json', Readable.from([Buffer.from('{}')]), { tags: {} }),
    ).rejects.toThrow(/refusing key .* "\." or "\.\." segment/);
  });
});

describe('backup into a vault path that is not there', () => {
  it('is exit 2 asking whether the disk is mounted, and creates nothing', async () => {
    const root = tempDir('unmounted');
    const { keyFile } = await testKeys();
    const r = await cofre([
      'backup',
      '--engine',
      'postgres',
      '--url',
      'postgres://postgres@127.0.0.1:5432/postgres',
      '--vault',
      `file://${root}/media/backup-disk/cofre/vault`,
      '--key-file',
      keyFile,
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--vault: the parent directory .*\/media\/backup-disk\/cofre does not exist \(is the disk mounted\?\)/,
    );
    expect(existsSync(path.join(root, 'media'))).toBe(false);
  });
});

describe('the password in --url', () => {
  let server: net.Server;
  let port: number;
  beforeAll(async () => {
    // A server that accepts and never answers: the backup stays in its connect for a while.
    server = net.createServer(() => undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(() => {
    server.close();
  });

  it('redacts URL passwords in arguments', () => {
    expect(redactArgument('postgres://app:pa55@db:5432/x')).toBe('postgres://app:***@db:5432/x');
    expect(redactArgument('--url=mysql://root:p@ss@h/x')).toBe('--url=mysql://root:***@h/x');
    expect(redactArgument('postgres://app@db/x')).toBe('postgres://app@db/x');
  });

  it.runIf(process.platform === 'linux')(
    'is not in the cofre process’s own command line while it runs',
    async () => {
      const { keyFile } = await testKeys();
      const child = spawn(
        process.execPath,
        [
          path.join(__dirname, '..', '..', 'cli', 'bin.js'),
          'backup',
          '--engine',
          'postgres',
          '--url',
          `postgres://app:Sup3rS3cretPw@127.0.0.1:${port}/db`,
          '--vault',
          `file://${tempDir('argv')}/vault`,
          '--key-file',
          keyFile,
        ],
        { stdio: 'ignore' },
      );
      try {
        const cmdline = () => readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
        const end = Date.now() + 20_000;
        while (!cmdline().includes('***') && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
        expect(cmdline()).toMatch(/postgres:\/\/app:\*\*\*@127\.0\.0\.1/);
        expect(cmdline()).not.toContain('Sup3rS3cretPw');
      } finally {
        child.kill('SIGKILL');
      }
    },
    30_000,
  );
});
