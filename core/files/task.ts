/**
 * The scheduled files job of an S3-compatible source, as the Fargate task (tasks/dump-runner) runs
 * it: EventBridge Scheduler starts the task with `COFRE_COMMAND` = `files-sync` (differential),
 * `files-sync-full` or `files-restore-test`; no state machine and no task token. The task reads the
 * source with the access key ECS injects from Secrets Manager (`COFRE_FILES_CREDENTIALS`), writes
 * into the vault's `files/<bucket>/` (the files vault), and records each run in the history table
 * itself (kind `files` or `files-restore-test`, database `s3:<bucket>`), a failed run as `failed`:
 * the freshness check's alarms then see a missing good run, whatever went wrong.
 *
 *   COFRE_COMMAND            files-sync | files-sync-full | files-restore-test   (schedule override)
 *   COFRE_FILES_SOURCE       the source's settings, JSON ({@link filesSourceSettingsSchema})
 *   COFRE_FILES_CREDENTIALS  {"accessKeyId", "secretAccessKey"}                 (ECS secret)
 *   COFRE_VAULT_URL, COFRE_KMS_KEY_ARN, COFRE_OBJECT_LOCK_MODE, COFRE_HISTORY_TABLE  (task definition)
 */
import { S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import type { HistoryRecord } from '../history/records';
import type { HistoryStore } from '../history/store';
import { IntegrityError, UsageError, messageOf } from '../util/errors';
import { parseLockMode } from '../vault';
import { filesRestoreTestRecord, testFilesRestore } from './restore-test';
import { bucketFolder, runFolder } from './catalogue';
import { syncBucket, type SyncResult } from './sync';
import { openFilesVault } from './vault';

export const FILES_TASK_COMMANDS = ['files-sync', 'files-sync-full', 'files-restore-test'] as const;
export type FilesTaskCommand = (typeof FILES_TASK_COMMANDS)[number];

export function isFilesTaskCommand(value: string | undefined): value is FilesTaskCommand {
  return (FILES_TASK_COMMANDS as readonly (string | undefined)[]).includes(value);
}

/** `COFRE_FILES_SOURCE`: what CDK writes into the task definition from `buckets[]` (no credentials). */
export const filesSourceSettingsSchema = z.strictObject({
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/),
  endpoint: z.string().regex(/^https?:\/\/\S+$/),
  region: z.string().min(1),
  forcePathStyle: z.boolean(),
  prefixes: z.array(z.string().min(1)),
  dataClass: z.string().min(1),
  /** Object Lock days of what a differential and a full run write (`retention.filesDifferentialDays`, 7 × `filesFullWeeks`). */
  lockDays: z.strictObject({
    differential: z.number().int().min(1),
    full: z.number().int().min(1),
  }),
  /** Objects the weekly restore test samples. */
  sample: z.number().int().min(1).max(10_000),
});
export type FilesSourceSettings = z.infer<typeof filesSourceSettingsSchema>;

const credentialsSchema = z.looseObject({
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
});

