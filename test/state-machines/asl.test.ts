import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import {
  LOCAL_SUBSTITUTIONS,
  placeholdersOf,
  STATE_MACHINES_DIR,
  substitute,
} from '../../core/local/state-machine-runner';
import { JOBS } from '../../core/aws/job';

const files = readdirSync(STATE_MACHINES_DIR).filter((f) => f.endsWith('.asl.json'));
const readme = readFileSync(path.join(STATE_MACHINES_DIR, 'README.md'), 'utf8');
/** The placeholders documented in the README's table (first column). */
const documented = [...readme.matchAll(/^\| `\$\{([A-Za-z0-9_]+)\}` \|/gm)].map((m) => m[1]!).sort();

describe('state-machines/*.asl.json', () => {
  it('are the five jobs of the contract, one file per job of core/aws/job.ts', () => {
    expect(files.sort()).toEqual([
      'backup-database.asl.json',
      'backup-tenants.asl.json',
      'restore-test.asl.json',
      'restore.asl.json',
      'verify-integrity.asl.json',
    ]);
    expect(files.map((f) => f.replace('.asl.json', '')).sort()).toEqual([...JOBS].sort());
  });

  it.each(files)('%s is valid ASL (asl-validator), before and after substitution', (file) => {
    const text = readFileSync(path.join(STATE_MACHINES_DIR, file), 'utf8');
    for (const definition of [JSON.parse(text), JSON.parse(substitute(text, LOCAL_SUBSTITUTIONS))]) {
      const result = aslValidator(definition);
      expect(result.isValid, result.errorsText('\n')).toBe(true);
    }
  });

  it.each(files)('%s uses only documented placeholders, and none is left after substitution', (file) => {
    const text = readFileSync(path.join(STATE_MACHINES_DIR, file), 'utf8');
    const used = placeholdersOf(text);
    expect(used.length).toBeGreaterThan(0);
    expect(documented).toEqual(expect.arrayContaining(used));
    expect(placeholdersOf(substitute(text, LOCAL_SUBSTITUTIONS))).toEqual([]);
    expect(substitute(text, LOCAL_SUBSTITUTIONS)).not.toMatch(/\$\{/);
  });

  it('documents exactly the placeholders the files use (and the local runner fills)', () => {
    const used = [
      ...new Set(
        files.flatMap((f) => placeholdersOf(readFileSync(path.join(STATE_MACHINES_DIR, f), 'utf8'))),
      ),
    ].sort();
    expect(documented).toEqual(used);
    expect(Object.keys(LOCAL_SUBSTITUTIONS).sort()).toEqual(used);
  });

  it('refuses a placeholder it has no value for, naming it', () => {
    expect(() => substitute('{"a": "${Nope}"}', LOCAL_SUBSTITUTIONS)).toThrow(
      /no substitution for \$\{Nope\}/,
    );
  });

  it.each(files)(
    '%s: every ECS task heartbeats, times out from the input, runs on Fargate, and every failure path is caught',
    (file) => {
      const definition = JSON.parse(readFileSync(path.join(STATE_MACHINES_DIR, file), 'utf8')) as {
        States: Record<string, Record<string, unknown>>;
      };
      const states: [string, Record<string, unknown>][] = [];
      const walk = (s: Record<string, Record<string, unknown>>) => {
        for (const [name, state] of Object.entries(s)) {
          states.push([name, state]);
          const inner = (
            state.ItemProcessor as { States?: Record<string, Record<string, unknown>> } | undefined
          )?.States;
          if (inner) walk(inner);
        }
      };
      walk(definition.States);
      const ecs = states.filter(([, s]) => s.Resource === 'arn:aws:states:::ecs:runTask.waitForTaskToken');
      // restore: the restore, then the post-restore check (of a logical restore, of an RDS copy).
      expect(ecs.length).toBe(file === 'restore.asl.json' ? 3 : 1);
      for (const [, s] of ecs) {
        expect(s).toMatchObject({
          HeartbeatSeconds: 300,
          TimeoutSecondsPath: expect.stringMatching(/timeoutSeconds$/) as string,
        });
        expect(s.Parameters).toMatchObject({ LaunchType: 'FARGATE', Cluster: '${ClusterArn}' });
        expect(JSON.stringify(s.Parameters)).toContain('$$.Task.Token');
      }
      // Every Task and Map state either catches States.ALL or is a notify step (whose own failure has its own Fail state).
      for (const [name, s] of states.filter(([, s]) => s.Type === 'Task' || s.Type === 'Map')) {
        const catches = (s.Catch as { ErrorEquals: string[] }[] | undefined) ?? [];
        expect(
          catches.some((c) => c.ErrorEquals.includes('States.ALL')),
          name,
        ).toBe(true);
      }
    },
  );
});
