import { Stack, Token } from 'aws-cdk-lib';
import { AccountRootPrincipal, Effect, PolicyDocument, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { RegionInfo } from 'aws-cdk-lib/region-info';
import type { IConstruct } from 'constructs';

/**
 * What the account (IAM, hence CloudFormation) may do with a Cofre key: administer it, never use it.
 * Left out on purpose: every cryptographic action (`Encrypt`, `Decrypt`, `GenerateDataKey*`,
 * `ReEncrypt*`), `CreateGrant` (a grant would hand out those), `ScheduleKeyDeletion` and `Disable*`
 * (deleting or disabling the key destroys or blocks every backup under it, whatever Object Lock says).
 * `PutKeyPolicy` stays: CloudFormation needs it to update the policy, and KMS refuses a policy that
 * would lock out its own creator.
 */
export const KEY_ADMIN_ACTIONS = [
  'kms:CreateAlias',
  'kms:DeleteAlias',
  'kms:UpdateAlias',
  'kms:Describe*',
  'kms:Get*',
  'kms:List*',
  'kms:Enable*',
  'kms:Put*',
  'kms:Update*',
  'kms:Revoke*',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:CancelKeyDeletion',
];

/** A key policy with only the administration statement; constructs add use statements for named principals. */
export function administeredKeyPolicy(): PolicyDocument {
  return new PolicyDocument({
    statements: [
      new PolicyStatement({
        sid: 'AccountAdministersButCannotUseOrDeleteTheKey',
        effect: Effect.ALLOW,
        principals: [new AccountRootPrincipal()],
        actions: KEY_ADMIN_ACTIONS,
        resources: ['*'],
      }),
    ],
  });
}

/**
 * The `kms:ViaService` value of a service in the scope's region, e.g. `s3.sa-east-1.amazonaws.com`
 * (a literal when the region is known, so the template and its tests read plainly).
 */
export function serviceEndpoint(scope: IConstruct, service: string): string {
  const stack = Stack.of(scope);
  const suffix = Token.isUnresolved(stack.region) ? undefined : RegionInfo.get(stack.region).domainSuffix;
  return `${service}.${stack.region}.${suffix ?? stack.urlSuffix}`;
}