/** Parses `COFRE_FILES_SOURCE`; a bad value names the variable and the field. */
export function parseFilesSourceSettings(text: string | undefined): FilesSourceSettings {
  if (!text) throw new UsageError('COFRE_FILES_SOURCE: not set; the task definition must carry the source');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new UsageError('COFRE_FILES_SOURCE: expected JSON');
  }
  const parsed = filesSourceSettingsSchema.safeParse(json);
  if (!parsed.success)
    throw new UsageError(
      `COFRE_FILES_SOURCE: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(value)'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/** The access key from `COFRE_FILES_CREDENTIALS` (the secret's JSON); never echoes it. */
export function parseFilesCredentials(text: string | undefined): {
  accessKeyId: string;
  secretAccessKey: string;
} {
  if (!text)
    throw new UsageError(
      'COFRE_FILES_CREDENTIALS: not set; the task definition must inject the source secret (buckets[].source.credentialsSecretArn)',
    );
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = credentialsSchema.safeParse(json);
  if (!parsed.success)
    throw new UsageError(
      'COFRE_FILES_CREDENTIALS: expected the secret as JSON {"accessKeyId": "...", "secretAccessKey": "..."}',
    );
  return { accessKeyId: parsed.data.accessKeyId, secretAccessKey: parsed.data.secretAccessKey };
}

/** The S3 client of the source, from its settings and access key (path-style as configured). */
export function sourceClientOf(
  settings: FilesSourceSettings,
  credentials: { accessKeyId: string; secretAccessKey: string },
): S3Client {
  return new S3Client({
    endpoint: settings.endpoint,
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    credentials,
    maxAttempts: 5,
  });
}

export interface FilesTaskDeps {
  readonly env: NodeJS.ProcessEnv;
  /** The vault's S3 client (the task role's credentials). */
  readonly vaultS3: S3Client;
  readonly history: Pick<HistoryStore, 'put'>;
  /** Builds the source's client. @default {@link sourceClientOf} */
  readonly sourceClient?: typeof sourceClientOf;
  readonly signal?: AbortSignal | undefined;
  readonly log: (line: string) => void;
  readonly now?: () => Date;
}

/** The history record of a scheduled sync run (kind `files`, database `s3:<bucket>`). */
export function filesSyncRecord(o: {
  readonly bucket: string;
  readonly vaultUrl: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly requestedBy: string;
  readonly result?: SyncResult;
  readonly error?: unknown;
}): HistoryRecord {
  const base = {
    id: `files-${o.bucket}-${o.startedAt.toISOString()}`,
    kind: 'files' as const,
    database: `s3:${o.bucket}`,
    startedAt: o.startedAt.toISOString(),
    finishedAt: o.finishedAt.toISOString(),
    requestedBy: o.requestedBy,
  };
  if (!o.result) return { ...base, status: 'failed', message: messageOf(o.error) };
  const m = o.result.manifest;
  return {
    ...base,
    status: 'succeeded',
    bytes: m.bytes.copied,
    sha256: o.result.sha256,
    location: `${o.vaultUrl}/${runFolder(o.bucket, m.runId)}/`,
    message: `${m.kind} run ${m.runId}: ${m.counts.objects} objects catalogued, ${m.counts.copied} copied (${m.counts.new} new, ${m.counts.changed} changed), ${m.counts.deleted} deleted at the source${m.counts.vanished ? `, ${m.counts.vanished} vanished during the run` : ''}`,
  };
}

/**
 * Runs one files command and records it; returns the exit code (0 good, 1 failed, 2 bad input, 3 a
 * restore test found a difference). A run that cannot be recorded is a failure too.
 */
export async function runFilesTask(command: FilesTaskCommand, deps: FilesTaskDeps): Promise<number> {
  const now = deps.now ?? (() => new Date());
  const { env } = deps;
  let settings: FilesSourceSettings;
  let source;
  let vault;
  try {
    settings = parseFilesSourceSettings(env.COFRE_FILES_SOURCE);
    for (const name of ['COFRE_VAULT_URL', 'COFRE_KMS_KEY_ARN', 'COFRE_OBJECT_LOCK_MODE'] as const)
      if (!env[name]) throw new UsageError(`${name}: not set; the task definition must set it`);
    vault = openFilesVault(
      env.COFRE_VAULT_URL!,
      {
        client: deps.vaultS3,
        sseKmsKeyId: env.COFRE_KMS_KEY_ARN,
        objectLockMode: parseLockMode(env.COFRE_OBJECT_LOCK_MODE!, 'COFRE_OBJECT_LOCK_MODE'),
      },
      'COFRE_VAULT_URL',
    );
    const credentials = parseFilesCredentials(env.COFRE_FILES_CREDENTIALS);
    source = {
      client: (deps.sourceClient ?? sourceClientOf)(settings, credentials),
      bucket: settings.bucket,
      prefixes: settings.prefixes,
      endpoint: settings.endpoint,
    };
  } catch (error) {
    deps.log(`cofre files task: ${messageOf(error)}`);
    return error instanceof UsageError ? 2 : 1;
  }
  const startedAt = now();
  const requestedBy = 'schedule';
  if (command === 'files-restore-test') {
    let record: HistoryRecord;
    let code: number;
    try {
      const report = await testFilesRestore({
        vault,
        source,
        sample: settings.sample,
        signal: deps.signal,
      });
      record = filesRestoreTestRecord(report, { startedAt, finishedAt: now() }, requestedBy);
      code = report.ok ? 0 : 3;
    } catch (error) {
      record = {
        id: `files-restore-test-${settings.bucket}-${startedAt.toISOString()}`,
        kind: 'files-restore-test',
        database: `s3:${settings.bucket}`,
        status: 'failed',
        startedAt: startedAt.toISOString(),
        finishedAt: now().toISOString(),
        message: messageOf(error),
        requestedBy,
      };
      code = error instanceof IntegrityError ? 3 : 1;
    }
    deps.log(`files restore test of ${settings.bucket}: ${record.status}: ${record.message ?? ''}`);
    return (await recorded(deps, record)) ? code : 1;
  }
  const kind = command === 'files-sync-full' ? 'full' : 'differential';
  let result: SyncResult | undefined;
  let failure: unknown;
  try {
    result = await syncBucket({
      source,
      vault,
      kind,
      dataClass: settings.dataClass,
      lockDays: settings.lockDays[kind],
      signal: deps.signal,
      now,
      log: deps.log,
    });
  } catch (error) {
    failure = error;
    deps.log(
      `files sync of ${settings.bucket} (${kind}) into ${vault.url}/${bucketFolder(settings.bucket)}/ FAILED: ${messageOf(error)}`,
    );
  }
  const record = filesSyncRecord({
    bucket: settings.bucket,
    vaultUrl: vault.url,
    startedAt,
    finishedAt: now(),
    requestedBy,
    ...(result ? { result } : { error: failure }),
  });
  const ok = await recorded(deps, record);
  if (failure !== undefined) return failure instanceof UsageError ? 2 : 1;
  return ok ? 0 : 1;
}

async function recorded(deps: FilesTaskDeps, record: HistoryRecord): Promise<boolean> {
  try {
    await deps.history.put(record);
    return true;
  } catch (error) {
    deps.log(`cofre files task: could not record ${record.id} in the history: ${messageOf(error)}`);
    return false;
  }
}
