import { describe, expect, it } from 'vitest';
import { configSchema } from '../../../lib/config';
import {
  DEFAULT_RETENTION,
  daysCoveringMonths,
  daysCoveringYears,
  lifecycleExpiry,
  RETENTION_KINDS,
  retentionFor,
  type RetentionSettings,
} from '../../../core/policy/retention';

const DEFAULTS: RetentionSettings = {
  tiers: { dailyDays: 30, weeklyWeeks: 12, monthlyMonths: 12, yearlyYears: 7 },
  classes: { health: { years: 7 }, accounting: { years: 5 }, labour: { years: 10 } },
  tenantExportDays: 90,
};
const CLASSES = ['general', 'health', 'accounting', 'labour'];

describe('retentionFor', () => {
  it.each([
    ['daily', 'general', [], 30],
    ['daily', 'health', [], 30],
    ['weekly', 'accounting', [{ storageClass: 'GLACIER', afterDays: 7 }], 84],
    [
      'monthly',
      'labour',
      [
        { storageClass: 'GLACIER', afterDays: 7 },
        { storageClass: 'DEEP_ARCHIVE', afterDays: 90 },
      ],
      366,
    ],
    ['yearly', 'general', [{ storageClass: 'DEEP_ARCHIVE', afterDays: 1 }], 7 * 365 + 2],
    ['yearly', 'health', [{ storageClass: 'DEEP_ARCHIVE', afterDays: 1 }], 7 * 365 + 2],
    ['yearly', 'accounting', [{ storageClass: 'DEEP_ARCHIVE', afterDays: 1 }], 5 * 365 + 2],
    ['yearly', 'labour', [{ storageClass: 'DEEP_ARCHIVE', afterDays: 1 }], 10 * 365 + 3],
    ['tenant', 'general', [], 90],
    ['tenant', 'health', [{ storageClass: 'GLACIER_IR', afterDays: 30 }], 7 * 365 + 2],
    ['tenant', 'labour', [{ storageClass: 'GLACIER_IR', afterDays: 30 }], 10 * 365 + 3],
  ] as const)('%s backups of %s data: transitions and expiry', (kind, dataClass, transitions, days) => {
    const r = retentionFor(kind, dataClass, DEFAULTS);
    expect(r.transitions).toEqual(transitions);
    expect(r.expireAfterDays).toBe(days);
  });

  it('keeps every kind and class at least as long as its rule says, with transitions before expiry', () => {
    for (const kind of RETENTION_KINDS) {
      for (const dataClass of CLASSES) {
        const r = retentionFor(kind, dataClass, DEFAULTS);
        expect(r.expireAfterDays).toBeGreaterThan(0);
        const days = r.transitions.map((t) => t.afterDays);
        expect(days).toEqual([...days].sort((a, b) => a - b));
        for (const d of days) expect(d).toBeLessThan(r.expireAfterDays);
      }
    }
  });

  it('follows a non-default configuration', () => {
    const custom: RetentionSettings = {
      tiers: { dailyDays: 14, weeklyWeeks: 8, monthlyMonths: 24, yearlyYears: 3 },
      classes: { tax: { years: 20 } },
      tenantExportDays: 180,
    };
    expect(retentionFor('daily', 'general', custom).expireAfterDays).toBe(14);
    expect(retentionFor('weekly', 'general', custom).expireAfterDays).toBe(56);
    expect(retentionFor('monthly', 'tax', custom).expireAfterDays).toBe(daysCoveringMonths(24));
    expect(retentionFor('yearly', 'general', custom).expireAfterDays).toBe(3 * 365 + 1);
    expect(retentionFor('yearly', 'tax', custom).expireAfterDays).toBe(20 * 365 + 5);
    expect(retentionFor('tenant', 'general', custom).expireAfterDays).toBe(180);
  });

  it('drops a transition that would not come before the expiry', () => {
    const short = { ...DEFAULTS, tiers: { ...DEFAULTS.tiers, weeklyWeeks: 1, monthlyMonths: 1 } };
    expect(retentionFor('weekly', 'general', short).transitions).toEqual([]);
    expect(retentionFor('monthly', 'general', short).transitions).toEqual([
      { storageClass: 'GLACIER', afterDays: 7 },
    ]);
  });

  it('rejects an unknown data class, naming the known ones', () => {
    expect(() => retentionFor('yearly', 'medical', DEFAULTS)).toThrow(
      /unknown data class "medical": expected one of "general", "health", "accounting", "labour"/,
    );
  });

  it('rejects an unknown kind', () => {
    expect(() => retentionFor('hourly' as never, 'general', DEFAULTS)).toThrow(
      /unknown retention kind "hourly"/,
    );
  });
});

