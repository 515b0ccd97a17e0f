import type { Artifact, Manifest } from '../catalog/manifest';

/**
 * `RESTORE_INSTRUCTIONS.md` of an offline export (`cofre export`): what the backup is, which key
 * opens it, and how to check, decrypt and restore it step by step, for that engine and that backup,
 * with Cofre and with the engine's standard tools. A pure function of the manifest and the backup's
 * folder inside the export, so the text can be tested and regenerated.
 */
export interface RestoreInstructionsInput {
  readonly manifest: Manifest;
  /** The backup's folder relative to the export root (`full/<id>/<database>/<backup id>`). */
  readonly folder: string;
}

const MiB = 1024 * 1024;

/** A word the shell passes through unchanged, or the word in single quotes. */
function sh(word: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function pgLiteral(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

function pgIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function mysqlLiteral(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function mysqlIdent(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

function engineName(manifest: Manifest): string {
  if (manifest.engine === 'postgres') return 'PostgreSQL';
  return /mariadb/i.test(manifest.serverVersion) ? 'MariaDB' : 'MySQL';
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < MiB) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 * MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${(bytes / 1024 / MiB).toFixed(2)} GiB`;
}

function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** `2026-11-23 05:00:00 UTC (02:00:00 in America/Sao_Paulo)`. */
function when(iso: string, timeZone: string): string {
  const date = new Date(iso);
  const utc = `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
  try {
    const local = new Intl.DateTimeFormat('sv-SE', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
    }).format(date);
    return `${utc} (${local} in ${timeZone})`;
  } catch {
    return utc;
  }
}

/** The name of the plaintext dump that `cofre decrypt` is told to write. */
export function plainDumpName(artifact: Artifact): string {
  return artifact.name.replace(/\.zst\.enc$/, '') || 'dump';
}

interface KeyInfo {
  readonly id: string;
  readonly kind: 'local' | 'kms' | 'escrow' | 'other';
  readonly value: string;
}

function keyInfo(id: string): KeyInfo {
  const colon = id.indexOf(':');
  const kind = id.slice(0, colon);
  const value = id.slice(colon + 1);
  return kind === 'local' || kind === 'kms' || kind === 'escrow'
    ? { id, kind, value }
    : { id, kind: 'other', value };
}

function keyLine(k: KeyInfo): string {
  switch (k.kind) {
    case 'escrow':
      return `- \`${k.id}\`: the **offline escrow RSA private key** whose fingerprint is \`${k.value}\`. Opens the backup without AWS and without a network: \`--escrow-private-key FILE.pem\`.`;
    case 'local':
      return `- \`${k.id}\`: the **local AES-256 key file** (made by \`cofre keygen\`) whose fingerprint is \`${k.value}\`: \`--key-file FILE\`.`;
    case 'kms':
      return `- \`${k.id}\`: the **AWS KMS key** \`${k.value}\`. Needs AWS credentials allowed to use it for decryption: \`--kms-key ${k.value}\`.`;
    default:
      return `- \`${k.id}\` (a key kind this version of the instructions does not know).`;
  }
}

/** The KEY option the commands below use: the escrow key if there is one, else the first key. */
function keyOption(keys: readonly KeyInfo[]): { option: string; note: string } {
  const escrow = keys.find((k) => k.kind === 'escrow');
  if (escrow)
    return {
      option: '--escrow-private-key /path/to/escrow-private.pem',
      note: `the escrow private key (fingerprint \`${escrow.value}\`)`,
    };
  const local = keys.find((k) => k.kind === 'local');
  if (local)
    return {
      option: '--key-file /path/to/local.key',
      note: `the local AES-256 key (fingerprint \`${local.value}\`)`,
    };
  const kms = keys.find((k) => k.kind === 'kms');
  if (kms) return { option: `--kms-key ${kms.value}`, note: `the KMS key \`${kms.value}\`` };
  return { option: 'KEY', note: 'its key' };
}

function rowCountSql(manifest: Manifest, artifact: Artifact): string {
  const header = `-- Cofre: expected row counts of backup ${manifest.backupId} (MISMATCH rows first)`;
  if (manifest.engine === 'postgres') {
    const rows = artifact.tables.map(
      (t) =>
        `  (${pgLiteral(`${t.schema}.${t.name}`)}, ${t.rows}::bigint, (SELECT count(*) FROM ONLY ${pgIdent(t.schema)}.${pgIdent(t.name)}))`,
    );
    return [
      header,
      `SELECT table_name, expected, actual, CASE WHEN actual = expected THEN 'ok' ELSE 'MISMATCH' END AS status`,
      'FROM (VALUES',
      rows.join(',\n'),
      ') AS t(table_name, expected, actual)',
      'ORDER BY actual = expected, table_name;',
    ].join('\n');
  }
  const rows = artifact.tables.map(
    (t, i) =>
      `  ${i === 0 ? '' : 'UNION ALL '}SELECT ${mysqlLiteral(t.name)} AS table_name, ${t.rows} AS expected, (SELECT COUNT(*) FROM ${mysqlIdent(t.name)}) AS actual`,
  );
  return [
    header,
    `SELECT table_name, expected, actual, IF(actual = expected, 'ok', 'MISMATCH') AS status FROM (`,
    rows.join('\n'),
    ') AS t',
    'ORDER BY actual = expected, table_name;',
  ].join('\n');
}

/** The smallest power-of-two number of MiB (≥ 64 MiB) above the largest statement. */
function packetFor(largest: number): number {
  let mib = 64;
  while (mib * MiB < largest + MiB) mib *= 2;
  return mib * MiB;
}

function tenantSteps(manifest: Manifest, dump: string, database: string): string[] {
  const t = manifest.tenant!;
  const newDb = `${database}_tenant_${t.id}`.replace(/[^A-Za-z0-9_]/g, '_');
  const shared = t.shared.length ? t.shared.map((s) => `\`${s}\``).join(', ') : 'none';
  const pg = manifest.engine === 'postgres';
  return [
    `This is a plain SQL script of **tenant ${t.id}'s rows only** (no schema): one section per table in`,
    `foreign-key order, ${pg ? '`COPY … FROM stdin` blocks' : 'batched `INSERT` statements'}. Load it into a database that has`,
    "the schema, and the rows of the shared tables the tenant's rows refer to (" + shared + '):',
    '',
    '```sh',
    ...(pg
      ? [
          'export PGHOST=HOST PGPORT=5432 PGUSER=USER          # the server (password in PGPASSWORD or ~/.pgpass)',
          `NEWDB=${sh(newDb)}                                  # a NEW database: never the live one`,
          'createdb --template=template0 "$NEWDB"',
          `pg_dump --schema-only --no-owner --no-acl ${sh(database)} | psql -v ON_ERROR_STOP=1 --dbname="$NEWDB"`,
          ...t.shared.map(
            (s) =>
              `pg_dump --data-only --table=${sh(s)} ${sh(database)} | psql -v ON_ERROR_STOP=1 --dbname="$NEWDB"`,
          ),
          `psql -v ON_ERROR_STOP=1 --single-transaction --dbname="$NEWDB" --file=/secure/place/${sh(dump)}`,
        ]
      : [
          `NEWDB=${sh(newDb)}                                  # a NEW database: never the live one`,
          'mysql -h HOST -u USER -p -e "CREATE DATABASE \\`$NEWDB\\`"',
          `mysqldump -h HOST -u USER -p --no-data --routines --skip-triggers ${sh(database)} | mysql -h HOST -u USER -p "$NEWDB"`,
          ...(t.shared.length
            ? [
                `mysqldump -h HOST -u USER -p --no-create-info ${sh(database)} ${t.shared.map(sh).join(' ')} | mysql -h HOST -u USER -p "$NEWDB"`,
              ]
            : []),
          `mysql -h HOST -u USER -p "$NEWDB" < /secure/place/${sh(dump)}`,
        ]),
    '```',
    '',
    `- The file starts with the session settings it was written under (UTF-8, UTC${pg ? ', ISO dates' : ''}); keep them.`,
    "- It loads the tenant's rows as they were; it does not delete anything. To replace a tenant's rows in a",
    '  live database, use `cofre restore --tenant`, which deletes and loads in one transaction.',
  ];
}

function postgresSteps(manifest: Manifest, artifact: Artifact, dump: string, database: string): string[] {
  const pgDump = manifest.toolVersions.pg_dump;
  const newDb = `${database}_restored`;
  return [
    `This is a \`pg_dump --format=custom\` archive${pgDump ? ` written by pg_dump ${pgDump}` : ''}. Use a \`pg_restore\` of the same or a newer major version (\`pg_restore --version\`).`,
    '',
    '```sh',
    '# The server to restore into (libpq variables; the password in PGPASSWORD or ~/.pgpass)',
    'export PGHOST=HOST PGPORT=5432 PGUSER=USER',
    `NEWDB=${sh(newDb)}                 # a NEW database: never the live one`,
    `DUMP=/secure/place/${sh(dump)}`,
    '',
    'pg_restore --list "$DUMP" | head -40          # the archive is readable: its table of contents',
    'createdb --template=template0 "$NEWDB"',
    'pg_restore --no-owner --no-acl --exit-on-error --jobs=4 --dbname="$NEWDB" "$DUMP"',
    '```',
    '',
    '- `--jobs=4` restores 4 tables at a time; it works because the dump is a file (not a pipe).',
    '- `--no-owner --no-acl`: every object belongs to the user restoring it. To keep the original',
    '  owners and grants, first restore the roles (the `=globals` backup of the same server) and leave',
    '  these two options out.',
    '- Extensions the schema uses (e.g. `CREATE EXTENSION postgis`) must be installed on the target',
    '  server; the restoring user may need to be its owner or a superuser.',
    '- If it stops with an error, run `dropdb "$NEWDB"` and start again from `createdb`: a half-restored',
    '  database must not be mistaken for a good one.',
  ];
}

function mysqlSteps(manifest: Manifest, artifact: Artifact, dump: string, database: string): string[] {
  const newDb = `${database}_restored`;
  const largest = artifact.largestStatementBytes;
  const packet = largest === undefined ? undefined : packetFor(largest);
  const lines = [
    `This is a plain SQL script written by \`mysqldump\`${manifest.toolVersions.mysqldump ? ` (${manifest.toolVersions.mysqldump})` : ''}: tables, data (BLOBs as hex), routines, triggers and events of one database, without \`CREATE DATABASE\` or \`USE\`.`,
    '',
  ];
  if (largest !== undefined && packet !== undefined)
    lines.push(
      `**\`max_allowed_packet\` first.** The largest statement in this dump is ${thousands(largest)} bytes (${formatBytes(largest)}).`,
      `The target server's \`max_allowed_packet\` must be larger, or the load stops with "Got a packet bigger`,
      `than 'max_allowed_packet' bytes" / "MySQL server has gone away". MariaDB's default is 16 MiB, MySQL 8's`,
      `64 MiB. On RDS/Aurora change it in the DB parameter group; elsewhere, as an admin (new connections`,
      `see it; note the old value and set it back afterwards):`,
      '',
      '```sh',
      `mysql -h HOST -P 3306 -u ADMIN -p -e "SELECT @@global.max_allowed_packet"`,
      `mysql -h HOST -P 3306 -u ADMIN -p -e "SET GLOBAL max_allowed_packet = ${packet}"   # ${packet / MiB} MiB`,
      '```',
      '',
    );
  lines.push(
    '```sh',
    `NEWDB=${sh(newDb)}                 # a NEW database: never the live one`,
    `DUMP=/secure/place/${sh(dump)}`,
    '',
    'mysql -h HOST -P 3306 -u USER -p -e "CREATE DATABASE \\`$NEWDB\\` CHARACTER SET utf8mb4"',
    'mysql -h HOST -P 3306 -u USER -p --binary-mode --max-allowed-packet=1G "$NEWDB" < "$DUMP"',
    '```',
    '',
    '- Routines, triggers and views carry a `DEFINER`: restore as a user allowed to set it (an admin, or',
    '  one with `SET_USER_ID` / `SUPER`), or the load stops with "Access denied; you need … privilege".',
    '- If it stops with an error, run `DROP DATABASE` on `$NEWDB` and start again: a half-restored',
    '  database must not be mistaken for a good one.',
  );
  return lines;
}

function globalsSteps(dump: string): string[] {
  return [
    "This is a `pg_dumpall --globals-only --no-role-passwords` SQL script: the server's roles and",
    'tablespaces (no data, no passwords). Restore it before the databases if you want their owners and grants:',
    '',
    '```sh',
    'export PGHOST=HOST PGPORT=5432 PGUSER=postgres',
    `psql --dbname=postgres --file=/secure/place/${sh(dump)}   # "role … already exists" errors are harmless`,
    '```',
    '',
    'Passwords were not backed up: set them again (`ALTER ROLE … PASSWORD …`) from your secret store.',
  ];
}

/** The Markdown text of `RESTORE_INSTRUCTIONS.md` for one backup. */
export function restoreInstructions(input: RestoreInstructionsInput): string {
  const { manifest, folder } = input;
  const artifact = manifest.artifacts[0]!;
  const id = manifest.backupId;
  const database = manifest.source.database;
  const dbLabel =
    manifest.kind === 'tenant' && manifest.tenant
      ? `${database ?? ''}, tenant ${manifest.tenant.id} only`
      : (database ?? '(server-wide roles and tablespaces)');
  const engine = engineName(manifest);
  const keys = artifact.encryption.keyIds.map(keyInfo);
  const escrow = keys.filter((k) => k.kind === 'escrow');
  const key = keyOption(keys);
  const dump = plainDumpName(artifact);
  const totalRows = artifact.tables.reduce((n, t) => n + t.rows, 0);
  const artifactPaths = manifest.artifacts.map((a) => `${folder}/${a.name}`);
  const tools =
    manifest.kind === 'globals' || (manifest.kind === 'tenant' && manifest.engine === 'postgres')
      ? '`psql`, `pg_dump` (package `postgresql-client`)'
      : manifest.engine === 'postgres'
        ? '`pg_restore`, `createdb` (package `postgresql-client`)'
        : '`mysql` (package `mariadb-client` or `mysql-client`)';

  const out: string[] = [
    `# Restore instructions: backup \`${id}\``,
    '',
    `This folder is an offline copy of one Cofre backup of the ${engine} database **${dbLabel}**,`,
    'made by `cofre export`. Its data is **encrypted**: nothing in it can be read without one of the',
    'keys listed under "Which key opens it". The folder is itself a Cofre file vault, so every `cofre`',
    'command below reads it directly.',
    '',
    'You need: this folder; one of the keys; a Linux or macOS shell with `sha256sum`; for the steps',
    `with Cofre a checkout of Cofre with its Node 24 (\`npm ci\`); for the standard tools ${tools}.`,
    '',
    '## What it is',
    '',
    '| | |',
    '|---|---|',
    `| backup id | \`${id}\` |`,
    `| database | \`${dbLabel}\` on \`${manifest.source.host}:${manifest.source.port}\` (user \`${manifest.source.user}\`, Cofre source id \`${manifest.sourceId}\`) |`,
    `| engine | ${engine} ${manifest.serverVersion} |`,
    `| dump tools | ${Object.entries(manifest.toolVersions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')} |`,
    `| kind, tier, data class | ${manifest.kind}, ${manifest.tier}, ${manifest.dataClass} |`,
    `| taken at | ${when(manifest.startedAt, manifest.timeZone)}, took ${(manifest.durationMs / 1000).toFixed(1)} s |`,
    `| kept until | ${manifest.retention.lockUntil} (Object Lock in the vault) |`,
    `| tables | ${artifact.tables.length} tables, ${thousands(totalRows)} rows (each table's count under "Expected row counts") |`,
    ...manifest.artifacts.map(
      (a, i) =>
        `| dump file | \`${artifactPaths[i]!}\`: ${a.format}, ${formatBytes(a.bytes.raw)} of dump, zstd level ${a.compression.level} then encrypted to ${formatBytes(a.bytes.stored)} |`,
    ),
    `| encryption | AWS Encryption SDK message, suite \`${artifact.encryption.algorithmSuite}\` (AES-256-GCM, key commitment, unsigned), ${artifact.encryption.frameLength / 1024} KiB frames |`,
    `| data key wrapped for | ${keys.map((k) => `\`${k.id}\``).join(', ')} |`,
    `| escrow key used | ${escrow.length ? `**yes**: \`${escrow.map((k) => k.value).join('`, `')}\`` : '**no**'} |`,
    `| SHA-256 of the dump (decrypted) | \`${artifact.sha256.plain}\` |`,
    `| previous backup (hash chain) | ${manifest.previous ? `\`${manifest.previous.backupId}\`, its manifest's SHA-256 \`${manifest.previous.sha256}\`` : 'none: the first backup of this database'} |`,
    '',
    '## Which key opens it',
    '',
    'The data key of the dump was wrapped for each of these keys; any **one** of them opens it:',
    '',
    ...keys.map(keyLine),
    '',
  ];
  if (escrow.length)
    out.push(
      'To check that a PEM file is the escrow key named above (prints its fingerprint):',
      '',
      '```sh',
      'openssl pkey -in /path/to/escrow-private.pem -pubout -outform DER | sha256sum | cut -c1-16',
      '```',
      '',
    );
  else
    out.push(
      '**No escrow key was used for this backup**: only the key(s) above open it. Without them (a KMS',
      'key needs AWS access) this copy cannot be decrypted by anyone.',
      '',
    );
  if (keys.some((k) => k.kind === 'local'))
    out.push("A local key file's fingerprint: `sha256sum /path/to/local.key | cut -c1-16`.", '');

  out.push(
    '## Step 1: check that the copy is complete and unaltered',
    '',
    '```sh',
    'cd /path/to/this/folder',
    'sha256sum -c checksum.sha256        # macOS: shasum -a 256 -c checksum.sha256',
    '```',
    '',
    'Every line must end in `OK`. A `FAILED` line means the disk copy is damaged: use another copy.',
    '(This catches damage, not tampering: `checksum.sha256` sits beside the data. `cofre verify --deep`',
    'in step 2 authenticates every encrypted frame with the key, which no one can forge without it.)',
    '',
    '## Step 2: restore with Cofre (recommended)',
    '',
    'Run from a checkout of Cofre (`npx cofre` elsewhere would look for another package). The commands',
    `use ${key.note}; any other key from the list works instead (\`--key-file FILE\`, \`--kms-key ARN\`,`,
    '`--escrow-private-key FILE.pem`).',
    '',
    '```sh',
    'cd /path/to/this/folder && EXPORT="$PWD"    # this folder, as an absolute path',
    'cd /path/to/cofre                           # the Cofre checkout (npm ci done)',
    `npx cofre verify  --vault "file://$EXPORT" --backup ${id} --deep ${key.option}`,
  );
  if (manifest.kind === 'globals')
    out.push(
      `npx cofre decrypt --vault "file://$EXPORT" --backup ${id} ${key.option} --out /secure/place/${sh(dump)}`,
      '```',
      '',
      'then load it with `psql` as in step 3.',
      '',
    );
  else if (manifest.kind === 'tenant' && manifest.tenant)
    out.push(
      `npx cofre restore --vault "file://$EXPORT" --backup ${id} --target-url ${manifest.engine === 'postgres' ? 'postgres://USER@HOST:5432' : 'mysql://USER@HOST:3306'}/${encodeURIComponent(database ?? 'db')} ${key.option} --tenant ${sh(manifest.tenant.id)} --dry-run`,
      '```',
      '',
      `\`verify --deep\` decrypts and re-reads the whole export without writing anything. The \`restore\` above`,
      `only reports, per table, how many of tenant ${manifest.tenant.id}'s rows the live database has (they would be`,
      'deleted) and how many the backup holds (they would be loaded). Without `--dry-run` it does it, in one',
      "transaction, leaving every other tenant untouched; with `--into-database NEW` it loads the tenant's rows into",
      'a new copy of the schema instead. See the README runbook "one tenant".',
      '',
    );
  else
    out.push(
      `npx cofre restore --vault "file://$EXPORT" --backup ${id} --target-url ${manifest.engine === 'postgres' ? 'postgres://USER@HOST:5432' : 'mysql://USER@HOST:3306'}/${encodeURIComponent(`${database ?? 'db'}_restored`)} ${key.option}`,
      '```',
      '',
      '`verify --deep` decrypts and re-reads the whole dump without writing anything. `restore` creates the',
      "target database (it refuses one that is not empty), loads it, and compares every table's row count",
      'with the manifest. The password goes in `COFRE_DB_PASSWORD`, not in the URL. Exit code 0 means done;',
      '2 bad input (nothing changed); 3 the backup or the restored data does not match the manifest.',
      '',
    );

  out.push(
    "## Step 3: without Cofre's restore, with the standard tools",
    '',
    '**Decrypting needs Cofre.** The dump is an AWS Encryption SDK message: `openssl` and `gpg` cannot',
    "read it. Any ESDK implementation can, given the key and Cofre's key names (`cofre-escrow-rsa` /",
    '`cofre-local-aes` namespaces, RSA-OAEP-SHA256 for the escrow key); the AWS Encryption CLI would',
    'need a custom master key provider for a raw RSA key, which is not a standard tool. So decrypt with',
    '`cofre decrypt`: it needs no AWS account and no network with the escrow or local key.',
    '',
    '```sh',
    `npx cofre decrypt --vault "file://$EXPORT" --backup ${id} ${key.option} --out /secure/place/${sh(dump)}`,
    `sha256sum /secure/place/${sh(dump)}    # optional: must print ${artifact.sha256.plain}`,
    '```',
    '',
    'The output is the **plain dump**: decrypted *and* decompressed (no zstd step left), checked against',
    'both SHA-256 sums of the manifest, written with mode 0600. It holds the data **in clear**: keep it on',
    'an encrypted disk, never on a shared machine, and delete it when done (`shred -u FILE`).',
    '`cofre decrypt` never overwrites a file; on any mismatch it writes nothing (exit 3).',
    '',
    "Everything after that uses only the engine's own tools:",
    '',
  );
  if (manifest.kind === 'globals') out.push(...globalsSteps(dump));
  else if (manifest.kind === 'tenant') out.push(...tenantSteps(manifest, dump, database ?? 'db'));
  else if (manifest.engine === 'postgres')
    out.push(...postgresSteps(manifest, artifact, dump, database ?? 'db'));
  else out.push(...mysqlSteps(manifest, artifact, dump, database ?? 'db'));
  out.push('');

  if (artifact.tables.length) {
    out.push(
      '## Step 4: compare the row counts with the manifest',
      '',
      `Run this in the restored database (\`psql --dbname="$NEWDB"\` / \`mysql … "$NEWDB"\`). Every`,
      'line must say `ok`; any `MISMATCH` (listed first) means the restore is not complete.',
      '(`cofre restore` does this comparison itself.)',
      '',
      '```sql',
      rowCountSql(manifest, artifact),
      '```',
      '',
      '### Expected row counts',
      '',
      '| table | rows |',
      '|---|---:|',
      ...artifact.tables.map(
        (t) =>
          `| \`${manifest.engine === 'postgres' ? `${t.schema}.${t.name}` : t.name}\` | ${thousands(t.rows)} |`,
      ),
      `| **total** | **${thousands(totalRows)}** |`,
      '',
    );
  }

  out.push(
    '## The files in this folder',
    '',
    '| file | what |',
    '|---|---|',
    '| `RESTORE_INSTRUCTIONS.md` | this text, generated for this backup |',
    '| `checksum.sha256` | SHA-256 of the dump file(s) and of `manifest.json`, for `sha256sum -c` |',
    '| `EXPORT.json` | when and from which vault the copy was made |',
    `| \`${folder}/manifest.json\` | the backup's manifest: every fact above, as JSON |`,
    ...artifactPaths.map(
      (p) => `| \`${p}\` | the encrypted, compressed dump, byte for byte as in the vault |`,
    ),
    '',
  );
  return out.join('\n');
}
