import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { notify, type AlertMessage, type NotifyEvent } from '../../../core/alerts/notify';
import {
  alarmSeverity,
  PagerDutyRejectedError,
  relayToPagerDuty,
  type AlertLog,
  type SnsAlert,
} from '../../../core/alerts/pagerduty';

/** A local stand-in for events.pagerduty.com: records every request, answers from a script. */
interface Received {
  method: string;
  path: string;
  contentType: string | undefined;
  body: unknown;
}
let server: Server;
let endpoint: string;
let received: Received[] = [];
let script: { status: number; body: unknown }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      received.push({
        method: req.method ?? '',
        path: req.url ?? '',
        contentType: req.headers['content-type'],
        body: JSON.parse(data) as unknown,
      });
      const next = script.shift() ?? {
        status: 202,
        body: { status: 'success', message: 'Event processed', dedup_key: 'x' },
      };
      if (next.status === -1) {
        req.socket.destroy(); // a network error
        return;
      }
      res.writeHead(next.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(next.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/enqueue`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(() => {
  received = [];
  script = [];
});

const ROUTING_KEY = 'R0UT1NGKEY0123456789ABCDEFGHIJKL';

function recordingLog() {
  const lines: { level: string; message: string; extra?: Record<string, unknown> }[] = [];
  const log: AlertLog = {
    info: (message, extra) => lines.push({ level: 'info', message, extra }),
    warn: (message, extra) => lines.push({ level: 'warn', message, extra }),
    error: (message, extra) => lines.push({ level: 'error', message, extra }),
  };
  return { log, lines };
}

const delays: number[] = [];
const options = (log?: AlertLog) => ({
  endpoint,
  baseDelayMs: 5,
  log,
  sleep: (ms: number) => {
    delays.push(ms);
    return new Promise<void>((r) => setTimeout(r, ms));
  },
});

/** What SNS would deliver for a pipeline event: the notify core's own message. */
async function snsAlertOf(event: NotifyEvent): Promise<SnsAlert> {
  let message: AlertMessage | undefined;
  await notify(event, {
    publish: (m) => {
      message = m;
      return Promise.resolve();
    },
    notifyOnSuccess: false,
    region: 'sa-east-1',
  });
  return { subject: message!.subject, message: message!.body, attributes: message!.attributes };
}

const EXECUTION = 'arn:aws:states:sa-east-1:111111111111:execution:BackupDatabase:run-1';
const failed: NotifyEvent = {
  outcome: 'failed',
  job: 'backup-database',
  database: 'app-prod',
  kind: 'full',
  executionArn: EXECUTION,
  error: 'States.TaskFailed',
  cause: 'pg_dump exited with code 1',
};

describe('PagerDuty Events API v2 (against a local server)', () => {
  it('a critical pipeline failure triggers with the exact payload and dedup key cofre:<job>:<database>', async () => {
    const alert = await snsAlertOf(failed);
    const outcome = await relayToPagerDuty(alert, ROUTING_KEY, options());
    expect(outcome).toMatchObject({ result: { status: 202, attempts: 1 } });
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      method: 'POST',
      path: '/v2/enqueue',
      contentType: 'application/json',
    });
    const consoleUrl = `https://sa-east-1.console.aws.amazon.com/states/home?region=sa-east-1#/v2/executions/details/${EXECUTION}`;
    expect(received[0]!.body).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'cofre:backup-database:app-prod',
      payload: {
        summary: '[Cofre] FAILED full backup app-prod (sa-east-1)',
        source: 'cofre:app-prod',
        severity: 'critical',
        component: 'app-prod',
        group: 'backup-database',
        class: 'full',
        custom_details: {
          message: alert.message,
          severity: 'critical',
          database: 'app-prod',
          kind: 'full',
          outcome: 'failed',
          job: 'backup-database',
          audience: 'people',
        },
      },
      client: 'Cofre',
      client_url: consoleUrl,
      links: [{ href: consoleUrl, text: 'Step Functions execution' }],
    });
  });

  it('the next success of the same job and database resolves the same dedup key (even when not e-mailed)', async () => {
    const alert = await snsAlertOf({ ...failed, outcome: 'succeeded', error: undefined, cause: undefined });
    expect(alert.attributes.audience).toBe('pagerduty');
    await relayToPagerDuty(alert, ROUTING_KEY, options());
    expect(received.map((r) => r.body)).toEqual([
      { routing_key: ROUTING_KEY, event_action: 'resolve', dedup_key: 'cofre:backup-database:app-prod' },
    ]);
  });

  it('warnings (a skipped run) and messages that are neither pipeline nor alarm never reach PagerDuty', async () => {
    const skipped = await relayToPagerDuty(
      await snsAlertOf({ ...failed, outcome: 'skipped' }),
      ROUTING_KEY,
      options(),
    );
    expect(skipped).toEqual({
      ignored: expect.stringMatching(/warning skipped message for cofre:backup-database:app-prod/) as string,
    });
    const report = await relayToPagerDuty(
      {
        subject: '[Cofre] Monthly report',
        message: 'text',
        attributes: { severity: 'info', job: 'monthly-report' },
      },
      ROUTING_KEY,
      options(),
    );
    expect(report).toHaveProperty('ignored');
    expect(received).toEqual([]);
  });

  it('CloudWatch alarms: ALARM triggers cofre:alarm:<name> with the [high] tag as severity error, OK resolves it', async () => {
    const alarm = {
      AlarmName: 'CofrePrimary-AlertsRestoreTestAppProd-1A2B3C',
      AlarmDescription: '[high] app-prod: no good restore test for 36 days',
      AWSAccountId: '111111111111',
      NewStateValue: 'ALARM',
      NewStateReason: 'Threshold Crossed: 2 datapoints were greater than the threshold (36.0).',
      StateChangeTime: '2026-12-08T10:05:00.000+0000',
      Region: 'South America (Sao Paulo)',
      AlarmArn:
        'arn:aws:cloudwatch:sa-east-1:111111111111:alarm:CofrePrimary-AlertsRestoreTestAppProd-1A2B3C',
      Trigger: {
        MetricName: 'DaysSinceLastGoodRestoreTest',
        Namespace: 'Cofre',
        Dimensions: [{ name: 'Database', value: 'app-prod' }],
      },
    };
    await relayToPagerDuty({ message: JSON.stringify(alarm), attributes: {} }, ROUTING_KEY, options());
    await relayToPagerDuty(
      { message: JSON.stringify({ ...alarm, NewStateValue: 'OK' }), attributes: {} },
      ROUTING_KEY,
      options(),
    );
    const url =
      'https://sa-east-1.console.aws.amazon.com/cloudwatch/home?region=sa-east-1#alarmsV2:alarm/CofrePrimary-AlertsRestoreTestAppProd-1A2B3C';
    expect(received.map((r) => r.body)).toEqual([
      {
        routing_key: ROUTING_KEY,
        event_action: 'trigger',
        dedup_key: 'cofre:alarm:CofrePrimary-AlertsRestoreTestAppProd-1A2B3C',
        payload: {
          summary: '[Cofre] ALARM app-prod: no good restore test for 36 days (sa-east-1)',
          source: 'cofre:app-prod',
          severity: 'error',
          component: 'app-prod',
          group: 'alarm',
          class: 'DaysSinceLastGoodRestoreTest',
          custom_details: {
            alarm: alarm.AlarmName,
            description: alarm.AlarmDescription,
            reason: alarm.NewStateReason,
            since: alarm.StateChangeTime,
            metric: 'Cofre/DaysSinceLastGoodRestoreTest',
          },
        },
        client: 'Cofre',
        client_url: url,
        links: [{ href: url, text: 'CloudWatch alarm' }],
      },
      {
        routing_key: ROUTING_KEY,
        event_action: 'resolve',
        dedup_key: 'cofre:alarm:CofrePrimary-AlertsRestoreTestAppProd-1A2B3C',
      },
    ]);
    expect([alarmSeverity('[critical] x'), alarmSeverity('[warning] x'), alarmSeverity(undefined)]).toEqual([
      'critical',
      'warning',
      'critical',
    ]);
  });

  it('retries 429, 5xx and network errors with exponential backoff, then succeeds', async () => {
    delays.length = 0;
    script = [
      {
        status: 429,
        body: { status: 'throttle event', message: 'Requests for this service are arriving too quickly' },
      },
      { status: 500, body: {} },
      { status: -1, body: null },
      { status: 503, body: {} },
    ];
    const { log, lines } = recordingLog();
    const outcome = await relayToPagerDuty(await snsAlertOf(failed), ROUTING_KEY, options(log));
    expect(outcome).toMatchObject({ result: { status: 202, attempts: 5 } });
    expect(received).toHaveLength(5);
    // every attempt sends the same event
    expect(new Set(received.map((r) => JSON.stringify(r.body))).size).toBe(1);
    // 5, 10, 20, 40 ms ±20 %
    expect(delays).toHaveLength(4);
    delays.forEach((d, i) => {
      expect(d).toBeGreaterThanOrEqual(5 * 2 ** i * 0.8 - 1);
      expect(d).toBeLessThanOrEqual(5 * 2 ** i * 1.2 + 1);
    });
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(4);
  });

  it('gives up after the last attempt and throws, so the Lambda retries and then dead-letters the event', async () => {
    script = Array.from({ length: 3 }, () => ({ status: 502, body: { message: 'bad gateway' } }));
    await expect(
      relayToPagerDuty(await snsAlertOf(failed), ROUTING_KEY, { ...options(), attempts: 3 }),
    ).rejects.toThrow(/PagerDuty answered HTTP 502/);
    expect(received).toHaveLength(3);
  });

  it('a 400 is not retried: one clear error line with PagerDuty’s error body, and a PagerDutyRejectedError', async () => {
    const rejection = {
      status: 'invalid event',
      message: 'Event object is invalid',
      errors: ["'routing_key' is invalid"],
    };
    script = [{ status: 400, body: rejection }];
    const { log, lines } = recordingLog();
    const error = await relayToPagerDuty(await snsAlertOf(failed), 'bad-key', options(log)).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PagerDutyRejectedError);
    expect(received).toHaveLength(1);
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toBe(
      `PagerDuty rejected the cofre:backup-database:app-prod event with HTTP 400: ${JSON.stringify(rejection)}`,
    );
    expect(errors[0]!.extra).toMatchObject({ status: 400, eventAction: 'trigger' });
  });
});
