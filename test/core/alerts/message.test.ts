import { describe, expect, it } from 'vitest';
import type { HistoryRecord } from '../../../core/history/records';
import { parseNotifyEvent, snsSubject } from '../../../core/alerts/message';
import { notify, type AlertMessage, type NotifyEvent } from '../../../core/alerts/notify';

const EXECUTION =
  'arn:aws:states:sa-east-1:111111111111:execution:BackupDatabase12AB34CD:app-prod-20261123T050000Z';

const failedRecord: HistoryRecord = {
  id: '20261123T050000123Z-1a2b3c4d',
  kind: 'full',
  database: 'app-prod',
  tier: 'daily',
  status: 'failed',
  startedAt: '2026-11-23T05:00:00.123Z',
  finishedAt: '2026-11-23T05:12:05.623Z',
  message: 'pg_dump: error: connection to server at "app-prod.internal" (10.0.1.5), port 5432 failed',
  requestedBy: 'schedule',
};

const failure: NotifyEvent = {
  outcome: 'failed',
  job: 'backup-database',
  database: 'app-prod',
  kind: 'full',
  record: failedRecord,
  executionArn: EXECUTION,
  error: 'States.TaskFailed',
  cause: 'pg_dump exited with code 1: connection to server at "app-prod.internal" failed: timeout expired',
};

const success: NotifyEvent = {
  outcome: 'succeeded',
  job: 'backup-database',
  database: 'app-prod',
  kind: 'full',
  record: {
    id: '20261124T050000456Z-9f8e7d6c',
    kind: 'full',
    database: 'app-prod',
    tier: 'daily',
    status: 'succeeded',
    startedAt: '2026-11-24T05:00:00.456Z',
    finishedAt: '2026-11-24T05:08:30.456Z',
    bytes: 430_000_000,
    location: 's3://acme-cofre-vault/full/app-prod/clinic/20261124T050000456Z-9f8e7d6c/',
    requestedBy: 'schedule',
  },
  executionArn: EXECUTION.replace('20261123', '20261124'),
  summary: { rawBytes: 1_290_000_000, storedBytes: 430_000_000, tables: 42, rows: 1_250_000 },
};

async function sent(event: NotifyEvent, notifyOnSuccess = false) {
  const published: AlertMessage[] = [];
  const result = await notify(event, {
    publish: (m) => {
      published.push(m);
      return Promise.resolve();
    },
    notifyOnSuccess,
    region: 'sa-east-1',
    vaultUrl: 's3://acme-cofre-vault',
  });
  expect(published).toEqual([result.message]);
  return result;
}

