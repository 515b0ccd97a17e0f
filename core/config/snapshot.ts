/**
 * Taking configuration snapshots: one per change event (the snapshot Lambda) and one of everything
 * configured each week. A value is encrypted with the AWS Encryption SDK under the vault key and
 * written with `vault.write` (tags, Object Lock by retention), then its manifest; the value itself
 * is never logged, put in an event or in a history record, only its SHA-256 (in the manifest).
 */
import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { encryptStream, type Keys } from '../vault/crypto';
import { messageOf } from '../util/errors';
import type { HistoryStore } from '../history/store';
import { CLASS_TAG, GENERAL_CLASS, TIER_TAG } from '../policy/retention';
import { readAll, type Vault } from '../vault';
import {
  listParameters,
  listSecrets,
  readParameter,
  readSecret,
  type ConfigClients,
  type ReadResult,
} from './aws';
import type { ConfigChange } from './events';
import { isTargetParameter, isTargetSecret, secretArnParts, type ConfigTargets } from './targets';
import {
  CONFIG_FORMAT,
  CONFIG_TIER,
  configLockUntil,
  snapshotBase,
  snapshotContext,
  type ConfigRetention,
  type ConfigSnapshotManifest,
  type SnapshotTrigger,
} from './types';

/** A log line without values: the snapshot code only ever passes names, versions and hashes. */
export type ConfigLog = (
  level: 'info' | 'warn' | 'error',
  message: string,
  fields?: Record<string, unknown>,
) => void;

/** What taking a snapshot needs. */
export interface SnapshotDeps {
  readonly vault: Vault;
  /** The vault key (KMS keyring in AWS). */
  readonly keys: Keys;
  readonly clients: ConfigClients;
  readonly targets: ConfigTargets;
  readonly retention: ConfigRetention;
  readonly now?: () => Date;
  readonly log?: ConfigLog;
}

/** What one event led to. */
export type SnapshotOutcome =
  | { readonly outcome: 'ignored'; readonly reason: string }
  | { readonly outcome: 'duplicate'; readonly key: string }
  | {
      readonly outcome: 'written';
      readonly key: string;
      readonly manifest: ConfigSnapshotManifest;
    };

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** A small value as one AWS Encryption SDK message bound to `context`. */
async function encrypt(keys: Keys, value: Buffer, context: Record<string, string>): Promise<Buffer> {
  const sealed = Readable.from([value]).pipe(encryptStream(keys, context));
  return readAll(sealed);
}

/** The name of a secret from what the event or the read gave. */
function secretName(id: string, name: string | undefined): string {
  return name ?? secretArnParts(id)?.name ?? id;
}

/**
 * Writes one snapshot of `read` (or of its absence) taken for `trigger`. Idempotent per event: the
 * keys derive from the event id, and an existing manifest means it was already written.
 */
