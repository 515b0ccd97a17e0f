import type { Tier } from './retention';

/** A calendar date in a time zone, with its ISO week. */
export interface LocalDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly isoWeekYear: number;
  readonly isoWeek: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

/** The calendar date of `instant` in `timeZone` (IANA), and its ISO-8601 week. */
export function localDate(instant: Date, timeZone: string): LocalDate {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(timeZone, f);
  }
  const parts = Object.fromEntries(f.formatToParts(instant).map((p) => [p.type, p.value]));
  const year = Number(parts.year);
  const month = Number(parts.month);
  const day = Number(parts.day);
  // ISO week: the week (Monday first) that holds the date's Thursday.
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = (date.getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  const thursday = new Date(date.getTime() + (3 - weekday) * 86_400_000);
  const isoWeekYear = thursday.getUTCFullYear();
  const firstThursday = new Date(Date.UTC(isoWeekYear, 0, 4));
  const firstWeekday = (firstThursday.getUTCDay() + 6) % 7;
  const week1Monday = firstThursday.getTime() - firstWeekday * 86_400_000;
  const isoWeek = 1 + Math.round((thursday.getTime() - 3 * 86_400_000 - week1Monday) / (7 * 86_400_000));
  return { year, month, day, isoWeekYear, isoWeek };
}

/**
 * The grandfather-father-son tier of a backup started at `startedAt`, given when the earlier
 * successful backups of the same database started: the first of a calendar year is `yearly`, else
 * the first of a month `monthly`, else the first of an ISO week `weekly`, else `daily` — all in
 * `timeZone`.
 */
export function decideTier(startedAt: Date, earlier: readonly Date[], timeZone: string): Tier {
  const now = localDate(startedAt, timeZone);
  const before = earlier.filter((d) => d.getTime() < startedAt.getTime()).map((d) => localDate(d, timeZone));
  if (!before.some((d) => d.year === now.year)) return 'yearly';
  if (!before.some((d) => d.year === now.year && d.month === now.month)) return 'monthly';
  if (!before.some((d) => d.isoWeekYear === now.isoWeekYear && d.isoWeek === now.isoWeek)) return 'weekly';
  return 'daily';
}
