/**
 * Every field of the configuration schema has an effect (the cases: every-field-cases.ts): the
 * schema's fields all accounted for, those of features not built rejected, and half of the
 * "changes what is deployed" cases (the other half: every-field-2.test.ts).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, NOT_YET_SUPPORTED, parseConfig } from '../../lib/config';
import { exampleConfig } from '../helpers/cdk';
import { CHANGES, UNSUPPORTED_VALUES, changesWhatIsDeployed, fields, supported } from './every-field-cases';

describe('every configuration field', () => {
  it(`the schema's ${fields.length} fields are all accounted for: a change each, or rejected as not yet supported`, () => {
    expect(supported.filter((f) => !(f in CHANGES))).toEqual([]);
    expect(Object.keys(CHANGES).filter((f) => !supported.includes(f))).toEqual([]);
    expect(Object.keys(UNSUPPORTED_VALUES).sort()).toEqual(Object.keys(NOT_YET_SUPPORTED).sort());
  });

  it.skipIf(Object.keys(NOT_YET_SUPPORTED).length === 0).each(Object.keys(NOT_YET_SUPPORTED))(
    '%s is rejected at synth as not yet supported, naming it',
    (path) => {
      const config = exampleConfig();
      const parts = path.split('.');
      let node = config as Record<string, unknown>;
      for (const key of parts.slice(0, -1))
        node = key.endsWith('[]')
          ? ((node[key.slice(0, -2)] as Record<string, unknown>[])[0] as Record<string, unknown>)
          : ((node[key] ??= {}) as Record<string, unknown>);
      node[parts.at(-1)!] = UNSUPPORTED_VALUES[path];
      let problems: readonly string[] = [];
      try {
        parseConfig(config);
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        problems = error.problems;
      }
      expect(problems).toEqual([
        expect.stringMatching(new RegExp(`^${path.replace(/[.[\]]/g, '\\$&')}: not yet supported \\(`)),
      ]);
    },
  );

  changesWhatIsDeployed(0, 2);
});
