/**
 * Declarative retention: how long each backup object is kept, where it moves on the way, and the
 * Object Lock retain-until date its writer sets. The S3 lifecycle rules of the vault (lib/) and the
 * retain-until dates the engine writes (core/) are both derived from {@link retentionFor}, so they
 * cannot disagree: the lock ends exactly when S3 lifecycle expires the object.
 *
 * Pure and dependency-free: it is imported by the CDK constructs and by the runtime alike.
 */

/** Grandfather-father-son tier of a full backup. */
export const TIERS = ['daily', 'weekly', 'monthly', 'yearly'] as const;
export type Tier = (typeof TIERS)[number];

/**
 * Retention kind of an object: a GFS tier for full backups, `tenant` for per-tenant exports (kept
 * `tenantExportDays`, or the data class's legal years). Written as the `cofre:tier` object tag.
 */
export type RetentionKind = Tier | 'tenant';
export const RETENTION_KINDS: readonly RetentionKind[] = [...TIERS, 'tenant'];

/** The data class every deployment has: data without a legal retention of its own. */
export const GENERAL_CLASS = 'general';

/** Object tag keys that the lifecycle rules filter on. */
export const TIER_TAG = 'cofre:tier';
export const CLASS_TAG = 'cofre:class';

/** The retention settings {@link retentionFor} reads (structurally, `config.retention` of cofre.config.ts). */
export interface RetentionSettings {
  readonly tiers: {
    readonly dailyDays: number;
    readonly weeklyWeeks: number;
    readonly monthlyMonths: number;
    readonly yearlyYears: number;
  };
  readonly classes: Readonly<Record<string, { readonly years: number }>>;
  readonly tenantExportDays: number;
}

/** S3 storage classes a backup moves through (values as the S3 API spells them). */
export type ArchiveStorageClass = 'GLACIER' | 'GLACIER_IR' | 'DEEP_ARCHIVE';

export interface Transition {
  readonly storageClass: ArchiveStorageClass;
  /** Days after creation. */
  readonly afterDays: number;
}

export interface Retention {
  /** Storage-class transitions, in increasing `afterDays`, each strictly before the expiry. */
  readonly transitions: readonly Transition[];
  /** Days after creation when S3 lifecycle expires the object. */
  readonly expireAfterDays: number;
  /**
   * The Object Lock retain-until date for an object created at `createdAt`: the moment S3
   * lifecycle expires it (creation + `expireAfterDays`, rounded up to the next midnight UTC, as
   * S3 computes it). The lock therefore never outlives the expiry nor ends before it.
   */
  lockUntil(createdAt: Date): Date;
}

const DAY_MS = 86_400_000;

/**
 * The most days that `months` calendar months can span, from any start date. Lifecycle rules count
 * days, the law counts months and years: rounding up guarantees "kept at least N months".
 */
export function daysCoveringMonths(months: number): number {
  let most = 0;
  // Every start day that matters (1st and the month ends) over one 4-year leap cycle: century
  // years only remove a 29 February, so they cannot make a span longer.
  for (let year = 2000; year < 2004; year++) {
    for (let month = 0; month < 12; month++) {
      for (const day of [1, 28, 29, 30, 31]) {
        const start = Date.UTC(year, month, day);
        if (new Date(start).getUTCDate() !== day) continue; // 30 February and the like
        const end = addCalendarMonths(new Date(start), months).getTime();
        most = Math.max(most, Math.round((end - start) / DAY_MS));
      }
    }
  }
  return most;
}

/** The most days that `years` calendar years can span (365 per year plus every possible 29 February). */
export function daysCoveringYears(years: number): number {
  return 365 * years + Math.ceil(years / 4);
}

/** Adds calendar months, clamping the day (31 January + 1 month = 28/29 February), in UTC. */
function addCalendarMonths(date: Date, months: number): Date {
  const target = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + months, 1));
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(date.getUTCDate(), lastDay));
  return target;
}

