/**
 * `buckets[].source` (S3-compatible stores) and `buckets[].prefixes`: bad values are refused at
 * synth with one message naming the field and what was expected.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import { exampleConfig } from '../helpers/cdk';

type Bucket = NonNullable<CofreConfigInput['buckets']>[number];

function problemsOf(change: (minio: Bucket, aws: Bucket) => void): string[] {
  const config = exampleConfig();
  change(config.buckets![1]!, config.buckets![0]!);
  try {
    parseConfig(config);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('buckets[].source and prefixes', () => {
  it('the example configuration (an AWS S3 bucket and a MinIO source with prefixes) is valid, with the defaults filled in', () => {
    expect(problemsOf(() => undefined)).toEqual([]);
    const config = parseConfig(exampleConfig());
    expect(config.buckets[1]!.source).toMatchObject({ region: 'us-east-1', forcePathStyle: true });
    expect(config.schedules.filesRestoreTest).toBe('cron(0 5 ? * SAT *)');
  });

  it('prefixes on an AWS S3 bucket are refused: AWS Backup protects whole buckets', () => {
    expect(problemsOf((_m, aws) => (aws.prefixes = ['tenants/']))).toEqual([
      'buckets[0].prefixes: applies only to an S3-compatible source (with `source`): AWS Backup protects whole AWS S3 buckets; remove it, or add `source`',
    ]);
  });

  it('an empty prefix is refused', () => {
    expect(problemsOf((m) => (m.prefixes = ['']))).toEqual([
      'buckets[1].prefixes[0]: expected a non-empty prefix such as "tenants/" (leave the list empty for the whole bucket)',
    ]);
  });

  it('an endpoint that is not an http(s) URL is refused', () => {
    expect(problemsOf((m) => (m.source!.endpoint = 'minio.example.com:9000'))).toEqual([
      'buckets[1].source.endpoint: expected the S3 endpoint URL of the store, such as "https://minio.example.com:9000" or "https://<project>.supabase.co/storage/v1/s3", got "minio.example.com:9000"',
    ]);
  });

  it('a region with spaces or capitals is refused', () => {
    expect(problemsOf((m) => (m.source!.region = 'US East'))).toEqual([
      'buckets[1].source.region: expected the region the store signs requests for (lowercase letters, digits and "-", e.g. "us-east-1"), got "US East"',
    ]);
  });

  it('a credentials secret that is not a Secrets Manager ARN is refused', () => {
    expect(problemsOf((m) => (m.source!.credentialsSecretArn = 'minio-key'))).toEqual([
      'buckets[1].source.credentialsSecretArn: expected an ARN like "arn:aws:secretsmanager:sa-east-1:123456789012:secret:minio-docs-AbCdEf", got "minio-key"',
    ]);
  });

  it('forcePathStyle must be a boolean, the network needs a subnet and a security group', () => {
    expect(
      problemsOf((m) => {
        (m.source as unknown as Record<string, unknown>).forcePathStyle = 'yes';
        m.source!.network.subnetIds = [];
        m.source!.network.securityGroupId = 'default';
      }),
    ).toEqual([
      'buckets[1].source.forcePathStyle: Invalid input: expected boolean, received string',
      'buckets[1].source.network.subnetIds: expected at least one private subnet id',
      'buckets[1].source.network.securityGroupId: expected a security group id like "sg-0abc12345def67890", got "default"',
    ]);
  });

  it('a source without credentials or network is refused, naming the field', () => {
    expect(
      problemsOf((m) => {
        delete (m.source as Partial<NonNullable<Bucket['source']>>).credentialsSecretArn;
      }),
    ).toEqual([expect.stringMatching(/^buckets\[1\]\.source\.credentialsSecretArn: is required/)]);
    expect(
      problemsOf((m) => {
        delete (m.source as Partial<NonNullable<Bucket['source']>>).network;
      }),
    ).toEqual([expect.stringMatching(/^buckets\[1\]\.source\.network: is required/)]);
  });

  it('an S3-compatible bucket and an AWS S3 bucket of the same name are refused (one files/<bucket>/ folder each)', () => {
    expect(problemsOf((m) => (m.bucketName = 'app-prod-documents'))).toEqual([
      'buckets[1].bucketName: expected a bucket listed once, "app-prod-documents" is listed twice',
    ]);
  });

  it('filesRestoreTest must be a schedule expression', () => {
    const config = exampleConfig((c) => ({ ...c, schedules: { filesRestoreTest: 'weekly' } }));
    expect(() => parseConfig(config)).toThrow(/schedules\.filesRestoreTest: /);
  });
});
