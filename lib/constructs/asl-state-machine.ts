import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type { IKey } from 'aws-cdk-lib/aws-kms';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { DefinitionBody, LogLevel, StateMachine, StateMachineType } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';

/** The folder of the Amazon States Language files (`state-machines/*.asl.json`). */
export const STATE_MACHINES_DIR = path.join(__dirname, '..', '..', 'state-machines');

/** The `${Name}` placeholders of an ASL text, sorted, each once. */
export function placeholdersOf(definition: string): string[] {
  return [...new Set([...definition.matchAll(/\$\{([A-Za-z0-9_]+)\}/g)].map((m) => m[1]!))].sort();
}

interface AslStates {
  readonly States?: Record<
    string,
    {
      Type?: string;
      Label?: string;
      ItemProcessor?: AslProcessor;
      Iterator?: AslStates;
      Branches?: AslStates[];
    }
  >;
}
interface AslProcessor extends AslStates {
  readonly ProcessorConfig?: { Mode?: string };
}

/** The labels of the Distributed Map states of an ASL definition (a state's label, or its name), at any depth. */
export function distributedMapLabelsOf(definition: AslStates): string[] {
  const labels: string[] = [];
  for (const [name, state] of Object.entries(definition.States ?? {})) {
    if (state.Type === 'Map' && state.ItemProcessor?.ProcessorConfig?.Mode === 'DISTRIBUTED')
      labels.push(state.Label ?? name);
    for (const inner of [state.ItemProcessor, state.Iterator, ...(state.Branches ?? [])])
      if (inner) labels.push(...distributedMapLabelsOf(inner));
  }
  return labels;
}

/** Properties of {@link AslStateMachine}. */
export interface AslStateMachineProps {
  /** Absolute path of the `.asl.json` file (use {@link STATE_MACHINES_DIR}). */
  readonly definitionFile: string;
  /**
   * Values of the file's `${Name}` placeholders (filled in by CloudFormation). Every placeholder must
   * have one; entries the file does not use are left out of the template.
   */
  readonly substitutions: Readonly<Record<string, string>>;
  /** KMS key that encrypts the execution log group. */
  readonly logKey: IKey;
  /**
   * Longest an execution may run.
   * @default Duration.hours(12)
   */
  readonly timeout?: Duration;
  /**
   * Days the log group keeps execution logs.
   * @default RetentionDays.ONE_YEAR
   */
  readonly logRetention?: RetentionDays;
}

/**
 * A standard state machine whose definition is an ASL file of `state-machines/` (JSONPath), loaded as
 * text with `definitionSubstitutions`, so the definition in the template is the file that the local
 * runner executes. Logging `ALL` (with execution data) to an explicit KMS-encrypted log group kept a
 * year and `RETAIN`ed; X-Ray tracing on.
 *
 * An ASL file gets no automatic IAM: grant each integration on {@link stateMachine}'s role.
 */
export class AslStateMachine extends Construct {
  /** The state machine. */
  public readonly stateMachine: StateMachine;
  /** Its execution log group. */
  public readonly logGroup: LogGroup;
  /** The placeholders the file uses (each has a substitution). */
  public readonly placeholders: readonly string[];
  /** Labels of its Distributed Map states (their child executions need `states:StartExecution` on it). */
  public readonly distributedMapLabels: readonly string[];

  constructor(scope: Construct, id: string, props: AslStateMachineProps) {
    super(scope, id);
    const where = `AslStateMachine ${this.node.path}`;
    let definition: string;
    try {
      definition = readFileSync(props.definitionFile, 'utf8');
    } catch (error) {
      throw new Error(`${where}: definitionFile ${props.definitionFile} cannot be read (${String(error)})`, {
        cause: error,
      });
    }
    let parsed: AslStates;
    try {
      parsed = JSON.parse(definition) as AslStates;
    } catch (error) {
      throw new Error(
        `${where}: definitionFile ${props.definitionFile} is not valid JSON (${String(error)})`,
        { cause: error },
      );
    }
    this.placeholders = placeholdersOf(definition);
    this.distributedMapLabels = distributedMapLabelsOf(parsed);
    const missing = this.placeholders.filter((name) => props.substitutions[name] === undefined);
    if (missing.length > 0)
      throw new Error(
        `${where}: substitutions lacks ${missing.map((m) => `\${${m}}`).join(', ')}, used in ${path.basename(props.definitionFile)}`,
      );
    const timeout = props.timeout ?? Duration.hours(12);
    if (timeout.toSeconds() < 60 || timeout.toSeconds() > 365 * 86_400)
      throw new Error(
        `${where}: timeout must be between 1 minute and 1 year, got ${timeout.toHumanString()}`,
      );

    this.logGroup = new LogGroup(this, 'LogGroup', {
      retention: props.logRetention ?? RetentionDays.ONE_YEAR,
      encryptionKey: props.logKey,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      definitionBody: DefinitionBody.fromString(definition),
      definitionSubstitutions: Object.fromEntries(
        this.placeholders.map((name) => [name, props.substitutions[name]!]),
      ),
      stateMachineType: StateMachineType.STANDARD,
      timeout,
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: LogLevel.ALL, includeExecutionData: true },
    });
  }
}
