/** Entry point of the Fargate dump runner (bundled by the Dockerfile). */
import { SFNClient } from '@aws-sdk/client-sfn';
import { runDumpRunner } from './main';

const controller = new AbortController();
for (const sig of ['SIGTERM', 'SIGINT'] as const) {
  process.once(sig, () => {
    process.stderr.write(`cofre dump-runner: received ${sig}, stopping the dump and aborting its upload…\n`);
    controller.abort(sig);
  });
}

runDumpRunner({
  env: process.env,
  sfn: new SFNClient({ maxAttempts: 5 }),
  signal: controller.signal,
  log: (line) => process.stderr.write(`${line}\n`),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`cofre dump-runner: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
