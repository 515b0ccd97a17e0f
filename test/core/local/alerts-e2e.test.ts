/**
 * End to end, locally: a backup-database execution (the real ASL, run by aws-local-stepfunctions)
 * that fails sends a formatted alert and, through the same relay the PagerDuty Lambda runs, a
 * PagerDuty `trigger`; the next successful run of the same job resolves that incident. PagerDuty is a
 * local HTTP server that records the exact requests (no network). The SNS hop is the in-process
 * `publish` (the subscription's filter is asserted in test/lib/alerts.test.ts).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AlertMessage } from '../../../core/alerts/notify';
import { relayToPagerDuty } from '../../../core/alerts/pagerduty';
import { parseDatabaseUrl, type Connection } from '../../../core/sources/connection';
import { buildKeys } from '../../../core/vault/crypto';
import { FileHistoryStore } from '../../../core/history/store';
import { DEMO_TENANT_MODEL, loadDemoData } from '../../../core/local/demo-data';
import { runLocalJob, type LocalPipelineOptions } from '../../../core/local/state-machine-runner';
import { openVault } from '../../../core/vault';
import { tempDir } from '../../helpers/cli';
import { createPostgresDatabase, describePostgres, type TestDatabase } from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';

interface PagerDutyRequest {
  readonly path: string;
  readonly body: Record<string, unknown>;
}

describePostgres('alerts end to end: failed run → alert + PagerDuty trigger; next success → resolve', () => {
  let db: TestDatabase;
  let dir: string;
  let server: Server;
  let endpoint: string;
  const requests: PagerDutyRequest[] = [];

  beforeAll(async () => {
    db = await createPostgresDatabase('alerts_e2e');
    await loadDemoData(parseDatabaseUrl('postgres', db.url), { patientsPerTenant: 10 });
    dir = tempDir('alerts-e2e');
    server = createServer((req, res) => {
      let text = '';
      req.on('data', (d: Buffer) => (text += d.toString()));
      req.on('end', () => {
        requests.push({ path: req.url ?? '', body: JSON.parse(text) as Record<string, unknown> });
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'success', message: 'Event processed' }));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v2/enqueue`;
  }, 60_000);
  afterAll(async () => {
    server.close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('pages on the failure with a readable alert, and resolves the same incident when the job next succeeds', async () => {
    const k = await testKeys();
    const published: AlertMessage[] = [];
    const options: LocalPipelineOptions = {
      history: new FileHistoryStore(path.join(dir, 'history')),
      vault: openVault(`file://${path.join(dir, 'vault')}`),
      keys: k.keys,
      decryptKeys: await buildKeys({ keyFile: k.keyFile }, 'decrypt'),
      connect: (job): Promise<Connection> =>
        Promise.resolve({
          ...parseDatabaseUrl('postgres', db.url),
          database: Array.isArray(job.database.databases) ? job.database.databases[0] : undefined,
        }),
      metrics: { emit: () => undefined },
      retryIntervalMs: 0,
      notifyOnSuccess: false,
      // The SNS topic's two subscribers, in-process: e-mail (kept here) and the PagerDuty Lambda's relay.
      publish: async (message) => {
        published.push(message);
        await relayToPagerDuty(
          { subject: message.subject, message: message.body, attributes: message.attributes },
          'R0UT1NGKEY',
          { endpoint, baseDelayMs: 1 },
        );
      },
    };
    const input = (database: string) => ({
      database: {
        id: 'app-prod',
        engine: 'postgres',
        host: '127.0.0.1',
        databases: [database],
        excludeDatabases: [],
        credentialsSecretArn: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:cofre-local',
        network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], securityGroupId: 'sg-00000000' },
        dataClass: 'health',
        tenants: DEMO_TENANT_MODEL,
      },
      taskDefinitionArn: 'arn:aws:ecs:us-east-1:000000000000:task-definition/cofre-local:1',
      requestedBy: 'schedule',
    });

    // 1. The database is gone: pg_dump fails on every attempt, the execution fails.
    const failed = await runLocalJob('backup-database', input(`${db.name}_missing`), options);
    expect(failed.status).toBe('failed');
    expect(published).toHaveLength(1);
    const alert = published[0]!;
    expect(alert.subject).toMatch(/^\[Cofre\] FAILED full backup app-prod \(local\)$/);
    expect(alert.body).toMatch(/does not exist/);
    expect(alert.body).toMatch(/npx cofre/);
    expect(alert.attributes).toMatchObject({
      severity: 'critical',
      database: 'app-prod',
      job: 'backup-database',
      outcome: 'failed',
    });
    expect(requests).toHaveLength(1);
    expect(requests[0]!.path).toBe('/v2/enqueue');
    expect(requests[0]!.body).toMatchObject({
      routing_key: 'R0UT1NGKEY',
      event_action: 'trigger',
      dedup_key: 'cofre:backup-database:app-prod',
      payload: {
        severity: 'critical',
        source: 'cofre:app-prod',
        component: 'app-prod',
        summary: alert.subject,
      },
    });

    // 2. The next run succeeds: the same incident is resolved (no e-mail: audience pagerduty).
    const ok = await runLocalJob('backup-database', input(db.name), options);
    expect(ok.status, `${ok.error}: ${ok.cause}`).toBe('succeeded');
    expect(published).toHaveLength(2);
    expect(published[1]!.attributes).toMatchObject({ outcome: 'succeeded', audience: 'pagerduty' });
    expect(requests).toHaveLength(2);
    expect(requests[1]!.body).toEqual({
      routing_key: 'R0UT1NGKEY',
      event_action: 'resolve',
      dedup_key: 'cofre:backup-database:app-prod',
    });
  }, 120_000);
});
