import { ArnFormat, Stack, Token } from 'aws-cdk-lib';
import {
  AccountRootPrincipal,
  Effect,
  PolicyDocument,
  PolicyStatement,
  ServicePrincipal,
} from 'aws-cdk-lib/aws-iam';
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

/**
 * Principals of this account may use the key only through these AWS services in this region (the
 * services' documented pattern for customer managed keys; callers still need IAM permissions).
 */
export function usableOnlyThroughServices(
  scope: IConstruct,
  sid: string,
  services: readonly string[],
): PolicyStatement {
  return new PolicyStatement({
    sid,
    principals: [new AccountRootPrincipal()],
    actions: [
      'kms:Encrypt',
      'kms:Decrypt',
      'kms:ReEncrypt*',
      'kms:GenerateDataKey*',
      'kms:CreateGrant',
      'kms:DescribeKey',
    ],
    resources: ['*'],
    conditions: {
      StringEquals: {
        'kms:ViaService':
          services.length === 1
            ? serviceEndpoint(scope, services[0]!)
            : services.map((x) => serviceEndpoint(scope, x)),
        'kms:CallerAccount': Stack.of(scope).account,
      },
    },
  });
}

/** CloudWatch Logs may encrypt this account's log groups in this region, as its documentation prescribes. */
export function logsEncryptionStatement(scope: IConstruct): PolicyStatement {
  const stack = Stack.of(scope);
  return new PolicyStatement({
    sid: 'CloudWatchLogsEncryptsThisAccountsLogGroups',
    principals: [new ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
    actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
    resources: ['*'],
    conditions: {
      ArnLike: {
        'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
          service: 'logs',
          resource: 'log-group',
          resourceName: '*',
          arnFormat: ArnFormat.COLON_RESOURCE_NAME,
        }),
      },
    },
  });
}
