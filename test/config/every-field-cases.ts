/**
 * Every field of the configuration schema has an effect: changing it (alone) from the example
 * configuration changes what is deployed (the synthesized templates, with the stacks' environment,
 * termination protection and tags, which carry every runtime job's input: schedule inputs, task and
 * Lambda environments). A field of a feature that is not built is rejected at synth, naming it.
 *
 * Shared by every-field.test.ts and every-field-2.test.ts, which split the cases between the two
 * test workers (each case synthesizes the whole app).
 *
 * The list of fields is derived from the zod schema itself; a field with no case below, a case for
 * a field that no longer exists, or a field whose change leaves the deployment as it was fails here.
 */
import { z } from 'zod';
import { expect, it } from 'vitest';
import { buildCofreApp } from '../../lib/app';
import { configSchema, NOT_YET_SUPPORTED, parseConfig, type CofreConfigInput } from '../../lib/config';
import { exampleConfig, testAppProps } from '../helpers/cdk';

interface JsonNode {
  type?: string | string[];
  properties?: Record<string, JsonNode>;
  additionalProperties?: JsonNode | boolean;
  items?: JsonNode;
}

/** Every field path of the schema: leaves, maps (and their values), array items' fields as `a[].b`. */
function schemaFields(): string[] {
  const root = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonNode;
  const out: string[] = [];
  const walk = (node: JsonNode, path: string) => {
    if (node.type === 'object' && node.properties) {
      for (const [key, child] of Object.entries(node.properties)) walk(child, path ? `${path}.${key}` : key);
      return;
    }
    if (node.type === 'object' && typeof node.additionalProperties === 'object') {
      out.push(path);
      walk(node.additionalProperties, `${path}.<name>`);
      return;
    }
    if (node.type === 'array' && node.items?.type === 'object') {
      walk(node.items, `${path}[]`);
      return;
    }
    out.push(path);
  };
  walk(root, '');
  return out;
}

type Config = CofreConfigInput;
type Db = NonNullable<Config['databases']>[number];
const db0 = (c: Config): Db => c.databases![0]!;
type Source = NonNullable<NonNullable<Config['buckets']>[number]['source']>;
const src = (c: Config): Source => c.buckets![1]!.source!;
const ARN_SECRET = 'arn:aws:secretsmanager:sa-east-1:111111111111:secret:cofre/other-AbCdEf';

