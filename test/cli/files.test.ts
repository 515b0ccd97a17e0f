/**
 * `cofre files sync|restore|list` against the local AWS (moto S3 as source and files vault): the
 * commands run in-process with the standard AWS environment, and bad input is exit 2 with one line
 * naming the flag, before anything is read or written.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  CreateBucketCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import {
  BackupClient,
  DescribeRestoreJobCommand,
  ListRecoveryPointsByResourceCommand,
  StartRestoreJobCommand,
} from '@aws-sdk/client-backup';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { DynamoHistoryStore } from '../../core/history/store';
import { cofre, tempDir } from '../helpers/cli';
import {
  createHistoryTable,
  createVaultBucket,
  describeLocalAws,
  localAws,
  localAwsEnv,
  REGION,
  uniqueName,
} from '../helpers/local-aws';

describeLocalAws('cofre files', () => {
  const aws = localAws();
  let source: string;
  let vault: string;
  let env: NodeJS.ProcessEnv;
  let firstRunAt: Date;

  const put = (key: string, body: string) =>
    aws.s3.send(new PutObjectCommand({ Bucket: source, Key: key, Body: body }));
  const read = async (bucket: string, key: string) =>
    (await aws.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();

  beforeAll(async () => {
    source = uniqueName('docs');
    await aws.s3.send(
      new CreateBucketCommand({ Bucket: source, CreateBucketConfiguration: { LocationConstraint: REGION } }),
    );
    vault = `s3://${await createVaultBucket(aws.s3, { mode: 'GOVERNANCE', days: 1 })}/files-vault`;
    env = { ...localAwsEnv(), COFRE_OBJECT_LOCK_MODE: 'GOVERNANCE' };
    await put('tenants/42/nfe-1.xml', '<nfe>1</nfe>');
    await put('tenants/42/nfe-2.xml', '<nfe>2</nfe>');
    await put('tenants/7/receipt.pdf', 'receipt');
    const first = await cofre(
      ['files', 'sync', '--bucket', source, '--vault', vault, '--lock-days', '2', '--json'],
      env,
    );
    expect(first.stderr).toMatch(/OK files run .*: 3 objects .* catalogued; 3 copied \(3 new, 0 changed/);
    expect(first.code).toBe(0);
    firstRunAt = new Date(Date.parse((JSON.parse(first.stdout) as { finishedAt: string }).finishedAt) + 1000);
    await new Promise((r) => setTimeout(r, 1100)); // the next run finishes in a later second
    await put('tenants/42/nfe-1.xml', '<nfe>1 corrected</nfe>');
    const second = await cofre(
      ['files', 'sync', '--bucket', source, '--vault', vault, '--lock-days', '2'],
      env,
    );
    expect(second.stderr).toMatch(/3 objects .* catalogued; 1 copied \(0 new, 1 changed.*2 unchanged/);
    expect(second.code).toBe(0);
  }, 60_000);

  it('restore --dry-run prints counts and bytes and changes nothing', async () => {
    const out = await cofre(
      [
        'files',
        'restore',
        '--bucket',
        source,
        '--vault',
        vault,
        '--prefix',
        'tenants/42/',
        '--as-of',
        firstRunAt.toISOString(),
        '--dry-run',
        '--json',
      ],
      env,
    );
    expect(out.code).toBe(0);
    expect(out.stderr).toMatch(
      /DRY RUN .*: 2 objects \(24 B\) selected; would restore 0 \(0 B\), 1 already identical, 1 kept because the target holds a newer one/,
    );
    const report = JSON.parse(out.stdout) as { selected: { objects: number; bytes: number } };
    expect(report.selected).toEqual({ objects: 2, bytes: 24 });
    expect(await read(source, 'tenants/42/nfe-1.xml')).toBe('<nfe>1 corrected</nfe>');
  });

  it('restore --key refuses to replace a newer object (exit 2, unchanged), --download brings that version beside it', async () => {
    const args = [
      'files',
      'restore',
      '--bucket',
      source,
      '--vault',
      vault,
      '--key',
      'tenants/42/nfe-1.xml',
      '--as-of',
      firstRunAt.toISOString(),
    ];
    const refused = await cofre(args, env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /--key: tenants\/42\/nfe-1.xml .* is newer than the version of .*; it was kept/,
    );
    expect(await read(source, 'tenants/42/nfe-1.xml')).toBe('<nfe>1 corrected</nfe>');
    const file = path.join(tempDir('files-cli'), 'nfe-1.xml');
    const downloaded = await cofre([...args, '--download', file], env);
    expect(downloaded.code).toBe(0);
    expect(readFileSync(file, 'utf8')).toBe('<nfe>1</nfe>');
    const forced = await cofre([...args, '--force'], env);
    expect(forced.code).toBe(0);
    expect(await read(source, 'tenants/42/nfe-1.xml')).toBe('<nfe>1</nfe>');
  });

  it('restore --all --to-bucket writes the bucket as it was into another bucket', async () => {
    const other = uniqueName('copy');
    await aws.s3.send(
      new CreateBucketCommand({ Bucket: other, CreateBucketConfiguration: { LocationConstraint: REGION } }),
    );
    const out = await cofre(
      [
        'files',
        'restore',
        '--bucket',
        source,
        '--vault',
        vault,
        '--all',
        '--as-of',
        new Date().toISOString(),
        '--to-bucket',
        other,
      ],
      env,
    );
    expect(out.code).toBe(0);
    const listed = await aws.s3.send(new ListObjectsV2Command({ Bucket: other }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual([
      'tenants/42/nfe-1.xml',
      'tenants/42/nfe-2.xml',
      'tenants/7/receipt.pdf',
    ]);
    expect(await read(other, 'tenants/42/nfe-1.xml')).toBe('<nfe>1 corrected</nfe>');
  });

  it('list shows the kept versions of one file with their locks', async () => {
    const out = await cofre(
      ['files', 'list', '--bucket', source, '--vault', vault, '--key', 'tenants/42/nfe-1.xml', '--json'],
      env,
    );
    expect(out.code).toBe(0);
    const { versions } = JSON.parse(out.stdout) as { versions: { size: number; lockMode: string }[] };
    expect(versions.map((v) => [v.size, v.lockMode])).toEqual([
      [22, 'GOVERNANCE'],
      [12, 'GOVERNANCE'],
    ]);
    expect(out.stderr).toMatch(/locked GOVERNANCE until/);
  });

  it('test restores a sample, compares it with the source and records it; sync --history-table records the run', async () => {
    const table = await createHistoryTable(aws.dynamodb);
    const synced = await cofre(
      ['files', 'sync', '--bucket', source, '--vault', vault, '--lock-days', '2', '--history-table', table],
      env,
    );
    expect(synced.code).toBe(0);
    const out = await cofre(
      [
        'files',
        'test',
        '--bucket',
        source,
        '--vault',
        vault,
        '--sample',
        '3',
        '--history-table',
        table,
        '--json',
      ],
      env,
    );
    expect(out.stderr).toMatch(
      /OK files restore test of .*: 3 objects of run .* restored: 3 equal to the source \(SHA-256\)/,
    );
    expect(out.code).toBe(0);
    const store = new DynamoHistoryStore(DynamoDBDocumentClient.from(aws.dynamodb), table);
    expect(await store.latest(`s3:${source}`, 'files-restore-test')).toMatchObject({ status: 'succeeded' });
    expect(await store.latest(`s3:${source}`, 'files')).toMatchObject({ status: 'succeeded', kind: 'files' });
    const bad = await cofre(['files', 'test', '--bucket', source, '--vault', vault, '--sample', '0'], env);
    expect(bad.stderr).toMatch(/--sample: expected a whole number between 1 and 10000/);
    expect(bad.code).toBe(2);
  });

  it('status reports a bucket AWS Backup cannot protect (versioning off) as exit 1, and a versioned one as fine', async () => {
    const off = await cofre(['files', 'status', '--bucket', source], env);
    expect(off.stderr).toMatch(
      /NOT PROTECTABLE: bucket .* has versioning never enabled: AWS Backup cannot back it up/,
    );
    expect(off.code).toBe(1);
    const on = await cofre(['files', 'status', '--bucket', vault.slice(5, vault.indexOf('/', 5))], env);
    expect(on.stderr).toMatch(/versioning Enabled/);
    expect(on.code).toBe(0);
  });

  it.each([
    [['--key', 'a', '--prefix', 'b'], /--key K, --prefix P or --all: expected exactly one/],
    [[], /--key K, --prefix P or --all: expected exactly one/],
    [['--all', '--as-of', 'yesterday'], /--as-of: expected a date/],
    [
      ['--all', '--to-bucket', 'x-bucket', '--download', '/tmp/x'],
      /--to-bucket or --download: expected at most one/,
    ],
    [['--all', '--to-bucket', 'Not_A_Bucket'], /--to-bucket: expected an S3 bucket name/],
    [
      ['--all', '--to-bucket', 'cofre-no-such-bucket-x'],
      /--to-bucket: bucket cofre-no-such-bucket-x does not exist at /,
    ],
    [['--key', 'nope.pdf'], /--key: "nope.pdf" was not in bucket/],
  ])('restore %j is bad input: exit 2, one line naming the flag', async (extra, message) => {
    const args = ['files', 'restore', '--bucket', source, '--vault', vault, ...extra];
    if (!extra.includes('--as-of')) args.push('--as-of', new Date().toISOString());
    const out = await cofre(args, env);
    expect(out.stderr).toMatch(message);
    expect(out.code).toBe(2);
  });

  it('a vault that is not an S3 bucket, a bad bucket name and a bad --lock-days are exit 2', async () => {
    for (const [args, message] of [
      [['--bucket', source, '--vault', 'file:///tmp/v'], /--vault: expected s3:\/\/bucket\/prefix/],
      [['--bucket', 'UPPER', '--vault', vault], /--bucket: expected an S3 bucket name/],
      [['--bucket', source, '--vault', vault, '--lock-days', '0'], /--lock-days: expected a whole number/],
      [['--bucket', source, '--vault', vault, '--object-lock-mode', 'soft'], /--object-lock-mode: expected/],
    ] as const) {
      const out = await cofre(['files', 'sync', ...args], env);
      expect(out.stderr).toMatch(message);
      expect(out.code).toBe(2);
    }
  });
});

describe('cofre files restore --backup-vault (AWS S3 buckets, AWS Backup mocked: moto has no restore jobs)', () => {
  const backupMock = mockClient(BackupClient);
  const env = { AWS_REGION: 'sa-east-1', AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' };
  const ROLE = 'arn:aws:iam::111111111111:role/cofre-bucket-backup';
  const base = ['files', 'restore', '--bucket', 'app-prod-documents', '--backup-vault', 'CofreVault'];
  beforeEach(() => {
    backupMock.reset();
    backupMock.on(ListRecoveryPointsByResourceCommand).resolves({
      RecoveryPoints: [
        {
          RecoveryPointArn: 'arn:aws:backup:sa-east-1:111111111111:recovery-point:2026-11-27',
          CreationDate: new Date('2026-11-27T06:00:00Z'),
          Status: 'COMPLETED',
          BackupVaultName: 'CofreVault',
        },
      ],
    });
    let n = 0;
    backupMock.on(StartRestoreJobCommand).callsFake(() => ({ RestoreJobId: `job-${++n}` }));
    backupMock.on(DescribeRestoreJobCommand).resolves({ Status: 'COMPLETED' });
  });
  afterAll(() => {
    backupMock.restore();
  });

  it('six keys become two restore jobs into a new cofre-restore bucket, both watched to COMPLETED', async () => {
    const keys = Array.from({ length: 6 }, (_, i) => `tenants/42/nfe-${i}.xml`);
    const out = await cofre(
      [
        ...base,
        '--role-arn',
        ROLE,
        '--key',
        ...keys,
        '--as-of',
        '2026-11-27T18:00-03:00',
        '--to-bucket',
        'cofre-restore-docs',
        '--new-bucket',
        '--json',
      ],
      env,
    );
    expect(out.stderr).toMatch(
      /OK app-prod-documents as of 2026-11-27T21:00:00.000Z .* into cofre-restore-docs: 2 restore jobs completed/,
    );
    expect(out.code).toBe(0);
    const calls = backupMock.commandCalls(StartRestoreJobCommand).map((c) => c.args[0].input.Metadata!);
    expect(calls.map((m) => (JSON.parse(m.ItemsToRestore!) as string[]).length)).toEqual([5, 1]);
    expect(calls[0]).toMatchObject({ DestinationBucketName: 'cofre-restore-docs', NewBucket: 'true' });
  });

  it.each([
    [['--key', 'a', '--as-of', '2026-11-27'], /--role-arn: expected the ARN of the role/],
    [
      ['--role-arn', ROLE, '--key', 'a', '--as-of', '2026-11-27', '--download', '/tmp/x'],
      /--download: not for AWS S3 buckets/,
    ],
    [
      ['--role-arn', ROLE, '--key', 'a', '--as-of', '2026-11-27', '--force'],
      /--force: AWS Backup never overwrites/,
    ],
    [
      ['--role-arn', ROLE, '--key', 'a', '--as-of', '2026-11-27', '--vault', 's3://v'],
      /--vault VAULT .* or --backup-vault NAME .*: expected exactly one/,
    ],
  ])('%j is bad input: exit 2, nothing started', async (extra, message) => {
    const out = await cofre([...base, ...extra], env);
    expect(out.stderr).toMatch(message);
    expect(out.code).toBe(2);
    expect(backupMock.commandCalls(StartRestoreJobCommand)).toHaveLength(0);
  });

  it('several --key for an S3-compatible source are bad input', async () => {
    const out = await cofre(
      [
        'files',
        'restore',
        '--bucket',
        'docs',
        '--vault',
        's3://v',
        '--key',
        'a',
        'b',
        '--as-of',
        '2026-11-27',
      ],
      env,
    );
    expect(out.stderr).toMatch(/--key: one at a time for an S3-compatible source/);
    expect(out.code).toBe(2);
  });
});
