/**
 * Reading configuration snapshots back: the state of every name at a point in time (`list`,
 * `show`, `diff`) and writing a chosen one back as a new version (`restore`). Values are decrypted
 * only for `show --reveal` and `restore`, and checked against the manifest's SHA-256.
 */
import { createHash } from 'node:crypto';
import { decryptStream, type Keys } from '../vault/crypto';
import { IntegrityError, UsageError, messageOf } from '../util/errors';
import { readAll, type Vault } from '../vault';
import {
  readParameter,
  readSecret,
  writeParameter,
  writeSecret,
  type ConfigClients,
  type ReadResult,
} from './aws';
import {
  CONFIG_FORMAT,
  CONFIG_KINDS,
  CONFIG_PREFIX,
  snapshotContext,
  snapshotFolder,
  type ConfigKind,
  type ConfigSnapshotManifest,
  type StoredSnapshot,
} from './types';

/**
 * A point in time from the command line: an ISO-8601 date-time with a zone (`2026-03-01T14:30:00Z`,
 * `…-03:00`) or a date (`2026-03-01`, meaning the end of that day in UTC: the state that day ended with).
 */
export function parseAsOf(value: string, flag: string): Date {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const withZone = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/.test(value);
  const t = dateOnly ? Date.parse(`${value}T23:59:59.999Z`) : withZone ? Date.parse(value) : NaN;
  if (Number.isNaN(t) || (dateOnly && new Date(t).toISOString().slice(0, 10) !== value))
    throw new UsageError(
      `${flag}: expected a date (2026-03-01, the end of that day in UTC) or a date-time with a zone (2026-03-01T14:30:00Z), got "${value}"`,
    );
  return new Date(t);
}

function parseManifest(key: string, bytes: Buffer): ConfigSnapshotManifest {
  let m: Partial<Record<keyof ConfigSnapshotManifest, unknown>>;
  try {
    m = JSON.parse(bytes.toString('utf8')) as typeof m;
  } catch (error) {
    throw new IntegrityError(`${key}: not a JSON manifest: ${messageOf(error)}`);
  }
  if (
    m.format !== CONFIG_FORMAT ||
    !(CONFIG_KINDS as readonly unknown[]).includes(m.kind) ||
    typeof m.name !== 'string' ||
    typeof m.at !== 'string'
  )
    throw new IntegrityError(
      `${key}: not a configuration snapshot manifest (format ${JSON.stringify(m.format)})`,
    );
  return m as unknown as ConfigSnapshotManifest;
}

/** Every snapshot manifest (of one name when given), oldest change first. */
export async function loadSnapshots(
  vault: Vault,
  filter: { readonly name?: string | undefined; readonly kind?: ConfigKind | undefined } = {},
): Promise<StoredSnapshot[]> {
  const kinds = filter.kind ? [filter.kind] : CONFIG_KINDS;
  const prefixes = filter.name
    ? kinds.map((k) => snapshotFolder(k, filter.name!))
    : filter.kind
      ? [`${CONFIG_PREFIX}/${filter.kind}/`]
      : [`${CONFIG_PREFIX}/`];
  const snapshots: StoredSnapshot[] = [];
  for (const prefix of prefixes) {
    for (const key of await vault.list(prefix)) {
      if (!key.endsWith('.json')) continue;
      const bytes = await vault.readBytes(key);
      if (!bytes) continue;
      snapshots.push({ key, manifest: parseManifest(key, bytes) });
    }
  }
  return snapshots.sort(
    (a, b) =>
      a.manifest.at.localeCompare(b.manifest.at) ||
      a.manifest.takenAt.localeCompare(b.manifest.takenAt) ||
      a.key.localeCompare(b.key),
  );
}

const identity = (m: ConfigSnapshotManifest) => `${m.kind}:${m.name}`;

/** The latest snapshot of each name whose change happened at or before `asOf`. */
export function stateAsOf(snapshots: readonly StoredSnapshot[], asOf: Date): Map<string, StoredSnapshot> {
  const state = new Map<string, StoredSnapshot>();
  const limit = asOf.getTime();
  for (const s of snapshots) if (Date.parse(s.manifest.at) <= limit) state.set(identity(s.manifest), s);
  return state;
}

