import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import { exampleConfig } from '../helpers/cdk';

type Db = NonNullable<CofreConfigInput['databases']>[number];

function problemsOf(change: (c: CofreConfigInput) => CofreConfigInput): string[] {
  try {
    parseConfig(exampleConfig(change));
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected the configuration to be rejected');
}

const db0 = (c: CofreConfigInput): Db => c.databases![0]!;

describe('the example configuration', () => {
  it('is valid and gets the documented defaults', () => {
    const config = parseConfig(exampleConfig());
    expect(config.timeZone).toBe('America/Sao_Paulo');
    expect(config.retention.tiers).toEqual({
      dailyDays: 30,
      weeklyWeeks: 12,
      monthlyMonths: 12,
      yearlyYears: 7,
    });
    expect(config.retention.classes).toEqual({
      health: { years: 7 },
      accounting: { years: 5 },
      labour: { years: 10 },
    });
    expect(config.retention.tenantExportDays).toBe(90);
    expect(config.objectLock).toEqual({ mode: 'COMPLIANCE', days: 30 });
    expect(config.thresholds).toEqual({ maxDurationMinutes: 30, sizeAnomalyPercent: 30, maxSizeGiB: 50 });
    expect(config.schedules.fullBackup).toBe('cron(0 2 * * ? *)');
    expect(config.schedules.restoreTest).toBe('cron(0 4 ? * SUN#1 *)');
    expect(config.terminationProtection).toBe(true);
  });

  it('fills defaults in a minimal configuration', () => {
    const config = parseConfig({
      account: '123456789012',
      regions: { primary: 'sa-east-1', dr: 'us-east-2' },
      alerts: { emails: ['a@b.co'] },
    });
    expect(config.databases).toEqual([]);
    expect(config.schedules.tenantExport).toBe('cron(0 1 * * ? *)');
    expect(config.schedules.integrityVerification).toBe('cron(0 3 ? * WED *)');
  });
});

describe('a bad configuration names the field and what was expected', () => {
  const cases: [string, (c: CofreConfigInput) => CofreConfigInput, RegExp][] = [
    [
      'a wrong region',
      (c) => ({ ...c, regions: { primary: 'brazil-1', dr: 'us-east-1' } }),
      /^regions\.primary: expected an AWS region code such as "sa-east-1", got "brazil-1"$/,
    ],
    [
      'the same region twice',
      (c) => ({ ...c, regions: { primary: 'sa-east-1', dr: 'sa-east-1' } }),
      /^regions\.dr: expected a region different from the primary region "sa-east-1"$/,
    ],
    [
      'a negative retention',
      (c) => ({ ...c, retention: { tiers: { dailyDays: -3 } } }),
      /^retention\.tiers\.dailyDays: expected the days to keep daily backups between 1 and 3650, got -3$/,
    ],
    [
      'a fractional retention',
      (c) => ({ ...c, retention: { classes: { health: { years: 7.5 } } } }),
      /^retention\.classes\.health\.years: expected the legal retention in years as a whole number$/,
    ],
    [
      'an unknown engine',
      (c) => {
        db0(c).engine = 'oracle' as 'mysql';
        return c;
      },
      /^databases\[0\]\.engine: expected "postgres" or "mysql", got "oracle"$/,
    ],
    [
      'a malformed cron',
      (c) => ({ ...c, schedules: { fullBackup: 'cron(0 2 * *)' } }),
      /^schedules\.fullBackup: cron needs 6 fields .*got 4/,
    ],
    [
      'a cron with both day fields set',
      (c) => ({ ...c, schedules: { restoreTest: 'cron(0 4 1 * MON *)' } }),
      /^schedules\.restoreTest: exactly one of day-of-month and day-of-week must be "\?"/,
    ],
    [
      'a cron hour out of range',
      (c) => ({ ...c, schedules: { tenantExport: 'cron(0 25 * * ? *)' } }),
      /^schedules\.tenantExport: hours field: "25" is out of range \(expected 0-23\)$/,
    ],
    [
      'a Unix-style schedule',
      (c) => ({ ...c, schedules: { restoreTest: '0 3 * * 0' } }),
      /^schedules\.restoreTest: expected an EventBridge Scheduler expression like "cron\(0 2 \* \* \? \*\)"/,
    ],
    [
      'an e-mail without @',
      (c) => ({ ...c, alerts: { emails: ['ops.example.com'] } }),
      /^alerts\.emails\[0\]: expected an e-mail address like "ops@example.com", got "ops.example.com"$/,
    ],
    [
      'no e-mail at all',
      (c) => ({ ...c, alerts: { emails: [] } }),
      /^alerts\.emails: expected at least one e-mail address/,
    ],
    [
      'an unknown time zone',
      (c) => ({ ...c, timeZone: 'Brasil/Sampa' }),
      /^timeZone: expected an IANA time zone such as "America\/Sao_Paulo", got "Brasil\/Sampa"$/,
    ],
    [
      'a short account id',
      (c) => ({ ...c, account: '1234' }),
      /^account: expected a 12-digit AWS account id, got "1234"$/,
    ],
    [
      'a missing account',
      (c) => {
        const { account: _drop, ...rest } = c;
        return rest as CofreConfigInput;
      },
      /^account: is required/,
    ],
    ['a misspelt field', (c) => ({ ...c, retension: {} }) as CofreConfigInput, /^retension: unknown field/],
    [
      'a secret that is not an ARN',
      (c) => {
        db0(c).credentialsSecretArn = 'app-prod-secret';
        return c;
      },
      /^databases\[0\]\.credentialsSecretArn: expected an ARN like "arn:aws:secretsmanager:/,
    ],
    [
      'two database sources',
      (c) => {
        db0(c).host = 'db.internal';
        return c;
      },
      /^databases\[0\]\.host: expected exactly one of rdsInstanceId, rdsClusterId or host, got rdsInstanceId and host$/,
    ],
    [
      'no database source',
      (c) => {
        delete db0(c).rdsInstanceId;
        return c;
      },
      /^databases\[0\]\.host: expected exactly one of rdsInstanceId, rdsClusterId or host$/,
    ],
    [
      'a bad subnet id',
      (c) => {
        db0(c).network.subnetIds = ['subnet-1'];
        return c;
      },
      /^databases\[0\]\.network\.subnetIds\[0\]: expected a subnet id like/,
    ],
    [
      'an undeclared data class',
      (c) => {
        db0(c).dataClass = 'legal';
        return c;
      },
      /^databases\[0\]\.dataClass: expected one of "general", "health", "accounting", "labour" \(see retention\.classes\), got "legal"$/,
    ],
    [
      'a duplicate database id',
      (c) => {
        c.databases![1]!.id = 'app-prod';
        return c;
      },
      /^databases\[1\]\.id: expected a unique id, "app-prod" is used twice$/,
    ],
    [
      'a lock longer than the daily expiry',
      (c) => ({ ...c, objectLock: { days: 31 } }),
      /^objectLock\.days: expected at most retention\.tiers\.dailyDays \(30\)/,
    ],
    [
      'an unknown lock mode',
      (c) => ({ ...c, objectLock: { mode: 'STRICT' as 'COMPLIANCE' } }),
      /^objectLock\.mode: expected "COMPLIANCE" or "GOVERNANCE", got "STRICT"$/,
    ],
    [
      'a tenant column with SQL in it',
      (c) => {
        db0(c).tenants!.tenantColumn = 'id; drop table x';
        return c;
      },
      /^databases\[0\]\.tenants\.tenantColumn: expected the tenant column as a plain SQL identifier/,
    ],
    [
      'a zero size threshold',
      (c) => ({ ...c, thresholds: { maxSizeGiB: 0 } }),
      /^thresholds\.maxSizeGiB: expected a positive size in GiB, got 0$/,
    ],
  ];

  it.each(cases)('%s', (_name, change, expected) => {
    const problems = problemsOf(change);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(expected);
  });

  it('lists every problem, one line each, in one error', () => {
    const problems = problemsOf((c) => ({
      ...c,
      regions: { primary: 'sa-east', dr: 'us-east-1' },
      timeZone: 'Nowhere',
      alerts: { emails: ['x'] },
      schedules: { fullBackup: 'daily' },
    }));
    expect(problems.map((p) => p.split(':')[0])).toEqual([
      'regions.primary',
      'timeZone',
      'schedules.fullBackup',
      'alerts.emails[0]',
    ]);
  });

  it('says how many problems there are in the error message', () => {
    expect(() => parseConfig({})).toThrow(
      /^Invalid Cofre configuration \(3 problems\):\n {2}- account: is required/,
    );
  });
});
