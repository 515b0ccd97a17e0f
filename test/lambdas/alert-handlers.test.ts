import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import {
  CloudWatchClient,
  DescribeAlarmHistoryCommand,
  GetMetricDataCommand,
} from '@aws-sdk/client-cloudwatch';
import { PutSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SNSClient } from '@aws-sdk/client-sns';
import type { SNSEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_PRICES } from '../../core/alerts/report';
import { FileHistoryStore } from '../../core/history/store';
import { createFreshnessHandler } from '../../lambdas/freshness';
import { createMonthlyReportHandler } from '../../lambdas/monthly-report';
import { createNotifyHandler } from '../../lambdas/notify';
import { createPagerDutyHandler, routingKeyOf } from '../../lambdas/pagerduty';
import { tempDir } from '../helpers/cli';
import {
  clientConfig,
  createSecret,
  createTopicWithQueue,
  describeLocalAws,
  localAws,
  type TopicWithQueue,
} from '../helpers/local-aws';
import { withEnv } from '../helpers/env';

const logger = new Logger({ serviceName: 'test', logLevel: 'SILENT' });
// CloudWatch's alarm history is not in the local AWS (moto): the monthly report's CloudWatch reads
// are the one AWS API mocked here. SNS, SQS and Secrets Manager are moto's.
const cloudwatch = mockClient(CloudWatchClient);
beforeEach(() => {
  cloudwatch.reset();
});

describeLocalAws('notify handler (local AWS: SNS read back through SQS)', () => {
  let topic: TopicWithQueue;
  let env: Record<string, string>;
  beforeAll(async () => {
    const aws = localAws();
    topic = await createTopicWithQueue(aws.sns, aws.sqs);
    env = {
      COFRE_TOPIC_ARN: topic.topicArn,
      COFRE_NOTIFY_ON_SUCCESS: 'false',
      AWS_REGION: 'sa-east-1',
      COFRE_VAULT_URL: 's3://acme-cofre-vault',
    };
  });

  it('publishes the formatted message with string message attributes to the topic', async () => {
    const handle = withEnv(env, () => createNotifyHandler({ sns: new SNSClient(clientConfig()), logger }));
    const result = await handle({
      outcome: 'failed',
      job: 'backup-database',
      database: 'app-prod',
      kind: 'full',
    });
    expect(result).toEqual({
      subject: '[Cofre] FAILED full backup app-prod (sa-east-1)',
      audience: 'people',
    });
    const [received, ...more] = await topic.receive(2);
    expect(more).toEqual([]);
    expect(received!.subject).toBe('[Cofre] FAILED full backup app-prod (sa-east-1)');
    expect(received!.message).toMatch(/npx cofre list --vault s3:\/\/acme-cofre-vault/);
    expect(received!.attributes).toEqual({
      severity: { Type: 'String', Value: 'critical' },
      database: { Type: 'String', Value: 'app-prod' },
      kind: { Type: 'String', Value: 'full' },
      outcome: { Type: 'String', Value: 'failed' },
      job: { Type: 'String', Value: 'backup-database' },
      audience: { Type: 'String', Value: 'people' },
    });
  });

  it('rejects a malformed event naming the field, and a missing variable naming it', async () => {
    const handle = withEnv(env, () => createNotifyHandler({ sns: new SNSClient(clientConfig()), logger }));
    await expect(handle({ outcome: 'failed', job: 'backup-database', kind: 'full' })).rejects.toThrow(
      /database: /,
    );
    expect(await topic.receive(1)).toEqual([]);
    expect(() =>
      withEnv({ ...env, COFRE_TOPIC_ARN: '' }, () =>
        createNotifyHandler({
          sns: new SNSClient(clientConfig()),
          logger,
        }),
      ),
    ).toThrow(/COFRE_TOPIC_ARN is not set/);
  });
});