/** One change per supported field, to a valid value different from the example's (or its default). */
export const CHANGES: Record<string, (c: Config) => void> = {
  account: (c) => (c.account = '222222222222'),
  'regions.primary': (c) => (c.regions = { ...c.regions, primary: 'us-west-2' }),
  'regions.dr': (c) => (c.regions = { ...c.regions, dr: 'us-west-1' }),
  timeZone: (c) => (c.timeZone = 'America/Manaus'),
  terminationProtection: (c) => (c.terminationProtection = false),
  breakGlassRoleArn: (c) => (c.breakGlassRoleArn = 'arn:aws:iam::111111111111:role/other-break-glass'),
  'databases[].id': (c) => (db0(c).id = 'app-main'),
  'databases[].engine': (c) => (db0(c).engine = 'mysql'),
  'databases[].rdsInstanceId': (c) => (db0(c).rdsInstanceId = 'app-other'),
  'databases[].rdsClusterId': (c) => {
    delete db0(c).rdsInstanceId;
    delete db0(c).snapshotRestoreTest;
    db0(c).rdsClusterId = 'app-cluster';
  },
  'databases[].host': (c) => {
    delete db0(c).rdsInstanceId;
    delete db0(c).snapshotRestoreTest;
    db0(c).host = 'db.example.com';
  },
  'databases[].port': (c) => (db0(c).port = 6432),
  'databases[].databases': (c) => (db0(c).databases = ['app']),
  'databases[].excludeDatabases': (c) => (db0(c).excludeDatabases = ['rdsadmin', 'scratch']),
  'databases[].credentialsSecretArn': (c) => (db0(c).credentialsSecretArn = ARN_SECRET),
  // Databases with tenants share one VPC (a synth check): move both.
  'databases[].network.vpcId': (c) => {
    for (const db of c.databases!) db.network.vpcId = 'vpc-0fedcba9876543210';
  },
  'databases[].network.subnetIds': (c) => (db0(c).network.subnetIds = ['subnet-0fedcba9876543210']),
  'databases[].network.securityGroupId': (c) => (db0(c).network.securityGroupId = 'sg-0fedcba9876543210'),
  'databases[].network.availabilityZones': (c) =>
    (db0(c).network.availabilityZones = ['sa-east-1a', 'sa-east-1b']),
  'databases[].dataClass': (c) => (db0(c).dataClass = 'accounting'),
  'databases[].snapshotRestoreTest.dbSubnetGroupName': (c) =>
    (db0(c).snapshotRestoreTest!.dbSubnetGroupName = 'app-prod-other-subnets'),
  'databases[].snapshotRestoreTest.vpcSecurityGroupIds': (c) =>
    (db0(c).snapshotRestoreTest!.vpcSecurityGroupIds = ['sg-0fedcba9876543210']),
  // Restore targets: the example has none; each case adds one (test/config/restore-targets.test.ts
  // changes each field of an existing target alone).
  'databases[].restoreTargets[].name': (c) =>
    (db0(c).restoreTargets = [{ name: 'staging', credentialsSecretArn: ARN_SECRET }]),
  'databases[].restoreTargets[].host': (c) =>
    (db0(c).restoreTargets = [
      { name: 'staging', host: 'staging.internal', credentialsSecretArn: ARN_SECRET },
    ]),
  'databases[].restoreTargets[].port': (c) =>
    (db0(c).restoreTargets = [{ name: 'staging', port: 6432, credentialsSecretArn: ARN_SECRET }]),
  'databases[].restoreTargets[].credentialsSecretArn': (c) =>
    (db0(c).restoreTargets = [{ name: 'staging', credentialsSecretArn: ARN_SECRET }]),
  'databases[].restoreTargets[].network.subnetIds': (c) =>
    (db0(c).restoreTargets = [
      {
        name: 'staging',
        credentialsSecretArn: ARN_SECRET,
        network: { subnetIds: ['subnet-0fedcba9876543210'], securityGroupId: 'sg-0123456789abcdef0' },
      },
    ]),
  'databases[].restoreTargets[].network.securityGroupId': (c) =>
    (db0(c).restoreTargets = [
      {
        name: 'staging',
        credentialsSecretArn: ARN_SECRET,
        network: { subnetIds: ['subnet-0123456789abcdef0'], securityGroupId: 'sg-0fedcba9876543210' },
      },
    ]),
  'databases[].tenants.table': (c) => (db0(c).tenants!.table = 'public.tenants'),
  'databases[].tenants.keyColumn': (c) => (db0(c).tenants!.keyColumn = 'clinic_key'),
  'databases[].tenants.tenantColumn': (c) => (db0(c).tenants!.tenantColumn = 'tenant'),
  'databases[].tenants.dataClass': (c) => (db0(c).tenants!.dataClass = 'accounting'),
  'schedules.fullBackup': (c) => (c.schedules = { fullBackup: 'cron(0 5 * * ? *)' }),
  'schedules.tenantExport': (c) => (c.schedules = { tenantExport: 'cron(0 5 * * ? *)' }),
  'schedules.integrityVerification': (c) => (c.schedules = { integrityVerification: 'cron(0 5 ? * TUE *)' }),
  'schedules.restoreTest': (c) => (c.schedules = { restoreTest: 'cron(0 5 ? * SUN#2 *)' }),
  'retention.tiers.dailyDays': (c) => (c.retention = { tiers: { dailyDays: 35 } }),
  'retention.tiers.weeklyWeeks': (c) => (c.retention = { tiers: { weeklyWeeks: 13 } }),
  'retention.tiers.monthlyMonths': (c) => (c.retention = { tiers: { monthlyMonths: 13 } }),
  'retention.tiers.yearlyYears': (c) => (c.retention = { tiers: { yearlyYears: 8 } }),
  'retention.classes': (c) =>
    (c.retention = {
      classes: {
        health: { years: 7 },
        accounting: { years: 5 },
        labour: { years: 10 },
        legal: { years: 20 },
      },
    }),
  'retention.classes.<name>.years': (c) =>
    (c.retention = { classes: { health: { years: 8 }, accounting: { years: 5 }, labour: { years: 10 } } }),
  'retention.tenantExportDays': (c) => (c.retention = { tenantExportDays: 91 }),
  'retention.configSnapshotDays': (c) => (c.retention = { configSnapshotDays: 120 }),
  'schedules.configSnapshot': (c) => (c.schedules = { configSnapshot: 'cron(0 4 ? * SAT *)' }),
  'configuration.secretArns': (c) => (c.configuration = { ...c.configuration, secretArns: [ARN_SECRET] }),
  'configuration.ssmParameterPaths': (c) =>
    (c.configuration = { ...c.configuration, ssmParameterPaths: ['/app/other/'] }),
  'configuration.dataClass': (c) => (c.configuration = { ...c.configuration, dataClass: 'health' }),
  'schedules.rdsSnapshot': (c) => (c.schedules = { rdsSnapshot: 'cron(30 4 * * ? *)' }),
  'retention.rdsSnapshotDays': (c) => (c.retention = { rdsSnapshotDays: 31 }),
  'snapshots.continuousDays': (c) => (c.snapshots = { continuousDays: 30 }),
  'snapshots.rpoMinutes': (c) => (c.snapshots = { rpoMinutes: 45 }),
  'snapshots.vaultLock.mode': (c) => (c.snapshots = { vaultLock: { mode: 'GOVERNANCE' } }),
  'snapshots.vaultLock.graceDays': (c) => (c.snapshots = { vaultLock: { graceDays: 5 } }),
  'objectLock.mode': (c) => (c.objectLock = { mode: 'GOVERNANCE' }),
  'objectLock.days': (c) => (c.objectLock = { days: 20 }),
  'replication.storageClass': (c) => (c.replication = { storageClass: 'STANDARD_IA' }),
  'alerts.emails': (c) => (c.alerts.emails = ['ops@example.com', 'cto@example.com']),
  'alerts.pagerDutyRoutingKeySecretArn': (c) => (c.alerts.pagerDutyRoutingKeySecretArn = ARN_SECRET),
  'alerts.notifyOnSuccess': (c) => (c.alerts.notifyOnSuccess = true),
  'thresholds.maxDurationMinutes': (c) => (c.thresholds = { maxDurationMinutes: 45 }),
  'thresholds.sizeAnomalyPercent': (c) => (c.thresholds = { sizeAnomalyPercent: 40 }),
  'thresholds.maxSizeGiB': (c) => (c.thresholds = { maxSizeGiB: 60 }),
  'prices.currency': (c) => (c.prices = { currency: 'BRL' }),
  'prices.storageGbMonth.STANDARD': (c) => (c.prices = { storageGbMonth: { STANDARD: 0.05 } }),
  'prices.storageGbMonth.STANDARD_IA': (c) => (c.prices = { storageGbMonth: { STANDARD_IA: 0.03 } }),
  'prices.storageGbMonth.GLACIER_IR': (c) => (c.prices = { storageGbMonth: { GLACIER_IR: 0.01 } }),
  'prices.storageGbMonth.GLACIER': (c) => (c.prices = { storageGbMonth: { GLACIER: 0.009 } }),
  'prices.storageGbMonth.DEEP_ARCHIVE': (c) => (c.prices = { storageGbMonth: { DEEP_ARCHIVE: 0.004 } }),
  'buckets[].bucketName': (c) => (c.buckets![0]!.bucketName = 'app-prod-other-documents'),
  'buckets[].dataClass': (c) => (c.buckets![0]!.dataClass = 'health'),
  // The example's second bucket is an S3-compatible source (MinIO).
  'buckets[].prefixes': (c) => (c.buckets![1]!.prefixes = ['tenants/', 'shared/']),
  'buckets[].source.endpoint': (c) => (src(c).endpoint = 'https://minio2.internal.example.com'),
  'buckets[].source.region': (c) => (src(c).region = 'sa-east-1'),
  'buckets[].source.credentialsSecretArn': (c) => (src(c).credentialsSecretArn = ARN_SECRET),
  'buckets[].source.forcePathStyle': (c) => (src(c).forcePathStyle = false),
  'buckets[].source.network.subnetIds': (c) => (src(c).network.subnetIds = ['subnet-0fedcba9876543210']),
  'buckets[].source.network.securityGroupId': (c) =>
    (src(c).network.securityGroupId = 'sg-0fedcba9876543210'),
  // The example has both kinds of bucket: the files task schedule of the S3-compatible one and the AWS
  // Backup restore testing plan of the AWS one change (test/lib/bucket-restore-tests.test.ts asserts the plan).
  'schedules.filesRestoreTest': (c) => (c.schedules = { filesRestoreTest: 'cron(0 6 ? * FRI *)' }),
  'schedules.filesDifferential': (c) => (c.schedules = { filesDifferential: 'cron(0 4 ? * MON-SAT *)' }),
  'schedules.filesFull': (c) => (c.schedules = { filesFull: 'cron(0 4 ? * SAT *)' }),
  'retention.filesDifferentialDays': (c) => (c.retention = { filesDifferentialDays: 31 }),
  'retention.filesFullWeeks': (c) => (c.retention = { filesFullWeeks: 13 }),
  'dumpTask.cpu': (c) => (c.dumpTask = { cpu: 1024 }),
  'dumpTask.memoryMiB': (c) => (c.dumpTask = { memoryMiB: 8192 }),
  'dumpTask.ephemeralStorageGiB': (c) => (c.dumpTask = { ephemeralStorageGiB: 60 }),
  'filesTask.cpu': (c) => (c.filesTask = { cpu: 512 }),
  'filesTask.memoryMiB': (c) => (c.filesTask = { memoryMiB: 4096 }),
};

