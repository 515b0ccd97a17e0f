import { ArnFormat, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AccountRootPrincipal, PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key, type Alias } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { administeredKeyPolicy, serviceEndpoint } from './key-policy';

/** Properties of {@link PipelineKey}. */
export interface PipelineKeyProps {
  /**
   * Alias of the key.
   * @default 'alias/cofre-pipeline'
   */
  readonly keyAlias?: string;
}

/**
 * The key of the pipeline's operational data: the log groups of the Lambdas, the Fargate tasks and
 * the state machines, the Lambda environments, and the dead-letter queues. Rotated and `RETAIN`ed.
 * Its policy lets the account administer it but not use it directly: CloudWatch Logs may use it for
 * this account's log groups in this region, and principals of this account (which still need an IAM
 * permission) only through Lambda (environment encryption) and SQS (encrypted queues).
 * Backups never use it: they are under the vault key.
 */
export class PipelineKey extends Construct {
  /** The key. */
  public readonly key: Key;
  /** `alias/cofre-pipeline` (or `keyAlias`). */
  public readonly keyAlias: Alias;

  constructor(scope: Construct, id: string, props: PipelineKeyProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    const keyAlias = props.keyAlias ?? 'alias/cofre-pipeline';
    if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(keyAlias) || keyAlias.startsWith('alias/aws/'))
      throw new Error(
        `PipelineKey ${this.node.path}: keyAlias must look like "alias/<name>" and not start with "alias/aws/", got "${keyAlias}"`,
      );
    const policy = administeredKeyPolicy();
    policy.addStatements(
      // As the CloudWatch Logs documentation prescribes for encrypted log groups.
      new PolicyStatement({
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
      }),
      new PolicyStatement({
        sid: 'AccountUsesTheKeyOnlyThroughLambdaAndSqs',
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
            'kms:ViaService': [serviceEndpoint(this, 'lambda'), serviceEndpoint(this, 'sqs')],
            'kms:CallerAccount': stack.account,
          },
        },
      }),
    );
    this.key = new Key(this, 'Key', {
      description: `Cofre pipeline key (${stack.region}): logs, Lambda environments and dead-letter queues`,
      enableKeyRotation: true,
      policy,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.keyAlias = this.key.addAlias(keyAlias);
  }
}