/** The one snapshot of `name` in effect at `asOf`, or a usage error saying why there is none. */
export async function snapshotAsOf(
  vault: Vault,
  name: string,
  asOf: Date,
  kind?: ConfigKind,
): Promise<StoredSnapshot> {
  const all = await loadSnapshots(vault, { name, kind });
  if (!all.length)
    throw new UsageError(
      `--name: no configuration snapshot of "${name}" in ${vault.url} (see "cofre config list")`,
    );
  const kinds = new Set(all.map((s) => s.manifest.kind));
  if (kinds.size > 1)
    throw new UsageError(
      `--name: "${name}" is both a secret and a parameter; add --kind secret or --kind parameter`,
    );
  const found = stateAsOf(all, asOf).get(`${all[0]!.manifest.kind}:${name}`);
  if (!found)
    throw new UsageError(
      `--as-of: the first snapshot of "${name}" is from ${all[0]!.manifest.at}, after ${asOf.toISOString()}`,
    );
  return found;
}

/** Decrypts a snapshot's value and checks it against the manifest (integrity error otherwise). */
export async function readSnapshotValue(vault: Vault, keys: Keys, snapshot: StoredSnapshot): Promise<Buffer> {
  const m = snapshot.manifest;
  if (m.state !== 'present' || !m.object || !m.versionId || !m.sha256)
    throw new UsageError(
      `--as-of: "${m.name}" was deleted at that time (snapshot of ${m.at}); choose an earlier date`,
    );
  let value: Buffer;
  try {
    value = await readAll(
      (await vault.read(m.object)).pipe(decryptStream(keys, snapshotContext(m.kind, m.name, m.versionId))),
    );
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new IntegrityError(
      `${m.object}: cannot be decrypted as the value of ${m.name} version ${m.versionId}: ${messageOf(error)}`,
    );
  }
  const actual = createHash('sha256').update(value).digest('hex');
  if (actual !== m.sha256)
    throw new IntegrityError(`${m.object}: SHA-256 ${actual} differs from the manifest's ${m.sha256}`);
  return value;
}

/** One line of `cofre config list` / `diff`: metadata and hash, never the value. */
export interface SnapshotSummary {
  readonly kind: ConfigKind;
  readonly name: string;
  readonly state: 'present' | 'deleted';
  readonly versionId?: string | undefined;
  readonly valueType?: string | undefined;
  readonly at: string;
  readonly takenAt: string;
  readonly trigger: string;
  readonly eventName?: string | undefined;
  readonly changedBy?: string | undefined;
  readonly sha256?: string | undefined;
  readonly bytes?: number | undefined;
  readonly lockUntil?: string | undefined;
  readonly note?: string | undefined;
  readonly key: string;
}

export function summary(s: StoredSnapshot): SnapshotSummary {
  const m = s.manifest;
  return {
    kind: m.kind,
    name: m.name,
    state: m.state,
    versionId: m.versionId,
    valueType: m.valueType,
    at: m.at,
    takenAt: m.takenAt,
    trigger: m.trigger,
    eventName: m.eventName,
    changedBy: m.changedBy,
    sha256: m.sha256,
    bytes: m.bytes,
    lockUntil: m.lockUntil,
    note: m.note,
    key: s.key,
  };
}

/**
 * `cofre config list`: with a name, every snapshot of it up to `asOf` (its history); without, the
 * state of every name at `asOf`.
 */
export async function listSnapshots(
  vault: Vault,
  options: {
    readonly name?: string | undefined;
    readonly kind?: ConfigKind | undefined;
    readonly asOf: Date;
  },
): Promise<SnapshotSummary[]> {
  const all = await loadSnapshots(vault, options);
  if (options.name)
    return all.filter((s) => Date.parse(s.manifest.at) <= options.asOf.getTime()).map(summary);
  return [...stateAsOf(all, options.asOf).values()].map(summary).sort((a, b) => a.name.localeCompare(b.name));
}

/** One name that differs between two points in time. */
export interface ConfigDifference {
  readonly kind: ConfigKind;
  readonly name: string;
  readonly change: 'added' | 'removed' | 'changed';
  readonly from?:
    | {
        readonly state: string;
        readonly versionId?: string | undefined;
        readonly sha256?: string | undefined;
      }
    | undefined;
  readonly to?:
    | {
        readonly state: string;
        readonly versionId?: string | undefined;
        readonly sha256?: string | undefined;
      }
    | undefined;
}

