/**
 * The Lambdas' environment, read through Powertools Commons' env helpers (`getStringFromEnv`,
 * `getBooleanFromEnv`, `getNumberFromEnv`), with Cofre's one rule on top: a variable that is missing
 * or blank is a deployment mistake, and the error names it. (The Fargate dump runner is handed its
 * environment as an object, tasks/dump-runner/main.ts, and checks it with `requireEnv` from
 * ./lambda-support.ts.)
 */
import {
  getBooleanFromEnv,
  getNumberFromEnv,
  getStringFromEnv,
} from '@aws-lambda-powertools/commons/utils/env';
import type { z } from 'zod';

const notSet = (name: string) =>
  `environment variable ${name} is not set (the CDK construct sets it; was the function deployed by Cofre?)`;

/** The value of `name`, or an error naming the variable. */
export function requiredEnv(name: string): string {
  const value = getStringFromEnv({ key: name, errorMessage: notSet(name) });
  if (value === '') throw new Error(notSet(name));
  return value;
}

/** The value of `name`, or `undefined` when it is not set or blank. */
export function optionalEnv(name: string): string | undefined {
  return getStringFromEnv({ key: name, defaultValue: '' }) || undefined;
}

/**
 * The named variables, or one error naming every missing one. Read at module load by the pipeline
 * steps, so a misconfigured function fails on its first invocation with a message that says what to set.
 */
export function requiredEnvs<const K extends string>(names: readonly K[]): Record<K, string> {
  const missing = names.filter((n) => optionalEnv(n) === undefined);
  if (missing.length)
    throw new Error(
      `missing environment variable(s) ${missing.join(', ')}: the CDK stack sets them on the function (lib/constructs/backup-pipeline.ts)`,
    );
  return Object.fromEntries(names.map((n) => [n, requiredEnv(n)])) as Record<K, string>;
}

/** A JSON variable, parsed, or an error naming it. */
export function jsonEnv(name: string): unknown {
  const text = requiredEnv(name);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`environment variable ${name} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** A JSON variable checked against `schema`, or one error naming the variable and every problem in it. */
export function schemaEnv<T>(name: string, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(jsonEnv(name));
  if (!parsed.success)
    throw new Error(
      `environment variable ${name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/** `true` / `false`, or an error naming the variable. */
export function booleanEnv(name: string): boolean {
  requiredEnv(name);
  return getBooleanFromEnv({ key: name, errorMessage: notSet(name) });
}

/** A positive number, or an error naming the variable. */
export function numberEnv(name: string): number {
  const text = requiredEnv(name);
  const value = getNumberFromEnv({ key: name, errorMessage: notSet(name) });
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`environment variable ${name} must be a positive number, got "${text}"`);
  return value;
}

/** A positive whole number, or an error naming the variable. */
export function intEnv(name: string): number {
  const text = requiredEnv(name);
  const value = getNumberFromEnv({ key: name, errorMessage: notSet(name) });
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`environment variable ${name}: expected a positive whole number, got "${text}"`);
  return value;
}
