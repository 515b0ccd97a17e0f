import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, type CofreConfigInput } from '../../lib/config';
import { exampleConfig } from '../helpers/cdk';

function problemsOf(filesTask: CofreConfigInput['filesTask']): string[] {
  try {
    parseConfig(exampleConfig((c) => ({ ...c, filesTask })));
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('filesTask (size of the Fargate files task of S3-compatible sources)', () => {
  it('defaults to 1 vCPU and 2 GiB, the size the files task had before it was configurable', () => {
    expect(parseConfig(exampleConfig()).filesTask).toEqual({ cpu: 1024, memoryMiB: 2048 });
  });

  it('accepts a larger size for a bucket of millions of objects', () => {
    expect(
      parseConfig(exampleConfig((c) => ({ ...c, filesTask: { cpu: 2048, memoryMiB: 6144 } }))).filesTask,
    ).toEqual({ cpu: 2048, memoryMiB: 6144 });
  });

  it.each([
    [
      { memoryMiB: 1024 },
      /^filesTask\.memoryMiB: expected 2048–8192 MiB in steps of 1024 for cpu 1024 \(Fargate task sizes\), got 1024$/,
    ],
    [
      // The default memory (2048) is too little for 2 vCPUs.
      { cpu: 2048 },
      /^filesTask\.memoryMiB: expected 4096–16384 MiB in steps of 1024 for cpu 2048 \(Fargate task sizes\), got 2048$/,
    ],
    [
      { cpu: 1000 },
      /^filesTask\.cpu: expected one of 256, 512, 1024, 2048, 4096, 8192, 16384 \(vCPU units, 1024 = 1 vCPU\), got 1000$/,
    ],
    [{ memoryMiB: 100 }, /^filesTask\.memoryMiB: expected between 512 and 122880 MiB, got 100$/],
    [
      { ephemeralStorageGiB: 50 } as CofreConfigInput['filesTask'],
      /^filesTask\.ephemeralStorageGiB: unknown field/,
    ],
  ])('rejects %o with one message naming the field', (filesTask, message) => {
    const problems = problemsOf(filesTask);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(message);
  });
});
