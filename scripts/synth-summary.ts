import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

// Prints what `cdk synth` produced: each stack with its region, template path and resource count,
// and the cdk-nag result. Exits 1 if the validation report lists any finding.
const outdir = path.join(__dirname, '..', 'cdk.out');
const manifest = JSON.parse(readFileSync(path.join(outdir, 'manifest.json'), 'utf8')) as {
  artifacts: Record<string, { type: string; environment?: string; properties?: { templateFile?: string } }>;
};
for (const [id, artifact] of Object.entries(manifest.artifacts)) {
  if (artifact.type !== 'aws:cloudformation:stack' || !artifact.properties?.templateFile) continue;
  const templatePath = path.join(outdir, artifact.properties.templateFile);
  const template = JSON.parse(readFileSync(templatePath, 'utf8')) as { Resources?: object };
  const region = artifact.environment?.split('/').pop();
  console.log(
    `${id.padEnd(14)} ${String(region).padEnd(14)} ${Object.keys(template.Resources ?? {}).length} resources  ${path.relative(process.cwd(), templatePath)}`,
  );
}
const reportPath = path.join(outdir, 'validation-report.json');
const findings = existsSync(reportPath)
  ? (
      JSON.parse(readFileSync(reportPath, 'utf8')) as { pluginReports: { violations: unknown[] }[] }
    ).pluginReports.flatMap((r) => r.violations).length
  : 0;
console.log(
  `cdk-nag (AwsSolutions, HIPAA.Security, Serverless): ${findings} unacknowledged finding${findings === 1 ? '' : 's'}`,
);
process.exitCode = findings === 0 ? 0 : 1;
