import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { CofreConfig } from '../config';

/** Properties of {@link CofreDrStack}. */
export interface CofreDrStackProps extends StackProps {
  /** The validated deployment configuration. */
  readonly config: CofreConfig;
}

/**
 * The disaster-recovery region: receives the replicated vault (with its own KMS key, so an
 * incident with the primary key cannot lock the DR copies). Deployed before the primary stack.
 */
export class CofreDrStack extends Stack {
  public readonly config: CofreConfig;

  constructor(scope: Construct, id: string, props: CofreDrStackProps) {
    super(scope, id, props);
    this.config = props.config;
  }
}
