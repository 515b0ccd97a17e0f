import { PassThrough } from 'node:stream';
import { expect, it } from 'vitest';
import type { Keys } from '../../../core/vault/crypto';
import { streamToVault } from '../../../core/backup/stream-encoder';
import type { RunningDump, TableCount } from '../../../core/sources/types';
import { FileVault } from '../../../core/vault';
import { testKeys } from '../../helpers/engine';
import { tempDir } from '../../helpers/temp';

/** A dump that runs until aborted, and records that it was. */
function endlessDump(): RunningDump & { aborted: boolean; stdout: PassThrough } {
  const stdout = new PassThrough();
  let reject!: (e: Error) => void;
  const completed = new Promise<readonly TableCount[]>((_resolve, r) => (reject = r));
  completed.catch(() => undefined);
  const dump = {
    format: 'pg_dump-custom' as const,
    extension: 'pgdump',
    stdout,
    completed,
    aborted: false,
    abort() {
      dump.aborted = true;
      reject(new Error('killed'));
    },
  };
  return dump;
}

it('stops the dump tool even when the pipeline cannot be built', async () => {
  const dump = endlessDump();
  const vault = new FileVault(tempDir('pl'));
  const broken = { keyring: null, keyIds: [] } as unknown as Keys;
  await expect(
    streamToVault({
      dump,
      vault,
      key: 'a/b',
      writeOptions: { tags: {} },
      keys: broken,
      encryptionContext: {},
    }),
  ).rejects.toThrow();
  expect(dump.aborted).toBe(true);
  expect(await vault.list('')).toEqual([]);
});

it('reports the dump tool’s failure, not the broken pipe it causes, and keeps nothing', async () => {
  const dump = endlessDump();
  dump.stdout.write(Buffer.alloc(1024 * 1024, 7));
  const failing: RunningDump = {
    ...dump,
    completed: Promise.reject(new Error('pg_dump failed (exit code 1): connection lost')),
  };
  failing.completed.catch(() => undefined);
  const vault = new FileVault(tempDir('pl'));
  const { keys } = await testKeys();
  await expect(
    streamToVault({
      dump: failing,
      vault,
      key: 'a/b',
      writeOptions: { tags: {} },
      keys,
      encryptionContext: {},
    }),
  ).rejects.toThrow(/pg_dump failed \(exit code 1\): connection lost/);
  expect(await vault.partials()).toEqual([]);
  expect(await vault.list('')).toEqual([]);
});
