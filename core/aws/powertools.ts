/**
 * The one place every Lambda (and the Fargate dump task) gets its Powertools from: a Logger, the
 * Metrics in the `Cofre` namespace (core/policy/metrics.ts) and a Tracer, all under one service name.
 *
 * Tracing is active on every function (lib/constructs/cofre-function.ts); `traced()` makes each AWS
 * SDK v3 call a subsegment of the invocation's trace. Outside Lambda (tests, the CLI) the Tracer is
 * disabled and `traced()` returns the client untouched.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Tracer } from '@aws-lambda-powertools/tracer';
import { METRICS_NAMESPACE } from '../policy/metrics';

export interface Powertools {
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly tracer: Tracer;
  /** The client, its calls traced as subsegments (the client itself, so it stays fully typed). */
  readonly traced: <T>(client: T) => T;
}

/** Logger, Metrics and Tracer of one function, named `serviceName` (e.g. `cofre-prepare`). */
export function powertools(serviceName: string): Powertools {
  const tracer = new Tracer({ serviceName });
  return {
    logger: new Logger({ serviceName }),
    metrics: new Metrics({ namespace: METRICS_NAMESPACE, serviceName }),
    tracer,
    traced: (client) => tracer.captureAWSv3Client(client),
  };
}
