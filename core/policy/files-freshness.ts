/**
 * Freshness limits of the files jobs of S3-compatible buckets, and of the weekly restore test of every
 * bucket (AWS S3 ones too) (pure: the freshness check and the alarms of lib/constructs/alerts read the
 * same numbers). The sync runs daily (differential on
 * `schedules.filesDifferential`, full on `schedules.filesFull`), plus 2 h to finish; the restore test
 * weekly, plus a day.
 */
export const DEFAULT_SYNCED_FILES_LIMITS = { syncHours: 26, restoreTestDays: 8 } as const;
