import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { describe, expect, it } from 'vitest';
import { acknowledge, acknowledgementProblem } from '../../lib/nag';
import { listAcknowledgements } from '../helpers/nag';
import { buildTestApp } from '../helpers/cdk';

/** Violations in the CDK validation report of a synthesized assembly (none when there is no report). */
function violationsIn(outdir: string): string[] {
  const reportPath = path.join(outdir, 'validation-report.json');
  if (!existsSync(reportPath)) return [];
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as {
    pluginReports: { violations: { ruleName: string; violatingConstructs: { constructPath: string }[] }[] }[];
  };
  return report.pluginReports.flatMap((r) =>
    r.violations.flatMap((v) => v.violatingConstructs.map((c) => `${v.ruleName} at ${c.constructPath}`)),
  );
}

describe('the Cofre CDK app', () => {
  it('builds a DR-region stack and a primary-region stack that depends on it', () => {
    const { app, primary, dr } = buildTestApp();
    const assembly = app.synth();
    expect(assembly.stacks.map((s) => s.stackName).sort()).toEqual(['CofreDr', 'CofrePrimary']);
    expect(primary.region).toBe('sa-east-1');
    expect(dr.region).toBe('us-east-1');
    expect(primary.account).toBe('111111111111');
    expect(primary.dependencies).toContain(dr);
  });

  it('turns termination protection on by default and off when configured', () => {
    expect(buildTestApp().primary.terminationProtection).toBe(true);
    const { primary, dr } = buildTestApp((c) => ({ ...c, terminationProtection: false }));
    expect(primary.terminationProtection).toBe(false);
    expect(dr.terminationProtection).toBe(false);
  });

  it('tags everything with app=cofre and the protected data classes', () => {
    const assembly = buildTestApp().app.synth();
    for (const name of ['CofrePrimary', 'CofreDr']) {
      expect(assembly.getStackByName(name).tags).toEqual({ app: 'cofre', 'data-class': 'accounting+health' });
    }
  });

  it('enables cross-region references', () => {
    const { primary, dr } = buildTestApp();
    expect(primary._crossRegionReferences).toBe(true);
    expect(dr._crossRegionReferences).toBe(true);
  });

  it('synthesizes with zero cdk-nag findings (AwsSolutions, HIPAA Security, Serverless)', () => {
    const { app } = buildTestApp();
    const assembly = app.synth();
    expect(violationsIn(assembly.directory)).toEqual([]);
  });

  it('fails the synth on an unacknowledged finding', () => {
    const { app, primary } = buildTestApp();
    new Bucket(primary, 'CarelessBucket');
    expect(() => app.synth()).toThrow(/does not require requests to use SSL/);
    expect(violationsIn(app.outdir)).toContain('AwsSolutions-S10 at CofrePrimary/CarelessBucket/Resource');
  });

  it('has a specific reason for every acknowledgement', () => {
    const { app } = buildTestApp();
    app.synth();
    const vague = listAcknowledgements(app).filter((a) => acknowledgementProblem(a.reason) !== undefined);
    expect(vague).toEqual([]);
  });
});

describe('acknowledgements of cdk-nag findings', () => {
  it('refuse a stock phrase or a short reason', () => {
    const stack = new Stack();
    expect(() => {
      acknowledge(stack, { id: 'AwsSolutions-S1', reason: 'False positive' });
    }).toThrow(/stock phrase/);
    expect(() => {
      acknowledge(stack, { id: 'AwsSolutions-S1', reason: 'not needed here' });
    }).toThrow(/too short/);
  });

  it('are recorded with their reason, and found by the reason check', () => {
    const stack = new Stack();
    const bucket = new Bucket(stack, 'Logs');
    const reason = 'This bucket receives the access logs of the vault; logging it again would loop forever.';
    acknowledge(bucket, { id: 'AwsSolutions-S1', reason });
    expect(listAcknowledgements(stack)).toEqual([{ path: 'Default/Logs', id: 'AwsSolutions-S1', reason }]);
  });

  it('the reason check fails on a vague acknowledgement made around the helper', async () => {
    const { Validations } = await import('aws-cdk-lib');
    const stack = new Stack();
    Validations.of(stack).acknowledge({ id: 'AwsSolutions-IAM5', reason: 'ok' });
    const vague = listAcknowledgements(stack).filter((a) => acknowledgementProblem(a.reason) !== undefined);
    expect(vague.map((a) => a.id)).toEqual(['AwsSolutions-IAM5']);
  });
});

describe('the synthesized templates', () => {
  it('are valid CloudFormation for both regions', () => {
    const { primary, dr } = buildTestApp();
    for (const stack of [primary, dr]) {
      const template = Template.fromStack(stack).toJSON() as { Resources?: object };
      expect(template).toBeTypeOf('object');
    }
  });
});
