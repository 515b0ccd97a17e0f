import { rmSync } from 'node:fs';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { tempDir } from './temp';

/**
 * A real S3 API on localhost (s3rver), for tests that move bytes and stop the server mid-upload.
 * s3rver has no Object Lock, so its vaults are written with `objectLockMode: 'none'`; the AWS
 * behaviour (Object Lock, SSE-KMS, checksums, tags) is tested against moto (`local-aws.ts`).
 */
export interface LocalS3 {
  readonly endpoint: string;
  readonly client: S3Client;
  readonly bucket: string;
  readonly dir: string;
  /** Environment that points `openVault` / the CLI at this server. */
  readonly env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
  /** Starts the server again on the same port and directory. */
  start(): Promise<void>;
  /** Stops the server and removes its files. */
  dispose(): Promise<void>;
}

export async function startLocalS3(bucket = 'cofre-vault'): Promise<LocalS3> {
  const dir = tempDir('s3');
  let port = 0;
  let server: S3rver | undefined;
  const start = async () => {
    server = new S3rver({ port, address: '127.0.0.1', silent: true, directory: dir });
    const address = await server.run();
    port = address.port;
  };
  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    maxAttempts: 2,
  });
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  const stop = async () => {
    if (server) await server.close();
    server = undefined;
  };
  return {
    endpoint,
    client,
    bucket,
    dir,
    env: {
      ...process.env,
      AWS_ENDPOINT_URL_S3: endpoint,
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REGION: 'us-east-1',
      COFRE_OBJECT_LOCK_MODE: 'none',
    },
    stop,
    start,
    async dispose() {
      await stop();
      client.destroy();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
