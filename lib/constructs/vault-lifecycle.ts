import { Duration } from 'aws-cdk-lib';
import { StorageClass, type LifecycleRule } from 'aws-cdk-lib/aws-s3';
// The one sanctioned import of runtime code: the lifecycle rules and the Object Lock dates that
// writers set both come from retentionFor(), so they cannot disagree.
import {
  CLASS_TAG,
  GENERAL_CLASS,
  RETENTION_KINDS,
  retentionFor,
  TIER_TAG,
  type ArchiveStorageClass,
  type Retention,
  type RetentionKind,
  type RetentionSettings,
} from '../../core/policy/retention';

/** One generated retention rule, before it becomes an S3 lifecycle rule. */
export interface RetentionRuleSpec {
  /** Lifecycle rule id: `cofre-<kind>` or `cofre-<kind>-<class>`. */
  readonly id: string;
  readonly kind: RetentionKind;
  /** The data class the rule filters on; `undefined` when the kind's retention is the same for every class. */
  readonly dataClass?: string;
  /** Object tags the rule matches (all of them). */
  readonly tags: Readonly<Record<string, string>>;
  readonly retention: Retention;
}

/** The data classes of a deployment: `general` and the keys of `retention.classes`. */
export function dataClassesOf(settings: RetentionSettings): string[] {
  return [GENERAL_CLASS, ...Object.keys(settings.classes)];
}

function sameRetention(a: Retention, b: Retention): boolean {
  return (
    a.expireAfterDays === b.expireAfterDays &&
    a.transitions.length === b.transitions.length &&
    a.transitions.every(
      (t, i) =>
        t.storageClass === b.transitions[i]!.storageClass && t.afterDays === b.transitions[i]!.afterDays,
    )
  );
}

/**
 * The retention rules of a vault, one per kind, or one per kind and data class where the classes'
 * retention differs (yearly backups and tenant exports, with the default classes). Rules never
 * overlap: an object matches exactly one, by its `cofre:tier` tag (and `cofre:class` where the rule
 * names a class). Every rule's transitions and expiry are `retentionFor(kind, class, settings)`.
 */
export function retentionRuleSpecs(settings: RetentionSettings): RetentionRuleSpec[] {
  const classes = dataClassesOf(settings);
  const specs: RetentionRuleSpec[] = [];
  for (const kind of RETENTION_KINDS) {
    const perClass = classes.map((dataClass) => ({
      dataClass,
      retention: retentionFor(kind, dataClass, settings),
    }));
    const first = perClass[0]!;
    if (perClass.every((c) => sameRetention(c.retention, first.retention))) {
      specs.push({ id: `cofre-${kind}`, kind, tags: { [TIER_TAG]: kind }, retention: first.retention });
    } else {
      for (const { dataClass, retention } of perClass) {
        specs.push({
          id: `cofre-${kind}-${dataClass}`,
          kind,
          dataClass,
          tags: { [TIER_TAG]: kind, [CLASS_TAG]: dataClass },
          retention,
        });
      }
    }
  }
  return specs;
}

const STORAGE_CLASSES: Record<ArchiveStorageClass, StorageClass> = {
  GLACIER: StorageClass.GLACIER,
  GLACIER_IR: StorageClass.GLACIER_INSTANT_RETRIEVAL,
  DEEP_ARCHIVE: StorageClass.DEEP_ARCHIVE,
};

/** Options of {@link vaultLifecycleRules}. */
export interface VaultLifecycleOptions {
  /** When a version that is no longer current (overwritten, or expired by a rule) is deleted. */
  readonly noncurrentVersionExpiration: Duration;
  /** When an unfinished multipart upload (a failed streaming backup) is aborted. */
  readonly abortIncompleteMultipartUploadAfter: Duration;
}

/** The housekeeping rule's id. */
export const HOUSEKEEPING_RULE_ID = 'cofre-housekeeping';

/**
 * The S3 lifecycle rules of a vault: the {@link retentionRuleSpecs} (filtered on tags, not on key
 * prefixes, so they hold whatever prefix a writer uses), plus one unfiltered housekeeping rule that
 * deletes noncurrent versions, removes delete markers left without versions, and aborts incomplete
 * multipart uploads. Objects under 128 KiB never transition: the bucket sets
 * `TransitionDefaultMinimumObjectSize` (a size filter here would also stop them from expiring).
 */
export function vaultLifecycleRules(
  settings: RetentionSettings,
  options: VaultLifecycleOptions,
): LifecycleRule[] {
  const rules: LifecycleRule[] = retentionRuleSpecs(settings).map((spec) => ({
    id: spec.id,
    tagFilters: spec.tags,
    expiration: Duration.days(spec.retention.expireAfterDays),
    ...(spec.retention.transitions.length > 0
      ? {
          transitions: spec.retention.transitions.map((t) => ({
            storageClass: STORAGE_CLASSES[t.storageClass],
            transitionAfter: Duration.days(t.afterDays),
          })),
        }
      : {}),
  }));
  rules.push({
    id: HOUSEKEEPING_RULE_ID,
    noncurrentVersionExpiration: options.noncurrentVersionExpiration,
    expiredObjectDeleteMarker: true,
    abortIncompleteMultipartUploadAfter: options.abortIncompleteMultipartUploadAfter,
  });
  return rules;
}

/** The shortest expiry of any kind and class: a default Object Lock longer than this would outlive it. */
export function shortestExpiryDays(settings: RetentionSettings): number {
  return Math.min(...retentionRuleSpecs(settings).map((s) => s.retention.expireAfterDays));
}
