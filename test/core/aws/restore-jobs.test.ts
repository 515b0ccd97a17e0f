/**
 * What the restore-test validations send AWS Backup (aws-sdk-client-mock: moto has no restore testing).
 */
import { BackupClient, PutRestoreValidationResultCommand } from '@aws-sdk/client-backup';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { MAX_VALIDATION_MESSAGE, putValidationResultWith } from '../../../core/aws/restore-jobs';

describe('putValidationResultWith', () => {
  it('sends the message as is up to the limit, and a longer one cut to the limit with an ellipsis', async () => {
    const backup = mockClient(BackupClient);
    backup.on(PutRestoreValidationResultCommand).resolves({});
    const put = putValidationResultWith(new BackupClient({ region: 'sa-east-1' }));
    const exact = 'x'.repeat(MAX_VALIDATION_MESSAGE);
    await put('job-1', 'SUCCESSFUL', exact);
    await put('job-2', 'FAILED', `${'y'.repeat(MAX_VALIDATION_MESSAGE)}tail`);
    const sent = backup.commandCalls(PutRestoreValidationResultCommand).map((c) => c.args[0].input);
    expect(sent[0]).toEqual({
      RestoreJobId: 'job-1',
      ValidationStatus: 'SUCCESSFUL',
      ValidationStatusMessage: exact,
    });
    expect(sent[1]!.ValidationStatus).toBe('FAILED');
    expect(sent[1]!.ValidationStatusMessage).toBe(`${'y'.repeat(MAX_VALIDATION_MESSAGE - 1)}…`);
    backup.restore();
  });
});
