import { describe, expect, it } from 'vitest';
import { manifestSchema, type Manifest } from '../../../core/catalog/manifest';
import { plainDumpName, restoreInstructions } from '../../../core/offline/restore-instructions';

const ID = '20261123T050000123Z-1a2b3c4d';
const FOLDER = `full/app-prod/clinic/${ID}`;

function manifest(
  overrides: Partial<Manifest> = {},
  artifact: Partial<Manifest['artifacts'][number]> = {},
): Manifest {
  return manifestSchema.parse({
    formatVersion: 1,
    backupId: ID,
    kind: 'full',
    engine: 'postgres',
    serverVersion: '16.4',
    toolVersions: { pg_dump: '16.4', pg_restore: '16.4', cofre: '0.1.0', node: '24.0.0' },
    sourceId: 'app-prod',
    source: { host: 'db.internal', port: 5432, user: 'backup', database: 'clinic' },
    tier: 'daily',
    dataClass: 'health',
    timeZone: 'America/Sao_Paulo',
    startedAt: '2026-11-23T05:00:00.123Z',
    finishedAt: '2026-11-23T05:01:00.123Z',
    durationMs: 60000,
    retention: { expireAfterDays: 30, lockUntil: '2026-12-23T05:01:00.123Z' },
    artifacts: [
      {
        name: 'clinic.pgdump.zst.enc',
        format: 'pg_dump-custom',
        bytes: { raw: 3 * 1024 * 1024, compressed: 1024 * 1024, stored: 1024 * 1024 + 512 },
        sha256: { stored: 'a'.repeat(64), plain: 'b'.repeat(64) },
        compression: { algorithm: 'zstd', level: 3 },
        encryption: {
          scheme: 'aws-encryption-sdk',
          algorithmSuite: 'ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY',
          frameLength: 262144,
          keyIds: ['local:0123456789abcdef', 'escrow:fedcba9876543210'],
          encryptionContext: { 'cofre:backup-id': ID },
        },
        tables: [
          { schema: 'public', name: 'patients', rows: 1181 },
          { schema: 'public', name: `it's "odd"`, rows: 2 },
          { schema: 'audit', name: 'events', rows: 1_243_000 },
        ],
        ...artifact,
      },
    ],
    previous: null,
    ...overrides,
  });
}

describe('RESTORE_INSTRUCTIONS.md', () => {
  it('names the backup, its source, tier, local and UTC time, keys and totals', () => {
    const text = restoreInstructions({ manifest: manifest(), folder: FOLDER });
    expect(text).toMatch(new RegExp(`^# Restore instructions: backup \`${ID}\`\n`));
    expect(text).toContain(
      '| database | `clinic` on `db.internal:5432` (user `backup`, Cofre source id `app-prod`) |',
    );
    expect(text).toContain('| engine | PostgreSQL 16.4 |');
    expect(text).toContain('| kind, tier, data class | full, daily, health |');
    expect(text).toContain('2026-11-23 05:00:00 UTC (2026-11-23 02:00:00 in America/Sao_Paulo)');
    expect(text).toContain('| tables | 3 tables, 1,244,183 rows');
    expect(text).toContain('| escrow key used | **yes**: `fedcba9876543210` |');
    expect(text).toContain('| previous backup (hash chain) | none: the first backup of this database |');
    expect(text).toContain(`\`${FOLDER}/clinic.pgdump.zst.enc\`: pg_dump-custom, 3.0 MiB of dump`);
    expect(text).toContain('| `audit.events` | 1,243,000 |');
  });

  it('uses the escrow key in every command when there is one, and says how to check its fingerprint', () => {
    const text = restoreInstructions({ manifest: manifest(), folder: FOLDER });
    const commands = text.split('\n').filter((l) => l.startsWith('npx cofre '));
    expect(commands.map((c) => c.split(' ')[2])).toEqual(['verify', 'restore', 'decrypt']);
    for (const c of commands) expect(c).toContain('--escrow-private-key /path/to/escrow-private.pem');
    expect(text).toContain(
      'openssl pkey -in /path/to/escrow-private.pem -pubout -outform DER | sha256sum | cut -c1-16',
    );
    expect(text).toContain('--out /secure/place/clinic.pgdump');
    expect(text).toContain('must print ' + 'b'.repeat(64));
  });

  it('says plainly when no escrow key was used: only the KMS key opens it', () => {
    const arn = 'arn:aws:kms:sa-east-1:123456789012:key/abcd';
    const m = manifest();
    const text = restoreInstructions({
      manifest: {
        ...m,
        artifacts: [
          { ...m.artifacts[0]!, encryption: { ...m.artifacts[0]!.encryption, keyIds: [`kms:${arn}`] } },
        ],
      },
      folder: FOLDER,
    });
    expect(text).toContain('| escrow key used | **no** |');
    expect(text).toContain('**No escrow key was used for this backup**: only the key(s) above open it.');
    expect(text).toContain(`--kms-key ${arn}`);
    expect(text).not.toContain('openssl pkey');
  });

  it('quotes odd table names in the row-count SQL (PostgreSQL)', () => {
    const text = restoreInstructions({ manifest: manifest(), folder: FOLDER });
    expect(text).toContain(
      `('public.it''s "odd"', 2::bigint, (SELECT count(*) FROM ONLY "public"."it's ""odd"""))`,
    );
    expect(text).toContain('ORDER BY actual = expected, table_name;');
  });

  it('MySQL: mysql client commands, max_allowed_packet from the largest statement, backtick-quoted SQL', () => {
    const m = manifest(
      { engine: 'mysql', serverVersion: '10.11.6-MariaDB', toolVersions: { mysqldump: '10.11' } },
      {
        name: 'clinic.sql.zst.enc',
        format: 'mysqldump-sql',
        largestStatementBytes: 100 * 1024 * 1024,
        tables: [
          { schema: 'clinic', name: 'patients', rows: 5 },
          { schema: 'clinic', name: 'we`ird\\', rows: 1 },
        ],
      },
    );
    const text = restoreInstructions({ manifest: m, folder: FOLDER });
    expect(text).toContain('| engine | MariaDB 10.11.6-MariaDB |');
    expect(text).toContain('The largest statement in this dump is 104,857,600 bytes (100.0 MiB).');
    expect(text).toContain('SET GLOBAL max_allowed_packet = 134217728"   # 128 MiB');
    expect(text).toContain(
      'mysql -h HOST -P 3306 -u USER -p --binary-mode --max-allowed-packet=1G "$NEWDB" < "$DUMP"',
    );
    expect(text).toContain(
      "UNION ALL SELECT 'we`ird\\\\' AS table_name, 1 AS expected, (SELECT COUNT(*) FROM `we``ird\\`) AS actual",
    );
    expect(text).toContain('--target-url mysql://USER@HOST:3306/clinic_restored');
    expect(text).not.toContain('pg_restore');
  });

  it('globals: psql, no row counts', () => {
    const m = manifest(
      { kind: 'globals', source: { host: 'db.internal', port: 5432, user: 'backup', database: null } },
      { name: 'globals.sql.zst.enc', format: 'pg_dumpall-globals-sql', tables: [] },
    );
    const text = restoreInstructions({ manifest: m, folder: 'full/app-prod/=globals/x' });
    expect(text).toContain('psql --dbname=postgres --file=/secure/place/globals.sql');
    expect(text).not.toContain('Step 4');
    expect(text).not.toContain('cofre restore');
  });

  it('names the plaintext dump after the artifact', () => {
    expect(plainDumpName(manifest().artifacts[0]!)).toBe('clinic.pgdump');
  });
});
