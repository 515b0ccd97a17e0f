import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AppProps } from 'aws-cdk-lib';
import baseConfig from '../../cofre.config';
import { buildCofreApp } from '../../lib/app';
import { parseConfig, type CofreConfigInput } from '../../lib/config';
import { tempDir } from './temp';

/** The feature flags of cdk.json, so test apps synthesize exactly as `cdk synth` does. */
export function cdkJsonContext(): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  };
  return cdkJson.context;
}

/**
 * App props for tests: cdk.json's context and a fresh output directory. Lambda bundling (esbuild) is
 * skipped unless `bundling` is set, as `cdk synth --exclusively` does for other stacks: the templates
 * are the same, and bundling every Lambda on every test app would cost seconds each time.
 */
export function testAppProps(options: { bundling?: boolean } = {}): AppProps {
  // analyticsReporting as the CLI sets it: the AWS::CDK::Metadata resource is part of what we deploy.
  return {
    context: {
      ...cdkJsonContext(),
      ...(options.bundling ? {} : { 'aws:cdk:bundling-stacks': [] }),
    },
    analyticsReporting: true,
    outdir: tempDir('cdk'),
  };
}

/** The example configuration (`cofre.config.ts`), optionally changed. */
export function exampleConfig(
  change: (c: CofreConfigInput) => CofreConfigInput = (c) => c,
): CofreConfigInput {
  return change(structuredClone(baseConfig));
}

/** Builds the Cofre app from the example config (or a changed one) as `bin/cofre.ts` would (Lambdas not bundled unless `bundling`). */
export function buildTestApp(
  change?: (c: CofreConfigInput) => CofreConfigInput,
  options: { bundling?: boolean } = {},
) {
  return buildCofreApp(parseConfig(exampleConfig(change)), testAppProps(options));
}
