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
import type { LambdaInterface } from '@aws-lambda-powertools/commons/types';
import type { Context } from 'aws-lambda';
import { METRICS_NAMESPACE } from '../policy/metrics';
import { asNamedError } from './task-errors';

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

/**
 * A pipeline step as a Lambda handler, the Powertools way: `injectLambdaContext` (request id, cold
 * start, function name on every log line), `logMetrics` (metrics flushed after every invocation, also
 * a failed one) and `captureLambdaHandler` (the invocation's trace). The step's outcome is logged and a
 * failure rethrown as an error named for Step Functions (`Cofre.BadInput`, … from task-errors.ts).
 */
export function stepHandler<E, R>(
  pt: Powertools,
  name: string,
  step: (event: E) => Promise<R>,
): (event: E, context: Context) => Promise<R> {
  const { logger, metrics, tracer } = pt;
  class StepLambda implements LambdaInterface {
    @tracer.captureLambdaHandler()
    @logger.injectLambdaContext()
    @metrics.logMetrics()
    public async handler(event: E, _context: Context): Promise<R> {
      try {
        const result = await step(event);
        logger.info(`${name} done`);
        return result;
      } catch (error) {
        const named = asNamedError(error);
        logger.error(`${name} failed`, { errorName: named.name, errorMessage: named.message });
        throw named;
      }
    }
  }
  const lambda = new StepLambda();
  return (event, context) => lambda.handler(event, context);
}
