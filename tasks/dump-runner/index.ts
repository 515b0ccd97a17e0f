/**
 * Entry point of the Fargate dump runner (bundled by the Dockerfile). Every line it prints is a
 * structured JSON line of the same Powertools Logger the Lambdas use (core/aws/powertools.ts), so the
 * task's CloudWatch log group reads and queries like theirs.
 */
import { SFNClient } from '@aws-sdk/client-sfn';
import { powertools } from '../../core/aws/powertools';
import { runDumpRunner } from './main';

const { logger } = powertools('cofre-dump-runner');

const controller = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    logger.warn(`cofre dump-runner: received ${sig}, stopping the dump and aborting its upload…`, {
      signal: sig,
    });
    controller.abort(sig);
  });
}

runDumpRunner({
  env: process.env,
  sfn: new SFNClient({ maxAttempts: 5 }),
  signal: controller.signal,
  log: (line) => {
    logger.info(line);
  },
}).then(
  (code) => {
    if (code !== 0) logger.error('cofre dump-runner: finished with a failure', { exitCode: code });
    process.exitCode = code;
  },
  (error: unknown) => {
    logger.error('cofre dump-runner: stopped by an unexpected error', error as Error);
    process.exitCode = 1;
  },
);
