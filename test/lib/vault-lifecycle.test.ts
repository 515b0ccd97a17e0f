import { Duration } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { RETENTION_KINDS, retentionFor, type RetentionSettings } from '../../core/policy/retention';
import {
  dataClassesOf,
  HOUSEKEEPING_RULE_ID,
  retentionRuleSpecs,
  shortestExpiryDays,
  vaultLifecycleRules,
} from '../../lib/constructs/vault-lifecycle';

const DEFAULTS: RetentionSettings = {
  tiers: { dailyDays: 30, weeklyWeeks: 12, monthlyMonths: 12, yearlyYears: 7 },
  classes: { health: { years: 7 }, accounting: { years: 5 }, labour: { years: 10 } },
  tenantExportDays: 90,
};
const OPTIONS = {
  noncurrentVersionExpiration: Duration.days(30),
  abortIncompleteMultipartUploadAfter: Duration.days(1),
};

describe('retentionRuleSpecs', () => {
  it('makes one rule per tier where every class is kept alike, one per tier and class where not', () => {
    expect(retentionRuleSpecs(DEFAULTS).map((s) => s.id)).toEqual([
      'cofre-daily',
      'cofre-weekly',
      'cofre-monthly',
      'cofre-yearly-general',
      'cofre-yearly-health',
      'cofre-yearly-accounting',
      'cofre-yearly-labour',
      'cofre-tenant-general',
      'cofre-tenant-health',
      'cofre-tenant-accounting',
      'cofre-tenant-labour',
    ]);
  });

  it('matches every kind and class with exactly one rule, carrying retentionFor() of that kind and class', () => {
    for (const settings of [
      DEFAULTS,
      { ...DEFAULTS, classes: {} },
      { ...DEFAULTS, classes: { tax: { years: 7 } } },
    ]) {
      const specs = retentionRuleSpecs(settings);
      for (const kind of RETENTION_KINDS) {
        for (const dataClass of dataClassesOf(settings)) {
          const tags: Record<string, string> = { 'cofre:tier': kind, 'cofre:class': dataClass };
          const matching = specs.filter((s) => Object.entries(s.tags).every(([k, v]) => tags[k] === v));
          expect(matching, `${kind}/${dataClass}`).toHaveLength(1);
          const expected = retentionFor(kind, dataClass, settings);
          expect(matching[0]!.retention.expireAfterDays).toBe(expected.expireAfterDays);
          expect(matching[0]!.retention.transitions).toEqual(expected.transitions);
        }
      }
    }
  });

  it('collapses yearly rules into one when every class has the general number of years', () => {
    const ids = retentionRuleSpecs({ ...DEFAULTS, classes: { tax: { years: 7 } } }).map((s) => s.id);
    expect(ids).toContain('cofre-yearly');
    expect(ids).not.toContain('cofre-yearly-tax');
  });
});

describe('vaultLifecycleRules', () => {
  it('filters on tags only, and ends with the housekeeping rule', () => {
    const rules = vaultLifecycleRules(DEFAULTS, OPTIONS);
    expect(rules.every((r) => r.prefix === undefined)).toBe(true);
    expect(rules.at(-1)).toEqual({
      id: HOUSEKEEPING_RULE_ID,
      noncurrentVersionExpiration: Duration.days(30),
      expiredObjectDeleteMarker: true,
      abortIncompleteMultipartUploadAfter: Duration.days(1),
    });
    expect(new Set(rules.map((r) => r.id)).size).toBe(rules.length);
  });

  it('stays far below the S3 limit of 1000 rules even with many classes', () => {
    const classes = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`class-${i}`, { years: 1 + (i % 40) }]),
    );
    expect(vaultLifecycleRules({ ...DEFAULTS, classes }, OPTIONS).length).toBeLessThan(1000);
  });
});

describe('shortestExpiryDays', () => {
  it('is the shortest expiry of any kind and class', () => {
    expect(shortestExpiryDays(DEFAULTS)).toBe(30);
    expect(shortestExpiryDays({ ...DEFAULTS, tenantExportDays: 20 })).toBe(20);
    expect(shortestExpiryDays({ ...DEFAULTS, tiers: { ...DEFAULTS.tiers, weeklyWeeks: 1 } })).toBe(7);
  });
});
