/**
 * `npm run bench -- --only files [--objects 100000] [--size 2048]`: `cofre files sync` of a bucket of
 * small objects on the local S3 (a moto server started here: it is both the S3-compatible source and
 * the files vault, versioned with Object Lock), as a child process so its peak RSS is its own. Three
 * runs: the first copies every object and writes the catalogue; the second finds nothing changed
 * (the catalogue alone); the third after 1 % of the objects changed. Objects per second and peak RSS.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  CreateBucketCommand,
  PutBucketVersioningCommand,
  PutObjectCommand,
  PutObjectLockConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { nodePeakMiB } from './bench-run';
import { findMotoServer, startMotoServer } from '../test/helpers/moto-server';

const BIN = path.join(__dirname, '..', 'cli', 'bin.js');
const REGION = 'sa-east-1';

interface SyncRun {
  readonly seconds: number;
  readonly peakRssMiB: number;
  readonly manifest: { counts: Record<string, number>; bytes: Record<string, number> };
}

async function syncOnce(args: string[], env: NodeJS.ProcessEnv): Promise<SyncRun> {
  const start = process.hrtime.bigint();
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let peak = 0;
  // The whole tree: cli/launch.js may run the command in a child Node process.
  const sampler = setInterval(() => {
    peak = Math.max(peak, nodePeakMiB(child.pid!));
  }, 50);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`cofre ${args.join(' ')} failed (${String(code)}): ${stderr}`);
  return {
    seconds: Number(process.hrtime.bigint() - start) / 1e9,
    peakRssMiB: peak,
    manifest: JSON.parse(stdout) as SyncRun['manifest'],
  };
}

async function putAll(s3: S3Client, bucket: string, keys: string[], size: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < keys.length) {
      const key = keys[next++]!;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: randomBytes(size) }));
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

export async function benchFiles(options: {
  objects: number;
  size: number;
  log: (line: string) => void;
}): Promise<Record<string, string>> {
  const found = findMotoServer();
  if (!found.bin) throw new Error(found.reason);
  const moto = await startMotoServer(found.bin);
  try {
    const credentials = { accessKeyId: 'bench', secretAccessKey: 'bench' };
    const s3 = new S3Client({ endpoint: moto.endpoint, region: REGION, credentials, forcePathStyle: true });
    const source = 'bench-documents';
    const vault = 'bench-files-vault';
    await s3.send(
      new CreateBucketCommand({ Bucket: source, CreateBucketConfiguration: { LocationConstraint: REGION } }),
    );
    await s3.send(
      new CreateBucketCommand({
        Bucket: vault,
        CreateBucketConfiguration: { LocationConstraint: REGION },
        ObjectLockEnabledForBucket: true,
      }),
    );
    await s3.send(
      new PutBucketVersioningCommand({ Bucket: vault, VersioningConfiguration: { Status: 'Enabled' } }),
    );
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: vault,
        ObjectLockConfiguration: {
          ObjectLockEnabled: 'Enabled',
          Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } },
        },
      }),
    );
    const keys = Array.from(
      { length: options.objects },
      (_, i) => `tenants/${i % 500}/docs/${String(i).padStart(7, '0')}.xml`,
    );
    options.log(`uploading ${options.objects} objects of ${options.size} bytes to the local S3…`);
    await putAll(s3, source, keys, options.size);
    const env = {
      ...process.env,
      AWS_ENDPOINT_URL_S3: moto.endpoint,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: REGION,
    };
    const args = [
      'files',
      'sync',
      '--bucket',
      source,
      '--vault',
      `s3://${vault}/cofre`,
      '--object-lock-mode',
      'GOVERNANCE',
      '--lock-days',
      '1',
      '--json',
    ];
    options.log('first sync (every object copied)…');
    const first = await syncOnce(args, env);
    options.log('second sync (nothing changed)…');
    const second = await syncOnce(args, env);
    const changed = keys.filter((_, i) => i % 100 === 0);
    await putAll(s3, source, changed, options.size);
    options.log(`third sync (${changed.length} objects changed)…`);
    const third = await syncOnce(args, env);
    const rate = (n: number, s: number) => `${Math.round(n / s)} objects/s`;
    if (first.manifest.counts.objects !== options.objects || third.manifest.counts.changed !== changed.length)
      throw new Error(`unexpected counts: ${JSON.stringify([first.manifest.counts, third.manifest.counts])}`);
    return {
      objects: `${options.objects} × ${options.size} B`,
      'first sync (copy all + catalogue)': `${first.seconds.toFixed(1)} s, ${rate(options.objects, first.seconds)}, peak RSS ${first.peakRssMiB.toFixed(0)} MiB`,
      'second sync (no change: listing + catalogue)': `${second.seconds.toFixed(1)} s, ${rate(options.objects, second.seconds)}, peak RSS ${second.peakRssMiB.toFixed(0)} MiB`,
      [`third sync (${changed.length} changed)`]: `${third.seconds.toFixed(1)} s, ${rate(options.objects, third.seconds)}, peak RSS ${third.peakRssMiB.toFixed(0)} MiB`,
    };
  } finally {
    await moto.stop();
  }
}
