/**
 * Configuration snapshots: what is protected (Secrets Manager secrets, SSM parameters), how one
 * snapshot is described (its manifest) and where it lives in the vault (`config/`). Pure: no AWS SDK.
 *
 * A snapshot is two objects: `<base>.enc`, the value encrypted with the AWS Encryption SDK under
 * the vault key (encryption context: kind, name, version), and `<base>.json`, its manifest, which
 * never holds the value, only its SHA-256. A deletion is a manifest alone (`state: "deleted"`).
 */
import { GENERAL_CLASS, lifecycleExpiry, daysCoveringYears } from '../policy/retention';

export const CONFIG_KINDS = ['secret', 'parameter'] as const;
export type ConfigKind = (typeof CONFIG_KINDS)[number];

/** The vault prefix of every configuration snapshot. */
export const CONFIG_PREFIX = 'config';
/** The `cofre:tier` tag of configuration snapshots (their lifecycle rule filters on it). */
export const CONFIG_TIER = 'config';
export const CONFIG_FORMAT = 'cofre-config-snapshot/1';

/** Why a snapshot was taken. */
export type SnapshotTrigger = 'event' | 'weekly';

/** The manifest of one snapshot (`config/<kind>/<name>/<time>_<id>.json`). Never holds the value. */
export interface ConfigSnapshotManifest {
  readonly format: typeof CONFIG_FORMAT;
  readonly kind: ConfigKind;
  /** Secret name or parameter name. */
  readonly name: string;
  /** Secret ARN (secrets only). */
  readonly arn?: string | undefined;
  /** `present`: the value is in `object`. `deleted`: the secret or parameter did not exist (any more). */
  readonly state: 'present' | 'deleted';
  /** Secrets Manager VersionId, or the parameter's Version (as text). */
  readonly versionId?: string | undefined;
  /** Secrets: `string` or `binary`. Parameters: `String`, `StringList` or `SecureString`. */
  readonly valueType?: string | undefined;
  /** KMS key of a SecureString parameter (so a restore encrypts it under the same key). */
  readonly parameterKeyId?: string | undefined;
  /** When the change happened (the event's time), or when a weekly snapshot read the value. ISO-8601 UTC. */
  readonly at: string;
  /** When the value was read and written. ISO-8601 UTC. */
  readonly takenAt: string;
  readonly trigger: SnapshotTrigger;
  /** The API call or Parameter Store operation that caused it (`PutSecretValue`, `Update`). */
  readonly eventName?: string | undefined;
  readonly eventId?: string | undefined;
  /** Who made the change, from the event (CloudTrail's userIdentity); SSM change events do not say. */
  readonly changedBy?: string | undefined;
  /** Hex SHA-256 of the plaintext value. */
  readonly sha256?: string | undefined;
  /** Plaintext bytes. */
  readonly bytes?: number | undefined;
  /** Vault key of the encrypted value. */
  readonly object?: string | undefined;
  readonly dataClass: string;
  /** Object Lock retain-until date of both objects. */
  readonly lockUntil?: string | undefined;
  /** Ids of the keys that wrap the data key (`kms:<arn>`). */
  readonly keyIds?: readonly string[] | undefined;
  /** Why a snapshot holds no value although the event said the value changed. */
  readonly note?: string | undefined;
}

/** A snapshot manifest with the vault key it was read from. */
export interface StoredSnapshot {
  readonly key: string;
  readonly manifest: ConfigSnapshotManifest;
}

/** The encryption context of a snapshot's value: a value cannot be swapped for another name's or version's. */
export function snapshotContext(kind: ConfigKind, name: string, versionId: string): Record<string, string> {
  return { 'cofre:kind': `config-${kind}`, 'cofre:name': name, 'cofre:version': versionId };
}

/** One name as one key segment (SSM names hold `/`). */
export function encodeName(name: string): string {
  return encodeURIComponent(name).replace(/\./g, '%2E');
}

/** `config/<kind>/<encoded name>/`. */
export function snapshotFolder(kind: ConfigKind, name: string): string {
  return `${CONFIG_PREFIX}/${kind}/${encodeName(name)}/`;
}

/** `config/<kind>/<name>/<compact time>_<id>` (without extension); sorts by time within a name. */
export function snapshotBase(kind: ConfigKind, name: string, at: string, id: string): string {
  const compact = at.replace(/[-:]/g, '').replace('.', '');
  return `${snapshotFolder(kind, name)}${compact}_${id}`;
}

/** Retention of configuration snapshots: days for `general`, a data class's legal years otherwise. */
export interface ConfigRetention {
  /** Days a snapshot of `general` configuration is kept (`retention.configSnapshotDays`). @default 90 */
  readonly days: number;
  /** Legal years per data class (`retention.classes`). */
  readonly classes: Readonly<Record<string, { readonly years: number }>>;
}

/** Days a configuration snapshot of `dataClass` is kept. */
export function configRetentionDays(dataClass: string, retention: ConfigRetention): number {
  if (dataClass === GENERAL_CLASS) return retention.days;
  const entry = retention.classes[dataClass];
  if (!entry)
    throw new RangeError(
      `unknown data class "${dataClass}": expected one of ${[GENERAL_CLASS, ...Object.keys(retention.classes)].map((c) => `"${c}"`).join(', ')}`,
    );
  return Math.max(retention.days, daysCoveringYears(entry.years));
}

/** The Object Lock retain-until date of a snapshot taken at `takenAt`. */
export function configLockUntil(takenAt: Date, dataClass: string, retention: ConfigRetention): Date {
  return lifecycleExpiry(takenAt, configRetentionDays(dataClass, retention));
}
