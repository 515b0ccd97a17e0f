import { Arn, Stack } from 'aws-cdk-lib';
import { PolicyStatement, Role, type IGrantable } from 'aws-cdk-lib/aws-iam';
import type { IConstruct } from 'constructs';
import { acknowledge } from '../nag';

/**
 * Lets `grantee` read the given Secrets Manager secrets when they are encrypted with a customer
 * managed KMS key, which the configuration does not name (an RDS-managed master user secret under a
 * CMK, a secret of a HIPAA account that forbids the AWS managed key): `kms:Decrypt` of this account's
 * keys, only through Secrets Manager in this region (`kms:ViaService`) and only for these secrets
 * (`kms:EncryptionContext:SecretARN`, the context Secrets Manager decrypts every secret value with).
 * Without it, a secret under a CMK fails at the first read with AccessDenied; under the AWS managed key
 * `aws/secretsmanager` it is unused. The finding for the key wildcard is acknowledged on the policy
 * the statement lands in.
 */
export function grantSecretKeyDecrypt(grantee: IGrantable, secretArns: readonly string[]): void {
  if (secretArns.length === 0) return;
  const principal = grantee.grantPrincipal;
  const stack = Stack.of(principal as unknown as IConstruct);
  const keys = Arn.format({ service: 'kms', resource: 'key', resourceName: '*' }, stack);
  const added = principal.addToPrincipalPolicy(
    new PolicyStatement({
      sid: 'DecryptTheConfiguredSecretsUnderTheirKeys',
      actions: ['kms:Decrypt'],
      resources: [keys],
      conditions: {
        StringEquals: {
          'kms:ViaService': `secretsmanager.${stack.region}.amazonaws.com`,
          'kms:EncryptionContext:SecretARN': [...new Set(secretArns)],
        },
      },
    }),
  );
  // The role's default policy, where the statement landed (the one cdk-nag reports it on).
  const policy =
    added.statementAdded && principal instanceof Role
      ? principal.node.tryFindChild('DefaultPolicy')
      : undefined;
  if (!policy)
    throw new Error(
      "grantSecretKeyDecrypt: the grantee's principal is not a role of this app, so the statement could not be added",
    );
  acknowledge(policy, {
    id: `AwsSolutions-IAM5[Resource::arn:aws:kms:${stack.region}:${stack.account}:key/*]`,
    reason:
      "The KMS keys of the configured secrets are the account's, not Cofre's, and the configuration does not name them; kms:Decrypt is limited to Secrets Manager (kms:ViaService) decrypting exactly the configured secrets (kms:EncryptionContext:SecretARN).",
  });
}