/** A value for each not-yet-supported field (valid for the schema, so only the rejection remains). */
export const UNSUPPORTED_VALUES: Record<string, unknown> = {};

export const unsupportedRoot = (field: string) =>
  Object.keys(NOT_YET_SUPPORTED).find(
    (p) => field === p || field.startsWith(`${p}.`) || field.startsWith(`${p}[`),
  );

/** What is deployed: each stack's template, environment, termination protection and tags. */
function deployed(config: Config): string {
  // cdk-nag checks the synthesized app (test/lib/app.test.ts) and changes no template: left out here.
  const { app } = buildCofreApp(parseConfig(config), testAppProps(), { nagPacks: false });
  const assembly = app.synth();
  return JSON.stringify(
    assembly.stacks.map((s) => ({
      id: s.id,
      environment: s.environment,
      terminationProtection: s.terminationProtection,
      tags: s.tags,
      template: s.template as unknown,
    })),
  );
}

export const fields = schemaFields();
export const supported = fields.filter((f) => unsupportedRoot(f) === undefined);

/** The "changes what is deployed" cases of `shard` (0-based) of `shards`. */
export function changesWhatIsDeployed(shard: number, shards: number): void {
  const baseline = { value: '' };
  it.each(supported.filter((_, i) => i % shards === shard))('%s changes what is deployed', (field) => {
    baseline.value ||= deployed(exampleConfig());
    const config = exampleConfig();
    CHANGES[field]!(config);
    expect(deployed(config), `changing ${field} left the synthesized app as it was`).not.toBe(baseline.value);
  });
}
