import { BackupClient } from '@aws-sdk/client-backup';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { Option, type Command } from 'commander';
import { parseAsOf } from '../core/config/query';
import { IntegrityError, OperationalError, UsageError, messageOf } from '../core/util/errors';
import { filesRestoreTestRecord, testFilesRestore } from '../core/files/restore-test';
import type { HistoryRecord } from '../core/history/records';
import { DynamoHistoryStore } from '../core/history/store';
import {
  bucketVersioningProblem,
  listBucketRecoveryPoints,
  restoreAwsBucket,
} from '../core/files/aws-restore';
import { listFileVersions, restoreFiles, type FilesSelection, type FilesTarget } from '../core/files/restore';
import { syncBucket } from '../core/files/sync';
import { openFilesVault } from '../core/files/vault';
import { LOCK_MODE_ENV, parseLockMode, sdkClientConfig, type LockMode } from '../core/vault';
import type { CliIo } from './cofre';
import { formatBytes, progressFor } from './progress';

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

interface CommonOpts {
  readonly bucket: string;
  readonly vault?: string;
  readonly backupVault?: string;
  readonly roleArn?: string;
  readonly kmsKey?: string;
  readonly endpoint?: string;
  readonly json?: boolean;
}

function filesVaultUrl(opts: CommonOpts): string {
  if (opts.vault === undefined)
    throw new UsageError(
      '--vault: expected the files vault (s3://bucket/prefix) of the S3-compatible source',
    );
  return opts.vault;
}

/** AWS Backup's client (region and endpoint from the standard environment). */
function backupClient(env: NodeJS.ProcessEnv): BackupClient {
  return new BackupClient(sdkClientConfig(env, 'AWS_ENDPOINT_URL_BACKUP'));
}

/** The history table's store (endpoint, region and credentials from the standard environment). */
function historyStore(table: string, env: NodeJS.ProcessEnv): DynamoHistoryStore {
  return new DynamoHistoryStore(
    DynamoDBDocumentClient.from(new DynamoDBClient(sdkClientConfig(env, 'AWS_ENDPOINT_URL_DYNAMODB'))),
    table,
  );
}

const requester = (env: NodeJS.ProcessEnv) => `cli:${env.USER ?? 'unknown'}`;

function bucketName(value: string, flag: string): string {
  if (!BUCKET.test(value)) throw new UsageError(`${flag}: expected an S3 bucket name, got "${value}"`);
  return value;
}

/** The files vault's S3 client: the standard AWS environment (`AWS_ENDPOINT_URL_S3`, credentials, region). */
function vaultClient(env: NodeJS.ProcessEnv): S3Client {
  const config = sdkClientConfig(env, 'AWS_ENDPOINT_URL_S3');
  return new S3Client({ ...config, ...(config.endpoint ? { forcePathStyle: true } : {}) });
}

/**
 * The source's S3 client: `--endpoint` (or `COFRE_FILES_ENDPOINT`), credentials from
 * `COFRE_FILES_ACCESS_KEY_ID` / `COFRE_FILES_SECRET_ACCESS_KEY` when set (a MinIO or Supabase key),
 * else the AWS ones; path-style addressing, as S3-compatible stores expect.
 */
function sourceClient(opts: CommonOpts, env: NodeJS.ProcessEnv): { client: S3Client; endpoint: string } {
  const base = sdkClientConfig(env, 'AWS_ENDPOINT_URL_S3');
  const endpoint = opts.endpoint ?? env.COFRE_FILES_ENDPOINT ?? base.endpoint;
  if (opts.endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(opts.endpoint))
    throw new UsageError(
      `--endpoint: expected an http(s) URL such as https://minio.example.com:9000, got "${opts.endpoint}"`,
    );
  const credentials =
    env.COFRE_FILES_ACCESS_KEY_ID && env.COFRE_FILES_SECRET_ACCESS_KEY
      ? { accessKeyId: env.COFRE_FILES_ACCESS_KEY_ID, secretAccessKey: env.COFRE_FILES_SECRET_ACCESS_KEY }
      : base.credentials;
  const client = new S3Client({
    maxAttempts: base.maxAttempts,
    region: env.COFRE_FILES_REGION ?? base.region ?? 'us-east-1',
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(credentials ? { credentials } : {}),
  });
  return { client, endpoint: endpoint ?? 'AWS S3' };
}

