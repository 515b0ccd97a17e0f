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

/** What a handler factory returns: the invocation's work, given the event (and the Lambda context). */
export type Handle<E, R> = (event: E, context: Context) => Promise<R>;

export interface LambdaHandlerOptions {
  /**
   * Rethrow a failure as an error named for Step Functions (`Cofre.BadInput`, … from
   * task-errors.ts), for the states that catch and retry by name.
   * @default false (the error as thrown: EventBridge, SNS and scheduled invocations retry it as is)
   */
  readonly namedErrors?: boolean;
}

/**
 * Every Cofre Lambda handler, the Powertools way: `injectLambdaContext` (request id, cold start,
 * function name on every log line), `logMetrics` (metrics flushed after every invocation, also a
 * failed one) and `captureLambdaHandler` (the invocation's trace) around the function `build` returns.
 *
 * `build` is the handler's factory applied to its dependencies (`() => createNotifyHandler({...})`):
 * it runs once, on the first invocation, so a missing environment variable fails that invocation with
 * the factory's message in the log; a factory that failed is built again on the next one. The outcome
 * is logged as `<name> done` / `<name> failed`.
 */
export function lambdaHandler<E, R>(
  pt: Powertools,
  name: string,
  build: () => Handle<E, R> | Promise<Handle<E, R>>,
  options: LambdaHandlerOptions = {},
): (event: E, context: Context) => Promise<R> {
  const { logger, metrics, tracer } = pt;
  let built: Promise<Handle<E, R>> | undefined;
  const handle = (): Promise<Handle<E, R>> =>
    (built ??= Promise.resolve()
      .then(build)
      .catch((error: unknown) => {
        built = undefined;
        throw error;
      }));
  class CofreLambda implements LambdaInterface {
    @tracer.captureLambdaHandler()
    @logger.injectLambdaContext()
    @metrics.logMetrics()
    public async handler(event: E, context: Context): Promise<R> {
      try {
        const result = await (await handle())(event, context);
        logger.info(`${name} done`);
        return result;
      } catch (error) {
        const thrown = options.namedErrors ? asNamedError(error) : error;
        const { name: errorName, message: errorMessage } =
          thrown instanceof Error ? thrown : { name: 'Error', message: String(thrown) };
        logger.error(`${name} failed`, { errorName, errorMessage });
        throw thrown;
      }
    }
  }
  const lambda = new CofreLambda();
  return (event, context) => lambda.handler(event, context);
}

/**
 * A pipeline step (a Step Functions task state) as a Lambda handler: `lambdaHandler` with its failure
 * rethrown as an error named for Step Functions.
 */
export function stepHandler<E, R>(
  pt: Powertools,
  name: string,
  step: Handle<E, R>,
): (event: E, context: Context) => Promise<R> {
  return lambdaHandler(pt, name, () => step, { namedErrors: true });
}
