/**
 * The hash chain cannot be forked or fooled (issue 16, items 4-7): one backup of a chain at a
 * time (a lock object created only if absent), a previous link only to a manifest that is a
 * backup, PostgreSQL's deep verify recounts rows, and `verify --all` of nothing is no pass.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBackup, type BackupOutcome } from '../../../core/backup/backup';
import { findBackup, readCatalog } from '../../../core/catalog/catalog';
import { CHAIN_LOCK_NAME, chainPrefix } from '../../../core/catalog/keys';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import type { Keys } from '../../../core/vault/crypto';
import { FileVault, openVault } from '../../../core/vault';
import { cofre } from '../../helpers/cli';
import {
  createPostgresDatabase,
  describePostgres,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { tempDir } from '../../helpers/temp';

function manifestPath(vault: FileVault, folder: string): string {
  return path.join(vault.root, ...folder.split('/'), 'manifest.json');
}

function overwrite(file: string, text: string): void {
  chmodSync(file, 0o600);
  writeFileSync(file, text);
}

describePostgres('the hash chain cannot be forked or fooled', () => {
  let db: TestDatabase;
  let dir: string;
  let keys: Keys;
  let keyFile: string;
  const backup = (vault: FileVault, log?: (l: string) => void) =>
    runBackup({ connection: parseDatabaseUrl('postgres', db.url), vault, keys, log });
  const ok = (o: BackupOutcome | undefined) => {
    if (!o?.ok) throw new Error(`backup failed: ${o?.ok === false ? o.error : 'no outcome'}`);
    return o;
  };

  beforeAll(async () => {
    db = await createPostgresDatabase('chain');
    await withPostgresClient(db.url, (c) =>
      c.query(`CREATE TABLE t (id int PRIMARY KEY, v text);
               INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 500) g;
               CREATE TABLE "Weird ""T""" (x int); INSERT INTO "Weird ""T""" VALUES (1), (2), (3);`),
    );
    dir = tempDir('chain');
    ({ keys, keyFile } = await testKeys());
  }, 60_000);
  afterAll(async () => {
    await db.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('two backups of the same database into the same vault at once: one runs, the other fails before writing', async () => {
    const vault = new FileVault(path.join(dir, 'concurrent'));
    const runs = await Promise.all([backup(vault), backup(vault), backup(vault)]);
    const outcomes = runs.flat();
    expect(outcomes.filter((o) => o.ok)).toHaveLength(1);
    for (const o of outcomes)
      if (!o.ok)
        expect(o.error).toMatch(
          /another backup of full\/.+ is running: .* held by process \d+ on .* wrote nothing/,
        );
    expect(await readCatalog(vault)).toHaveLength(1);
    expect(await vault.partials()).toEqual([]);
    // The lock is gone after the run: the next backup chains to the first.
    const next = ok((await backup(vault))[0]);
    const winner = ok(outcomes.find((o) => o.ok));
    expect(next.manifest.previous?.backupId).toBe(winner.manifest.backupId);
  }, 120_000);

  it('a lock left by a run that died is reported and removed by the next backup', async () => {
    const vault = new FileVault(path.join(dir, 'stale'));
    const dead = spawnSync('true').pid;
    const prefix = chainPrefix(db.name, db.name);
    mkdirSync(path.join(vault.root, ...prefix.split('/')), { recursive: true });
    writeFileSync(
      path.join(vault.root, ...prefix.split('/'), CHAIN_LOCK_NAME),
      JSON.stringify({ host: os.hostname(), pid: dead, startedAt: new Date().toISOString() }),
    );
    const lines: string[] = [];
    ok((await backup(vault, (l) => lines.push(l)))[0]);
    expect(lines.join('\n')).toMatch(
      new RegExp(`taking over the stale chain lock .*: its process ${dead} on this host is gone`),
    );
    // A live lock (this very process, on this host) is respected.
    writeFileSync(
      path.join(vault.root, ...prefix.split('/'), CHAIN_LOCK_NAME),
      JSON.stringify({ host: os.hostname(), pid: process.pid, startedAt: new Date().toISOString() }),
    );
    const [blocked] = await backup(vault);
    expect(blocked?.ok).toBe(false);
  }, 60_000);

  it('a broken newest manifest or a junk folder named like a future backup never becomes the previous link', async () => {
    const vault = new FileVault(path.join(dir, 'fooled'));
    const first = ok((await backup(vault))[0]);
    const second = ok((await backup(vault))[0]);
    overwrite(manifestPath(vault, second.folder), '{bad');
    const junk = `${chainPrefix(db.name, db.name)}29991231T235959999Z-0badbeef`;
    mkdirSync(path.join(vault.root, ...junk.split('/')), { recursive: true });
    writeFileSync(manifestPath(vault, junk), readFileSync(manifestPath(vault, first.folder)));
    const lines: string[] = [];
    const third = ok((await backup(vault, (l) => lines.push(l)))[0]);
    expect(third.manifest.previous?.backupId).toBe(first.manifest.backupId);
    expect(lines.join('\n')).toMatch(/not chaining to .*: its manifest is invalid/);
    expect(lines.join('\n')).toMatch(
      /ignoring .*29991231T235959999Z-0badbeef.*not the id of a backup made by now/,
    );
    const verified = await cofre(['verify', '--vault', vault.url, '--backup', third.manifest.backupId]);
    expect(verified.code).toBe(0);
    expect(verified.stderr).toMatch(new RegExp(`previous backup ${first.manifest.backupId} intact`));
  }, 90_000);

  it('PostgreSQL verify --deep recounts the rows: an edited row count fails with exit 3', async () => {
    const vault = new FileVault(path.join(dir, 'recount'));
    const b = ok((await backup(vault))[0]);
    const good = await cofre([
      'verify',
      '--vault',
      vault.url,
      '--backup',
      b.manifest.backupId,
      '--deep',
      '--key-file',
      keyFile,
    ]);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stderr).toMatch(/row counts of all 2 tables match the manifest/);
    // A key the backup was not encrypted for is bad input (exit 2), as on restore and decrypt.
    const other = await testKeys();
    const wrongKey = await cofre([
      'verify',
      '--vault',
      vault.url,
      '--backup',
      b.manifest.backupId,
      '--deep',
      '--key-file',
      other.keyFile,
    ]);
    expect(wrongKey.code).toBe(2);
    expect(wrongKey.stderr).not.toMatch(/unencryptedDataKey/);
    const file = manifestPath(vault, b.folder);
    const m = JSON.parse(readFileSync(file, 'utf8')) as {
      artifacts: { tables: { name: string; rows: number }[] }[];
    };
    m.artifacts[0]!.tables.find((t) => t.name === 't')!.rows = 499;
    overwrite(file, `${JSON.stringify(m, null, 2)}\n`);
    const bad = await cofre([
      'verify',
      '--vault',
      vault.url,
      '--backup',
      b.manifest.backupId,
      '--deep',
      '--key-file',
      keyFile,
    ]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/row counts differ from the manifest for public\.t \(500 ≠ 499\)/);
    expect((await findBackup(vault, b.manifest.backupId)).manifest).toBeDefined();
  }, 60_000);
});

describe('verify --all of nothing', () => {
  it('an empty vault is exit 3 and says nothing was verified; a missing one is exit 2', async () => {
    const empty = tempDir('empty');
    try {
      const r = await cofre(['verify', '--vault', `file://${empty}`, '--all']);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/no backups in file:\/\/.*: nothing was verified/);
      const missing = await cofre(['verify', '--vault', `file://${empty}/not/mounted`, '--all']);
      expect(missing.code).toBe(2);
      expect(missing.stderr).toMatch(/--vault: no such vault at .*not\/mounted; is the disk mounted\?/);
      expect(openVault(`file://${empty}`).kind).toBe('file');
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
