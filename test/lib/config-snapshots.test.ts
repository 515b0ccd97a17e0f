import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { SECRET_EVENT_NAMES } from '../../core/config/events';
import type { CofreDrStack } from '../../lib/stacks/dr-stack';
import type { CofrePrimaryStack } from '../../lib/stacks/primary-stack';
import { ConfigSnapshots } from '../../lib/constructs/config-snapshots';
import { parseConfig } from '../../lib/config';
import { buildTestApp, exampleConfig } from '../helpers/cdk';
import { actionsOf, logicalIdOf, resourceOf, statementsOf } from '../helpers/template';

const SECRET = 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:app-prod/config-AbCdEf';

let primary: CofrePrimaryStack;
let dr: CofreDrStack;
let template: Template;
beforeAll(() => {
  ({ primary, dr } = buildTestApp());
  template = Template.fromStack(primary);
});

/** Every statement of the snapshot function's role policy. */
function functionStatements() {
  const role = primary.configSnapshots!.snapshotFunction.function.role!;
  const policies = template.findResources('AWS::IAM::Policy', {
    Properties: { Roles: [{ Ref: logicalIdOf(role) }] },
  });
  return Object.values(policies).flatMap((p) =>
    statementsOf((p as { Properties: { PolicyDocument: unknown } }).Properties.PolicyDocument),
  );
}

