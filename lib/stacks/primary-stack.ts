import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { CofreConfig } from '../config';
import type { CofreDrStack } from './dr-stack';

/** Properties of {@link CofrePrimaryStack}. */
export interface CofrePrimaryStackProps extends StackProps {
  /** The validated deployment configuration. */
  readonly config: CofreConfig;
  /** The DR-region stack whose resources (replica vault, key) this stack references. */
  readonly drStack: CofreDrStack;
}

/**
 * The primary region: vault, pipeline (schedules, state machines, tasks, Lambdas), history,
 * alerts and dashboard. References the DR stack across regions.
 */
export class CofrePrimaryStack extends Stack {
  public readonly config: CofreConfig;

  constructor(scope: Construct, id: string, props: CofrePrimaryStackProps) {
    super(scope, id, props);
    this.config = props.config;
    this.addStackDependency(props.drStack, 'the DR vault must exist before replication to it is configured');
  }
}
