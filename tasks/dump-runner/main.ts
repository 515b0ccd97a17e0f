/**
 * The Fargate dump runner: reads its environment (set by the task definition and the state
 * machine's container overrides), runs one command of core/aws/task.ts, and reports to
 * Step Functions with the task token. See state-machines/README.md.
 *
 *   COFRE_COMMAND     backup | tenant-backup | verify-deep | restore-test (override, per run)
 *   COFRE_JOB         the job JSON (prepare's `job`, or one batch)   (override, per run)
 *   COFRE_TASK_TOKEN  the `.waitForTaskToken` token                  (override, per run)
 *   COFRE_DB_SECRET   the database's Secrets Manager JSON            (ECS secret)
 *   COFRE_VAULT_URL   s3://bucket                                    (task definition)
 *   COFRE_KMS_KEY_ARN the vault's KMS key                            (task definition)
 *   COFRE_OBJECT_LOCK_MODE the vault's Object Lock mode (COMPLIANCE | GOVERNANCE) (task definition)
 *   AWS_REGION
 */
import { KMS } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { SendTaskFailureCommand, SFNClient } from '@aws-sdk/client-sfn';
import { buildKeys } from '../../core/vault/crypto';
import { messageOf } from '../../core/util/errors';
import { taskErrorName } from '../../core/aws/task-errors';
import { parseContainerJob } from '../../core/aws/job';
import { requireEnv } from '../../core/aws/lambda-support';
import { connectionFromSecret, parseTaskCommand, readsBackups, runReportedTask } from '../../core/aws/task';
import { openVault, parseLockMode, sdkClientConfig } from '../../core/vault';
import { isFilesTaskCommand, runFilesTask, type FilesTaskCommand } from '../../core/files/task';
import { DynamoHistoryStore } from '../../core/history/store';

export interface RunnerIo {
  readonly env: NodeJS.ProcessEnv;
  readonly sfn: SFNClient;
  /** Defaults: clients from the environment. */
  readonly s3?: S3Client;
  /** The history table's client (files commands record their runs). */
  readonly dynamodb?: DynamoDBDocumentClient;
  /** The S3-compatible source's client (files commands). @default from COFRE_FILES_SOURCE and the secret */
  readonly filesSourceClient?: Parameters<typeof runFilesTask>[1]['sourceClient'];
  readonly kms?: () => KMS;
  /** Secrets Manager (a console restore into a named restore target reads its secret); default: from the environment. */
  readonly secrets?: () => SecretsManagerClient;
  readonly signal?: AbortSignal;
  readonly log: (line: string) => void;
  readonly heartbeatIntervalMs?: number;
}

/** Runs the task; the process exit code. Any failure that can be reported is reported. */
export async function runDumpRunner(io: RunnerIo): Promise<number> {
  // The files jobs of S3-compatible sources are started by EventBridge Scheduler, not a state
  // machine: no task token; they record their own history (core/files/task.ts).
  if (isFilesTaskCommand(io.env.COFRE_COMMAND)) return runFilesCommand(io.env.COFRE_COMMAND, io);
  const token = io.env.COFRE_TASK_TOKEN;
  if (!token) {
    io.log('cofre dump-runner: COFRE_TASK_TOKEN is not set; this task must be started by the state machine');
    return 2;
  }
  try {
    const env = requireEnv(io.env, [
      'COFRE_COMMAND',
      'COFRE_JOB',
      'COFRE_VAULT_URL',
      'COFRE_KMS_KEY_ARN',
      'COFRE_OBJECT_LOCK_MODE',
    ]);
    const command = parseTaskCommand(env.COFRE_COMMAND);
    const job = parseContainerJob(env.COFRE_JOB);
    const region = io.env.AWS_REGION;
    const kms = io.kms ?? (() => new KMS(region ? { region } : {}));
    const vault = openVault(env.COFRE_VAULT_URL, {
      env: io.env,
      objectLockMode: parseLockMode(env.COFRE_OBJECT_LOCK_MODE, 'COFRE_OBJECT_LOCK_MODE'),
      sseKmsKeyId: env.COFRE_KMS_KEY_ARN,
      ...(io.s3 ? { s3: io.s3 } : {}),
    });
    const keys = await buildKeys(
      { kmsKeyArn: env.COFRE_KMS_KEY_ARN },
      readsBackups(command) ? 'decrypt' : 'encrypt',
      kms,
    );
    const connection =
      command === 'verify-deep' ? undefined : connectionFromSecret(job, io.env.COFRE_DB_SECRET);
    io.log(`cofre dump-runner: ${command} of ${job.database.id}, run ${job.runId}`);
    return await runReportedTask({
      sfn: io.sfn,
      token,
      command,
      job,
      deps: {
        connection,
        vault,
        keys,
        signal: io.signal,
        log: io.log,
        secrets: (io.secrets ?? (() => new SecretsManagerClient(region ? { region } : {})))(),
      },
      heartbeatIntervalMs: io.heartbeatIntervalMs,
      log: io.log,
    });
  } catch (error) {
    // Bad environment or job: report it, so the state fails now instead of at its heartbeat timeout.
    const name = taskErrorName(error);
    io.log(`cofre dump-runner: ${name}: ${messageOf(error)}`);
    try {
      await io.sfn.send(
        new SendTaskFailureCommand({
          taskToken: token,
          error: name,
          cause: messageOf(error).slice(0, 32_000),
        }),
      );
    } catch (reportError) {
      io.log(`cofre dump-runner: could not report the failure: ${messageOf(reportError)}`);
    }
    return name === 'Cofre.BadInput' ? 2 : 1;
  }
}

/** A files command (S3-compatible source): its own clients, its own history record; the exit code. */
async function runFilesCommand(command: FilesTaskCommand, io: RunnerIo): Promise<number> {
  const table = io.env.COFRE_HISTORY_TABLE;
  if (!table) {
    io.log('cofre dump-runner: COFRE_HISTORY_TABLE: not set; the task definition must set it');
    return 2;
  }
  const s3Config = sdkClientConfig(io.env, 'AWS_ENDPOINT_URL_S3');
  const vaultS3 =
    io.s3 ?? new S3Client({ ...s3Config, ...(s3Config.endpoint ? { forcePathStyle: true } : {}) });
  const dynamodb =
    io.dynamodb ??
    DynamoDBDocumentClient.from(new DynamoDBClient(sdkClientConfig(io.env, 'AWS_ENDPOINT_URL_DYNAMODB')));
  io.log(`cofre dump-runner: ${command}`);
  return runFilesTask(command, {
    env: io.env,
    vaultS3,
    history: new DynamoHistoryStore(dynamodb, table),
    ...(io.filesSourceClient ? { sourceClient: io.filesSourceClient } : {}),
    signal: io.signal,
    log: io.log,
  });
}