describe('calendar spans in days', () => {
  it('covers every 12-month span, including one over a 29 February', () => {
    expect(daysCoveringMonths(12)).toBe(366);
    expect(daysCoveringMonths(1)).toBe(31);
    expect(daysCoveringMonths(2)).toBe(62); // July + August
    expect(daysCoveringMonths(48)).toBe(1461);
  });

  it('covers N calendar years from any start date, leap days included', () => {
    for (const years of [1, 4, 5, 7, 10, 100]) {
      const days = daysCoveringYears(years);
      for (let y = 1996; y <= 2104; y++) {
        for (const [m, d] of [
          [0, 1],
          [1, 28],
          [1, 29],
          [2, 1],
          [11, 31],
        ] as const) {
          const start = Date.UTC(y, m, d);
          const end = Date.UTC(y + years, m, d);
          expect(days).toBeGreaterThanOrEqual((end - start) / 86_400_000);
        }
      }
    }
  });
});

describe('lockUntil and the lifecycle expiry', () => {
  it('ends the lock exactly when S3 expires the object: creation + days, up to the next midnight UTC', () => {
    const r = retentionFor('daily', 'general', DEFAULTS);
    expect(r.lockUntil(new Date('2026-01-10T05:30:00Z')).toISOString()).toBe('2026-02-10T00:00:00.000Z');
    expect(r.lockUntil(new Date('2026-01-10T00:00:00Z')).toISOString()).toBe('2026-02-09T00:00:00.000Z');
  });

  it('keeps a yearly health backup made on 29 February at least 7 calendar years', () => {
    const created = new Date('2028-02-29T05:00:00Z');
    const until = retentionFor('yearly', 'health', DEFAULTS).lockUntil(created);
    expect(until.getTime()).toBeGreaterThanOrEqual(Date.UTC(2035, 2, 1, 5));
    expect(until.toISOString()).toBe('2035-03-02T00:00:00.000Z');
  });

  it('never ends the lock before the expiry nor after it, for every kind, class and hour', () => {
    for (const kind of RETENTION_KINDS) {
      for (const dataClass of CLASSES) {
        const r = retentionFor(kind, dataClass, DEFAULTS);
        for (let h = 0; h < 48; h += 5) {
          const created = new Date(Date.UTC(2027, 11, 31, h, 17, 3));
          expect(r.lockUntil(created)).toEqual(lifecycleExpiry(created, r.expireAfterDays));
          const ms = r.lockUntil(created).getTime() - created.getTime();
          expect(ms).toBeGreaterThanOrEqual(r.expireAfterDays * 86_400_000);
          expect(ms).toBeLessThan((r.expireAfterDays + 1) * 86_400_000);
        }
      }
    }
  });

  it('rejects an invalid creation date', () => {
    expect(() => retentionFor('daily', 'general', DEFAULTS).lockUntil(new Date('nope'))).toThrow(
      /not a valid date/,
    );
  });
});

it('uses the same defaults as cofre.config.ts’s schema (the CLI runs without a config file)', () => {
  const parsed = configSchema.parse({
    account: '111111111111',
    regions: { primary: 'sa-east-1', dr: 'us-east-1' },
    alerts: { emails: ['ops@example.com'] },
  });
  expect({
    tiers: parsed.retention.tiers,
    classes: parsed.retention.classes,
    tenantExportDays: parsed.retention.tenantExportDays,
  }).toEqual(DEFAULT_RETENTION);
});