function lockModeOf(value: string | undefined, env: NodeJS.ProcessEnv): LockMode {
  if (value !== undefined) return parseLockMode(value, '--object-lock-mode');
  const fromEnv = env[LOCK_MODE_ENV];
  return fromEnv ? parseLockMode(fromEnv, LOCK_MODE_ENV) : 'COMPLIANCE';
}

function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < 1 || n > 36500)
      throw new UsageError(`${flag}: expected a whole number of days between 1 and 36500, got "${value}"`);
    return n;
  };
}

const common = (c: Command) =>
  c
    .requiredOption('--bucket <bucket>', 'the protected bucket (its name in the files vault)')
    .option('--vault <vault>', 'the files vault, s3://bucket/prefix (S3-compatible sources)')
    .option(
      '--endpoint <url>',
      'S3-compatible endpoint of the source (MinIO, Supabase Storage); default COFRE_FILES_ENDPOINT, else the AWS S3 endpoint',
    )
    .option('--json', 'print one JSON object on stdout');

/** `cofre files sync|restore|list`: application files from S3-compatible stores, by date. */
export function addFilesCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const files = program
    .command('files')
    .description('application files (S3-compatible buckets) copied into a files vault; restore as of a date');

  common(
    files
      .command('sync')
      .description(
        'copy new and changed objects of a source bucket into the files vault and write its catalogue (one run)',
      )
      .option('--prefix <prefix...>', 'only these prefixes (default: the whole bucket)')
      .option('--full', 'copy every object again (the weekly full copy), not only new and changed ones')
      .option('--data-class <class>', 'data class of the files (tagged on the catalogue)', 'general')
      .addOption(
        new Option('--lock-days <days>', 'Object Lock retention of what this run writes, in days')
          .default(30)
          .argParser(positiveInt('--lock-days')),
      )
      .option(
        '--object-lock-mode <mode>',
        `COMPLIANCE, GOVERNANCE or none (default ${LOCK_MODE_ENV}, else COMPLIANCE)`,
      )
      .option('--kms-key <arn>', 'KMS key for SSE-KMS of the vault copies')
      .option(
        '--history-table <name>',
        'record the run (kind files, database s3:<bucket>) in this history table',
      ),
  ).action(
    async (
      opts: CommonOpts & {
        prefix?: string[];
        full?: boolean;
        dataClass: string;
        lockDays: number;
        objectLockMode?: string;
        historyTable?: string;
      },
    ) => {
      const bucket = bucketName(opts.bucket, '--bucket');
      const objectLockMode = lockModeOf(opts.objectLockMode, io.env);
      const vault = openFilesVault(filesVaultUrl(opts), {
        client: vaultClient(io.env),
        sseKmsKeyId: opts.kmsKey,
        objectLockMode,
      });
      const { client, endpoint } = sourceClient(opts, io.env);
      const progress = progressFor(io);
      const history = opts.historyTable ? historyStore(opts.historyTable, io.env) : undefined;
      const startedAt = new Date();
      const record = (fields: Pick<HistoryRecord, 'status' | 'message'> & Partial<HistoryRecord>) =>
        history?.put({
          id: `files-${bucket}-${startedAt.toISOString()}`,
          kind: 'files',
          database: `s3:${bucket}`,
          startedAt: startedAt.toISOString(),
          finishedAt: new Date().toISOString(),
          requestedBy: requester(io.env),
          ...fields,
        });
      const result = await syncBucket({
        source: { client, bucket, prefixes: opts.prefix ?? [], endpoint },
        vault,
        kind: opts.full ? 'full' : 'differential',
        dataClass: opts.dataClass,
        lockDays: opts.lockDays,
        signal: io.signal,
        log: (line) => {
          progress.log(line);
        },
        onProgress: (p) => {
          progress.update(`files sync ${bucket}`, {
            bytes: p.bytes,
            verb: 'copied',
            extra: `${p.objects} objects listed, ${p.copied} copied`,
          });
        },
      }).catch(async (error: unknown) => {
        await record({ status: 'failed', message: messageOf(error) });
        throw error;
      });
      progress.done();
      const m = result.manifest;
      await record({
        status: 'succeeded',
        bytes: m.bytes.copied,
        sha256: result.sha256,
        location: `${vault.url}/files/${encodeURIComponent(bucket)}/runs/${m.runId}/`,
        message: `${m.counts.objects} objects catalogued, ${m.counts.copied} copied, ${m.counts.deleted} deleted at the source`,
      });
      io.stderr(
        `OK files run ${m.runId} of ${bucket}: ${m.counts.objects} objects (${formatBytes(m.bytes.objects)}) catalogued; ${m.counts.copied} copied (${m.counts.new} new, ${m.counts.changed} changed, ${formatBytes(m.bytes.copied)}), ${m.counts.unchanged} unchanged, ${m.counts.deleted} deleted at the source${m.counts.vanished ? `, ${m.counts.vanished} vanished during the run` : ''}\n`,
      );
      if (opts.json) io.stdout(`${JSON.stringify(m)}\n`);
      setExitCode(0);
    },
  );

  common(
    files
      .command('restore')
      .description(
        'bring back one file (--key), a folder such as a tenant (--prefix) or the whole bucket (--all) as it was at --as-of',
      )
      .option('--key <key...>', 'one object (AWS buckets: several, batched 5 per restore job)')
      .option('--prefix <prefix...>', 'every object under a prefix, e.g. tenants/42/ (AWS buckets: several)')
      .option('--all', 'every object of the bucket')
      .option(
        '--backup-vault <name>',
        'AWS S3 buckets: the AWS Backup vault of their recovery points (stack output SnapshotVaultName), instead of --vault',
      )
      .option(
        '--role-arn <arn>',
        'AWS S3 buckets: the role AWS Backup restores with (stack output BucketBackupRoleArn)',
      )
      .option('--new-bucket', 'AWS S3 buckets: AWS Backup creates --to-bucket (name it cofre-restore-…)')
      .requiredOption(
        '--as-of <time>',
        'point in time (2026-11-27T18:00-03:00, or 2026-11-27 = the end of that day UTC)',
      )
      .option(
        '--to-bucket <bucket>',
        'write into this bucket on the source endpoint (default: the original bucket)',
      )
      .option('--download <path>', 'write to local files instead (a file for --key, a directory otherwise)')
      .option('--dry-run', 'only list what would come back, with counts and bytes')
      .option('--force', 'replace objects at the target that are newer than the version coming back'),
  ).action(
    async (
      opts: CommonOpts & {
        key?: string[];
        prefix?: string[];
        all?: boolean;
        asOf: string;
        toBucket?: string;
        download?: string;
        dryRun?: boolean;
        force?: boolean;
        newBucket?: boolean;
      },
    ) => {
      const bucket = bucketName(opts.bucket, '--bucket');
      const chosen = [opts.key !== undefined, opts.prefix !== undefined, opts.all === true].filter(Boolean);
      if (chosen.length !== 1)
        throw new UsageError('--key K, --prefix P or --all: expected exactly one (what to bring back)');
      if (opts.key?.some((k) => k === '')) throw new UsageError('--key: expected an object key, got ""');
      if (opts.prefix?.some((p) => p === ''))
        throw new UsageError('--prefix: expected a prefix such as tenants/42/ (or --all)');
      if (opts.toBucket !== undefined && opts.download !== undefined)
        throw new UsageError('--to-bucket or --download: expected at most one');
      if ((opts.vault === undefined) === (opts.backupVault === undefined))
        throw new UsageError(
          '--vault VAULT (an S3-compatible source) or --backup-vault NAME (an AWS S3 bucket): expected exactly one',
        );
      const asOf = parseAsOf(opts.asOf, '--as-of');
      if (asOf.getTime() > Date.now()) throw new UsageError(`--as-of: ${opts.asOf} is in the future`);
      const items: FilesSelection[] = opts.all
        ? [{ all: true }]
        : [...(opts.key ?? []).map((key) => ({ key })), ...(opts.prefix ?? []).map((prefix) => ({ prefix }))];
      if (opts.backupVault !== undefined) {
        await restoreFromAwsBackup(opts, { bucket, items, asOf }, io);
        setExitCode(0);
        return;
      }
      if (items.length !== 1)
        throw new UsageError(
          `${opts.key ? '--key' : '--prefix'}: one at a time for an S3-compatible source (several are for AWS buckets, batched into restore jobs)`,
        );
      if (opts.newBucket) throw new UsageError('--new-bucket: only for AWS S3 buckets (--backup-vault)');
      const selection = items[0]!;
      let target: FilesTarget;
      if (opts.download !== undefined) target = { kind: 'download', path: opts.download };
      else {
        const toBucket = bucketName(opts.toBucket ?? bucket, opts.toBucket ? '--to-bucket' : '--bucket');
        const { client, endpoint } = sourceClient(opts, io.env);
        target = { kind: 'bucket', client, bucket: toBucket, endpoint };
      }
      const vault = openFilesVault(filesVaultUrl(opts), {
        client: vaultClient(io.env),
        objectLockMode: 'none',
      });
      const progress = progressFor(io);
      const report = await restoreFiles({
        vault,
        bucket,
        selection,
        asOf,
        target,
        dryRun: opts.dryRun,
        force: opts.force,
        signal: io.signal,
        onProgress: (p) => {
          progress.update(`files restore ${bucket}`, {
            bytes: p.bytes,
            verb: 'restored',
            extra: `${p.objects} objects`,
          });
        },
      });
      progress.done();
      const verb = report.dryRun ? 'would restore' : 'restored';
      if (report.dryRun || report.items.length <= 50)
        for (const i of report.items)
          io.stderr(`  ${i.action.padEnd(10)} ${i.key} (${formatBytes(i.size)})\n`);
      io.stderr(
        `${report.dryRun ? 'DRY RUN' : 'OK'} ${bucket} as of ${report.asOf} (run ${report.runId}, finished ${report.runFinishedAt}) into ${report.target}: ${report.selected.objects} objects (${formatBytes(report.selected.bytes)}) selected; ${verb} ${report.restored.objects} (${formatBytes(report.restored.bytes)}), ${report.identical} already identical, ${report.keptNewer.length} kept because the target holds a newer one${report.keptNewer.length ? ' (--force replaces them)' : ''}\n`,
      );
      if (opts.json) io.stdout(`${JSON.stringify(report)}\n`);
      // One named file that was not brought back is a refusal, not a success: exit 2, nothing changed.
      if (!report.dryRun && 'key' in selection && report.keptNewer.length)
        throw new UsageError(
          `--key: ${selection.key} at ${report.target} is newer than the version of ${report.asOf}; it was kept. Use --to-bucket or --download for a copy beside it, or --force to replace it`,
        );
      setExitCode(0);
    },
  );

  common(
    files
      .command('test')
      .description(
        'the weekly proof: restore a random sample of the newest catalogue (in memory) and compare each SHA-256 with the source and the catalogue',
      )
      .addOption(
        new Option('--sample <n>', 'objects to restore and compare')
          .default(20)
          .argParser((value: string) => {
            const n = Number(value);
            if (!/^\d+$/.test(value) || n < 1 || n > 10000)
              throw new UsageError(`--sample: expected a whole number between 1 and 10000, got "${value}"`);
            return n;
          }),
      )
      .option('--history-table <name>', 'record the result (kind files-restore-test) in this history table'),
  ).action(async (opts: CommonOpts & { sample: number; historyTable?: string }) => {
    const bucket = bucketName(opts.bucket, '--bucket');
    const vault = openFilesVault(filesVaultUrl(opts), {
      client: vaultClient(io.env),
      objectLockMode: 'none',
    });
    const { client, endpoint } = sourceClient(opts, io.env);
    const startedAt = new Date();
    const report = await testFilesRestore({
      vault,
      source: { client, bucket, prefixes: [], endpoint },
      sample: opts.sample,
      signal: io.signal,
    });
    const record = filesRestoreTestRecord(report, { startedAt, finishedAt: new Date() }, requester(io.env));
    if (opts.historyTable) await historyStore(opts.historyTable, io.env).put(record);
    for (const r of report.results)
      io.stderr(`  ${r.outcome.padEnd(17)} ${r.key}${r.detail ? ` (${r.detail})` : ''}\n`);
    io.stderr(`${report.ok ? 'OK' : 'FAILED'} files restore test of ${bucket}: ${record.message ?? ''}\n`);
    if (opts.json) io.stdout(`${JSON.stringify(report)}\n`);
    if (!report.ok)
      throw new IntegrityError(`files restore test of ${bucket}: ${record.message ?? 'failed'}`);
    setExitCode(0);
  });

  files
    .command('status')
    .description(
      'AWS S3 buckets: whether AWS Backup can protect the bucket (versioning on) and its newest recovery points',
    )
    .requiredOption('--bucket <bucket>', 'the application bucket')
    .option(
      '--backup-vault <name>',
      'the AWS Backup vault of its recovery points (stack output SnapshotVaultName)',
    )
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: { bucket: string; backupVault?: string; json?: boolean }) => {
      const bucket = bucketName(opts.bucket, '--bucket');
      const problem = await bucketVersioningProblem(vaultClient(io.env), bucket);
      const points = opts.backupVault
        ? await listBucketRecoveryPoints(backupClient(io.env), `arn:aws:s3:::${bucket}`, opts.backupVault)
        : [];
      io.stderr(`${problem ? `NOT PROTECTABLE: ${problem}` : `bucket ${bucket}: versioning Enabled`}\n`);
      const newest = (continuous: boolean) => points.find((p) => p.continuous === continuous);
      for (const [label, p] of [
        ['continuous', newest(true)],
        ['newest periodic', newest(false)],
      ] as const)
        if (opts.backupVault)
          io.stderr(`  ${label}: ${p ? `${p.createdAt.toISOString()} ${p.status} ${p.arn}` : 'none'}\n`);
      if (opts.json)
        io.stdout(
          `${JSON.stringify({ bucket, versioning: problem ? 'off' : 'Enabled', problem, recoveryPoints: points })}\n`,
        );
      if (problem) throw new OperationalError(problem);
      setExitCode(0);
    });

  common(
    files
      .command('list')
      .description(
        'the versions of one file the files vault keeps (copies and deletions noticed), newest first',
      )
      .requiredOption('--key <key>', 'the object key')
      .option(
        '--backup-vault <name>',
        'AWS S3 buckets: list the recovery points of the bucket in this AWS Backup vault instead',
      ),
  ).action(async (opts: CommonOpts & { key: string }) => {
    const bucket = bucketName(opts.bucket, '--bucket');
    if (opts.backupVault !== undefined) {
      const points = await listBucketRecoveryPoints(
        backupClient(io.env),
        `arn:aws:s3:::${bucket}`,
        opts.backupVault,
      );
      for (const p of points)
        io.stderr(
          `${p.createdAt.toISOString()}  ${p.continuous ? 'continuous (point in time)' : 'periodic'}  ${p.status}  ${p.arn}\n`,
        );
      if (!points.length) io.stderr(`no recovery point of bucket ${bucket} in ${opts.backupVault}\n`);
      io.stderr(
        `(AWS Backup keeps recovery points of the whole bucket; any of them restores ${opts.key} with "cofre files restore --backup-vault")\n`,
      );
      if (opts.json) io.stdout(`${JSON.stringify({ bucket, key: opts.key, recoveryPoints: points })}\n`);
      setExitCode(0);
      return;
    }
    const vault = openFilesVault(filesVaultUrl(opts), {
      client: vaultClient(io.env),
      objectLockMode: 'none',
    });
    const versions = await listFileVersions(vault, bucket, opts.key);
    for (const v of versions)
      io.stderr(
        `${v.storedAt}  ${v.state === 'deleted' ? 'DELETED at the source' : `${formatBytes(v.size).padEnd(10)} etag ${v.sourceEtag ?? '-'} modified ${v.sourceLastModified ?? '-'}`}  version ${v.versionId}${v.lockUntil ? `  locked ${v.lockMode} until ${v.lockUntil}` : ''}\n`,
      );
    if (!versions.length) io.stderr(`no version of ${opts.key} of bucket ${bucket} in ${vault.url}\n`);
    if (opts.json) io.stdout(`${JSON.stringify({ bucket, key: opts.key, versions })}\n`);
    setExitCode(0);
  });
}

