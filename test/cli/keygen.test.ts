import { createHash, createPublicKey } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresDatabase, describePostgres, type TestDatabase } from '../helpers/databases';
import { cofre, tempDir } from '../helpers/cli';
import { testKeys } from '../helpers/engine';

/** Issue 17, item 6e: keygen makes its folder; --escrow makes the RSA pair; a private key is no public key. */

const mode = (p: string) => statSync(p).mode & 0o777;

describe('cofre keygen', () => {
  it('--out in a folder that does not exist: creates it (0700) and the key (0600)', async () => {
    const dir = path.join(tempDir('keygen'), '.cofre');
    const out = path.join(dir, 'local.key');
    const r = await cofre(['keygen', '--out', out, '--json']);
    expect(r.code).toBe(0);
    expect(mode(dir)).toBe(0o700);
    expect(mode(out)).toBe(0o600);
    expect(readFileSync(out)).toHaveLength(32);
  });

  it('--escrow --out DIR: the RSA pair, the public key fingerprint printed, never overwritten', async () => {
    const dir = path.join(tempDir('keygen'), 'escrow');
    const r = await cofre(['keygen', '--escrow', '--out', dir, '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as { publicKey: string; privateKey: string; fingerprint: string };
    expect(result.publicKey).toBe(path.join(dir, 'escrow-public.pem'));
    expect(result.privateKey).toBe(path.join(dir, 'escrow-private.pem'));
    expect(mode(dir)).toBe(0o700);
    expect(mode(result.privateKey)).toBe(0o600);
    const pub = createPublicKey(readFileSync(result.publicKey, 'utf8'));
    expect(pub.asymmetricKeyType).toBe('rsa');
    expect(pub.asymmetricKeyDetails?.modulusLength).toBeGreaterThanOrEqual(3072);
    // The fingerprint, computed here from the public key file: SHA-256 of its DER (SPKI), 16 hex.
    const expected = createHash('sha256')
      .update(pub.export({ type: 'spki', format: 'der' }))
      .digest('hex')
      .slice(0, 16);
    expect(result.fingerprint).toBe(expected);
    expect(r.stderr).toContain(expected);
    expect(readFileSync(result.privateKey, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const again = await cofre(['keygen', '--escrow', '--out', dir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/already exists; Cofre never overwrites a key/);
    expect(
      createPublicKey(readFileSync(result.publicKey, 'utf8')).export({ type: 'spki', format: 'der' }),
    ).toEqual(pub.export({ type: 'spki', format: 'der' }));
  });
});

describePostgres('escrow keys from cofre keygen --escrow', () => {
  let db: TestDatabase;
  let keyFile: string;
  let escrow: { publicKey: string; privateKey: string; fingerprint: string };
  beforeAll(async () => {
    db = await createPostgresDatabase('keygen_esc');
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query('CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2)');
    await c.end();
    ({ keyFile } = await testKeys());
    const dir = path.join(tempDir('keygen'), 'escrow');
    escrow = JSON.parse(
      (await cofre(['keygen', '--escrow', '--out', dir, '--json'])).stdout,
    ) as typeof escrow;
  });
  afterAll(async () => {
    await db.drop();
  });

  it('a backup wrapped for the public key is read back with the private key alone', async () => {
    const vault = `file://${tempDir('keygen')}/vault`;
    const b = await cofre([
      'backup',
      '--url',
      db.url,
      '--vault',
      vault,
      '--key-file',
      keyFile,
      '--escrow-public-key',
      escrow.publicKey,
      '--json',
    ]);
    expect(b.code).toBe(0);
    const id = (JSON.parse(b.stdout) as { backups: { backupId: string }[] }).backups[0]!.backupId;
    const v = await cofre([
      'verify',
      '--vault',
      vault,
      '--backup',
      id,
      '--deep',
      '--escrow-private-key',
      escrow.privateKey,
    ]);
    expect(v.stderr).not.toMatch(/FAIL/);
    expect(v.code).toBe(0);
  });

  it('a PRIVATE key given to --escrow-public-key is refused (exit 2), nothing written', async () => {
    const root = path.join(tempDir('keygen'), 'vault');
    mkdirSync(root);
    const b = await cofre([
      'backup',
      '--url',
      db.url,
      '--vault',
      `file://${root}`,
      '--key-file',
      keyFile,
      '--escrow-public-key',
      escrow.privateKey,
    ]);
    expect(b.stderr).toContain(
      `cofre: --escrow-public-key: ${escrow.privateKey} holds a PRIVATE key; give the public key (keep the private one in the safe)`,
    );
    expect(b.code).toBe(2);
    expect(existsSync(path.join(root, 'full'))).toBe(false);
  });
});
