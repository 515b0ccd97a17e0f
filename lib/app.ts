import { App, Tags, type AppProps } from 'aws-cdk-lib';
import { DATA_CLASS_DEFAULT, type CofreConfig } from './config';
import { addNagPacks } from './nag';
import { CofreDrStack } from './stacks/dr-stack';
import { CofrePrimaryStack } from './stacks/primary-stack';

/** The stacks of one Cofre deployment. */
export interface CofreApp {
  readonly app: App;
  readonly primary: CofrePrimaryStack;
  readonly dr: CofreDrStack;
}

/** The data classes a deployment protects, for the `data-class` tag (e.g. `accounting+health`). */
export function dataClassesOf(config: CofreConfig): string[] {
  const classes = new Set<string>();
  for (const db of config.databases) {
    classes.add(db.dataClass);
    if (db.tenants?.dataClass) classes.add(db.tenants.dataClass);
  }
  for (const bucket of config.buckets) classes.add(bucket.dataClass);
  if (classes.size === 0) classes.add(DATA_CLASS_DEFAULT);
  return [...classes].sort();
}

/**
 * Builds the CDK app from a validated configuration: the DR-region stack, then the primary-region
 * stack (cross-region references on), tagged, termination-protected, with every cdk-nag pack.
 */
export function buildCofreApp(
  config: CofreConfig,
  appProps: AppProps = {},
  options: { readonly nagPacks?: boolean } = {},
): CofreApp {
  const app = new App(appProps);
  const tags = { app: 'cofre', 'data-class': dataClassesOf(config).join('+') };
  // Stack-level tags (CloudFormation propagates them to every resource it can tag), and the same
  // tags on each construct, so the templates carry them too (the explicitStackTags flag is on).
  const common = { terminationProtection: config.terminationProtection, crossRegionReferences: true, tags };
  const dr = new CofreDrStack(app, 'CofreDr', {
    ...common,
    config,
    env: { account: config.account, region: config.regions.dr },
    description: `Cofre disaster-recovery vault (${config.regions.dr})`,
  });
  const primary = new CofrePrimaryStack(app, 'CofrePrimary', {
    ...common,
    config,
    drStack: dr,
    env: { account: config.account, region: config.regions.primary },
    description: `Cofre backup pipeline and primary vault (${config.regions.primary})`,
  });
  for (const [key, value] of Object.entries(tags)) Tags.of(app).add(key, value);
  // Off only where a test compares templates many times (cdk-nag changes no template).
  if (options.nagPacks !== false) addNagPacks(app);
  return { app, primary, dr };
}
