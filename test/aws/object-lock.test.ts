/**
 * Object Lock end to end on the local AWS (moto): `cofre backup` into an Object-Lock vault sets each
 * object's retain-until from its tier (the mode from configuration, never detected), and
 * `cofre verify` compares every object's lock, as S3 reports it, with the manifest's promise.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import {
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { cofre, tempDir } from '../helpers/cli';
import {
  createPostgresDatabase,
  describePostgres,
  withPostgresClient,
  type TestDatabase,
} from '../helpers/databases';
import {
  createVaultBucket,
  describeLocalAws,
  localAws,
  localAwsEnv,
  type LocalAws,
} from '../helpers/local-aws';

describeLocalAws('Object Lock of backups (local AWS)', () => {
  describePostgres('on PostgreSQL', () => {
    let db: TestDatabase;
    let aws: LocalAws;
    let dir: string;
    let keyFile: string;
    beforeAll(async () => {
      db = await createPostgresDatabase('object_lock');
      await withPostgresClient(db.url, (c) =>
        c.query(
          'CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 100) g',
        ),
      );
      aws = localAws();
      dir = tempDir('object-lock');
      keyFile = path.join(dir, 'key');
      expect((await cofre(['keygen', '--out', keyFile])).code).toBe(0);
    });
    afterAll(async () => {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    });

    const backup = (bucket: string, env: NodeJS.ProcessEnv) =>
      cofre(
        [
          'backup',
          '--engine',
          'postgres',
          '--url',
          db.url,
          '--vault',
          `s3://${bucket}`,
          '--key-file',
          keyFile,
          '--json',
        ],
        env,
      );

    async function objectsOf(bucket: string): Promise<string[]> {
      const out = await aws.s3.send(new ListObjectsV2Command({ Bucket: bucket }));
      return (out.Contents ?? []).map((o) => o.Key!);
    }

    it('locks the first (yearly) backup for its years in COMPLIANCE mode, and verify reads the lock back', async () => {
      const bucket = await createVaultBucket(aws.s3, { mode: 'COMPLIANCE', days: 30 });
      const env = { ...localAwsEnv(), COFRE_OBJECT_LOCK_MODE: 'COMPLIANCE' };
      const run = await backup(bucket, env);
      expect(run.code, run.stderr).toBe(0);
      const keys = await objectsOf(bucket);
      const manifestKey = keys.find((k) => k.endsWith('/manifest.json'))!;
      const manifest = JSON.parse(
        await (
          await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }))
        ).Body!.transformToString(),
      ) as { backupId: string; tier: string; retention: { lockUntil: string; lockMode: string } };
      expect(manifest.tier).toBe('yearly');
      expect(manifest.retention.lockMode).toBe('COMPLIANCE');
      // The backup's objects; the chain's lock object (=lock.json) is not part of it.
      const backupKeys = keys.filter((k) => !k.endsWith('/=lock.json'));
      expect(backupKeys).toHaveLength(2);
      for (const Key of backupKeys) {
        const head = await aws.s3.send(new HeadObjectCommand({ Bucket: bucket, Key }));
        expect(head.ObjectLockMode).toBe('COMPLIANCE');
        expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThanOrEqual(
          new Date(manifest.retention.lockUntil).getTime() - 1000,
        );
      }
      const verify = await cofre(
        ['verify', '--vault', `s3://${bucket}`, '--backup', manifest.backupId, '--json'],
        env,
      );
      expect(verify.code, verify.stderr).toBe(0);
      expect(verify.stdout).toMatch(/Object Lock COMPLIANCE until 20\d\d/);
    });

    it('exits 3 when the objects are locked for less than the manifest promises (a backup made while the lock was detected)', async () => {
      // What the detection bug left in AWS: objects with only the bucket's 30-day default lock, and
      // a manifest (written before lock modes were recorded) that promises years.
      const bucket = await createVaultBucket(aws.s3, { mode: 'COMPLIANCE', days: 30 });
      const written = await backup(bucket, { ...localAwsEnv(), COFRE_OBJECT_LOCK_MODE: 'none' });
      expect(written.code, written.stderr).toBe(0);
      const manifestKey = (await objectsOf(bucket)).find((k) => k.endsWith('/manifest.json'))!;
      const manifest = JSON.parse(
        await (
          await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }))
        ).Body!.transformToString(),
      ) as { backupId: string; retention: { lockMode?: string; lockUntil: string } };
      delete manifest.retention.lockMode;
      // A new version of the manifest (versioning allows it; the locked version stays).
      await aws.s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: manifestKey, Body: JSON.stringify(manifest) }),
      );
      const verify = await cofre(['verify', '--vault', `s3://${bucket}`, '--backup', manifest.backupId], {
        ...localAwsEnv(),
        COFRE_OBJECT_LOCK_MODE: 'COMPLIANCE',
      });
      expect(verify.code, verify.stderr).toBe(3);
      expect(verify.stderr).toMatch(
        /\.pgdump\.zst\.enc: locked only until 20\d\d-\d\d-\d\dT[\d:.]+Z, where 20\d\d-\d\d-\d\dT[\d:.]+Z was expected \(the manifest records a lock until/,
      );
    });

    it('exits 3 when an object has no lock at all', async () => {
      const bucket = await createVaultBucket(aws.s3, { objectLock: false });
      const written = await backup(bucket, { ...localAwsEnv(), COFRE_OBJECT_LOCK_MODE: 'none' });
      expect(written.code, written.stderr).toBe(0);
      const manifestKey = (await objectsOf(bucket)).find((k) => k.endsWith('/manifest.json'))!;
      const manifest = JSON.parse(
        await (
          await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: manifestKey }))
        ).Body!.transformToString(),
      ) as { backupId: string; retention: { lockMode?: string } };
      // A "none" backup verifies as such...
      const none = await cofre(['verify', '--vault', `s3://${bucket}`, '--backup', manifest.backupId], {
        ...localAwsEnv(),
        COFRE_OBJECT_LOCK_MODE: 'COMPLIANCE',
      });
      expect(none.code, none.stderr).toBe(0);
      // ...but a manifest that claims a lock the objects do not have fails.
      manifest.retention.lockMode = 'GOVERNANCE';
      await aws.s3.send(
        new PutObjectCommand({ Bucket: bucket, Key: manifestKey, Body: JSON.stringify(manifest) }),
      );
      const verify = await cofre(
        ['verify', '--vault', `s3://${bucket}`, '--backup', manifest.backupId],
        localAwsEnv(),
      );
      expect(verify.code, verify.stderr).toBe(3);
      expect(verify.stderr).toMatch(/no Object Lock, where GOVERNANCE until .* was expected/);
    });

    it('fails the backup, and writes no manifest, when the bucket has no Object Lock and none was chosen', async () => {
      const bucket = await createVaultBucket(aws.s3, { objectLock: false });
      const env = { ...localAwsEnv() };
      delete env.COFRE_OBJECT_LOCK_MODE;
      const run = await backup(bucket, env);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/ObjectLockConfiguration/);
      expect((await objectsOf(bucket)).filter((k) => k.endsWith('manifest.json'))).toEqual([]);
    });

    it('refuses an unknown lock mode in the environment, naming the variable (exit 2)', async () => {
      const bucket = await createVaultBucket(aws.s3);
      const run = await backup(bucket, { ...localAwsEnv(), COFRE_OBJECT_LOCK_MODE: 'strict' });
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(
        /COFRE_OBJECT_LOCK_MODE: expected COMPLIANCE, GOVERNANCE, none, got "strict"/,
      );
    });
  });
});
