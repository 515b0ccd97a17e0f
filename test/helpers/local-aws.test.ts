import { HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { createVaultBucket, describeLocalAws, localAws, type LocalAws } from './local-aws';

describeLocalAws('the local AWS (moto server)', () => {
  let aws: LocalAws | undefined;
  afterAll(() => {
    aws?.s3.destroy();
  });

  describe('vault bucket', () => {
    it('applies the default Object Lock retention to an object written without a date', async () => {
      const local = (aws = localAws());
      const bucket = await createVaultBucket(local.s3, { mode: 'COMPLIANCE', days: 30 });
      await local.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: 'x' }));
      const head = await local.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'k' }));
      expect(head.ObjectLockMode).toBe('COMPLIANCE');
      const days = (head.ObjectLockRetainUntilDate!.getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(29);
      expect(days).toBeLessThan(31);
    });
  });
});
