import { Writable } from 'node:stream';
import { type OnProgress } from '../util/progress';
import { pipeline } from 'node:stream/promises';
import { plaintextStages } from '../catalog/artifact-reader';
import { findBackup, type CatalogEntry } from '../catalog/catalog';
import { folderOf } from '../catalog/keys';
import { type Keys } from '../vault/crypto';
import { checkKeyFits } from '../offline/decrypt';
import { IntegrityError, messageOf } from '../util/errors';
import { exportedBackupId } from '../offline/export';
import { MANIFEST_NAME, parseManifest, sha256, type Artifact, type Manifest } from '../catalog/manifest';
import { MysqldumpRowCounter } from '../sources/mysqldump-rows';
import { SectionCounter } from '../tenants/format';
import { spawnTool, type ToolProcess } from '../sources/process';
import { lockProblem, type StoredObject, type Vault } from '../vault';

export interface VerifyOptions {
  readonly vault: Vault;
  readonly backupId: string;
  /** Look for the backup under these key prefixes only (default: the whole vault). */
  readonly prefixes?: readonly string[] | undefined;
  /** Deep verification: decrypt with these keys, decompress, re-hash and parse the dump. */
  readonly deep?: Keys | undefined;
  readonly now?: Date;
  /** `deep`: bytes of each artifact read so far (see core/util/progress.ts). */
  readonly onProgress?: OnProgress | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface VerifyReport {
  readonly backupId: string;
  readonly deep: boolean;
  /** `expired`: the backup is past its retention and the lifecycle may have removed it. */
  readonly status: 'ok' | 'failed' | 'expired';
  readonly problems: readonly string[];
  /** What was checked, one line each. */
  readonly checked: readonly string[];
}

/**
 * Verifies a backup against its manifest. Quick: the manifest's schema, every artifact present with
 * the recorded size and checksum (on S3 from the stored checksum / ETag, without downloading), and
 * the hash chain link to the previous backup. Deep also streams every artifact through
 * authentication, decryption and decompression, re-hashes the plaintext and parses the dump
 * (`pg_restore --list` and a full `pg_restore` read for PostgreSQL, the row counts and completion
 * line for MySQL). Throws {@link IntegrityError} (exit 3) naming every problem.
 */
export async function verifyBackup(options: VerifyOptions): Promise<VerifyReport> {
  const entry = await findBackup(options.vault, options.backupId, options.prefixes);
  const now = options.now ?? new Date();
  const problems: string[] = [];
  const checked: string[] = [];
  if (!entry.manifest) {
    problems.push(...(entry.problems ?? []).map((p) => `${entry.folder}/${MANIFEST_NAME}: ${p}`));
    throw new IntegrityError(
      `backup ${options.backupId} failed verification:\n  ${problems.join('\n  ')}`,
      problems,
    );
  }
  const manifest = entry.manifest;
  checked.push(`manifest.json: valid (format ${manifest.formatVersion})`);
  const expired = new Date(manifest.retention.lockUntil).getTime() <= now.getTime();
  for (const artifact of manifest.artifacts) {
    const key = `${entry.folder}/${artifact.name}`;
    const found = await storedObjectProblems(options.vault, key, artifact, problems, checked, !!options.deep);
    if (found) checkLock(options.vault, key, found, manifest, expired, problems, checked);
    // A key the artifact was not encrypted for is bad input (exit 2), as on restore and decrypt.
    if (found && options.deep) checkKeyFits(options.deep, artifact, `backup ${manifest.backupId}`);
    if (found && options.deep) await deepCheck(options, manifest, key, artifact, problems, checked);
  }
  const manifestKey = `${entry.folder}/${MANIFEST_NAME}`;
  const manifestObject = await options.vault.stat(manifestKey);
  if (manifestObject)
    checkLock(options.vault, manifestKey, manifestObject, manifest, expired, problems, checked);
  await checkChain(options.vault, entry, manifest, now, problems, checked);
  if (problems.length && expired && problems.every((p) => /is missing/.test(p)))
    return { backupId: manifest.backupId, deep: !!options.deep, status: 'expired', problems, checked };
  if (problems.length)
    throw new IntegrityError(
      `backup ${manifest.backupId} failed verification:\n  ${problems.join('\n  ')}`,
      problems,
    );
  return { backupId: manifest.backupId, deep: !!options.deep, status: 'ok', problems, checked };
}

/**
 * The object's Object Lock, as S3 reports it, against the manifest's promise: the mode it records
 * (or, for a manifest from before modes were recorded, the vault's configured mode) until its
 * `lockUntil`. A lock that is missing, weaker or shorter is a problem (exit 3).
 */
function checkLock(
  vault: Vault,
  key: string,
  stored: StoredObject,
  manifest: Manifest,
  expired: boolean,
  problems: string[],
  checked: string[],
): void {
  if (vault.kind !== 's3' || expired) return;
  const mode = manifest.retention.lockMode ?? vault.objectLockMode;
  if (mode === 'none') {
    checked.push(`${key}: written without Object Lock (lock mode "none")`);
    return;
  }
  const until = new Date(manifest.retention.lockUntil);
  const problem = lockProblem(stored.lock, mode, until);
  if (problem)
    problems.push(`${key}: ${problem} (the manifest records a lock until ${manifest.retention.lockUntil})`);
  else checked.push(`${key}: Object Lock ${stored.lock!.mode} until ${stored.lock!.until.toISOString()}`);
}

/**
 * The stored object against its manifest entry (size; S3 checksum or ETag, or a file's SHA-256):
 * each mismatch is added to `problems` (verify reports them all; restore's `requireStoredIntact`
 * stops at the first).
 */
async function storedObjectProblems(
  vault: Vault,
  key: string,
  artifact: Artifact,
  problems: string[],
  checked: string[],
  deep: boolean,
): Promise<StoredObject | undefined> {
  const stat = await vault.stat(key);
  if (!stat) {
    problems.push(`artifact ${key} is missing`);
    return undefined;
  }
  if (stat.bytes !== artifact.bytes.stored) {
    problems.push(`artifact ${key} has ${stat.bytes} bytes, the manifest records ${artifact.bytes.stored}`);
    return stat;
  }
  if (vault.kind === 's3') {
    const s3 = artifact.s3 ?? {};
    if (s3.checksumSha256 && stat.checksumSha256 && s3.checksumSha256 !== stat.checksumSha256)
      problems.push(
        `artifact ${key}: S3 SHA-256 checksum ${stat.checksumSha256} differs from the manifest's ${s3.checksumSha256}`,
      );
    else if (s3.etag && stat.etag && s3.etag !== stat.etag)
      problems.push(
        `artifact ${key}: S3 ETag ${stat.etag} differs from the manifest's ${s3.etag} (the object was replaced)`,
      );
    else
      checked.push(
        `${key}: size and stored S3 ${s3.checksumSha256 && stat.checksumSha256 ? 'SHA-256 checksum' : 'ETag'} match`,
      );
  } else if (deep) {
    // The deep check streams every stored byte through its SHA-256 once: a second read here would
    // only double the work (and a mismatch is reported there, by the same manifest value).
    checked.push(`${key}: size matches; its SHA-256 is checked while it is read (deep)`);
  } else {
    // A local file costs nothing to download: re-hash it.
    const problem = await rehashProblem(vault, key, artifact);
    if (problem) problems.push(problem);
    else checked.push(`${key}: size and SHA-256 match`);
  }
  return stat;
}

/** The stored bytes hashed again against the manifest's SHA-256: a problem line when they differ. */
async function rehashProblem(vault: Vault, key: string, artifact: Artifact): Promise<string | undefined> {
  const digest = await vault.sha256(key);
  return digest === artifact.sha256.stored
    ? undefined
    : `artifact ${key}: SHA-256 ${digest} differs from the manifest's ${artifact.sha256.stored}`;
}

async function checkChain(
  vault: Vault,
  entry: CatalogEntry,
  manifest: Manifest,
  now: Date,
  problems: string[],
  checked: string[],
): Promise<void> {
  const previous = manifest.previous;
  if (!previous) {
    checked.push('hash chain: first backup of this database');
    return;
  }
  const key = `${folderOf(manifest, previous.backupId)}/${MANIFEST_NAME}`;
  const bytes = await vault.readBytes(key);
  if (!bytes && (await exportedBackupId(vault)) === manifest.backupId) {
    checked.push(
      `hash chain: previous backup ${previous.backupId} (manifest SHA-256 ${previous.sha256}) is not checkable in an offline export`,
    );
    return;
  }
  if (!bytes) {
    if (new Date(previous.lockUntil).getTime() <= now.getTime())
      checked.push(`hash chain: previous backup ${previous.backupId} has expired (${previous.lockUntil})`);
    else
      problems.push(
        `hash chain: previous backup ${previous.backupId} is gone although it was to be kept until ${previous.lockUntil} (deleted?)`,
      );
    return;
  }
  const digest = sha256(bytes);
  const parsed = parseManifest(bytes);
  if (digest !== previous.sha256)
    problems.push(
      `hash chain: the manifest of previous backup ${previous.backupId} was altered (SHA-256 ${digest}, expected ${previous.sha256})`,
    );
  else if (!('manifest' in parsed))
    // Unchanged, but it never was a backup: the link is to something that is not one.
    problems.push(
      `hash chain: previous backup ${previous.backupId} is not a backup: its manifest is invalid (${parsed.problems.join('; ')})`,
    );
  else if (parsed.manifest.backupId !== previous.backupId || previous.backupId >= manifest.backupId)
    problems.push(
      `hash chain: previous link ${previous.backupId} is not an earlier backup of this chain (its manifest is for ${parsed.manifest.backupId})`,
    );
  else checked.push(`hash chain: previous backup ${previous.backupId} intact`);
}

/** A sink that feeds optional child processes (they may stop reading early) and discards the rest. */
function fanout(children: ToolProcess[], onChunk?: (chunk: Buffer) => void): Writable {
  const open = new Set(children.filter((c) => c.stdin));
  for (const c of open) {
    c.stdin!.on('error', () => open.delete(c));
    c.stdin!.on('close', () => open.delete(c));
  }
  return new Writable({
    write(chunk: Buffer, _e, cb) {
      onChunk?.(chunk);
      const waits = [...open].filter((c) => !c.stdin!.write(chunk));
      if (waits.length === 0) {
        cb();
        return;
      }
      let pending = waits.length;
      const done = () => {
        if (--pending === 0) cb();
      };
      for (const c of waits) {
        const s = c.stdin!;
        const finish = () => {
          s.off('drain', finish);
          s.off('close', finish);
          done();
        };
        s.on('drain', finish);
        s.on('close', finish);
      }
    },
    final(cb) {
      for (const c of open) c.stdin!.end();
      cb();
    },
  });
}

async function deepCheck(
  options: VerifyOptions,
  manifest: Manifest,
  key: string,
  artifact: Artifact,
  problems: string[],
  checked: string[],
): Promise<void> {
  const children: ToolProcess[] = [];
  let list = '';
  let rows: MysqldumpRowCounter | undefined;
  let copyRows: CopyRowCounter | undefined;
  let sections: SectionCounter | undefined;
  let sectionError: unknown;
  if (artifact.format === 'tenant-pg-copy' || artifact.format === 'tenant-mysql-insert')
    sections = new SectionCounter(manifest.engine);
  if (artifact.format === 'pg_dump-custom') {
    const lister = spawnTool('pg_restore', ['--list'], { stdin: true, largeStdin: true });
    lister.stdout.setEncoding('utf8');
    lister.stdout.on('data', (t: string) => (list += t));
    // A full read of the archive (every data block) as SQL, whose COPY rows are counted.
    const reader = spawnTool('pg_restore', ['--data-only', '--file=-'], { stdin: true, largeStdin: true });
    copyRows = new CopyRowCounter();
    const counting = copyRows;
    reader.stdout.on('data', (c: Buffer) => {
      counting.push(c);
    });
    children.push(lister, reader);
  } else if (artifact.format === 'mysqldump-sql') {
    rows = new MysqldumpRowCounter();
  }
  // The one reader's stages: a size or SHA-256 mismatch of the stored bytes or of the plaintext, or
  // a frame that does not authenticate, fails the stream (and stops the tools).
  const stages = plaintextStages({ key, artifact, keys: options.deep!, onProgress: options.onProgress });
  try {
    await pipeline(
      await options.vault.read(key, options.signal),
      stages.stored,
      stages.decrypt,
      stages.decompress,
      stages.plain,
      fanout(children, (c) => {
        rows?.push(c);
        if (sections && sectionError === undefined) {
          try {
            sections.push(c);
          } catch (error) {
            sectionError = error;
          }
        }
      }),
      { signal: options.signal },
    );
  } catch (error) {
    for (const c of children) c.kill();
    if (!(error instanceof IntegrityError) && options.vault.kind === 'file') {
      // A damaged frame stops the stream before its stored SHA-256 is complete: the deep check
      // skipped the separate hash of a local file, so say here whether the stored bytes changed.
      // (A file that cannot be read again is reported by the error below alone.)
      const problem = await rehashProblem(options.vault, key, artifact).catch(() => undefined);
      if (problem) problems.push(problem);
    }
    problems.push(
      error instanceof IntegrityError
        ? error.message
        : `artifact ${key}: cannot be decrypted and decompressed: ${messageOf(error)}`,
    );
    return;
  }
  checked.push(
    `${key}: authenticated, decrypted (${artifact.bytes.stored} → ${artifact.bytes.raw} bytes), plaintext SHA-256 matches`,
  );
  for (const child of children) {
    try {
      await child.finished;
    } catch (error) {
      problems.push(`artifact ${key}: pg_restore rejects the dump: ${messageOf(error)}`);
    }
  }
  if (artifact.format === 'pg_dump-custom') {
    const missing = artifact.tables.filter((t) => !list.includes(` TABLE DATA ${t.schema} ${t.name} `));
    if (missing.length)
      problems.push(
        `artifact ${key}: pg_restore --list lacks the data of ${missing.map((t) => `${t.schema}.${t.name}`).join(', ')}`,
      );
    else
      checked.push(
        `${key}: pg_restore reads the whole archive; its list has the data of all ${artifact.tables.length} tables`,
      );
    // Recounted from the archive's COPY data, as MySQL's are from its INSERTs.
    const wrong = artifact.tables.filter(
      (t) => (copyRows?.rows.get(`${t.schema}.${t.name}`) ?? 0) !== t.rows,
    );
    if (wrong.length)
      problems.push(
        `artifact ${key}: row counts differ from the manifest for ${wrong.map((t) => `${t.schema}.${t.name} (${copyRows?.rows.get(`${t.schema}.${t.name}`) ?? 0} ≠ ${t.rows})`).join(', ')}`,
      );
    else checked.push(`${key}: row counts of all ${artifact.tables.length} tables match the manifest`);
  }
  if (sections) {
    let counted: readonly { schema: string; name: string; rows: number }[] = [];
    if (sectionError !== undefined) problems.push(`artifact ${key}: ${messageOf(sectionError)}`);
    else
      try {
        counted = sections.finish();
      } catch (error) {
        problems.push(`artifact ${key}: ${messageOf(error)}`);
      }
    const wrong = artifact.tables.filter(
      (t) => (counted.find((x) => x.schema === t.schema && x.name === t.name)?.rows ?? -1) !== t.rows,
    );
    if (sectionError === undefined && counted.length) {
      if (wrong.length || counted.length !== artifact.tables.length)
        problems.push(
          `artifact ${key}: row counts differ from the manifest for ${wrong.map((t) => `${t.schema}.${t.name}`).join(', ') || 'the table list'}`,
        );
      else
        checked.push(
          `${key}: tenant export complete; row counts of all ${artifact.tables.length} tables match the manifest`,
        );
    }
  }
  if (rows) {
    if (!rows.completed)
      problems.push(`artifact ${key}: the dump lacks mysqldump's "-- Dump completed" line`);
    const wrong = artifact.tables.filter((t) => (rows.rows.get(t.name) ?? 0) !== t.rows);
    if (wrong.length)
      problems.push(
        `artifact ${key}: row counts differ from the manifest for ${wrong.map((t) => `${t.name} (${rows.rows.get(t.name) ?? 0} ≠ ${t.rows})`).join(', ')}`,
      );
    else checked.push(`${key}: row counts of all ${artifact.tables.length} tables match the manifest`);
  }
}

/**
 * Counts the rows of each table in `pg_restore --data-only` SQL output: the lines between
 * `COPY schema.name (…) FROM stdin;` and `\.` (COPY text format escapes newlines inside values,
 * so one line is one row). Works on bytes; only the COPY header lines are decoded.
 */
export class CopyRowCounter {
  private readonly counted = new Map<string, number>();
  private table: string | undefined;
  /** Rows of `table` not yet added to `counted`. */
  private tableRows = 0;
  /** The unfinished last line of the chunks so far: its bytes (inside a COPY block only its first two). */
  private pending: Buffer[] = [];
  private pendingLength = 0;