describe('ConfigSnapshots in the primary stack (example configuration)', () => {
  it('the snapshot function gets the configured set, the vault and its lock mode, the retention', () => {
    const fn = resourceOf(template, primary.configSnapshots!.snapshotFunction.function);
    const env = (fn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(JSON.parse(env.COFRE_CONFIG_TARGETS as string)).toEqual({
      secrets: [SECRET],
      parameterPaths: ['/app/prod/'],
      dataClass: 'general',
    });
    expect(JSON.parse(env.COFRE_CONFIG_RETENTION as string)).toEqual({
      days: 90,
      classes: { health: { years: 7 }, accounting: { years: 5 }, labour: { years: 10 } },
    });
    expect(env.COFRE_OBJECT_LOCK_MODE).toBe('COMPLIANCE');
    expect(fn.Properties.DeadLetterConfig).toBeDefined();
  });

  it('rules: every secret change call via CloudTrail, and Parameter Store changes under the configured path only', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.secretsmanager'],
        'detail-type': ['AWS API Call via CloudTrail'],
        detail: { eventSource: ['secretsmanager.amazonaws.com'], eventName: [...SECRET_EVENT_NAMES] },
      },
      Targets: [
        Match.objectLike({
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 86400 },
          DeadLetterConfig: Match.anyValue(),
        }),
      ],
    });
    expect(SECRET_EVENT_NAMES).toEqual(
      expect.arrayContaining([
        'PutSecretValue',
        'UpdateSecret',
        'RotateSecret',
        'RestoreSecret',
        'DeleteSecret',
      ]),
    );
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.ssm'],
        'detail-type': ['Parameter Store Change'],
        detail: { name: ['/app/prod', { prefix: '/app/prod/' }] },
      },
    });
  });

  it('least privilege: reads only the configured secret and parameters; writes only config/ in the vault; never deletes', () => {
    const statements = functionStatements();
    const secretRead = statements.find((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'))!;
    expect(secretRead.Resource).toBe(SECRET);
    const ssmRead = statements.find((s) => actionsOf(s).includes('ssm:GetParameter'))!;
    expect(JSON.stringify(ssmRead.Resource)).toMatch(/parameter\/app\/prod"/);
    expect(JSON.stringify(ssmRead.Resource)).toMatch(/parameter\/app\/prod\/\*"/);
    const writes = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:Put')));
    expect(writes.length).toBeGreaterThan(0);
    for (const w of writes) expect(JSON.stringify(w.Resource)).toMatch(/\/config\/\*"\]\]\}$/);
    const all = statements.flatMap(actionsOf);
    expect(
      all.filter((a) => /Delete|^s3:\*|^secretsmanager:\*|^ssm:\*|PutSecretValue|PutParameter/.test(a)),
    ).toEqual([]);
    const kmsDecrypt = statements.find((s) => actionsOf(s).includes('kms:Decrypt') && s.Condition)!;
    expect(kmsDecrypt.Condition).toEqual({
      StringEquals: {
        'kms:ViaService': ['secretsmanager.sa-east-1.amazonaws.com', 'ssm.sa-east-1.amazonaws.com'],
      },
    });
    // The vault key lets the function encrypt (envelope data keys) through the key policy.
    const keyPolicy = resourceOf(template, primary.vault.key).Properties.KeyPolicy;
    const fnRole = {
      'Fn::GetAtt': [logicalIdOf(primary.configSnapshots!.snapshotFunction.function.role!), 'Arn'],
    };
    expect(
      statementsOf(keyPolicy).some(
        (s) =>
          // One principal, or several when CDK's policy minimization merged equal statements.
          [(s.Principal as { AWS: unknown }).AWS]
            .flat()
            .some((p) => JSON.stringify(p) === JSON.stringify(fnRole)) &&
          actionsOf(s).includes('kms:GenerateDataKey'),
      ),
    ).toBe(true);
  });

  it('weekly schedule in the configured time zone with the weekly input', () => {
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(0 3 ? * SUN *)',
      ScheduleExpressionTimezone: 'America/Sao_Paulo',
      Target: Match.objectLike({ Input: JSON.stringify({ cofre: 'config-weekly' }) }),
    });
  });

  it('snapshots expire when their lock ends: one lifecycle rule per data class on the config tier', () => {
    const bucket = resourceOf(template, primary.vault.bucket);
    const rules = (
      bucket.Properties.LifecycleConfiguration as {
        Rules: { Id: string; ExpirationInDays: number; TagFilters: unknown }[];
      }
    ).Rules;
    expect(rules.find((r) => r.Id === 'cofre-config-general')).toMatchObject({
      ExpirationInDays: 90,
      TagFilters: [
        { Key: 'cofre:tier', Value: 'config' },
        { Key: 'cofre:class', Value: 'general' },
      ],
    });
    expect(rules.find((r) => r.Id === 'cofre-config-health')?.ExpirationInDays).toBe(365 * 7 + 2);
  });

  it('the DR vault, where replication puts the replicas with their tags, expires them by the same rules', () => {
    type LifecycleRule = { Id: string; ExpirationInDays?: number; TagFilters?: unknown; Status: string };
    const configRules = (bucket: ReturnType<typeof resourceOf>) =>
      (bucket.Properties.LifecycleConfiguration as { Rules: LifecycleRule[] }).Rules.filter((r) =>
        r.Id.startsWith('cofre-config-'),
      );
    const primaryRules = configRules(resourceOf(template, primary.vault.bucket));
    const drRules = configRules(resourceOf(Template.fromStack(dr), dr.vault.bucket));
    expect(primaryRules.map((r) => r.Id).sort()).toEqual([
      'cofre-config-accounting',
      'cofre-config-general',
      'cofre-config-health',
      'cofre-config-labour',
    ]);
    expect(drRules).toEqual(primaryRules);
  });

  it('alarms: the weekly snapshot age (missing data breaching), the function errors and its dead letters', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'HoursSinceLastGoodConfigSnapshot',
      Namespace: 'Cofre',
      Threshold: 169,
      TreatMissingData: 'breaching',
    });
    expect(primary.alerts.alarms.has('ConfigSnapshotErrors')).toBe(true);
    expect(primary.alerts.alarms.has('ConfigSnapshotDeadLettersDepth')).toBe(true);
    const freshness = resourceOf(template, primary.alerts.freshnessFunction.function);
    expect(
      (freshness.Properties.Environment as { Variables: Record<string, string> }).Variables
        .COFRE_CONFIG_SNAPSHOT_MAX_AGE_HOURS,
    ).toBe('169');
  });

  it('retention.configSnapshotDays and schedules.configSnapshot have their effect', () => {
    const { primary: p } = buildTestApp((c) => ({
      ...c,
      retention: { ...c.retention, configSnapshotDays: 120 },
      schedules: { ...c.schedules, configSnapshot: 'cron(30 4 ? * SAT *)' },
    }));
    const t = Template.fromStack(p);
    t.hasResourceProperties('AWS::Scheduler::Schedule', { ScheduleExpression: 'cron(30 4 ? * SAT *)' });
    const rules = (
      resourceOf(t, p.vault.bucket).Properties.LifecycleConfiguration as {
        Rules: { Id: string; ExpirationInDays: number }[];
      }
    ).Rules;
    expect(rules.find((r) => r.Id === 'cofre-config-general')?.ExpirationInDays).toBe(120);
  });

  it("configuration.dataClass sets the snapshots' class (tag and retention); an unknown class is refused naming the field", () => {
    const { primary: p } = buildTestApp((c) => ({
      ...c,
      configuration: { ...c.configuration, dataClass: 'health' },
    }));
    const env = (
      resourceOf(Template.fromStack(p), p.configSnapshots!.snapshotFunction.function).Properties
        .Environment as { Variables: Record<string, string> }
    ).Variables;
    expect((JSON.parse(env.COFRE_CONFIG_TARGETS!) as { dataClass: string }).dataClass).toBe('health');
    expect(() =>
      parseConfig(exampleConfig((c) => ({ ...c, configuration: { ...c.configuration, dataClass: 'tax' } }))),
    ).toThrow(
      /configuration\.dataClass: expected one of "general", "health", "accounting", "labour" \(see retention.classes\), got "tax"/,
    );
  });

  it('without configured secrets or parameters there is no snapshot function, rule or alarm', () => {
    const { primary: p, dr: d } = buildTestApp((c) => ({
      ...c,
      configuration: { secretArns: [], ssmParameterPaths: [] },
    }));
    expect(p.configSnapshots).toBeUndefined();
    expect(JSON.stringify(resourceOf(Template.fromStack(d), d.vault.bucket).Properties)).not.toContain(
      'cofre-config-',
    );
    const t = Template.fromStack(p);
    expect(
      Object.keys(
        t.findResources('AWS::Events::Rule', { Properties: { EventPattern: { source: ['aws.ssm'] } } }),
      ),
    ).toEqual([]);
    t.resourcePropertiesCountIs(
      'AWS::CloudWatch::Alarm',
      { MetricName: 'HoursSinceLastGoodConfigSnapshot' },
      0,
    );
  });
});

describe('ConfigSnapshots props are validated at synth, naming the prop', () => {
  const build = (props: Partial<ConstructorParameters<typeof ConfigSnapshots>[2]>) => {
    const { primary: p } = buildTestApp((c) => ({
      ...c,
      configuration: { secretArns: [], ssmParameterPaths: [] },
    }));
    return () =>
      new ConfigSnapshots(p, 'Extra', {
        vault: p.vault,
        history: p.history,
        alerts: p.alerts,
        encryptionKey: p.alerts.key,
        retention: { days: 90, classes: {} },
        ...props,
      });
  };
  it.each([
    [{}, /secretArns or parameterPaths must name at least one/],
    [{ parameterPaths: ['app/prod'] }, /parameterPaths must start with "\/", got "app\/prod"/],
    [
      { parameterPaths: ['/a'], dataClass: 'tax' },
      /dataClass must be "general" or a class of retention.classes, got "tax"/,
    ],
  ])('%j', (props, message) => {
    expect(build(props)).toThrow(message);
  });
});
