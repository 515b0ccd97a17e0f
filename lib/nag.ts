import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import { AwsSolutionsChecks, HIPAASecurityChecks, ServerlessChecks } from 'cdk-nag';

/** The cdk-nag packs every Cofre synth runs. A finding none of them acknowledges fails the synth. */
export function addNagPacks(app: IConstruct): void {
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app),
    new HIPAASecurityChecks(app),
    new ServerlessChecks(app),
  );
}

/** A cdk-nag rule we accept on one construct, and why it is safe there. */
export interface NagAcknowledgement {
  /** Rule id, e.g. `AwsSolutions-IAM5[Resource::*]`. */
  readonly id: string;
  /** Why this finding is acceptable for this construct (specific: see {@link acknowledgementProblem}). */
  readonly reason: string;
}

const GENERIC_REASONS = [
  /^(n\/?a|none|todo|tbd|ok|fine|false positive|not (needed|required|applicable)|suppressed?|ignore[d]?|by design|accepted|intended)\.?$/i,
];
const MIN_REASON_LENGTH = 40;

/**
 * Why `reason` is not a specific justification, or `undefined` when it is. A reason must say
 * something about the construct (at least 40 characters, not a stock phrase such as "false positive").
 */
export function acknowledgementProblem(reason: string): string | undefined {
  const text = reason.trim();
  if (GENERIC_REASONS.some((re) => re.test(text)))
    return `"${text}" is a stock phrase, not a reason specific to this construct`;
  if (text.length < MIN_REASON_LENGTH)
    return `"${text}" is too short to explain why this construct is safe (at least ${MIN_REASON_LENGTH} characters)`;
  return undefined;
}

/** Acknowledges cdk-nag findings on one construct; each reason must pass {@link acknowledgementProblem}. */
export function acknowledge(construct: IConstruct, ...rules: NagAcknowledgement[]): void {
  for (const rule of rules) {
    const problem = acknowledgementProblem(rule.reason);
    if (problem)
      throw new Error(`cdk-nag acknowledgement of ${rule.id} on ${construct.node.path}: ${problem}`);
  }
  Validations.of(construct).acknowledge(...rules);
}
