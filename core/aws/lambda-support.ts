/**
 * What every pipeline Lambda handler shares: reading its environment (failing loudly), the metrics
 * sink over Powertools Metrics. The handler wrapper (Powertools decorators, error naming) is
 * `stepHandler` in ./powertools.ts.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { DATABASE_DIMENSION, type MetricsSink } from '../policy/metrics';

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