/** `files restore --backup-vault`: AWS Backup restore jobs for an AWS S3 bucket. */
async function restoreFromAwsBackup(
  opts: CommonOpts & {
    toBucket?: string;
    download?: string;
    dryRun?: boolean;
    force?: boolean;
    newBucket?: boolean;
  },
  what: { bucket: string; items: FilesSelection[]; asOf: Date },
  io: CliIo,
): Promise<void> {
  if (opts.download !== undefined)
    throw new UsageError(
      '--download: not for AWS S3 buckets; restore into a new bucket with --to-bucket cofre-restore-…',
    );
  if (opts.force)
    throw new UsageError(
      '--force: AWS Backup never overwrites an object present in the target bucket; for an older version of a present file, restore into a new bucket (--to-bucket cofre-restore-… --new-bucket)',
    );
  if (opts.roleArn === undefined || !/^arn:aws[a-z-]*:iam::\d{12}:role\/.+$/.test(opts.roleArn))
    throw new UsageError(
      `--role-arn: expected the ARN of the role AWS Backup restores with (stack output BucketBackupRoleArn), got ${opts.roleArn === undefined ? 'nothing' : `"${opts.roleArn}"`}`,
    );
  const toBucket = opts.toBucket === undefined ? undefined : bucketName(opts.toBucket, '--to-bucket');
  const report = await restoreAwsBucket({
    backup: backupClient(io.env),
    bucket: what.bucket,
    vaultName: opts.backupVault!,
    roleArn: opts.roleArn,
    items: what.items,
    asOf: what.asOf,
    toBucket,
    newBucket: opts.newBucket ?? false,
    dryRun: opts.dryRun,
    signal: io.signal,
    log: (line) => {
      io.stderr(`${line}\n`);
    },
  });
  io.stderr(
    `${report.dryRun ? 'DRY RUN' : 'OK'} ${what.bucket} as of ${report.asOf} from ${report.recoveryPointArn} (${report.why}${report.restoreTime ? `, restored to ${report.restoreTime}` : ''}) into ${report.destinationBucket}: ${report.jobs.length} restore job${report.jobs.length === 1 ? '' : 's'} ${report.dryRun ? 'would start' : 'completed'}; AWS Backup leaves every object already in the target bucket as it is\n`,
  );
  if (opts.json) io.stdout(`${JSON.stringify(report)}\n`);
}
