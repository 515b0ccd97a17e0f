/**
 * What the pipeline runtimes share: the metrics sink over Powertools Metrics, and the check of an
 * environment handed over as an object (the Fargate dump runner's). Lambdas read `process.env` through
 * ./env.ts (Powertools Commons); their handler wrapper is `lambdaHandler` in ./powertools.ts.
 */
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { DATABASE_DIMENSION, type MetricsSink } from '../policy/metrics';

/** The named variables of `env`, or one error naming every missing one. */
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