export async function writeSnapshot(
  deps: SnapshotDeps,
  read: ReadResult,
  source: {
    readonly trigger: SnapshotTrigger;
    readonly at: string;
    readonly eventName?: string | undefined;
    readonly eventId?: string | undefined;
    readonly changedBy?: string | undefined;
    readonly note?: string | undefined;
  },
): Promise<SnapshotOutcome> {
  const takenAt = (deps.now ?? (() => new Date()))();
  const dataClass = deps.targets.dataClass ?? GENERAL_CLASS;
  const lockUntil = configLockUntil(takenAt, dataClass, deps.retention);
  const id = createHash('sha256')
    .update(`${source.eventId ?? randomUUID()}\0${read.kind}\0${read.name}`)
    .digest('hex')
    .slice(0, 16);
  const base = snapshotBase(read.kind, read.name, source.at, id);
  const manifestKey = `${base}.json`;
  // A redelivered event maps to the same keys. Without s3:ListBucket (the Lambda has none) S3 answers
  // a missing key with 403, so a failed check only means "write it": a second write of the same key
  // is a new version of identical content, invisible to list/show/restore.
  if (source.eventId && (await deps.vault.stat(manifestKey).catch(() => undefined)))
    return { outcome: 'duplicate', key: manifestKey };
  const tags = { [TIER_TAG]: CONFIG_TIER, [CLASS_TAG]: dataClass };
  let valueFields: Partial<ConfigSnapshotManifest> = {};
  if (read.state === 'present') {
    const objectKey = `${base}.enc`;
    const sealed = await encrypt(
      deps.keys,
      read.value,
      snapshotContext(read.kind, read.name, read.versionId),
    );
    await deps.vault.write(objectKey, Readable.from([sealed]), {
      tags,
      lockUntil,
      contentType: 'application/octet-stream',
    });
    valueFields = {
      versionId: read.versionId,
      valueType: read.valueType,
      parameterKeyId: read.parameterKeyId,
      sha256: sha256(read.value),
      bytes: read.value.length,
      object: objectKey,
      keyIds: deps.keys.keyIds,
    };
  }
  const manifest: ConfigSnapshotManifest = {
    format: CONFIG_FORMAT,
    kind: read.kind,
    name: read.name,
    ...(read.arn ? { arn: read.arn } : {}),
    state: read.state,
    ...valueFields,
    at: source.at,
    takenAt: takenAt.toISOString(),
    trigger: source.trigger,
    ...(source.eventName ? { eventName: source.eventName } : {}),
    ...(source.eventId ? { eventId: source.eventId } : {}),
    ...(source.changedBy ? { changedBy: source.changedBy } : {}),
    dataClass,
    lockUntil: deps.vault.objectLockMode === 'none' ? undefined : lockUntil.toISOString(),
    ...(read.state === 'deleted'
      ? { note: source.note ?? read.reason }
      : source.note
        ? { note: source.note }
        : {}),
  };
  const json = JSON.parse(JSON.stringify(manifest)) as ConfigSnapshotManifest;
  await deps.vault.write(manifestKey, Readable.from([Buffer.from(`${JSON.stringify(json, null, 2)}\n`)]), {
    tags,
    lockUntil,
    contentType: 'application/json',
  });
  return { outcome: 'written', key: manifestKey, manifest: json };
}

/** Fields of a snapshot safe to log (no value). */
function logFields(outcome: SnapshotOutcome): Record<string, unknown> {
  if (outcome.outcome !== 'written') return { ...outcome };
  const m = outcome.manifest;
  return {
    key: outcome.key,
    kind: m.kind,
    name: m.name,
    state: m.state,
    versionId: m.versionId,
    sha256: m.sha256,
  };
}

/**
 * Snapshots what one change event reports. Ignores anything outside the configured set (without
 * reading it). A deletion, or an event for a secret deleted since, is recorded as a deleted-state
 * snapshot rather than failing.
 */
export async function snapshotChange(deps: SnapshotDeps, change: ConfigChange): Promise<SnapshotOutcome> {
  const log = deps.log ?? (() => undefined);
  const inScope =
    change.kind === 'secret'
      ? isTargetSecret(deps.targets, change.id)
      : isTargetParameter(deps.targets, change.id);
  if (!inScope) {
    const outcome = {
      outcome: 'ignored',
      reason: `${change.kind} ${change.id} is not in the configured set`,
    } as const;
    log('info', `ignored ${change.eventName}: not a configured ${change.kind}`, { id: change.id });
    return outcome;
  }
  const name = change.kind === 'secret' ? secretName(change.id, change.name) : change.id;
  let read: ReadResult;
  if (change.deleted) {
    read = {
      state: 'deleted',
      kind: change.kind,
      name,
      ...(change.id.startsWith('arn:') ? { arn: change.id } : {}),
      reason: `${change.eventName}: deleted`,
    };
  } else {
    read =
      change.kind === 'secret'
        ? await readSecret(deps.clients, change.id, name, change.versionId)
        : await readParameter(deps.clients, change.id);
  }
  const note =
    read.state === 'deleted' && !change.deleted
      ? `${change.eventName} event arrived after the ${change.kind} was deleted (${read.reason}); nothing to read`
      : undefined;
  const outcome = await writeSnapshot(deps, read, {
    trigger: 'event',
    at: change.at,
    eventName: change.eventName,
    eventId: change.eventId,
    changedBy: change.changedBy,
    note,
  });
  log(
    note ? 'warn' : 'info',
    `${change.eventName} ${change.kind} ${name}: ${outcome.outcome}`,
    logFields(outcome),
  );
  return outcome;
}

