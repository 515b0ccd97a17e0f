/**
 * What a person reads when the pipeline reports: the SNS subject and body of one job outcome, and the
 * message attributes that route it (severity → email / PagerDuty). Pure: no AWS SDK, no clock.
 *
 * Routing (see README "Alerts"): `severity` is `critical` for a failed run, `warning` for a skipped
 * one (the previous run was still going), `info` for a success and the monthly report. `audience` is
 * `people` when the message is for the e-mail subscribers, or `pagerduty` for a success that only
 * resolves a PagerDuty incident (`alerts.notifyOnSuccess` off): the e-mail subscriptions filter those
 * out, the PagerDuty subscription lets them through.
 */
import { z } from 'zod';
import { HISTORY_KINDS, HISTORY_STATUSES, type HistoryKind, type HistoryRecord } from '../history/records';

/** The state machines that report through `notify`. */
export const NOTIFY_JOBS = [
  'backup-database',
  'backup-tenants',
  'verify-integrity',
  'restore-test',
  /** A restore started from the Step Functions console (state-machines/restore.asl.json). */
  'restore',
  /** A job AWS Backup ran (RDS/Aurora snapshot, its DR copy, continuous backup, restore), seen through EventBridge. */
  'aws-backup',
] as const;
export type NotifyJob = (typeof NOTIFY_JOBS)[number];

export const NOTIFY_OUTCOMES = ['succeeded', 'failed', 'skipped'] as const;
export type NotifyOutcome = (typeof NOTIFY_OUTCOMES)[number];

export type Severity = 'critical' | 'warning' | 'info';
/** `people`: for the e-mail subscribers; `pagerduty`: only resolves a PagerDuty incident. */
export type Audience = 'people' | 'pagerduty';

/** What the pipeline knows about a run when it reports it. */
export interface NotifyEvent {
  readonly outcome: NotifyOutcome;
  readonly job: NotifyJob;
  /** Id of the database (`databases[].id`). */
  readonly database: string;
  readonly kind: HistoryKind;
  /** The run's history record (times, bytes, location, message). */
  readonly record?: HistoryRecord;
  /** Step Functions execution, for the console link and the redrive command. */
  readonly executionArn?: string;
  /** Error name (`States.TaskFailed`, `IntegrityError`, …). */
  readonly error?: string;
  /** Error cause: what failed, in words. */
  readonly cause?: string;
  /** Per-tenant exports that failed (backup-tenants). */
  readonly failedTenants?: readonly string[];
  /** restore: what to do now, one line each (the restore knows its target and kind). */
  readonly nextSteps?: readonly string[];
  /** Optional backup summary from the verifier: sizes for the compression ratio. */
  readonly summary?: {
    readonly backupId?: string;
    readonly rawBytes?: number;
    readonly storedBytes?: number;
    readonly tables?: number;
    readonly rows?: number;
  };
}

const historyRecordSchema = z.looseObject({
  id: z.string().min(1),
  kind: z.enum(HISTORY_KINDS),
  database: z.string().optional(),
  tenant: z.string().optional(),
  tier: z.string().optional(),
  status: z.enum(HISTORY_STATUSES),
  startedAt: z.string(),
  finishedAt: z.string().optional(),
  bytes: z.number().nonnegative().optional(),
  sha256: z.string().optional(),
  location: z.string().optional(),
  message: z.string().optional(),
  requestedBy: z.string(),
});

/** The event as the notify Lambda validates it (unknown fields are ignored). */
export const notifyEventSchema = z.object({
  outcome: z.enum(NOTIFY_OUTCOMES),
  job: z.enum(NOTIFY_JOBS),
  database: z.string().min(1),
  kind: z.enum(HISTORY_KINDS),
  record: historyRecordSchema.optional(),
  executionArn: z.string().startsWith('arn:').optional(),
  error: z.string().optional(),
  cause: z.string().optional(),
  failedTenants: z.array(z.string()).optional(),
  nextSteps: z.array(z.string()).optional(),
  summary: z
    .object({
      backupId: z.string().optional(),
      rawBytes: z.number().nonnegative().optional(),
      storedBytes: z.number().nonnegative().optional(),
      tables: z.number().int().nonnegative().optional(),
      rows: z.number().int().nonnegative().optional(),
    })
    .optional(),
});

/** Parses a notify event, or throws one line per problem naming the field. */
export function parseNotifyEvent(input: unknown): NotifyEvent {
  const result = notifyEventSchema.safeParse(input);
  if (result.success) return result.data as NotifyEvent;
  throw new Error(
    `invalid notify event: ${result.error.issues.map((i) => `${i.path.map(String).join('.') || '(event)'}: ${i.message}`).join('; ')}`,
  );
}