describeLocalAws('pagerduty handler (local AWS: Secrets Manager)', () => {
  let server: Server;
  let bodies: unknown[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      let data = '';
      req.on('data', (c: Buffer) => (data += c.toString()));
      req.on('end', () => {
        bodies.push(JSON.parse(data));
        res.writeHead(202).end('{"status":"success"}');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });
  afterEach(() => {
    bodies = [];
  });

  const snsEvent = (attributes: Record<string, string>, message = 'body'): SNSEvent =>
    ({
      Records: [
        {
          Sns: {
            Subject: '[Cofre] FAILED full backup app-prod (sa-east-1)',
            Message: message,
            MessageAttributes: Object.fromEntries(
              Object.entries(attributes).map(([k, v]) => [k, { Type: 'String', Value: v }]),
            ),
          },
        },
      ],
    }) as unknown as SNSEvent;

  it('reads the routing key from Secrets Manager once per container and relays trigger then resolve', async () => {
    const secretArn = await createSecret(localAws().secrets, { routingKey: 'KEY-FROM-SECRET' }, 'pagerduty');
    const client = new SecretsManagerClient(clientConfig());
    let reads = 0;
    client.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'GetSecretValueCommand') reads++;
        return next(args);
      },
      { step: 'initialize', name: 'countSecretReads' },
    );
    const handle = withEnv(
      {
        COFRE_PAGERDUTY_SECRET_ARN: secretArn,
        COFRE_PAGERDUTY_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/enqueue`,
      },
      () =>
        createPagerDutyHandler({
          secrets: client,
          logger,
        }),
    );
    const attrs = {
      severity: 'critical',
      database: 'app-prod',
      kind: 'full',
      outcome: 'failed',
      job: 'backup-database',
    };
    await handle(snsEvent(attrs));
    await handle(snsEvent({ ...attrs, severity: 'info', outcome: 'succeeded' }));
    expect(bodies).toMatchObject([
      {
        routing_key: 'KEY-FROM-SECRET',
        event_action: 'trigger',
        dedup_key: 'cofre:backup-database:app-prod',
      },
      {
        routing_key: 'KEY-FROM-SECRET',
        event_action: 'resolve',
        dedup_key: 'cofre:backup-database:app-prod',
      },
    ]);
    expect(reads).toBe(1);
  });

  it('keeps the routing key for maxAge (Parameters), then reads the rotated one', async () => {
    const secrets = localAws().secrets;
    const secretArn = await createSecret(secrets, { routingKey: 'KEY-BEFORE' }, 'pagerduty-rotated');
    const client = new SecretsManagerClient(clientConfig());
    let reads = 0;
    client.middlewareStack.add(
      (next, context) => (args) => {
        if (context.commandName === 'GetSecretValueCommand') reads++;
        return next(args);
      },
      { step: 'initialize', name: 'countSecretReads' },
    );
    const handle = withEnv(
      {
        COFRE_PAGERDUTY_SECRET_ARN: secretArn,
        COFRE_PAGERDUTY_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/enqueue`,
      },
      () =>
        createPagerDutyHandler({
          secrets: client,
          logger,
          keyMaxAgeSeconds: 1,
        }),
    );
    const attrs = {
      severity: 'critical',
      database: 'app-prod',
      kind: 'full',
      outcome: 'failed',
      job: 'backup-database',
    };
    await handle(snsEvent(attrs));
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: secretArn,
        SecretString: JSON.stringify({ routingKey: 'KEY-AFTER' }),
      }),
    );
    await handle(snsEvent(attrs)); // within maxAge: the cached key
    expect(reads).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    await handle(snsEvent(attrs)); // after maxAge: read again
    expect(reads).toBe(2);
    expect(bodies.map((b) => (b as { routing_key: string }).routing_key)).toEqual([
      'KEY-BEFORE',
      'KEY-BEFORE',
      'KEY-AFTER',
    ]);
  });

  it('accepts a plain-string routing key and refuses an empty one, naming the secret', () => {
    expect(routingKeyOf('  abc123  \n', 'arn:s')).toBe('abc123');
    expect(routingKeyOf('{"routing_key":"k2"}', 'arn:s')).toBe('k2');
    expect(() => routingKeyOf('{"other":1}', 'arn:aws:secretsmanager:x')).toThrow(
      /secret arn:aws:secretsmanager:x holds no PagerDuty routing key/,
    );
  });
});

