import path from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { FieldError, UsageError } from '../util/errors';
import { FileVault } from './file-vault';
import { S3Vault } from './s3-vault';
import { LOCK_MODES, type LockMode, type Vault } from './types';

export { FileVault } from './file-vault';
export { LockNotSetError, S3Vault, lockProblem, readAll } from './s3-vault';
export type { LockMode, StoredLock, StoredObject, Vault, WriteOptions } from './types';
export { LOCK_MODES } from './types';

/** The environment variable that carries the vault's configured Object Lock mode (set by CDK). */
export const LOCK_MODE_ENV = 'COFRE_OBJECT_LOCK_MODE';
/** The mode an S3 vault is written with when neither the caller nor the environment names one. */
export const DEFAULT_LOCK_MODE: LockMode = 'COMPLIANCE';

/** `value` as a lock mode; `field` names where it came from in the error. */
export function parseLockMode(value: string, field: string): LockMode {
  const mode = LOCK_MODES.find((m) => m.toLowerCase() === value.toLowerCase());
  if (!mode) throw new UsageError(`${field}: expected ${LOCK_MODES.join(', ')}, got "${value}"`);
  return mode;
}

/**
 * AWS SDK v3 client settings from the given environment (the CLI's), falling back to the SDK's own
 * chain for what it does not set: the service's endpoint variable (`endpointVar`, e.g.
 * `AWS_ENDPOINT_URL_S3`) or `AWS_ENDPOINT_URL`, the region, static credentials, and one retry
 * policy (3 attempts) for every call.
 */
export function sdkClientConfig(
  env: NodeJS.ProcessEnv,
  endpointVar: string,
): {
  maxAttempts: number;
  endpoint?: string;
  region?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
} {
  const endpoint = env[endpointVar] ?? env.AWS_ENDPOINT_URL;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  return {
    maxAttempts: 3,
    ...(endpoint ? { endpoint } : {}),
    ...(region ? { region } : {}),
    ...(env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
      ? {
          credentials: {
            accessKeyId: env.AWS_ACCESS_KEY_ID,
            secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
  };
}

/** Dependencies and settings for opening a vault. */
export interface OpenVaultOptions {
  /** An S3 client to use; by default one is made from the standard AWS environment. */
  readonly s3?: S3Client | undefined;
  /** KMS key for SSE-KMS on S3 vaults. */
  readonly sseKmsKeyId?: string | undefined;
  /**
   * Object Lock mode of S3 writes (never detected). Default: `COFRE_OBJECT_LOCK_MODE` from `env`,
   * else COMPLIANCE, the vault's default: a bucket without Object Lock then fails the first
   * backup, saying so, until `none` is chosen explicitly.
   */
  readonly objectLockMode?: LockMode | undefined;
  readonly env?: NodeJS.ProcessEnv;
}

/**
 * Opens `s3://bucket/prefix` or `file:///absolute/dir`. S3 endpoints come from the standard
 * `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL` variables (path-style addressing when set), so a
 * local S3 server works.
 */
export function openVault(url: string, options: OpenVaultOptions = {}): Vault {
  const env = options.env ?? process.env;
  if (url.startsWith('file://')) {
    let dir: string;
    try {
      dir = decodeURIComponent(new URL(url).pathname);
    } catch {
      throw new FieldError('vault', `expected file:///absolute/dir, got "${url}"`);
    }
    if (!url.startsWith('file:///') || !path.isAbsolute(dir) || dir === '/')
      throw new FieldError(
        'vault',
        `expected file:///absolute/dir (an absolute directory, not /), got "${url}"`,
      );
    return new FileVault(dir.replace(/\/+$/, ''));
  }
  const match = /^s3:\/\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:\/(.*))?$/.exec(url);
  if (match) {
    const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '');
    const config = sdkClientConfig(env, 'AWS_ENDPOINT_URL_S3');
    // lib-storage retries parts through the client's retry policy.
    const client =
      options.s3 ?? new S3Client({ ...config, ...(config.endpoint ? { forcePathStyle: true } : {}) });
    const fromEnv = env[LOCK_MODE_ENV];
    const objectLockMode =
      options.objectLockMode ?? (fromEnv ? parseLockMode(fromEnv, LOCK_MODE_ENV) : DEFAULT_LOCK_MODE);
    return new S3Vault({
      client,
      bucket: match[1]!,
      prefix,
      sseKmsKeyId: options.sseKmsKeyId,
      objectLockMode,
    });
  }
  throw new FieldError('vault', `expected s3://bucket/prefix or file:///absolute/dir, got "${url}"`);
}