/** One SNS message. */
export interface AlertMessage {
  /** At most 100 ASCII characters, one line (SNS's limits for e-mail subjects). */
  readonly subject: string;
  readonly body: string;
  /** SNS message attributes (all strings): severity, database, kind, outcome, job, audience. */
  readonly attributes: Record<string, string>;
}

export interface FormatOptions {
  /** Region of the pipeline (subject, console links). */
  readonly region: string;
  /** The vault (`s3://bucket`), for the runbook commands; else taken from the record's location. */
  readonly vaultUrl?: string;
  /** Who the message is for (default `people`). */
  readonly audience?: Audience;
}

const KIND_LABELS: Record<HistoryKind, string> = {
  full: 'full backup',
  tenant: 'tenant export',
  files: 'file copy',
  'files-restore-test': 'files restore test',
  config: 'configuration snapshot',
  snapshot: 'RDS snapshot',
  'snapshot-copy': 'RDS snapshot copy to the DR region',
  pitr: 'RDS point-in-time (continuous) backup',
  'restore-test': 'restore test',
  restore: 'restore',
};

const OUTCOME_WORDS: Record<NotifyOutcome, string> = {
  failed: 'FAILED',
  succeeded: 'OK',
  skipped: 'SKIPPED',
};

export function severityOf(outcome: NotifyOutcome): Severity {
  return outcome === 'failed' ? 'critical' : outcome === 'skipped' ? 'warning' : 'info';
}

/** What ran, in words: `full backup`, `tenant export`, `integrity verification`, `restore test`. */
export function whatOf(job: NotifyJob, kind: HistoryKind): string {
  return job === 'verify-integrity' ? 'integrity verification' : KIND_LABELS[kind];
}

/** `[Cofre] FAILED full backup app-prod (sa-east-1)`, made safe for SNS (ASCII, one line, ≤ 100). */
export function subjectOf(event: Pick<NotifyEvent, 'outcome' | 'job' | 'kind' | 'database'>, region: string) {
  return snsSubject(
    `[Cofre] ${OUTCOME_WORDS[event.outcome]} ${whatOf(event.job, event.kind)} ${event.database} (${region})`,
  );
}

/** A string SNS accepts as an e-mail subject: printable ASCII, one line, at most 100 characters. */
export function snsSubject(text: string): string {
  const ascii = text
    .normalize('NFKD')
    .replace(/\s+/g, ' ')
    .replace(/[^\x20-\x7e]/g, '')
    .trim();
  return ascii.length <= 100 ? ascii : `${ascii.slice(0, 97)}...`;
}

