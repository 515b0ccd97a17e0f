import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Properties of {@link CofreFunction}. */
export interface CofreFunctionProps {
  /** Absolute path of the handler's `index.ts` (use `path.join(__dirname, ...)`). */
  readonly entry: string;
  /** What the function does, shown in the console. */
  readonly description: string;
  /** KMS key that encrypts the log group, the environment and the dead-letter queue. */
  readonly encryptionKey: IKey;
  /**
   * Timeout.
   * @default Duration.minutes(1)
   */
  readonly timeout?: Duration;
  /**
   * Memory in MiB.
   * @default 256
   */
  readonly memorySize?: number;
  /**
   * Environment variables (read in the handler through one helper that fails loudly when one is missing).
   * @default {}
   */
  readonly environment?: Record<string, string>;
  /**
   * Give the function an encrypted SQS dead-letter queue; set it for functions invoked asynchronously
   * (SNS, EventBridge), so no failed event is lost. Its role may send to it and use `encryptionKey`
   * for that (`kms:GenerateDataKey`, `kms:Decrypt`), as Lambda delivers with the function's role.
   * @default false
   */
  readonly asyncInvocation?: boolean;
  /**
   * Reserved concurrency, so a runaway caller cannot exhaust the account's Lambda concurrency.
   * @default 5
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Days the log group keeps logs.
   * @default RetentionDays.ONE_YEAR
   */
  readonly logRetention?: RetentionDays;
  /** Anything else NodejsFunction accepts, for the rare case that needs it. */
  readonly overrides?: Partial<NodejsFunctionProps>;
}

/**
 * Cofre's Lambda defaults in one place: Node.js 24 on ARM64 (Graviton), bundled by esbuild (minified,
 * source maps on, AWS SDK v3 left to the runtime), X-Ray active tracing, an explicit KMS-encrypted log
 * group kept a year and `RETAIN`ed, environment encrypted with the same key, reserved concurrency 5,
 * and an encrypted dead-letter queue when invoked asynchronously.
 */
export class CofreFunction extends Construct {
  /** The function. */
  public readonly function: NodejsFunction;
  /** Its log group. */
  public readonly logGroup: LogGroup;
  /** Its dead-letter queue, when `asyncInvocation` is set. */
  public readonly deadLetterQueue?: Queue;

  constructor(scope: Construct, id: string, props: CofreFunctionProps) {
    super(scope, id);
    const memorySize = props.memorySize ?? 256;
    if (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10240) {
      throw new Error(
        `CofreFunction ${this.node.path}: memorySize must be a whole number of MiB between 128 and 10240, got ${memorySize}`,
      );
    }
    this.logGroup = new LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? RetentionDays.ONE_YEAR,
      encryptionKey: props.encryptionKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    if (props.asyncInvocation) {
      this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
        encryption: QueueEncryption.KMS,
        encryptionMasterKey: props.encryptionKey,
        enforceSSL: true,
        retentionPeriod: Duration.days(14),
      });
    }
    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize,
      timeout: props.timeout ?? Duration.minutes(1),
      tracing: Tracing.ACTIVE,
      logGroup: this.logGroup,
      environment: { NODE_OPTIONS: '--enable-source-maps', ...props.environment },
      environmentEncryption: props.encryptionKey,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions ?? 5,
      deadLetterQueue: this.deadLetterQueue,
      bundling: {
        format: OutputFormat.CJS,
        minify: true,
        sourceMap: true,
        target: 'node24',
        externalModules: ['@aws-sdk/*'],
      },
      ...props.overrides,
    });
    // Lambda delivers a failed asynchronous event to the dead-letter queue with the function's role
    // (CDK grants sqs:SendMessage); the queue is SSE-KMS, so the sender also makes and reads a data key.
    if (this.deadLetterQueue) props.encryptionKey.grant(this.function, 'kms:GenerateDataKey', 'kms:Decrypt');
  }
}