/** Legal years of a data class (`undefined` for `general`, which has none). Unknown classes are an error. */
function classYears(dataClass: string, settings: RetentionSettings): number | undefined {
  if (dataClass === GENERAL_CLASS) return undefined;
  const entry = settings.classes[dataClass];
  if (!entry) {
    const known = [GENERAL_CLASS, ...Object.keys(settings.classes)].map((c) => `"${c}"`).join(', ');
    throw new RangeError(`unknown data class "${dataClass}": expected one of ${known}`);
  }
  return entry.years;
}

/**
 * Retention of one backup object, from its kind (GFS tier or tenant export) and data class.
 *
 * | kind | transitions | expires |
 * |---|---|---|
 * | daily | none | `dailyDays` |
 * | weekly | Glacier Flexible Retrieval at 7 d | `weeklyWeeks` weeks |
 * | monthly | Glacier at 7 d, Deep Archive at 90 d | `monthlyMonths` months (rounded up to days) |
 * | yearly | Deep Archive at 1 d | the class's legal years (`general`: `yearlyYears`), rounded up |
 * | tenant | `general`: none; a legal class: Glacier Instant Retrieval at 30 d | `tenantExportDays`, or the class's years |
 *
 * A transition that would not come strictly before the expiry is left out (S3 rejects it, and it
 * would only add a minimum-storage charge).
 */
export function retentionFor(kind: RetentionKind, dataClass: string, settings: RetentionSettings): Retention {
  const { tiers } = settings;
  let transitions: Transition[];
  let expireAfterDays: number;
  const years = classYears(dataClass, settings);
  switch (kind) {
    case 'daily':
      transitions = [];
      expireAfterDays = tiers.dailyDays;
      break;
    case 'weekly':
      transitions = [{ storageClass: 'GLACIER', afterDays: 7 }];
      expireAfterDays = tiers.weeklyWeeks * 7;
      break;
    case 'monthly':
      transitions = [
        { storageClass: 'GLACIER', afterDays: 7 },
        { storageClass: 'DEEP_ARCHIVE', afterDays: 90 },
      ];
      expireAfterDays = daysCoveringMonths(tiers.monthlyMonths);
      break;
    case 'yearly':
      transitions = [{ storageClass: 'DEEP_ARCHIVE', afterDays: 1 }];
      expireAfterDays = daysCoveringYears(years ?? tiers.yearlyYears);
      break;
    case 'tenant':
      if (years === undefined) {
        transitions = [];
        expireAfterDays = settings.tenantExportDays;
      } else {
        transitions = [{ storageClass: 'GLACIER_IR', afterDays: 30 }];
        expireAfterDays = daysCoveringYears(years);
      }
      break;
    default:
      throw new RangeError(
        `unknown retention kind "${String(kind)}": expected one of ${RETENTION_KINDS.join(', ')}`,
      );
  }
  transitions = transitions.filter((t) => t.afterDays < expireAfterDays);
  return {
    transitions,
    expireAfterDays,
    lockUntil: (createdAt: Date) => lifecycleExpiry(createdAt, expireAfterDays),
  };
}

/**
 * When S3 lifecycle expires an object created at `createdAt` under an `Expiration: Days` rule: the
 * creation time plus the days, rounded up to the next midnight UTC.
 */
export function lifecycleExpiry(createdAt: Date, days: number): Date {
  const t = createdAt.getTime();
  if (!Number.isFinite(t)) throw new RangeError('createdAt is not a valid date');
  const plus = t + days * DAY_MS;
  return new Date(Math.ceil(plus / DAY_MS) * DAY_MS);
}

/** The retention of cofre.config.ts's defaults (a test keeps the two equal), for the CLI. */
export const DEFAULT_RETENTION: RetentionSettings = {
  tiers: { dailyDays: 30, weeklyWeeks: 12, monthlyMonths: 12, yearlyYears: 7 },
  classes: { health: { years: 7 }, accounting: { years: 5 }, labour: { years: 10 } },
  tenantExportDays: 90,
};
