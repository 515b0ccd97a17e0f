import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Key, type Alias } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { administeredKeyPolicy, logsEncryptionStatement, usableOnlyThroughServices } from './key-policy';

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
      logsEncryptionStatement(this),
      usableOnlyThroughServices(this, 'AccountUsesTheKeyOnlyThroughLambdaAndSqs', ['lambda', 'sqs']),
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