/** The result of a weekly full snapshot. */
export interface FullSnapshotReport {
  readonly id: string;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly secrets: number;
  readonly parameters: number;
  readonly failures: readonly { readonly kind: string; readonly name: string; readonly error: string }[];
}

/**
 * Snapshots every configured secret and parameter (catching changes whose events were lost) and
 * records a `config` history record: `succeeded` only when every one was written.
 */
export async function snapshotAll(
  deps: SnapshotDeps & {
    readonly history?: Pick<HistoryStore, 'put'> | undefined;
    readonly requestedBy?: string;
  },
): Promise<FullSnapshotReport> {
  const log = deps.log ?? (() => undefined);
  const now = deps.now ?? (() => new Date());
  const startedAt = now().toISOString();
  const id = `config-${startedAt.replace(/[-:.]/g, '')}-${randomUUID().slice(0, 8)}`;
  const base = { id, kind: 'config' as const, startedAt, requestedBy: deps.requestedBy ?? 'schedule' };
  await deps.history?.put({ ...base, status: 'running' });
  const failures: { kind: string; name: string; error: string }[] = [];
  let secrets = 0;
  let parameters = 0;
  const take = async (kind: 'secret' | 'parameter', name: string, read: () => Promise<ReadResult>) => {
    try {
      const outcome = await writeSnapshot(deps, await read(), {
        trigger: 'weekly',
        at: now().toISOString(),
        eventId: `${id}:${kind}:${name}`,
      });
      if (kind === 'secret') secrets++;
      else parameters++;
      log('info', `weekly ${kind} ${name}: ${outcome.outcome}`, logFields(outcome));
    } catch (error) {
      failures.push({ kind, name, error: messageOf(error) });
      log('error', `weekly ${kind} ${name}: failed`, { error: messageOf(error) });
    }
  };
  try {
    // Named secrets are read directly; only name prefixes (`…*`) need ListSecrets.
    const seen = new Set<string>();
    for (const entry of deps.targets.secrets.filter((e) => !e.endsWith('*'))) {
      const name = secretArnParts(entry)?.name ?? entry;
      await take('secret', name, async () => {
        const read = await readSecret(deps.clients, entry, name);
        if (read.arn) seen.add(read.arn);
        return read;
      });
    }
    if (deps.targets.secrets.some((e) => e.endsWith('*'))) {
      for (const s of await listSecrets(deps.clients))
        if (!seen.has(s.arn) && isTargetSecret(deps.targets, s.arn))
          await take('secret', s.name, () => readSecret(deps.clients, s.arn, s.name));
    }
    const names = new Set<string>();
    for (const path of deps.targets.parameterPaths)
      for (const n of await listParameters(deps.clients, path)) names.add(n);
    for (const name of [...names].sort())
      await take('parameter', name, () => readParameter(deps.clients, name));
  } catch (error) {
    failures.push({ kind: 'listing', name: '*', error: messageOf(error) });
  }
  const finishedAt = now().toISOString();
  const message = failures.length
    ? `${failures.length} failed: ${failures.map((f) => `${f.kind} ${f.name}: ${f.error}`).join('; ')}`
    : `${secrets} secrets and ${parameters} parameters snapshotted`;
  await deps.history?.put({
    ...base,
    status: failures.length ? 'failed' : 'succeeded',
    finishedAt,
    location: `${deps.vault.url}/config/`,
    message,
  });
  return { id, startedAt, finishedAt, secrets, parameters, failures };
}
