/**
 * Idempotent pipeline steps (Powertools Idempotency, DynamoDB persistence): a step that writes is
 * keyed on its Step Functions execution id, so a retried invocation of the same execution returns the
 * first one's result instead of writing again (for `prepare`: a second `running` history record that
 * nothing would ever finish). A failed invocation leaves no record, so its retry runs the step anew.
 * The table: lib/constructs/idempotency-table.ts (same attribute names).
 */
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { Context } from 'aws-lambda';

/** How long a step's result is returned again: the longest an execution runs (the state machines' timeout). */
export const IDEMPOTENCY_SECONDS = 24 * 60 * 60;

export interface ExecutionIdempotency {
  /** The DynamoDB client (traced, in a Lambda). */
  readonly client: DynamoDBClient;
  /** The idempotency table (`COFRE_IDEMPOTENCY_TABLE`). */
  readonly tableName: string;
  /** @default IDEMPOTENCY_SECONDS */
  readonly expiresAfterSeconds?: number;
}

/**
 * `step`, idempotent per `event.executionId`: the first invocation of an execution runs it and stores
 * its (JSON) result; later ones with the same id return that result. The Lambda context, when given,
 * bounds how long an invocation in progress blocks a concurrent retry.
 */
export function idempotentPerExecution<E extends { readonly executionId: string }, R>(
  step: (event: E) => Promise<R>,
  idempotency: ExecutionIdempotency,
): (event: E, context?: Context) => Promise<R> {
  const persistenceStore = new DynamoDBPersistenceLayer({
    tableName: idempotency.tableName,
    awsSdkV3Client: idempotency.client,
    keyAttr: 'id',
    expiryAttr: 'expiration',
  });
  const config = new IdempotencyConfig({
    eventKeyJmesPath: 'executionId',
    expiresAfterSeconds: idempotency.expiresAfterSeconds ?? IDEMPOTENCY_SECONDS,
  });
  const run = (event: E, _context?: Context) => step(event);
  return makeIdempotent(run, { persistenceStore, config, keyPrefix: 'cofre' });
}
