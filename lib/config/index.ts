import type { z } from 'zod';
import { configSchema, NOT_YET_SUPPORTED, type CofreConfig, type CofreConfigInput } from './schema';

export { configSchema, DATA_CLASS_DEFAULT, NOT_YET_SUPPORTED } from './schema';
export type { CofreConfig, CofreConfigInput, DatabaseConfig } from './schema';

/**
 * Types a configuration file without validating it: validation happens once, at the edge, in
 * {@link parseConfig} (called by `bin/cofre.ts`), so a bad file fails synth with every problem listed.
 */
export function defineConfig(config: CofreConfigInput): CofreConfigInput {
  return config;
}

/** A configuration that failed validation; `problems` has one line per problem, field path first. */
export class ConfigError extends Error {
  constructor(public readonly problems: readonly string[]) {
    super(
      `Invalid Cofre configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

/** Renders a zod issue path as `databases[0].network.subnetIds[1]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return (
    path.reduce<string>(
      (out, key) =>
        typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key),
      '',
    ) || '(config)'
  );
}

/** The values at a dotted path where `name[]` steps into every element of an array (`buckets[].prefixes`). */
function valuesAt(input: unknown, path: string): unknown[] {
  let values: unknown[] = [input];
  for (const part of path.split('.')) {
    const key = part.endsWith('[]') ? part.slice(0, -2) : part;
    values = values.flatMap((v): unknown[] => {
      const next = valueAt(v, [key]);
      return part.endsWith('[]') ? (Array.isArray(next) ? (next as unknown[]) : []) : [next];
    });
  }
  return values.filter((v) => v !== undefined);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>(
    (value, key) =>
      value !== null && typeof value === 'object' ? (value as Record<PropertyKey, unknown>)[key] : undefined,
    input,
  );
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys
      .map(
        (key) =>
          `${formatPath([...issue.path, key])}: unknown field (check the spelling against the configuration reference)`,
      )
      .join('\n');
  }
  if (issue.code === 'invalid_type' && valueAt(input, issue.path) === undefined) {
    return `${formatPath(issue.path)}: is required (${issue.message.replace(/^Invalid input: /, '')})`;
  }
  return `${formatPath(issue.path)}: ${issue.message}`;
}

/** Validates a configuration and fills in the defaults; throws {@link ConfigError} listing every problem. */
export function parseConfig(input: unknown): CofreConfig {
  const unsupported = Object.entries(NOT_YET_SUPPORTED)
    .filter(([path]) => valuesAt(input, path).length > 0)
    .map(
      ([path, feature]) =>
        `${path}: not yet supported (${feature} are not built yet); remove it, or Cofre would accept it and protect nothing`,
    );
  const result = configSchema.safeParse(input);
  if (!result.success || unsupported.length) {
    throw new ConfigError([
      ...unsupported,
      ...(result.error?.issues ?? [])
        .filter((issue) => !unsupported.some((u) => u.startsWith(`${formatPath(issue.path)}:`)))
        .flatMap((issue) => describeIssue(issue, input).split('\n')),
    ]);
  }
  return result.data;
}
