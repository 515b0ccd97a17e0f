import { Logger } from '@aws-lambda-powertools/logger';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { beforeAll, expect, it } from 'vitest';
import { DynamoHistoryStore } from '../../core/history/store';
import type { HistoryRecord } from '../../core/history/records';
import { createRestoreStoppedHandler } from '../../lambdas/restore-stopped';
import {
  ACCOUNT,
  REGION,
  createHistoryTable,
  createTopicWithQueue,
  describeLocalAws,
  localAws,
  uniqueName,
  type TopicWithQueue,
} from '../helpers/local-aws';
import { withEnv } from '../helpers/env';

const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
const MACHINE = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:CofreRestore`;

/**
 * An EventBridge event in the shape AWS documents for "Step Functions Execution Status Change"
 * (Step Functions developer guide, "Step Functions events": envelope `source: aws.states`, detail with
 * executionArn, stateMachineArn, name, status, startDate/stopDate in epoch milliseconds, input as a
 * JSON string, inputDetails, output null, error/cause).
 */
function statusChange(
  name: string,
  status: 'ABORTED' | 'TIMED_OUT' | 'FAILED',
  input: unknown,
  extra: Record<string, unknown> = {},
) {
  return {
    version: '0',
    id: '315c1398-40ff-a850-213b-158f73e60175',
    'detail-type': 'Step Functions Execution Status Change',
    source: 'aws.states',
    account: ACCOUNT,
    time: '2026-11-28T23:10:00Z',
    region: REGION,
    resources: [`arn:aws:states:${REGION}:${ACCOUNT}:execution:CofreRestore:${name}`],
    detail: {
      executionArn: `arn:aws:states:${REGION}:${ACCOUNT}:execution:CofreRestore:${name}`,
      stateMachineArn: MACHINE,
      name,
      status,
      startDate: Date.parse('2026-11-28T23:00:00Z'),
      stopDate: Date.parse('2026-11-28T23:10:00Z'),
      input: JSON.stringify(input),
      inputDetails: { included: true },
      output: null,
      outputDetails: null,
      error: null,
      cause: null,
      ...extra,
    },
  };
}

describeLocalAws('restore-stopped Lambda (EventBridge execution status change, moto DynamoDB + SNS)', () => {
  let store: DynamoHistoryStore;
  let topic: TopicWithQueue;
  let handle: (event: unknown) => Promise<unknown>;

  beforeAll(async () => {
    const aws = localAws();
    const table = await createHistoryTable(aws.dynamodb);
    store = new DynamoHistoryStore(DynamoDBDocumentClient.from(aws.dynamodb), table);
    topic = await createTopicWithQueue(aws.sns, aws.sqs, 'restore-stopped');
    handle = withEnv({ COFRE_TOPIC_ARN: topic.topicArn, AWS_REGION: REGION }, () =>
      createRestoreStoppedHandler({
        history: store,
        sns: aws.sns,
        logger,
      }),
    );
  });

  async function running(database: string, name: string, id: string): Promise<HistoryRecord> {
    const record: HistoryRecord = {
      id,
      kind: 'restore',
      database,
      status: 'running',
      startedAt: '2026-11-28T23:00:01.000Z',
      message: `database restore of backup X into ${database}_copy`,
      requestedBy: 'alice',
      executionArn: `arn:aws:states:${REGION}:${ACCOUNT}:execution:CofreRestore:${name}`,
    };
    await store.put(record);
    return record;
  }

  it('marks the running record of an ABORTED execution failed, with the reason, and notifies', async () => {
    const database = uniqueName('db');
    const name = uniqueName('exec');
    // Another execution of the same database, still running: must not be touched.
    await running(database, uniqueName('other'), '20261128T230000000Z-00000001');
    await running(database, name, '20261128T230001000Z-00000002');
    await handle(statusChange(name, 'ABORTED', { kind: 'database', database, backup: 'latest' }));

    const failed = await store.recent(database, 'restore', 'failed', 10);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      id: '20261128T230001000Z-00000002',
      status: 'failed',
      finishedAt: '2026-11-28T23:10:00.000Z',
      requestedBy: 'alice',
    });
    expect(failed[0]!.message).toMatch(
      new RegExp(
        `^restore execution ${name} stopped at 2026-11-28T23:10:00.000Z: the restore did not finish`,
      ),
    );
    const still = await store.recent(database, 'restore', 'running', 10);
    expect(still.map((r) => r.id)).toEqual(['20261128T230000000Z-00000001']);

    const [received, ...more] = await topic.receive(2);
    expect(more).toEqual([]);
    expect(received!.subject).toMatch(/FAILED/);
    expect(received!.message).toMatch(/Cofre\.RestoreStopped/);
    expect(received!.message).toMatch(new RegExp(`restore execution ${name} stopped`));
    expect(received!.attributes).toMatchObject({ database: { Value: database } });
  });

  it('marks a TIMED_OUT execution failed with the timeout as the reason', async () => {
    const database = uniqueName('db');
    const name = uniqueName('exec');
    await running(database, name, '20261128T230002000Z-00000003');
    await handle(
      statusChange(
        name,
        'TIMED_OUT',
        { kind: 'table', database, backup: 'latest', table: 't' },
        {
          error: 'States.Timeout',
        },
      ),
    );
    const [failed] = await store.recent(database, 'restore', 'failed', 10);
    expect(failed!.message).toMatch(/timed out \(the state machine timeout\) at .*\(States\.Timeout\)/);
    expect(await store.recent(database, 'restore', 'running', 10)).toEqual([]);
    const [received] = await topic.receive(2);
    expect(received!.message).toMatch(/Cofre\.RestoreTimedOut/);
  });

  it('a stop before the validation wrote a record writes it failed (a late running write of the validation is refused) and is notified', async () => {
    const database = uniqueName('db');
    const name = uniqueName('exec');
    await handle(statusChange(name, 'ABORTED', { kind: 'database', database }));
    const [failed] = await store.recent(database, 'restore', 'failed', 10);
    expect(failed).toMatchObject({ status: 'failed', database });
    expect(failed!.message).toMatch(/stopped before its validation had recorded it/);
    expect(await store.putUnlessFinished({ ...failed!, status: 'running', finishedAt: undefined })).toBe(
      false,
    );
    expect(await store.recent(database, 'restore', 'running', 10)).toEqual([]);
    const [received] = await topic.receive(2);
    expect(received!.message).toMatch(/no running history record of this execution was found/);
  });

  it('rejects an event that is not a stop (FAILED runs the Catch) or not from Step Functions', async () => {
    await expect(handle(statusChange('x', 'FAILED', {}))).rejects.toThrow(
      /not a stopped Step Functions execution event: detail\.status: /,
    );
    await expect(handle({ source: 'aws.backup', detail: {} })).rejects.toThrow(/source: /);
    expect(await topic.receive(1)).toEqual([]);
  });
});
