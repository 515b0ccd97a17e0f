import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import { FARGATE_SIZES } from '../../lib/config/schema';
import { exampleConfig } from '../helpers/cdk';

function problemsOf(dumpTask: CofreConfigInput['dumpTask']): string[] {
  try {
    parseConfig(exampleConfig((c) => ({ ...c, dumpTask })));
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('dumpTask (size of the Fargate dump task)', () => {
  it('defaults to 2 vCPU, 4 GiB and 50 GiB of ephemeral storage', () => {
    expect(parseConfig(exampleConfig()).dumpTask).toEqual({
      cpu: 2048,
      memoryMiB: 4096,
      ephemeralStorageGiB: 50,
    });
  });

  it('accepts every CPU with the smallest and largest memory Fargate allows for it', () => {
    for (const [cpu, { min, max }] of Object.entries(FARGATE_SIZES)) {
      for (const memoryMiB of [min, max]) {
        expect(
          parseConfig(exampleConfig((c) => ({ ...c, dumpTask: { cpu: Number(cpu), memoryMiB } }))).dumpTask,
        ).toMatchObject({ cpu: Number(cpu), memoryMiB });
      }
    }
  });

  it.each([
    [
      { cpu: 1000 },
      /^dumpTask\.cpu: expected one of 256, 512, 1024, 2048, 4096, 8192, 16384 \(vCPU units, 1024 = 1 vCPU\), got 1000$/,
    ],
    [
      { cpu: 1024, memoryMiB: 1024 },
      /^dumpTask\.memoryMiB: expected 2048–8192 MiB in steps of 1024 for cpu 1024 \(Fargate task sizes\), got 1024$/,
    ],
    [
      { cpu: 8192, memoryMiB: 18432 },
      /^dumpTask\.memoryMiB: expected 16384–61440 MiB in steps of 4096 for cpu 8192/,
    ],
    [{ memoryMiB: 4096.5 }, /^dumpTask\.memoryMiB: expected the task memory in MiB as a whole number$/],
    [{ memoryMiB: 100 }, /^dumpTask\.memoryMiB: expected between 512 and 122880 MiB, got 100$/],
    [{ ephemeralStorageGiB: 20 }, /^dumpTask\.ephemeralStorageGiB: expected between 21 and 200 GiB, got 20$/],
    [
      { ephemeralStorageGiB: 201 },
      /^dumpTask\.ephemeralStorageGiB: expected between 21 and 200 GiB, got 201$/,
    ],
    [{ swapMiB: 1 } as CofreConfigInput['dumpTask'], /^dumpTask\.swapMiB: unknown field/],
  ])('rejects %o, naming the field', (dumpTask, message) => {
    const problems = problemsOf(dumpTask);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });
});
