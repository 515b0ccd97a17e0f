/** Environment variables of the alert Lambdas, read through one helper that fails loudly. */

/** The value of `name`, or an error naming the variable (a deployment mistake, not a runtime state). */
export function requiredEnv(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (value === undefined || value.trim() === '')
    throw new Error(
      `environment variable ${name} is not set (the CDK construct sets it; was the function deployed by Cofre?)`,
    );
  return value;
}

/** A JSON environment variable, parsed, or an error naming it. */
export function jsonEnv(env: NodeJS.ProcessEnv, name: string): unknown {
  const text = requiredEnv(env, name);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new Error(`environment variable ${name} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** `true` / `false`, or an error naming the variable. */
export function booleanEnv(env: NodeJS.ProcessEnv, name: string): boolean {
  const value = requiredEnv(env, name);
  if (value !== 'true' && value !== 'false')
    throw new Error(`environment variable ${name} must be "true" or "false", got "${value}"`);
  return value === 'true';
}

/** A positive number, or an error naming the variable. */
export function numberEnv(env: NodeJS.ProcessEnv, name: string): number {
  const value = Number(requiredEnv(env, name));
  if (!Number.isFinite(value) || value <= 0)
    throw new Error(`environment variable ${name} must be a positive number, got "${env[name]}"`);
  return value;
}