describe('alert messages', () => {
  it('a failed full backup: subject, readable body with cause, console link and runbook, critical attributes', async () => {
    const { message, audience } = await sent(failure);
    expect(audience).toBe('people');
    expect(message.subject).toBe('[Cofre] FAILED full backup app-prod (sa-east-1)');
    expect(message.attributes).toEqual({
      severity: 'critical',
      database: 'app-prod',
      kind: 'full',
      outcome: 'failed',
      job: 'backup-database',
      audience: 'people',
    });
    expect(message.body).toMatchInlineSnapshot(`
      "The full backup of app-prod FAILED.

      Database:  app-prod
      What:      full backup (job backup-database)
      Outcome:   FAILED
      Region:    sa-east-1
      Run:       20261123T050000123Z-1a2b3c4d
      Tier:      daily
      Started:   2026-11-23T05:00:00.123Z
      Finished:  2026-11-23T05:12:05.623Z
      Duration:  12 min 06 s
      Error:     States.TaskFailed
      Cause:     pg_dump exited with code 1: connection to server at "app-prod.internal" failed: timeout expired
      Execution: https://sa-east-1.console.aws.amazon.com/states/home?region=sa-east-1#/v2/executions/details/arn:aws:states:sa-east-1:111111111111:execution:BackupDatabase12AB34CD:app-prod-20261123T050000Z

      What to do next:
        1. Open the execution (link above) and read the failed state and the task log.
        2. The last good backup and its age: npx cofre list --vault s3://acme-cofre-vault
        3. Confirm it is intact: npx cofre verify --vault s3://acme-cofre-vault --backup <that backup id>
        4. Once the cause is fixed, re-run from the failed step: aws stepfunctions redrive-execution --execution-arn arn:aws:states:sa-east-1:111111111111:execution:BackupDatabase12AB34CD:app-prod-20261123T050000Z
        5. If the database must be recovered meanwhile, follow README "Runbook: whole database".

      -- Cofre backup pipeline"
    `);
  });

  it('a successful full backup: sizes and compression ratio, info severity', async () => {
    const { message } = await sent(success, true);
    expect(message.subject).toBe('[Cofre] OK full backup app-prod (sa-east-1)');
    expect(message.attributes).toMatchObject({ severity: 'info', outcome: 'succeeded', audience: 'people' });
    expect(message.body).toMatchInlineSnapshot(`
      "The full backup of app-prod succeeded.

      Database:    app-prod
      What:        full backup (job backup-database)
      Outcome:     OK
      Region:      sa-east-1
      Run:         20261124T050000456Z-9f8e7d6c
      Tier:        daily
      Started:     2026-11-24T05:00:00.456Z
      Finished:    2026-11-24T05:08:30.456Z
      Duration:    8 min 30 s
      Size:        1.20 GiB dumped, 410.1 MiB stored
      Compression: 3.00 : 1 (820.2 MiB saved)
      Tables:      42 (1250000 rows)
      Location:    s3://acme-cofre-vault/full/app-prod/clinic/20261124T050000456Z-9f8e7d6c/
      Execution:   https://sa-east-1.console.aws.amazon.com/states/home?region=sa-east-1#/v2/executions/details/arn:aws:states:sa-east-1:111111111111:execution:BackupDatabase12AB34CD:app-prod-20261124T050000Z

      What to do next:
        Nothing to do. If this job had paged, its PagerDuty incident is resolved by this message.
        List the vault: npx cofre list --vault s3://acme-cofre-vault

      -- Cofre backup pipeline"
    `);
  });

  it('with notifyOnSuccess off, a success is still published, for PagerDuty only (e-mail filters it out)', async () => {
    const { message, audience } = await sent(success, false);
    expect(audience).toBe('pagerduty');
    expect(message.attributes.audience).toBe('pagerduty');
    // failures and skips always go to people
    expect((await sent(failure, false)).audience).toBe('people');
    expect((await sent({ ...failure, outcome: 'skipped' }, false)).audience).toBe('people');
  });

  it('a skipped run is a warning with the hung-execution runbook', async () => {
    const { message } = await sent({ ...failure, outcome: 'skipped', error: undefined, cause: undefined });
    expect(message.subject).toBe('[Cofre] SKIPPED full backup app-prod (sa-east-1)');
    expect(message.attributes.severity).toBe('warning');
    expect(message.body).toMatch(
      /list-executions --state-machine-arn <state machine> --status-filter RUNNING/,
    );
  });

  it('tenant exports list the failed tenants; integrity failures get the deep-verify runbook', async () => {
    const tenants = await sent({
      ...failure,
      job: 'backup-tenants',
      kind: 'tenant',
      failedTenants: ['clinic-17', 'clinic-42'],
    });
    expect(tenants.message.subject).toBe('[Cofre] FAILED tenant export app-prod (sa-east-1)');
    expect(tenants.message.body).toMatch(/Failed tenants: 2: clinic-17, clinic-42/);
    const integrity = await sent({ ...failure, job: 'verify-integrity' });
    expect(integrity.message.subject).toBe('[Cofre] FAILED integrity verification app-prod (sa-east-1)');
    expect(integrity.message.body).toMatch(
      /npx cofre verify --vault s3:\/\/acme-cofre-vault --backup 20261123T050000123Z-1a2b3c4d --deep --kms-key/,
    );
  });

  it('a failed weekly AWS Backup restore test of an S3 bucket: its own runbook, naming the restore job and the alarm', async () => {
    const record: HistoryRecord = {
      id: 'awsbackup-restore-test-5D1C4F0E-7A2B-4C3D',
      kind: 'files-restore-test',
      method: 'aws-backup',
      database: 's3:app-prod-documents',
      status: 'failed',
      startedAt: '2026-11-28T08:00:00.000Z',
      finishedAt: '2026-11-28T08:39:00.000Z',
      message:
        'app-prod-documents: … 1 of 20 sampled objects failed: nfe/1.xml: differs from the source version',
      requestedBy: 'aws-backup',
    };
    const { message } = await sent({
      outcome: 'failed',
      job: 'aws-backup',
      database: 's3:app-prod-documents',
      kind: 'files-restore-test',
      record,
      error: 'Cofre.FilesRestoreTestFailed',
      cause: record.message!,
    });
    expect(message.subject).toBe('[Cofre] FAILED files restore test s3:app-prod-documents (sa-east-1)');
    expect(message.attributes.severity).toBe('critical');
    expect(message.body).toContain('Restore jobs, id 5D1C4F0E-7A2B-4C3D)');
    expect(message.body).toContain('"differs from the source version"');
    expect(message.body).toContain('DaysSinceLastGoodFilesRestoreTest alarm clears with the next good test');
    // Not the snapshot runbook of the other AWS Backup jobs.
    expect(message.body).not.toContain('start-backup-job');
  });

  it('takes the vault from the record location when none is configured', async () => {
    const result = await notify(success, {
      publish: () => Promise.resolve(),
      notifyOnSuccess: true,
      region: 'sa-east-1',
    });
    expect(result.message.body).toMatch(/npx cofre list --vault s3:\/\/acme-cofre-vault\n/);
  });

  it('keeps SNS subjects to 100 printable ASCII characters on one line', () => {
    const subject = snsSubject(`[Cofre] FAILED São Paulo\nbackup ${'x'.repeat(200)}`);
    expect(subject).toMatch(/^\[Cofre\] FAILED Sao Paulo backup x+\.\.\.$/);
    expect(subject).toHaveLength(100);
  });

  it('validates the event, naming the field', () => {
    expect(() => parseNotifyEvent({ ...failure, outcome: 'exploded' })).toThrow(/outcome: /);
    expect(() => parseNotifyEvent({ ...failure, job: undefined })).toThrow(/job: /);
    expect(parseNotifyEvent(JSON.parse(JSON.stringify(failure)))).toEqual(failure);
  });
});