describe('freshness handler', () => {
  it('emits one EMF line per datapoint in namespace Cofre with exactly the alarm dimensions', async () => {
    const store = new FileHistoryStore(tempDir('fresh-handler'));
    await store.put({
      id: 'a',
      kind: 'full',
      database: 'app-prod',
      status: 'succeeded',
      startedAt: '2026-11-24T04:00:00.000Z',
      finishedAt: '2026-11-24T04:30:00.000Z',
      requestedBy: 'schedule',
    });
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const handle = withEnv(
        {
          COFRE_DATABASES: JSON.stringify([
            { database: 'app-prod', tenants: true },
            { database: 'ledger-prod', tenants: false },
          ]),
          COFRE_MAX_DURATION_MINUTES: '30',
          COFRE_RESTORE_TEST_MAX_AGE_DAYS: '36',
        },
        () =>
          createFreshnessHandler({
            store,
            logger,
            metrics: new Metrics({ namespace: 'Cofre', serviceName: 'cofre-freshness' }),
            now: () => new Date('2026-11-24T06:30:00.000Z'),
          }),
      );
      const result = await handle();
      expect(result).toEqual({ findings: 5, datapoints: 1, stale: 4 });
    } finally {
      spy.mockRestore();
    }
    const emf = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: 'Cofre', Dimensions: [['Database', 'Kind']] }] },
      Database: 'app-prod',
      Kind: 'full',
      HoursSinceLastGoodBackup: 2,
    });
    expect(emf[0]).not.toHaveProperty('service');
  });

  it('with configuration snapshots deployed, also emits HoursSinceLastGoodConfigSnapshot without dimensions', async () => {
    const store = new FileHistoryStore(tempDir('fresh-config'));
    await store.put({
      id: 'config-1',
      kind: 'config',
      status: 'succeeded',
      startedAt: '2026-11-24T03:00:00.000Z',
      finishedAt: '2026-11-24T03:30:00.000Z',
      requestedBy: 'schedule',
    });
    const lines: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      lines.push(String(chunk));
      return true;
    });
    try {
      const result = await withEnv(
        {
          COFRE_DATABASES: '[]',
          COFRE_MAX_DURATION_MINUTES: '30',
          COFRE_RESTORE_TEST_MAX_AGE_DAYS: '36',
          COFRE_CONFIG_SNAPSHOT_MAX_AGE_HOURS: '169',
        },
        () =>
          createFreshnessHandler({
            store,
            logger,
            metrics: new Metrics({ namespace: 'Cofre', serviceName: 'cofre-freshness' }),
            now: () => new Date('2026-11-24T06:30:00.000Z'),
          }),
      )();
      expect(result).toEqual({ findings: 1, datapoints: 1, stale: 0 });
    } finally {
      spy.mockRestore();
    }
    const emf = lines
      .flatMap((l) => l.split('\n'))
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Namespace: 'Cofre', Dimensions: [[]] }] },
      HoursSinceLastGoodConfigSnapshot: 3,
    });
  });

  it('refuses a malformed database list, naming the variable', () => {
    expect(() =>
      withEnv(
        {
          COFRE_DATABASES: '[{"database":""}]',
          COFRE_MAX_DURATION_MINUTES: '30',
          COFRE_RESTORE_TEST_MAX_AGE_DAYS: '36',
        },
        () =>
          createFreshnessHandler({
            store: new FileHistoryStore(tempDir('fresh-bad')),
            logger,
            metrics: new Metrics({ namespace: 'Cofre' }),
          }),
      ),
    ).toThrow(/COFRE_DATABASES: 0\.database: /);
  });
});

