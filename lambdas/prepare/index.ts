/**
 * Lambda `prepare`: starts a job run (see core/aws/steps.ts `prepare`), idempotent per Step Functions
 * execution (core/aws/idempotency.ts): a retried prepare returns the first result, so it never leaves
 * a second, orphaned `running` history record.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { DynamoHistoryStore } from '../../core/history/store';
import { requiredEnvs } from '../../core/aws/env';
import { idempotentPerExecution, type ExecutionIdempotency } from '../../core/aws/idempotency';
import { prepare, type PrepareEvent, type PrepareResult, type StepHistory } from '../../core/aws/steps';
import { lambdaHandler, powertools } from '../../core/aws/powertools';

export interface PrepareHandlerDeps {
  readonly history: StepHistory;
  readonly idempotency: ExecutionIdempotency;
  readonly logger: Logger;
}

/** The handler, with its clients passed in (tests use the local AWS, moto). */
export function createPrepareHandler(
  deps: PrepareHandlerDeps,
): (event: PrepareEvent, context?: Context) => Promise<PrepareResult> {
  const step = idempotentPerExecution(
    (event: PrepareEvent) => prepare(event, { history: deps.history }),
    deps.idempotency,
  );
  return (event, context) => {
    deps.logger.appendKeys({ job: event.job, executionId: event.executionId });
    return step(event, context);
  };
}

const pt = powertools('cofre-prepare');

export const handler = lambdaHandler(
  pt,
  'prepare',
  () => {
    const env = requiredEnvs(['COFRE_HISTORY_TABLE', 'COFRE_IDEMPOTENCY_TABLE']);
    const client = pt.traced(new DynamoDBClient({}));
    return createPrepareHandler({
      history: new DynamoHistoryStore(DynamoDBDocumentClient.from(client), env.COFRE_HISTORY_TABLE),
      idempotency: { client, tableName: env.COFRE_IDEMPOTENCY_TABLE },
      logger: pt.logger,
    });
  },
  { namedErrors: true },
);
