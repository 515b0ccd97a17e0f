import { describe, expect, it } from 'vitest';
import { decideTier, localDate } from '../../../core/policy/tiers';

const SP = 'America/Sao_Paulo';
const at = (iso: string) => new Date(iso);

describe('localDate', () => {
  it('reads the calendar date in the configured time zone', () => {
    // 01:30 UTC on 1 January is still 31 December in São Paulo (UTC-3).
    expect(localDate(at('2027-01-01T01:30:00Z'), SP)).toMatchObject({ year: 2026, month: 12, day: 31 });
    expect(localDate(at('2027-01-01T01:30:00Z'), 'UTC')).toMatchObject({ year: 2027, month: 1, day: 1 });
  });

  it.each([
    ['2026-01-01T12:00:00Z', 2026, 1],
    ['2027-01-01T12:00:00Z', 2026, 53],
    ['2024-12-30T12:00:00Z', 2025, 1],
    ['2026-11-23T12:00:00Z', 2026, 48],
  ])('gives %s the ISO week %i-W%i', (iso, year, week) => {
    expect(localDate(at(iso), 'UTC')).toMatchObject({ isoWeekYear: year, isoWeek: week });
  });
});

describe('decideTier', () => {
  it('makes the first backup ever yearly', () => {
    expect(decideTier(at('2026-11-23T05:00:00Z'), [], SP)).toBe('yearly');
  });

  it('makes the first of a month monthly, the first of a week weekly, the rest daily', () => {
    const earlier = [at('2026-01-02T05:00:00Z'), at('2026-10-31T05:00:00Z')];
    expect(decideTier(at('2026-11-01T05:00:00Z'), earlier, SP)).toBe('monthly');
    const november = [...earlier, at('2026-11-01T05:00:00Z')];
    // 2026-11-01 is a Sunday: Monday 2 November starts a new ISO week.
    expect(decideTier(at('2026-11-02T05:00:00Z'), november, SP)).toBe('weekly');
    expect(decideTier(at('2026-11-03T05:00:00Z'), [...november, at('2026-11-02T05:00:00Z')], SP)).toBe(
      'daily',
    );
  });

  it('decides in the configured time zone, not UTC', () => {
    // 31 December 23:30 in São Paulo is 1 January 02:30 UTC: still the old year locally.
    const earlier = [at('2026-03-01T12:00:00Z')];
    const newYearsEveLocal = at('2027-01-01T02:30:00Z');
    expect(decideTier(newYearsEveLocal, earlier, SP)).not.toBe('yearly');
    expect(decideTier(newYearsEveLocal, earlier, 'UTC')).toBe('yearly');
  });

  it('ignores backups that started later', () => {
    expect(decideTier(at('2026-05-01T05:00:00Z'), [at('2026-06-01T05:00:00Z')], SP)).toBe('yearly');
  });
});