describeLocalAws('monthly report handler (SNS on the local AWS, CloudWatch mocked)', () => {
  it('reports the previous month from history, vault metrics and alarm history, and publishes it', async () => {
    const aws = localAws();
    const topic = await createTopicWithQueue(aws.sns, aws.sqs, 'report');
    const store = new FileHistoryStore(tempDir('report-handler'));
    await store.put({
      id: 'oct-1',
      kind: 'full',
      database: 'app-prod',
      status: 'succeeded',
      startedAt: '2026-10-15T05:00:00.000Z',
      finishedAt: '2026-10-15T05:10:00.000Z',
      bytes: 1024 ** 3,
      requestedBy: 'schedule',
    });
    await store.put({
      id: 'nov-1',
      kind: 'full',
      database: 'app-prod',
      status: 'failed',
      startedAt: '2026-11-01T05:00:00.000Z',
      requestedBy: 'schedule',
    });
    cloudwatch.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: 'm0', Values: [100 * 1024 ** 3, 99 * 1024 ** 3] }, // StandardStorage, newest first
        { Id: 'm4', Values: [1000 * 1024 ** 3] }, // GlacierStorage
      ],
    });
    cloudwatch.on(DescribeAlarmHistoryCommand).resolves({
      AlarmHistoryItems: [
        {
          AlarmName: 'CofrePrimary-AlertsFresh-1',
          HistorySummary: 'Alarm updated from OK to ALARM',
          Timestamp: new Date('2026-10-20T03:00:00Z'),
        },
        {
          AlarmName: 'CofrePrimary-AlertsFresh-1',
          HistorySummary: 'Alarm updated from ALARM to OK',
          Timestamp: new Date('2026-10-20T04:00:00Z'),
        },
        {
          AlarmName: 'SomeoneElse-Alarm',
          HistorySummary: 'Alarm updated from OK to ALARM',
          Timestamp: new Date('2026-10-21T03:00:00Z'),
        },
      ],
    });
    const handle = withEnv(
      {
        COFRE_TOPIC_ARN: topic.topicArn,
        COFRE_VAULT_BUCKET: 'acme-cofre-vault',
        COFRE_PRICES: JSON.stringify(DEFAULT_PRICES),
        COFRE_ALARM_PREFIX: 'CofrePrimary-',
        AWS_REGION: 'sa-east-1',
      },
      () =>
        createMonthlyReportHandler({
          store,
          cloudwatch: new CloudWatchClient({}),
          sns: new SNSClient(clientConfig()),
          logger,
          now: () => new Date('2026-11-01T11:00:00.000Z'),
        }),
    );
    expect(await handle(undefined)).toEqual({ month: '2026-10', runs: 1 });
    const query = cloudwatch.commandCalls(GetMetricDataCommand)[0]!.args[0].input;
    expect(query.MetricDataQueries![0]!.MetricStat!.Metric).toEqual({
      Namespace: 'AWS/S3',
      MetricName: 'BucketSizeBytes',
      Dimensions: [
        { Name: 'BucketName', Value: 'acme-cofre-vault' },
        { Name: 'StorageType', Value: 'StandardStorage' },
      ],
    });
    const [published] = await topic.receive(2);
    expect(published!.subject).toBe('[Cofre] Monthly report 2026-10 (sa-east-1)');
    expect(published!.attributes).toEqual({
      severity: { Type: 'String', Value: 'info' },
      job: { Type: 'String', Value: 'monthly-report' },
      audience: { Type: 'String', Value: 'people' },
    });
    expect(published!.message).toMatch(
      /app-prod full backups\s+1\s+1\s+0\s+0\s+100 %\s+1\.00 GiB\s+10 min 00 s/,
    );
    expect(published!.message).toMatch(/Alarms raised: 1\n {2}2026-10-20 03:00 CofrePrimary-AlertsFresh-1\n/);
    expect(published!.message).toMatch(/STANDARD\s+100\.00 GiB\s+0\.0405\s+4\.05/);
    expect(published!.message).toMatch(/GLACIER\s+1000\.00 GiB\s+0\.0072\s+7\.20/);
  });
});