/** `1.5 GiB`, `410.0 MiB`, `12 B`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(unit >= 3 ? 2 : 1)} ${units[unit]!}`;
}

/** `2 h 03 min`, `12 min 05 s`, `8.4 s`. */
export function formatDuration(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** The Step Functions console page of an execution. */
export function executionConsoleUrl(executionArn: string, region: string): string {
  const executionRegion = executionArn.split(':')[3] || region;
  return `https://${executionRegion}.console.aws.amazon.com/states/home?region=${executionRegion}#/v2/executions/details/${executionArn}`;
}

/** `s3://bucket` of a location such as `s3://bucket/full/app-prod/db/<id>/`. */
function vaultOf(location: string | undefined, fallback: string | undefined): string {
  if (fallback) return fallback;
  const m = location ? /^(s3:\/\/[^/]+)/.exec(location) : null;
  return m?.[1] ?? 's3://<vault bucket>';
}

function runbook(event: NotifyEvent, vault: string): string[] {
  const redrive = event.executionArn
    ? `aws stepfunctions redrive-execution --execution-arn ${event.executionArn}`
    : 'aws stepfunctions redrive-execution --execution-arn <the failed execution>';
  const kmsKey = '--kms-key <vault key ARN>';
  if (event.job === 'restore' && event.nextSteps?.length) return [...event.nextSteps];
  if (event.outcome === 'succeeded')
    return [
      'Nothing to do. If this job had paged, its PagerDuty incident is resolved by this message.',
      `List the vault: npx cofre list --vault ${vault}`,
    ];
  if (event.outcome === 'skipped')
    return [
      'The previous run of this job for this database was still running, so this one did not start.',
      `1. Look for a hung execution: aws stepfunctions list-executions --state-machine-arn <state machine> --status-filter RUNNING`,
      '2. If it is stuck, stop it (aws stepfunctions stop-execution --execution-arn ...); the next scheduled run starts normally.',
      `3. Check that a recent good backup exists: npx cofre list --vault ${vault}`,
    ];
  if (event.job === 'aws-backup' && event.kind === 'files-restore-test')
    return [
      `1. Open the AWS Backup restore job (Backup console > Jobs > Restore jobs, id ${event.record?.id.replace(/^awsbackup-restore-test-/, '') ?? '<job id>'}); the Cause above names each sampled object that failed and why.`,
      '2. "differs from the source version": the restored object is not the version the bucket held at the recovery point. Do not delete anything: compare both while the restored bucket is kept (validation window) and treat an unexplained difference like a failed integrity verification.',
      '3. "cannot be read" or AccessDenied: the bucket backup role or the files restore validation Lambda lacks a permission or a KMS grant (the restored bucket is encrypted with the snapshot vault key; the source may use its own key).',
      '4. "the restore of the recovery point ended FAILED": the status message names why (role, KMS, versioning or ACLs of the source bucket).',
      '5. Run the test again from the restore testing plan (Backup console > Restore testing) once fixed; the DaysSinceLastGoodFilesRestoreTest alarm clears with the next good test.',
    ];
  if (event.job === 'aws-backup')
    return [
      `1. Open the AWS Backup job (Backup console > Jobs, id ${event.record?.id.replace(/^awsbackup-/, '') ?? '<job id>'}) and read its status message (also under Cause above).`,
      '2. Common causes: the backup role lacks a permission or a KMS grant, the database was being modified or stopped, the job did not start within its window (EXPIRED), the Vault Lock refused the retention.',
      '3. Point in time recovery is unaffected by a failed snapshot unless the pitr job failed: check npx cofre rds status and the RecoveryPointLagMinutes alarm.',
      '4. Take a snapshot now once fixed: aws backup start-backup-job --backup-vault-name <snapshot vault> --resource-arn <database ARN> --iam-role-arn <backup role ARN>',
      '5. The logical dumps in the vault still protect the data meanwhile (npx cofre list).',
    ];
  if (event.job === 'restore-test' && event.record?.method === 'snapshot')
    return [
      `1. Open the AWS Backup restore job (Backup console > Jobs > Restore jobs, id ${event.record.id.replace(/^awsbackup-restore-test-/, '')}); the Cause above names each table that failed and why.`,
      "2. \"cannot connect\": the temporary instance is in the source's DB subnet group and security groups (databases[].snapshotRestoreTest); those groups must accept the validation Lambda's security group (databases[].network.securityGroupId), and the Lambda's subnets need a route to the AWS APIs (NAT or VPC endpoints).",
      '3. "fewer than the N of backup ...": the snapshot holds fewer rows than a Cofre dump taken before it. Do not delete anything: compare with that backup (npx cofre restore --backup <id> into a scratch database) and treat an unexplained loss like a failed integrity verification.',
      '4. "no Cofre full backup finished before the snapshot": check the backup-database runs (npx cofre list).',
      '5. Check the snapshots and their DR copies: npx cofre rds status; run the test again from the restore testing plan (Backup console > Restore testing) once fixed. The DaysSinceLastGoodRestoreTest alarm clears with the next good test.',
    ];
  if (event.job === 'restore-test')
    return [
      '1. Open the execution (link above): the cause names each database, its backup and what failed.',
      event.error === 'Cofre.NothingToRestore'
        ? `2. No full backup of this database is in the vault: check the backup-database runs (npx cofre list --vault ${vault}).`
        : `2. Check that backup in the vault: npx cofre verify --vault ${vault} --backup <backup id> --deep ${kmsKey}`,
      `3. Reproduce by hand into a new scratch database on the same server: npx cofre restore --vault ${vault} --backup <backup id> --target-url <postgres|mysql>://<user>@<host>/<db>_restore_check ${kmsKey}, then drop it.`,
      '4. A row-count or checksum mismatch (Cofre.IntegrityFailed) means that backup cannot be trusted: do not delete anything, make sure an older good backup exists, and treat it like a failed integrity verification (README: Operations).',
      '5. A scratch database <db>_cofre_rt_<hex> left on the server is dropped by the next restore test (or drop it by hand).',
      `6. Once the cause is fixed, run the test again: ${event.executionArn ? `aws stepfunctions redrive-execution --execution-arn ${event.executionArn}` : 'start the restore-test state machine with the schedule input'}; the DaysSinceLastGoodRestoreTest alarm clears with the next good test.`,
    ];
  if (event.job === 'verify-integrity')
    return [
      '1. Do not delete anything: Object Lock keeps the backup; this may be corruption or tampering.',
      `2. Reproduce: npx cofre verify --vault ${vault} --backup ${event.record?.id ?? '<backup id>'} --deep ${kmsKey}`,
      '3. Check the replica in the DR vault the same way (--vault s3://<DR vault bucket>).',
      `4. Make sure another good backup exists: npx cofre verify --vault ${vault} --all`,
      '5. Treat an unexplained mismatch as a security incident (README: Operations).',
    ];
  const steps = [
    '1. Open the execution (link above) and read the failed state and the task log.',
    `2. The last good backup and its age: npx cofre list --vault ${vault}`,
    `3. Confirm it is intact: npx cofre verify --vault ${vault} --backup <that backup id>`,
    `4. Once the cause is fixed, re-run from the failed step: ${redrive}`,
  ];
  if (event.job === 'backup-tenants')
    steps.push(
      '   (a redrive re-runs only the tenants that failed; the others are kept)',
      '5. Until then, the daily full backup still holds every tenant.',
    );
  else steps.push('5. If the database must be recovered meanwhile, follow README "Runbook: whole database".');
  return steps;
}

/** Subject, body and attributes of one outcome. */
export function formatAlert(event: NotifyEvent, options: FormatOptions): AlertMessage {
  const record = event.record;
  const what = whatOf(event.job, event.kind);
  const vault = vaultOf(record?.location, options.vaultUrl);
  const rows: [string, string][] = [
    ['Database', event.database],
    ['What', `${what} (job ${event.job})`],
    ['Outcome', OUTCOME_WORDS[event.outcome]],
    ['Region', options.region],
  ];
  if (record?.id) rows.push(['Run', record.id]);
  if (record?.tier) rows.push(['Tier', record.tier]);
  if (record?.startedAt) rows.push(['Started', record.startedAt]);
  if (record?.finishedAt) rows.push(['Finished', record.finishedAt]);
  if (record?.startedAt && record.finishedAt) {
    const ms = Date.parse(record.finishedAt) - Date.parse(record.startedAt);
    if (Number.isFinite(ms) && ms >= 0) rows.push(['Duration', formatDuration(ms)]);
  }
  const stored = event.summary?.storedBytes ?? record?.bytes;
  const raw = event.summary?.rawBytes;
  if (stored !== undefined && event.kind === 'restore-test')
    rows.push(['Read', `${formatBytes(stored)} from the vault`]);
  else if (stored !== undefined) {
    rows.push([
      'Size',
      raw !== undefined
        ? `${formatBytes(raw)} dumped, ${formatBytes(stored)} stored`
        : `${formatBytes(stored)} stored`,
    ]);
    if (raw !== undefined && stored > 0)
      rows.push([
        'Compression',
        `${(raw / stored).toFixed(2)} : 1 (${formatBytes(Math.max(0, raw - stored))} saved)`,
      ]);
  }
  if (event.summary?.tables !== undefined)
    rows.push(['Tables', `${event.summary.tables} (${event.summary.rows ?? '?'} rows)`]);
  if (record?.location) rows.push(['Location', record.location]);
  if (
    event.outcome === 'succeeded' &&
    (event.kind === 'restore-test' || event.kind === 'restore') &&
    record?.message
  )
    rows.push(['Result', record.message]);
  if (event.failedTenants?.length)
    rows.push(['Failed tenants', `${event.failedTenants.length}: ${event.failedTenants.join(', ')}`]);
  if (event.error) rows.push(['Error', event.error]);
  const cause = event.cause ?? (event.outcome !== 'succeeded' ? record?.message : undefined);
  if (cause) rows.push(['Cause', cause]);
  if (event.executionArn) rows.push(['Execution', executionConsoleUrl(event.executionArn, options.region)]);

  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const headline =
    event.outcome === 'failed'
      ? `The ${what} of ${event.database} FAILED.`
      : event.outcome === 'skipped'
        ? `The ${what} of ${event.database} was SKIPPED.`
        : `The ${what} of ${event.database} succeeded.`;
  const body = [
    headline,
    '',
    ...rows.map(([k, v]) => `${`${k}:`.padEnd(width)}${v.replace(/\n/g, `\n${' '.repeat(width)}`)}`),
    '',
    'What to do next:',
    ...runbook(event, vault).map((line) => `  ${line}`),
    '',
    '-- Cofre backup pipeline',
  ].join('\n');

  return {
    subject: subjectOf(event, options.region),
    body,
    attributes: {
      severity: severityOf(event.outcome),
      database: event.database,
      kind: event.kind,
      outcome: event.outcome,
      job: event.job,
      audience: options.audience ?? 'people',
    },
  };
}
