import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ENGINES } from '../sources/connection';
import { RETENTION_KINDS } from '../policy/retention';

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
  format: z.enum([
    'pg_dump-custom',
    'pg_dumpall-globals-sql',
    'mysqldump-sql',
    'tenant-pg-copy',
    'tenant-mysql-insert',
  ]),
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

/** A tenant backup's tenant and the plan it was exported with (core/tenants/plan.ts). */
export const tenantSchema = z.strictObject({
  id: z.string().min(1),
  model: z.strictObject({ table: z.string(), keyColumn: z.string(), tenantColumn: z.string() }),
  /** The tenant's tables in load order (the export's section order). */
  tables: z.array(
    z.strictObject({
      key: z.string(),
      schema: z.string(),
      name: z.string(),
      kind: z.enum(['tenant-table', 'direct', 'child']),
      filterColumn: z.string(),
      /** Columns exported (generated columns left out). */
      columns: z.array(z.string()),
      /** Child tables: the FK constraints followed up to a table with the tenant column. */
      path: z.array(z.string()),
      /** Child tables: every path that decides ownership (a row is the tenant's through any of them). */
      paths: z.array(z.array(z.string())).optional(),
      /**
       * Digest of the tenant's rows as exported (`rowsum-sha256:<hex>`, independent of row order),
       * whose count was confirmed by a separate query in the export's snapshot.
       */
      contentHash: z.string().optional(),
      dependsOn: z.array(z.string()),
    }),
  ),
  /** Tables with no path to a tenant, left out. */
  shared: z.array(z.string()),
  /** Tables with FKs to themselves. */
  selfReferences: z.array(z.string()),
});

export const manifestSchema = z
  .strictObject({
    formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
    backupId: z.string().regex(BACKUP_ID),
    kind: z.enum(['full', 'globals', 'tenant']),
    /** Tenant backups: whose rows, and the plan used. */
    tenant: tenantSchema.optional(),
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
    retention: z.strictObject({
      expireAfterDays: z.number().int().positive(),
      lockUntil: isoDate,
      /**
       * The Object Lock every object of the backup was written with and read back as (`none`: a
       * file vault or a bucket without Object Lock). Absent in manifests written before it was
       * recorded: `verify` then expects the vault's configured mode.
       */
      lockMode: z.enum(['COMPLIANCE', 'GOVERNANCE', 'none']).optional(),
    }),
    artifacts: z.array(artifactSchema).min(1),
    /** The previous backup of the same source and database: a hash chain. */
    previous: z
      .strictObject({ backupId: z.string().regex(BACKUP_ID), sha256: sha256Hex, lockUntil: isoDate })
      .nullable(),
  })
  .refine((m) => (m.kind === 'tenant') === (m.tenant !== undefined), {
    error: 'a tenant backup (kind "tenant") has a "tenant" section, and only a tenant backup has one',
    path: ['tenant'],
  });

export type Manifest = z.infer<typeof manifestSchema>;
export type Artifact = z.infer<typeof artifactSchema>;
export type ManifestTenant = z.infer<typeof tenantSchema>;

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

/** What a streamed artifact's manifest entry is made of (`StreamResult` of core/backup/stream-encoder.ts). */
export interface ArtifactInput {
  readonly name: string;
  readonly format: Artifact['format'];
  readonly result: {
    readonly rawBytes: number;
    readonly compressedBytes: number;
    readonly storedBytes: number;
    readonly plainSha256: string;
    readonly storedSha256: string;
    readonly stored: {
      readonly etag?: string;
      readonly checksumSha256?: string;
      readonly versionId?: string;
    };
    /** S3 vaults record what S3 reported at upload. */
    readonly onS3: boolean;
    readonly tables: readonly { readonly schema: string; readonly name: string; readonly rows: number }[];
    readonly zstdLevel: number;
    readonly encryption: {
      readonly algorithmSuite: string;
      readonly frameLength: number;
      readonly keyIds: readonly string[];
      readonly encryptionContext: Record<string, string>;
    };
  };
  readonly largestStatementBytes?: number | undefined;
}

/** The manifest entry of an artifact written by `streamToVault`. */
export function artifactEntry(a: ArtifactInput): Artifact {
  const { result } = a;
  return {
    name: a.name,
    format: a.format,
    bytes: { raw: result.rawBytes, compressed: result.compressedBytes, stored: result.storedBytes },
    sha256: { stored: result.storedSha256, plain: result.plainSha256 },
    ...(result.onS3
      ? {
          s3: {
            ...(result.stored.etag ? { etag: result.stored.etag } : {}),
            ...(result.stored.checksumSha256 ? { checksumSha256: result.stored.checksumSha256 } : {}),
            ...(result.stored.versionId ? { versionId: result.stored.versionId } : {}),
          },
        }
      : {}),
    compression: { algorithm: 'zstd', level: result.zstdLevel },
    encryption: {
      scheme: 'aws-encryption-sdk',
      algorithmSuite: result.encryption.algorithmSuite,
      frameLength: result.encryption.frameLength,
      keyIds: [...result.encryption.keyIds],
      encryptionContext: result.encryption.encryptionContext,
    },
    tables: result.tables.map((t) => ({ schema: t.schema, name: t.name, rows: t.rows })),
    ...(a.largestStatementBytes !== undefined ? { largestStatementBytes: a.largestStatementBytes } : {}),
  };
}

/** What a backup holds, in numbers: for the CLI, the tenant commands and the Fargate task's output. */
export interface ManifestSummary {
  readonly backupId: string;
  readonly tier: string;
  /** Plaintext bytes dumped, all artifacts. */
  readonly rawBytes: number;
  /** Bytes stored in the vault, all artifacts. */
  readonly storedBytes: number;
  readonly durationMs: number;
  readonly tables: number;
  readonly rows: number;
}

/** The numbers of a backup, summed over its artifacts. */
export function summarize(
  m: Pick<Manifest, 'backupId' | 'tier' | 'durationMs' | 'artifacts'>,
): ManifestSummary {
  return {
    backupId: m.backupId,
    tier: m.tier,
    rawBytes: m.artifacts.reduce((n, a) => n + a.bytes.raw, 0),
    storedBytes: m.artifacts.reduce((n, a) => n + a.bytes.stored, 0),
    durationMs: m.durationMs,
    tables: m.artifacts.reduce((n, a) => n + a.tables.length, 0),
    rows: m.artifacts.reduce((n, a) => n + a.tables.reduce((r, t) => r + t.rows, 0), 0),
  };
}
