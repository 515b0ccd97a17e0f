import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import { exampleConfig } from '../helpers/cdk';

/** The problems a changed example configuration is rejected with. */
function problemsOf(change: (c: CofreConfigInput) => CofreConfigInput): string[] {
  try {
    parseConfig(exampleConfig(change));
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('vault settings of the configuration', () => {
  it('replicate to the DR region in Glacier Instant Retrieval by default', () => {
    expect(parseConfig(exampleConfig()).replication).toEqual({ storageClass: 'GLACIER_IR' });
  });

  it('accept another storage class with millisecond retrieval for the replicas', () => {
    const config = parseConfig(
      exampleConfig((c) => ({ ...c, replication: { storageClass: 'STANDARD_IA' } })),
    );
    expect(config.replication.storageClass).toBe('STANDARD_IA');
  });

  it('refuse an archive storage class for the replicas, naming the field', () => {
    expect(
      problemsOf((c) => ({ ...c, replication: { storageClass: 'DEEP_ARCHIVE' as 'GLACIER_IR' } })),
    ).toEqual([
      'replication.storageClass: expected one of "STANDARD", "STANDARD_IA", "INTELLIGENT_TIERING", "GLACIER_IR" (classes with millisecond retrieval), got "DEEP_ARCHIVE"',
    ]);
  });

  it.each([
    [
      'per-tenant exports',
      { tenantExportDays: 20 },
      'objectLock.days: expected at most retention.tenantExportDays (20), or a default lock would outlive the expiry of per-tenant exports; got 30',
    ],
    [
      'weekly backups',
      { tiers: { weeklyWeeks: 2 } },
      'objectLock.days: expected at most 7 × retention.tiers.weeklyWeeks (14), or a default lock would outlive the expiry of weekly backups; got 30',
    ],
  ])('refuse a default Object Lock longer than the expiry of %s', (_what, retention, problem) => {
    expect(problemsOf((c) => ({ ...c, retention }))).toEqual([problem]);
  });
});
