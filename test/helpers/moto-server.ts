/**
 * The local AWS for tests: one moto server (https://github.com/getmoto/moto, server mode) per
 * `npm test`, started by the global setup on a free loopback port. moto implements S3 versioning,
 * Object Lock, tags and checksums, KMS with encryption context, DynamoDB, SNS/SQS, Secrets Manager
 * and SSM as real services with state, so the runtime's AWS calls are exercised, not asserted.
 *
 * Where it comes from: `COFRE_MOTO_SERVER` (a path to `moto_server`), else the project's
 * `.venv/bin/moto_server` (made by `npm run setup:moto`, which CI runs), else `moto_server` on PATH.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const MOTO_VERSION = '5.2.5';

/** The moto_server executable, or why there is none. */
export function findMotoServer(env: NodeJS.ProcessEnv = process.env): { bin?: string; reason?: string } {
  if (env.COFRE_MOTO_SERVER) {
    return existsSync(env.COFRE_MOTO_SERVER)
      ? { bin: env.COFRE_MOTO_SERVER }
      : { reason: `COFRE_MOTO_SERVER=${env.COFRE_MOTO_SERVER} does not exist` };
  }
  const local = path.join(__dirname, '..', '..', '.venv', 'bin', 'moto_server');
  if (existsSync(local)) return { bin: local };
  const which = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return { bin: which.stdout.trim() };
  return { reason: 'moto_server not found (run "npm run setup:moto", or set COFRE_MOTO_SERVER)' };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

async function waitUntilUp(endpoint: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto_server exited with ${child.exitCode}: ${output()}`);
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`moto_server did not answer on ${endpoint} within 30 s: ${output()}`);
}

/** A running moto server. */
export interface MotoServer {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startMotoServer(bin: string): Promise<MotoServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, MOTO_ALLOW_NONEXISTENT_REGION: 'true' },
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  await waitUntilUp(endpoint, child, () => output);
  return {
    endpoint,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise<void>((resolve) =>
        child.once('exit', () => {
          resolve();
        }),
      );
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}