/** `cofre config diff`: names and hashes of what changed between `from` and `to`; no values. */
export async function diffSnapshots(vault: Vault, from: Date, to: Date): Promise<ConfigDifference[]> {
  const all = await loadSnapshots(vault);
  const a = stateAsOf(all, from);
  const b = stateAsOf(all, to);
  const present = (s: StoredSnapshot | undefined) => s !== undefined && s.manifest.state === 'present';
  const side = (s: StoredSnapshot | undefined) =>
    s ? { state: s.manifest.state, versionId: s.manifest.versionId, sha256: s.manifest.sha256 } : undefined;
  const out: ConfigDifference[] = [];
  for (const id of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const x = a.get(id);
    const y = b.get(id);
    const m = (y ?? x)!.manifest;
    let change: ConfigDifference['change'] | undefined;
    if (!present(x) && present(y)) change = 'added';
    else if (present(x) && !present(y)) change = 'removed';
    else if (present(x) && present(y) && x!.manifest.sha256 !== y!.manifest.sha256) change = 'changed';
    if (change) out.push({ kind: m.kind, name: m.name, change, from: side(x), to: side(y) });
  }
  return out;
}

/** What `cofre config restore` did or would do. */
export interface ConfigRestoreReport {
  readonly kind: ConfigKind;
  readonly name: string;
  readonly asOf: string;
  /** The snapshot written back. */
  readonly snapshot: { readonly at: string; readonly versionId: string; readonly sha256: string };
  /** What is there now (before the restore). */
  readonly current: {
    readonly state: string;
    readonly versionId?: string | undefined;
    readonly sha256?: string | undefined;
  };
  readonly dryRun: boolean;
  /** Nothing written: the current value already equals the snapshot. */
  readonly unchanged: boolean;
  /** The new version the restore wrote (not on a dry run or when unchanged). */
  readonly newVersionId?: string | undefined;
  readonly steps: readonly string[];
}

async function readCurrent(clients: ConfigClients, m: ConfigSnapshotManifest): Promise<ReadResult> {
  return m.kind === 'secret' ? readSecret(clients, m.name, m.name) : readParameter(clients, m.name);
}

const hashOf = (r: ReadResult) =>
  r.state === 'present' ? createHash('sha256').update(r.value).digest('hex') : undefined;

/**
 * Writes the value `name` had at `asOf` back as a **new** version (never deletes: a deleted secret's
 * deletion is cancelled, or the secret created again). Reads it back and fails with an integrity
 * error unless it equals the snapshot. `dryRun` only says what would happen.
 */
export async function restoreSnapshot(options: {
  readonly vault: Vault;
  readonly keys: Keys;
  readonly clients: ConfigClients;
  readonly name: string;
  readonly kind?: ConfigKind | undefined;
  readonly asOf: Date;
  readonly dryRun: boolean;
}): Promise<ConfigRestoreReport> {
  const snapshot = await snapshotAsOf(options.vault, options.name, options.asOf, options.kind);
  const m = snapshot.manifest;
  const value = await readSnapshotValue(options.vault, options.keys, snapshot);
  const current = await readCurrent(options.clients, m);
  const currentSha = hashOf(current);
  const base = {
    kind: m.kind,
    name: m.name,
    asOf: options.asOf.toISOString(),
    snapshot: { at: m.at, versionId: m.versionId!, sha256: m.sha256! },
    current: {
      state: current.state,
      ...(current.state === 'present' ? { versionId: current.versionId, sha256: currentSha } : {}),
    },
    dryRun: options.dryRun,
  };
  const unchanged =
    current.state === 'present' && currentSha === m.sha256 && current.valueType === m.valueType;
  if (options.dryRun || unchanged) return { ...base, unchanged, steps: [] };
  const written =
    m.kind === 'secret'
      ? await writeSecret(options.clients, m.name, m.valueType ?? 'string', value)
      : await writeParameter(options.clients, m.name, m.valueType ?? 'String', value, m.parameterKeyId);
  const after = await readCurrent(options.clients, m);
  if (hashOf(after) !== m.sha256)
    throw new IntegrityError(
      `${m.kind} ${m.name}: after the restore its value has SHA-256 ${hashOf(after) ?? '(none)'}, expected ${m.sha256}`,
    );
  return { ...base, unchanged: false, newVersionId: written.versionId, steps: written.steps };
}
