/**
 * `databases[].restoreTargets`: each field of a restore target changes what is deployed (alone, from
 * a configuration that already has a target), and a malformed entry is one clear message naming the
 * field and what was expected.
 */
import { describe, expect, it } from 'vitest';
import { buildCofreApp } from '../../lib/app';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import { exampleConfig, testAppProps } from '../helpers/cdk';

type Config = CofreConfigInput;
type Target = NonNullable<NonNullable<Config['databases']>[number]['restoreTargets']>[number];
const SECRET = 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/staging-AbCdEf';
const NETWORK = { subnetIds: ['subnet-0123456789abcdef0'], securityGroupId: 'sg-0123456789abcdef0' };

function withTarget(change: (t: Target) => Target = (t) => t): Config {
  return exampleConfig((c) => ({
    ...c,
    databases: c.databases!.map((db, i) =>
      i === 0
        ? {
            ...db,
            restoreTargets: [
              change({
                name: 'staging',
                host: 'staging.internal',
                port: 5432,
                credentialsSecretArn: SECRET,
                network: NETWORK,
              }),
            ],
          }
        : db,
    ),
  }));
}

function deployed(config: Config): string {
  const { app } = buildCofreApp(parseConfig(config), testAppProps());
  return JSON.stringify(app.synth().stacks.map((s) => s.template as unknown));
}

function problems(config: Config): readonly string[] {
  try {
    parseConfig(config);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('databases[].restoreTargets', () => {
  const base = { value: '' };
  it.each<[string, (t: Target) => Target]>([
    ['name', (t) => ({ ...t, name: 'reporting' })],
    ['host', (t) => ({ ...t, host: 'other.internal' })],
    ['port', (t) => ({ ...t, port: 6432 })],
    ['credentialsSecretArn', (t) => ({ ...t, credentialsSecretArn: SECRET.replace('staging', 'other') })],
    [
      'network.subnetIds',
      (t) => ({ ...t, network: { ...NETWORK, subnetIds: ['subnet-0fedcba9876543210'] } }),
    ],
    [
      'network.securityGroupId',
      (t) => ({ ...t, network: { ...NETWORK, securityGroupId: 'sg-0fedcba9876543210' } }),
    ],
    ['network (absent: the database network)', (t) => ({ ...t, network: undefined })],
  ])('changing %s alone changes what is deployed', (_field, change) => {
    base.value ||= deployed(withTarget());
    expect(deployed(withTarget(change))).not.toBe(base.value);
  });

  it('a configuration with a target differs from one without (the example)', () => {
    base.value ||= deployed(withTarget());
    expect(deployed(exampleConfig())).not.toBe(base.value);
  });

  it.each<[string, (t: Target) => unknown, string]>([
    [
      'a partial secret ARN',
      (t) => ({
        ...t,
        credentialsSecretArn: 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/staging',
      }),
      'databases[0].restoreTargets[0].credentialsSecretArn: expected the complete ARN of a Secrets Manager secret (ending in its 6-character suffix), like "arn:aws:secretsmanager:sa-east-1:123456789012:secret:staging-db-AbCdEf", got "arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/staging"',
    ],
    [
      'a name that is not an id',
      (t) => ({ ...t, name: 'Staging Server' }),
      'databases[0].restoreTargets[0].name: expected a restore target name of lowercase letters, digits and "-" (starting with a letter, at most 40), got "Staging Server"',
    ],
    [
      'a port out of range',
      (t) => ({ ...t, port: 70000 }),
      'databases[0].restoreTargets[0].port: expected a TCP port between 1 and 65535',
    ],
    [
      'a field a target does not have (engine: always the database’s)',
      (t) => ({ ...t, engine: 'mysql' }),
      'databases[0].restoreTargets[0].engine: unknown field (check the spelling against the configuration reference)',
    ],
  ])('%s is one clear message naming the field', (_what, change, message) => {
    expect(problems(withTarget(change as (t: Target) => Target))).toEqual([message]);
  });

  it('a name used twice is refused, naming the second', () => {
    const config = exampleConfig((c) => ({
      ...c,
      databases: c.databases!.map((db, i) =>
        i === 0
          ? {
              ...db,
              restoreTargets: [
                { name: 'staging', credentialsSecretArn: SECRET },
                { name: 'staging', credentialsSecretArn: SECRET.replace('staging', 'other') },
              ],
            }
          : db,
      ),
    }));
    expect(problems(config)).toEqual([
      'databases[0].restoreTargets[1].name: expected a unique restore target name, "staging" is used twice',
    ]);
  });
});
