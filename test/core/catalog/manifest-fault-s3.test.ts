/**
 * Issue 16, item 9 on S3 (moto): a backup whose manifest cannot be written (the storage failing at
 * the commit point, as a full disk does for a file vault) is exit 1 and says that its artifact stays
 * under Object Lock without a manifest: not a backup. Cofre never deletes from S3, so the artifact
 * is found and reported as a leftover by the next backup (and verify), never chained to.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runBackup } from '../../../core/backup/backup';
import { findLeftovers, readCatalog } from '../../../core/catalog/catalog';
import { parseDatabaseUrl } from '../../../core/sources/connection';
import { S3Vault, type Vault } from '../../../core/vault';
import {
  createDatabase,
  describeDatabase,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { recordFault } from '../../helpers/fault-matrix';
import { createVaultBucket, describeLocalAws, localAws } from '../../helpers/local-aws';

describeLocalAws('a manifest that cannot be written to S3', () => {
  describeDatabase('postgres', 'backup', () => {
    const aws = localAws();
    let db: TestDatabase;
    let bucket: string;
    beforeAll(async () => {
      db = await createDatabase('postgres', 'manifest_s3');
      await withPostgresClient(db.url, (c) =>
        c.query('CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 100) g'),
      );
      bucket = await createVaultBucket(aws.s3);
    });
    afterAll(async () => {
      await db.drop();
      aws.s3.destroy();
    });

    it('is exit 1 naming the artifact it leaves under Object Lock; the next backup reports it and does not chain to it', async () => {
      const inner = new S3Vault({ client: aws.s3, bucket, prefix: 'v', objectLockMode: 'COMPLIANCE' });
      // The storage fails at the commit point only (an outage, or a quota, between the two writes).
      const failing: Vault = {
        url: inner.url,
        kind: inner.kind,
        objectLockMode: inner.objectLockMode,
        write: (k, b, o) => {
          if (!k.endsWith('/manifest.json')) return inner.write(k, b, o);
          b.destroy();
          return Promise.reject(new Error('connect ETIMEDOUT'));
        },
        read: (k, s) => inner.read(k, s),
        readBytes: (k) => inner.readBytes(k),
        sha256: (k, c) => inner.sha256(k, c),
        stat: (k) => inner.stat(k),
        list: (p) => inner.list(p),
        createExclusive: (k, b) => inner.createExclusive(k, b),
        replaceExclusive: (k, e, b) => inner.replaceExclusive(k, e, b),
        release: (k, e) => inner.release(k, e),
        remove: (k) => inner.remove(k),
      };
      const { keys } = await testKeys();
      const started = Date.now();
      const [failed] = await runBackup({
        connection: parseDatabaseUrl('postgres', db.url),
        vault: failing,
        keys,
      });
      const ms = Date.now() - started;
      expect(failed?.ok).toBe(false);
      const error = failed?.ok === false ? failed.error : '';
      expect(failed?.ok === false && failed.exitCode).toBe(1);
      expect(error).toMatch(
        /^manifest not written: connect ETIMEDOUT; its artifact full\/.*\.pgdump\.zst\.enc stays under Object Lock without a manifest \(not a backup; verify reports it, the lifecycle expires it\)$/,
      );
      const leftovers = await findLeftovers(inner);
      expect(leftovers.map((l) => l.why)).toEqual([
        'an artifact without a manifest (its backup never finished)',
      ]);
      expect(await readCatalog(inner)).toEqual([]);
      recordFault({
        engine: 's3',
        fault: 'storage fails at the manifest (S3)',
        operation: 'full backup',
        outcome: 'exit 1',
        reason: `FAILED ${db.name}: ${error}`.replace(db.name, '<db>').replace(db.name, '<db>'),
        ms,
        leftovers:
          'the artifact, under Object Lock: reported by verify and the next backup, expires with its tier',
      });

      const lines: string[] = [];
      const [next] = await runBackup({
        connection: parseDatabaseUrl('postgres', db.url),
        vault: inner,
        keys,
        log: (l) => lines.push(l),
      });
      expect(next?.ok).toBe(true);
      expect(next?.ok && next.manifest.previous).toBeNull();
      expect(lines.join('\n')).toMatch(
        /found s3:\/\/.*\.pgdump\.zst\.enc: an artifact without a manifest .*\(kept: S3 Object Lock; the lifecycle expires it\)/,
      );
    }, 60_000);
  });
});