  /** Rows per `schema.name` (a table whose COPY block is still open counts the rows so far). */
  get rows(): ReadonlyMap<string, number> {
    if (this.table !== undefined && this.tableRows) {
      this.counted.set(this.table, (this.counted.get(this.table) ?? 0) + this.tableRows);
      this.tableRows = 0;
    }
    return this.counted;
  }

  // Per line only an indexOf and, inside a COPY block, a length check: no Buffer per line and no
  // copy of the chunk (the restore test and verify --deep read gigabytes of rows through here).
  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(0x0a, start);
      if (nl === -1) break;
      this.endLine(chunk, start, nl);
      start = nl + 1;
    }
    if (start < chunk.length) {
      if (this.table === undefined || this.pendingLength < 2) this.pending.push(chunk.subarray(start));
      this.pendingLength += chunk.length - start;
    }
  }

  private endLine(chunk: Buffer, start: number, end: number): void {
    const length = this.pendingLength + end - start;
    if (this.table !== undefined && length !== 2) {
      this.tableRows++;
      this.pending = [];
      this.pendingLength = 0;
      return;
    }
    const line = this.pendingLength
      ? Buffer.concat([...this.pending, chunk.subarray(start, end)])
      : chunk.subarray(start, end);
    this.pending = [];
    this.pendingLength = 0;
    this.line(line.subarray(0, length));
  }

  private line(line: Buffer): void {
    if (this.table !== undefined) {
      if (line.length === 2 && line[0] === 0x5c && line[1] === 0x2e) {
        this.counted.set(this.table, (this.counted.get(this.table) ?? 0) + this.tableRows);
        this.tableRows = 0;
        this.table = undefined;
      } else this.tableRows++;
      return;
    }
    if (line.length < 5 || line.subarray(0, 5).toString('latin1') !== 'COPY ') return;
    const m = /^COPY ((?:"(?:[^"]|"")*"|[^".\s]+))\.((?:"(?:[^"]|"")*"|[^".\s(]+)) .*FROM stdin;$/.exec(
      line.toString('utf8'),
    );
    if (!m) return;
    const unquote = (n: string) => (n.startsWith('"') ? n.slice(1, -1).replace(/""/g, '"') : n);
    this.table = `${unquote(m[1]!)}.${unquote(m[2]!)}`;
    this.tableRows = 0;
    this.counted.set(this.table, this.counted.get(this.table) ?? 0);
  }
}
