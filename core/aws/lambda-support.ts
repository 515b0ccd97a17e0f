/**
 * What every pipeline Lambda handler shares: reading its environment (failing loudly), the metrics
 * sink over Powertools Metrics, and running a step so that its error reaches Step Functions with
 * the name the ASL catches (`errorType`).
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { DATABASE_DIMENSION, type MetricsSink } from '../policy/metrics';
import { asNamedError } from './task-errors';

/**
 * The named environment variables, or one error naming every missing one. Called at module load,
 * so a misconfigured function fails on its first invocation with a message that says what to set.
 */
export function requireEnv<const K extends string>(
  env: NodeJS.ProcessEnv,
  names: readonly K[],
): Record<K, string> {
  const missing = names.filter((n) => !env[n]);
  if (missing.length)
    throw new Error(
      `missing environment variable(s) ${missing.join(', ')}: the CDK stack sets them on the function (lib/constructs/backup-pipeline.ts)`,
    );
  return Object.fromEntries(names.map((n) => [n, env[n]!])) as Record<K, string>;
}

/** A whole number from an environment variable, or an error naming it. */
export function intEnv(env: Record<string, string>, name: string): number {
  const value = Number(env[name]);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`environment variable ${name}: expected a positive whole number, got "${env[name]}"`);
  return value;
}

/** Metrics as EMF through Powertools, with the `Database` dimension only (no `service`). */
export function powertoolsSink(metrics: Metrics): MetricsSink {
  metrics.clearDefaultDimensions();
  return {
    emit(database, data) {
      metrics.addDimension(DATABASE_DIMENSION, database);
      for (const d of data) metrics.addMetric(d.name, d.unit, d.value);
    },
  };
}

/**
 * Runs one step: logs its outcome, flushes metrics, and rethrows a failure as an error named for
 * Step Functions (`Cofre.BadInput`, `Cofre.VerifyFailed`, …).
 */
export async function runStep<T>(
  name: string,
  logger: Logger,
  metrics: Metrics,
  step: () => Promise<T>,
): Promise<T> {
  try {
    const result = await step();
    logger.info(`${name} done`);
    return result;
  } catch (error) {
    const named = asNamedError(error);
    logger.error(`${name} failed`, { errorName: named.name, errorMessage: named.message });
    throw named;
  } finally {
    metrics.publishStoredMetrics();
  }
}
