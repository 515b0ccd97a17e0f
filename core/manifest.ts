import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ENGINES } from './connection';
import { RETENTION_KINDS } from './retention';

/**
 * `manifest.json`, written beside a backup's artifacts, last: a backup exists only when its manifest
 * exists and matches. Format version 1.
 */
export const MANIFEST_FORMAT_VERSION = 1;
export const MANIFEST_NAME = 'manifest.json';

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, { error: 'expected a SHA-256 in hex' });
const isoDate = z.iso.datetime({ offset: true });

export const BACKUP_ID = /^\d{8}T\d{6}\d{3}Z-[0-9a-f]{8}$/;

export const tableCountSchema = z.strictObject({
  schema: z.string(),
  name: z.string(),
  rows: z.number().int().nonnegative(),
});

export const artifactSchema = z.strictObject({
  /** Object key relative to the backup's folder. */
  name: z.string().regex(/^[^/]+$/),
  format: z.enum(['pg_dump-custom', 'pg_dumpall-globals-sql', 'mysqldump-sql']),
  bytes: z.strictObject({
    raw: z.number().int().nonnegative(),
    compressed: z.number().int().nonnegative(),
    stored: z.number().int().nonnegative(),
  }),
  sha256: z.strictObject({ stored: sha256Hex, plain: sha256Hex }),
  /** What S3 reported at upload (absent on file vaults and servers without checksums). */
  s3: z
    .strictObject({
      etag: z.string().optional(),
      checksumSha256: z.string().optional(),
      versionId: z.string().optional(),
    })
    .optional(),
  compression: z.strictObject({ algorithm: z.literal('zstd'), level: z.number().int() }),
  encryption: z.strictObject({
    scheme: z.literal('aws-encryption-sdk'),
    algorithmSuite: z.string(),
    frameLength: z.number().int().positive(),
    keyIds: z.array(z.string()).min(1),
    encryptionContext: z.record(z.string(), z.string()),
  }),
  tables: z.array(tableCountSchema),
  /** MySQL: bytes of the dump's largest statement; the restore target's max_allowed_packet must allow it. */
  largestStatementBytes: z.number().int().nonnegative().optional(),
});

export const manifestSchema = z.strictObject({
  formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
  backupId: z.string().regex(BACKUP_ID),
  kind: z.enum(['full', 'globals']),
  engine: z.enum(ENGINES),
  serverVersion: z.string(),
  toolVersions: z.record(z.string(), z.string()),
  /** The configured id of the protected server (`databases[].id`), used in keys and metrics. */
  sourceId: z.string(),
  source: z.strictObject({
    host: z.string(),
    port: z.number().int(),
    user: z.string(),
    /** `null` for the server-wide globals. */
    database: z.string().nullable(),
  }),
  tier: z.enum(RETENTION_KINDS as unknown as ['daily', 'weekly', 'monthly', 'yearly', 'tenant']),
  dataClass: z.string(),
  timeZone: z.string(),
  startedAt: isoDate,
  finishedAt: isoDate,
  durationMs: z.number().int().nonnegative(),
  retention: z.strictObject({ expireAfterDays: z.number().int().positive(), lockUntil: isoDate }),
  artifacts: z.array(artifactSchema).min(1),
  /** The previous backup of the same source and database: a hash chain. */
  previous: z
    .strictObject({ backupId: z.string().regex(BACKUP_ID), sha256: sha256Hex, lockUntil: isoDate })
    .nullable(),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type Artifact = z.infer<typeof artifactSchema>;

/** A sortable, unique backup id: UTC time to the millisecond, then 32 random bits. */
export function newBackupId(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${stamp}-${randomBytes(4).toString('hex')}`;
}

/** Serialises a manifest (stable, human-readable). */
export function serializeManifest(manifest: Manifest): Buffer {
  return Buffer.from(`${JSON.stringify(manifestSchema.parse(manifest), null, 2)}\n`, 'utf8');
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Parses manifest bytes; returns the problems instead of throwing. */
export function parseManifest(bytes: Buffer): { manifest: Manifest } | { problems: string[] } {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    return { problems: [`not JSON: ${(error as Error).message}`] };
  }
  const result = manifestSchema.safeParse(json);
  if (result.success) return { manifest: result.data };
  return {
    problems: result.error.issues.map((i) => `${i.path.map(String).join('.') || '(manifest)'}: ${i.message}`),
  };
}
