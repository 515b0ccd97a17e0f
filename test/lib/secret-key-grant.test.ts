/**
 * Secrets under a customer managed KMS key (an RDS-managed master user secret under a CMK, an account
 * that forbids the AWS managed key): every role that reads a configured secret may also decrypt it,
 * only through Secrets Manager, and the narrow grants name exactly the secrets the role reads.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { buildTestApp } from '../helpers/cdk';
import { actionsOf, statementsOf } from '../helpers/template';

type Statement = ReturnType<typeof statementsOf>[number];

const STAGING = 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/staging-AbCdEf';
const SID = 'DecryptTheConfiguredSecretsUnderTheirKeys';

const { primary } = buildTestApp((c) => ({
  ...c,
  databases: c.databases!.map((db) =>
    db.id === 'app-prod'
      ? { ...db, restoreTargets: [{ name: 'staging', credentialsSecretArn: STAGING }] }
      : db,
  ),
}));
const resources = (
  Template.fromStack(primary).toJSON() as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  }
).Resources;

/** Statements per role logical id (a policy may serve several roles). */
const byRole = new Map<string, Statement[]>();
for (const r of Object.values(resources)) {
  if (r.Type !== 'AWS::IAM::Policy') continue;
  for (const role of r.Properties.Roles as { Ref: string }[])
    byRole.set(role.Ref, [...(byRole.get(role.Ref) ?? []), ...statementsOf(r.Properties.PolicyDocument)]);
}
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);
/** The secrets a role may read by name (complete ARNs), from its GetSecretValue statements. */
const secretsReadBy = (statements: Statement[]) =>
  statements
    .filter((s) => s.Effect === 'Allow' && actionsOf(s).includes('secretsmanager:GetSecretValue'))
    .flatMap((s) => list(s.Resource))
    .filter((r): r is string => typeof r === 'string' && /:secret:.*-[A-Za-z0-9]{6}$/.test(r));

describe('secrets under customer managed keys', () => {
  const readers = [...byRole].filter(([, statements]) => secretsReadBy(statements).length > 0);

  it('the dump tasks, the files task, list-tenants, the snapshot validation, PagerDuty and the restore-target reader all read secrets', () => {
    expect(readers.length).toBeGreaterThanOrEqual(7);
  });

  it('every role that reads a configured secret may decrypt exactly those secrets, only through Secrets Manager', () => {
    for (const [role, statements] of readers) {
      const read = [...new Set(secretsReadBy(statements))].sort();
      const grants = statements.filter((s) => s.Sid === SID);
      const viaSecretsManager = statements.filter(
        (s) =>
          actionsOf(s).includes('kms:Decrypt') &&
          JSON.stringify(s.Condition ?? {}).includes('secretsmanager.sa-east-1.amazonaws.com'),
      );
      expect(viaSecretsManager.length, role).toBeGreaterThan(0);
      if (grants.length === 0) continue; // the configuration snapshot reader: its own ViaService grant
      expect(grants, role).toHaveLength(1);
      const grant = grants[0]!;
      expect(grant.Action, role).toBe('kms:Decrypt');
      expect(grant.Resource, role).toBe('arn:aws:kms:sa-east-1:111111111111:key/*');
      const condition = (grant.Condition as { StringEquals: Record<string, unknown> }).StringEquals;
      expect(condition['kms:ViaService'], role).toBe('secretsmanager.sa-east-1.amazonaws.com');
      expect(list(condition['kms:EncryptionContext:SecretARN']).sort(), role).toEqual(read);
    }
  });

  it('a restore target’s secret is decryptable by the dump task that restores into it, by no other role', () => {
    const withStaging = [...byRole].filter(([, statements]) =>
      statements.some((s) => s.Sid === SID && JSON.stringify(s.Condition).includes('cofre/staging')),
    );
    expect(withStaging.map(([role]) => role)).toEqual([
      expect.stringMatching(/^PipelineDumpTaskappprodTaskRole/),
    ]);
  });
});
