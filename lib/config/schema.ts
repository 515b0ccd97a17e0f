import { z } from 'zod';
import { scheduleExpressionProblem } from './schedule-expression';

/**
 * The schema of `cofre.config.ts`. Every field has a `.describe()` text: the README's
 * configuration reference is generated from them (`npm run docs:config`), and a test fails when
 * the README and this file disagree.
 */

const REGION =
  /^(af|ap|ca|eu|il|me|mx|sa|us)-(gov-)?(central|north|south|east|west|northeast|northwest|southeast|southwest)-\d$/;
const ACCOUNT = /^\d{12}$/;
const ARN = (service: string) => new RegExp(`^arn:aws(-[a-z]+)*:${service}:[a-z0-9-]*:(\\d{12})?:[^\\s]+$`);
const NAME = /^[a-z][a-z0-9-]{0,39}$/;
/** An RDS DB instance or cluster identifier, as RDS accepts it. */
/** A daily cron expression: `cron(M H * * ? *)`. */
export const DAILY_CRON = /^cron\((\d{1,2}) (\d{1,2}) \* \* \? \*\)$/;
const RDS_IDENTIFIER = /^(?!.*--)[A-Za-z][A-Za-z0-9-]{0,62}(?<!-)$/;

const region = (what: string) =>
  z.string({ error: `expected the ${what} as an AWS region code such as "sa-east-1"` }).regex(REGION, {
    error: (iss) => `expected an AWS region code such as "sa-east-1", got "${String(iss.input)}"`,
  });

const arn = (service: string, example: string) =>
  z.string().regex(ARN(service), {
    error: (iss) => `expected an ARN like "${example}", got "${String(iss.input)}"`,
  });

const name = (what: string) =>
  z.string().regex(NAME, {
    error: (iss) =>
      `expected a ${what} of lowercase letters, digits and "-" (starting with a letter, at most 40), got "${String(iss.input)}"`,
  });

const positiveInt = (what: string, max: number) =>
  z
    .number({ error: `expected ${what} as a whole number` })
    .int({ error: `expected ${what} as a whole number` })
    .min(1, { error: (iss) => `expected ${what} between 1 and ${max}, got ${String(iss.input)}` })
    .max(max, { error: (iss) => `expected ${what} between 1 and ${max}, got ${String(iss.input)}` });

const scheduleExpression = (defaultValue: string, description: string) =>
  z
    .string()
    .superRefine((value, ctx) => {
      const problem = scheduleExpressionProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .default(defaultValue)
    .describe(description);

const identifier = (what: string) =>
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/, {
    error: (iss) =>
      `expected ${what} as a plain SQL identifier (letters, digits, _), got "${String(iss.input)}"`,
  });

const tableName = z.string().regex(/^([A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$/, {
  error: (iss) => `expected a table as "name" or "schema.name", got "${String(iss.input)}"`,
});

export const DATA_CLASS_DEFAULT = 'general';

/**
 * Fields of features that are not built yet, by path, with the feature. They stay in the schema
 * (their issues build on them), but `parseConfig` rejects a configuration that sets one, naming it:
 * accepted, they would protect nothing while the operator believed otherwise. The configuration
 * reference leaves them out. To lift one, build its feature, remove its line here, and give it a
 * case in test/config/every-field.test.ts.
 */
export const NOT_YET_SUPPORTED: Readonly<Record<string, string>> = {};

export const tenantModelSchema = z
  .strictObject({
    table: tableName.describe('Table that holds one row per tenant, as `name` or `schema.name`.'),
    keyColumn: identifier('the tenant key column').describe('Primary-key column of the tenant table.'),
    tenantColumn: identifier('the tenant column').describe(
      'Column that carries the tenant id on every tenant-owned table (e.g. `tenant_id` or `tenantId`).',
    ),
    dataClass: name('data class')
      .optional()
      .describe('Data class of per-tenant exports; defaults to the database `dataClass`.'),
  })
  .describe('Multi-tenant model of a shared-schema database.');

const networkSchema = z
  .strictObject({
    vpcId: z
      .string()
      .regex(/^vpc-[0-9a-f]{8,17}$/, {
        error: (iss) => `expected a VPC id like "vpc-0abc12345def67890", got "${String(iss.input)}"`,
      })
      .describe('VPC the dump tasks run in (must reach the database).'),
    subnetIds: z
      .array(
        z.string().regex(/^subnet-[0-9a-f]{8,17}$/, {
          error: (iss) => `expected a subnet id like "subnet-0abc12345def67890", got "${String(iss.input)}"`,
        }),
      )
      .min(1, { error: 'expected at least one private subnet id' })
      .describe('Private subnets for the dump tasks.'),
    securityGroupId: z
      .string()
      .regex(/^sg-[0-9a-f]{8,17}$/, {
        error: (iss) =>
          `expected a security group id like "sg-0abc12345def67890", got "${String(iss.input)}"`,
      })
      .describe('Security group that the database accepts connections from.'),
    availabilityZones: z
      .array(
        z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$/, {
          error: (iss) => `expected an availability zone like "sa-east-1a", got "${String(iss.input)}"`,
        }),
      )
      .min(1)
      .optional()
      .describe(
        'Availability zones of `subnetIds` (same order); needed only where a construct must know them.',
      ),
  })
  .describe('Network placement of the dump tasks.');

const securityGroupId = z.string().regex(/^sg-[0-9a-f]{8,17}$/, {
  error: (iss) => `expected a security group id like "sg-0abc12345def67890", got "${String(iss.input)}"`,
});

const snapshotRestoreTestSchema = z
  .strictObject({
    dbSubnetGroupName: z
      .string()
      .regex(/^(?!default$)[A-Za-z0-9 ._-]{1,255}$/, {
        error: (iss) =>
          `expected the name of the source instance's DB subnet group (letters, digits, spaces, ".", "_", "-"; not "default"), got "${String(iss.input)}"`,
      })
      .describe(
        "DB subnet group of the source RDS instance: the monthly AWS Backup restore test restores into it, so the temporary instance lands in the source's subnets (never the default VPC).",
      ),
    vpcSecurityGroupIds: z
      .array(securityGroupId)
      .min(1, { error: 'expected at least one security group id (those of the source instance)' })
      .max(5, { error: 'expected at most 5 security group ids' })
      .describe(
        'Security groups of the source RDS instance, given to the temporary instance; they must accept connections from `network.securityGroupId` (the validation Lambda runs with it).',
      ),
  })
  .describe(
    'Monthly AWS Backup restore test of an RDS instance (required with `rdsInstanceId`): where the temporary instance is restored.',
  );

/** A Secrets Manager secret ARN with its 6-character suffix (IAM and ECS name the secret exactly). */
const COMPLETE_SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+-[A-Za-z0-9]{6}$/;

/** An optional TCP port (1–65535). */
const tcpPort = () =>
  z.number().int().min(1).max(65535, { error: 'expected a TCP port between 1 and 65535' }).optional();

const restoreTargetSchema = z
  .strictObject({
    name: name('restore target name').describe(
      'Name the console restore input gives as `target` (e.g. `staging`).',
    ),
    host: z
      .string()
      .min(1)
      .optional()
      .describe("Host name of the target server; defaults to the secret's `host`."),
    port: tcpPort().describe(
      "Port of the target server; defaults to the secret's `port`, else 5432 (postgres) or 3306 (mysql).",
    ),
    credentialsSecretArn: z
      .string()
      .regex(COMPLETE_SECRET_ARN, {
        error: (iss) =>
          `expected the complete ARN of a Secrets Manager secret (ending in its 6-character suffix), like "arn:aws:secretsmanager:sa-east-1:123456789012:secret:staging-db-AbCdEf", got "${String(iss.input)}"`,
      })
      .describe(
        "Secrets Manager secret with the target server's credentials (RDS JSON format); only the dump task of this database may read it, and only for a console restore into this target.",
      ),
    network: z
      .strictObject({
        subnetIds: networkSchema.shape.subnetIds.describe('Private subnets the restore task runs in.'),
        securityGroupId: networkSchema.shape.securityGroupId.describe(
          'Security group that the target server accepts connections from.',
        ),
      })
      .optional()
      .describe("Where the restore task runs for this target; defaults to the database's `network`."),
  })
  .describe(
    'A server a console restore (kind `database`) may restore this database into, besides its own; same engine.',
  );

export const databaseSchema = z
  .strictObject({
    id: name('database id').describe('Short id used in backup keys, metrics and alerts (e.g. `app-prod`).'),
    engine: z
      .enum(['postgres', 'mysql'], {
        error: (iss) => `expected "postgres" or "mysql", got ${JSON.stringify(iss.input)}`,
      })
      .describe('Database engine: `postgres`, or `mysql` for MySQL and MariaDB.'),
    rdsInstanceId: z
      .string()
      .min(1)
      .optional()
      .describe('RDS DB instance identifier (one of rdsInstanceId, rdsClusterId, host).'),
    rdsClusterId: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Aurora DB cluster identifier (one of rdsInstanceId, rdsClusterId, host); AWS Backup protects Aurora by cluster, never by its member instances.',
      ),
    host: z.string().min(1).optional().describe('Host name of a self-managed server.'),
    port: tcpPort().describe('Port; defaults to 5432 (postgres) or 3306 (mysql).'),
    databases: z
      .union([z.literal('all'), z.array(z.string().min(1)).min(1)], {
        error: 'expected "all" or a non-empty list of database names',
      })
      .default('all')
      .describe('Databases to dump: `"all"` (system databases excluded) or a list of names.'),
    excludeDatabases: z
      .array(z.string().min(1))
      .default([])
      .describe('Databases to leave out when `databases` is `"all"`.'),
    credentialsSecretArn: arn(
      'secretsmanager',
      'arn:aws:secretsmanager:sa-east-1:123456789012:secret:app-prod-AbCdEf',
    ).describe(
      'Secrets Manager secret with the credentials, in the RDS JSON format (`username`, `password`, ...).',
    ),
    network: networkSchema,
    dataClass: name('data class')
      .default(DATA_CLASS_DEFAULT)
      .describe('Data class of this database; must be `general` or a key of `retention.classes`.'),
    tenants: tenantModelSchema.optional(),
    snapshotRestoreTest: snapshotRestoreTestSchema.optional(),
    restoreTargets: z
      .array(restoreTargetSchema)
      .default([])
      .describe(
        'Other servers a console restore may restore this database into (input field `target`); none by default: restores go to its own server.',
      ),
  })
  .superRefine((db, ctx) => {
    const names = new Set<string>();
    db.restoreTargets.forEach((t, i) => {
      if (names.has(t.name))
        ctx.addIssue({
          code: 'custom',
          path: ['restoreTargets', i, 'name'],
          message: `expected a unique restore target name, "${t.name}" is used twice`,
        });
      names.add(t.name);
    });
    if (db.rdsInstanceId !== undefined && db.snapshotRestoreTest === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['snapshotRestoreTest'],
        message:
          'is required with rdsInstanceId: the monthly AWS Backup restore test needs the DB subnet group and security groups of the source instance ({ dbSubnetGroupName, vpcSecurityGroupIds }), or AWS would restore into the default VPC',
      });
    const sourceCount = [db.rdsInstanceId, db.rdsClusterId, db.host].filter((v) => v !== undefined).length;
    if (db.rdsInstanceId === undefined && db.snapshotRestoreTest !== undefined && sourceCount === 1)
      ctx.addIssue({
        code: 'custom',
        path: ['snapshotRestoreTest'],
        message: `applies only to an RDS instance (rdsInstanceId); ${db.rdsClusterId !== undefined ? 'AWS Backup restores an Aurora cluster without instances, so its snapshot restore test is not built' : 'a self-managed server has no AWS Backup snapshots'}: remove it`,
      });
    for (const field of ['rdsInstanceId', 'rdsClusterId'] as const) {
      const value = db[field];
      if (value !== undefined && !RDS_IDENTIFIER.test(value))
        ctx.addIssue({
          code: 'custom',
          path: [field],
          message: `expected an RDS identifier (1–63 letters, digits and "-", starting with a letter, no "--", not ending in "-"), got "${value}"`,
        });
    }
    const sources = (['rdsInstanceId', 'rdsClusterId', 'host'] as const).filter((k) => db[k] !== undefined);
    if (sources.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: sources.length === 0 ? ['host'] : [sources[1]!],
        message:
          sources.length === 0
            ? 'expected exactly one of rdsInstanceId, rdsClusterId or host'
            : `expected exactly one of rdsInstanceId, rdsClusterId or host, got ${sources.join(' and ')}`,
      });
    }
  })
  .describe('A database server to protect.');

const filesSourceSchema = z
  .strictObject({
    endpoint: z
      .string()
      .regex(/^https?:\/\/[^\s/?#]+(:\d+)?(\/[^\s?#]*)?$/, {
        error: (iss) =>
          `expected the S3 endpoint URL of the store, such as "https://minio.example.com:9000" or "https://<project>.supabase.co/storage/v1/s3", got "${String(iss.input)}"`,
      })
      .describe(
        'S3 API endpoint of the store (MinIO, Supabase Storage, any S3-compatible service), e.g. `https://minio.example.com:9000`.',
      ),
    region: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]{0,31}$/, {
        error: (iss) =>
          `expected the region the store signs requests for (lowercase letters, digits and "-", e.g. "us-east-1"), got "${String(iss.input)}"`,
      })
      .default('us-east-1')
      .describe('Region the store expects in request signatures (MinIO and Supabase: usually `us-east-1`).'),
    credentialsSecretArn: arn(
      'secretsmanager',
      'arn:aws:secretsmanager:sa-east-1:123456789012:secret:minio-docs-AbCdEf',
    ).describe(
      'Secrets Manager secret with the access key of the store, as JSON `{"accessKeyId": "...", "secretAccessKey": "..."}` (read-only access is enough).',
    ),
    forcePathStyle: z
      .boolean()
      .default(true)
      .describe(
        'Path-style addressing (`https://host/bucket/key`), which MinIO and Supabase expect; `false` for virtual-hosted style (`https://bucket.host/key`).',
      ),
    network: z
      .strictObject({
        subnetIds: z
          .array(
            z.string().regex(/^subnet-[0-9a-f]{8,17}$/, {
              error: (iss) =>
                `expected a subnet id like "subnet-0abc12345def67890", got "${String(iss.input)}"`,
            }),
          )
          .min(1, { error: 'expected at least one private subnet id' })
          .describe('Private subnets the files task runs in (must reach the endpoint and AWS S3).'),
        securityGroupId: securityGroupId.describe('Security group of the files task.'),
      })
      .describe('Network placement of the Fargate files task of this source.'),
  })
  .describe(
    'An S3-compatible store instead of AWS S3: a Fargate task copies the bucket into the vault (`files/<bucket>/`) on `schedules.filesDifferential` and `schedules.filesFull`, and checks a sample weekly on `schedules.filesRestoreTest`.',
  );

const bucketSchema = z
  .strictObject({
    bucketName: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
        error: (iss) => `expected an S3 bucket name, got "${String(iss.input)}"`,
      })
      .describe(
        'Name of the bucket. Without `source`: an AWS S3 bucket of this account in the primary region, protected with AWS Backup (continuous + periodic, copied to the DR region); it is not created or changed by Cofre, and must have versioning on. With `source`: the bucket on that store.',
      ),
    source: filesSourceSchema.optional(),
    prefixes: z
      .array(
        z.string().min(1, {
          error: 'expected a non-empty prefix such as "tenants/" (leave the list empty for the whole bucket)',
        }),
      )
      .default([])
      .describe(
        'S3-compatible sources only: copy only these prefixes; empty means the whole bucket (AWS Backup always protects whole AWS S3 buckets).',
      ),
    dataClass: name('data class')
      .default(DATA_CLASS_DEFAULT)
      .describe(
        'Data class of the files: the yearly recovery points are kept its legal years (`retention.classes`), `general` ones `retention.tiers.yearlyYears`.',
      ),
  })
  .superRefine((bucket, ctx) => {
    if (bucket.source === undefined && bucket.prefixes.length > 0)
      ctx.addIssue({
        code: 'custom',
        path: ['prefixes'],
        message:
          'applies only to an S3-compatible source (with `source`): AWS Backup protects whole AWS S3 buckets; remove it, or add `source`',
      });
  })
  .describe('An application bucket to protect.');

const tierRetentionSchema = z
  .strictObject({
    dailyDays: positiveInt('the days to keep daily backups', 3650)
      .default(30)
      .describe('Days a daily backup is kept.'),
    weeklyWeeks: positiveInt('the weeks to keep weekly backups', 520)
      .default(12)
      .describe('Weeks a weekly backup is kept.'),
    monthlyMonths: positiveInt('the months to keep monthly backups', 240)
      .default(12)
      .describe('Months a monthly backup is kept.'),
    yearlyYears: positiveInt('the years to keep yearly backups', 100)
      .default(7)
      .describe('Years a yearly backup of `general` data is kept.'),
  })
  .describe('Grandfather-father-son retention of full backups.');

const classRetentionSchema = z
  .strictObject({
    years: positiveInt('the legal retention in years', 100).describe(
      'Years that the law asks this class to be kept.',
    ),
  })
  .describe('Legal retention of one data class.');

const retentionSchema = z
  .strictObject({
    tiers: tierRetentionSchema.prefault({}),
    classes: z
      .record(name('data class'), classRetentionSchema)
      .default({ health: { years: 7 }, accounting: { years: 5 }, labour: { years: 10 } })
      .describe(
        'Legal retention per data class (yearly backups and per-tenant exports of that class). Default health 7, accounting 5, labour 10 years.',
      ),
    tenantExportDays: positiveInt('the days to keep per-tenant exports', 3650)
      .default(90)
      .describe('Days a per-tenant export of `general` data is kept.'),
    filesDifferentialDays: positiveInt('the days to keep differential file copies', 3650)
      .default(30)
      .describe('Days a daily (differential) recovery point of an application bucket is kept.'),
    filesFullWeeks: positiveInt('the weeks to keep full file copies', 520)
      .default(12)
      .describe('Weeks a weekly (full) recovery point of an application bucket is kept.'),
    configSnapshotDays: positiveInt('the days to keep configuration snapshots', 3650)
      .default(90)
      .describe('Days a configuration snapshot is kept.'),
    rdsSnapshotDays: positiveInt('the days to keep RDS snapshots', 35)
      .default(30)
      .describe(
        'Days the daily AWS Backup snapshots of RDS/Aurora databases (and their DR-region copies) are kept; weekly, monthly and yearly snapshots follow `tiers` and `classes`.',
      ),
  })
  .describe('How long each kind of backup is kept.');

const schedulesSchema = z
  .strictObject({
    fullBackup: scheduleExpression('cron(0 2 * * ? *)', 'Full database dump.'),
    tenantExport: scheduleExpression('cron(0 1 * * ? *)', 'Per-tenant exports.'),
    rdsSnapshot: z
      .string()
      .superRefine((value, ctx) => {
        const problem = scheduleExpressionProblem(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
        else if (!DAILY_CRON.test(value))
          ctx.addIssue({
            code: 'custom',
            message: `expected a daily cron expression like "cron(0 3 * * ? *)" (AWS Backup rules take cron only; the weekly, monthly and yearly rules reuse its time of day), got "${value}"`,
          });
      })
      .default('cron(0 3 * * ? *)')
      .describe(
        'Daily AWS Backup snapshot of RDS/Aurora databases, copied to the DR region, as a daily `cron(M H * * ? *)` (the weekly, monthly and yearly snapshots run at the same time of day).',
      ),
    filesDifferential: scheduleExpression(
      'cron(0 3 ? * MON-SAT *)',
      'Daily (differential) AWS Backup recovery point of the application buckets, as a `cron(...)` (AWS Backup takes cron only); the continuous backup starts with it. S3-compatible sources: the differential sync (new and changed objects).',
    ),
    filesFull: scheduleExpression(
      'cron(0 3 ? * SUN *)',
      'Weekly (full) AWS Backup recovery point of the application buckets, as a `cron(...)`; the yearly one (1 January) is taken at its time of day. S3-compatible sources: the full sync (every object copied again).',
    ),
    configSnapshot: scheduleExpression(
      'cron(0 3 ? * SUN *)',
      'Weekly configuration snapshot (also taken on every change).',
    ),
    integrityVerification: scheduleExpression(
      'cron(0 3 ? * WED *)',
      'Deep integrity verification of recent backups.',
    ),
    filesRestoreTest: scheduleExpression(
      'cron(0 5 ? * SAT *)',
      'Weekly restore test of the buckets. S3-compatible sources (`buckets[].source`): a sample of the newest catalogue read back from the vault and compared (SHA-256) with the store. AWS S3 buckets: the AWS Backup restore testing plan restores the latest recovery point into a new bucket and a sample is compared (SHA-256) with the source versions current then (takes `cron(...)` only).',
    ),
    restoreTest: scheduleExpression(
      'cron(0 4 ? * SUN#1 *)',
      'Automated restore test: the logical restore of each database, and the AWS Backup restore testing plan of the RDS instances (which takes `cron(...)` only).',
    ),
  })
  .describe('When each job runs, as EventBridge Scheduler expressions in `timeZone`.');

/** COMPLIANCE or GOVERNANCE, COMPLIANCE by default (S3 Object Lock and AWS Backup Vault Lock alike). */
const lockModeSchema = () =>
  z
    .enum(['COMPLIANCE', 'GOVERNANCE'], {
      error: (iss) => `expected "COMPLIANCE" or "GOVERNANCE", got ${JSON.stringify(iss.input)}`,
    })
    .default('COMPLIANCE');

const objectLockSchema = z
  .strictObject({
    mode: lockModeSchema().describe(
      'Object Lock mode of the vault buckets. COMPLIANCE cannot be lifted by anyone, root included.',
    ),
    days: positiveInt('the default Object Lock retention in days', 36500)
      .default(30)
      .describe(
        'Default retention applied to objects written without their own retain-until date; at most the shortest retention (`retention.tiers.dailyDays`, `retention.tenantExportDays`, 7 × `retention.tiers.weeklyWeeks`).',
      ),
  })
  .describe('Object Lock (WORM) settings of the vault buckets.');

const vaultLockSchema = z
  .strictObject({
    mode: lockModeSchema().describe(
      'AWS Backup Vault Lock mode of both snapshot vaults. COMPLIANCE becomes immutable once `graceDays` have passed after the first deploy: from then on nobody (root included, AWS Support included) can remove the lock, shorten retention or delete the vault while it holds recovery points. GOVERNANCE can be removed by a principal allowed backup:DeleteBackupVaultLockConfiguration.',
    ),
    graceDays: z
      .number({ error: 'expected the Vault Lock grace period in days as a whole number' })
      .int({ error: 'expected the Vault Lock grace period in days as a whole number' })
      .min(3, {
        error: (iss) =>
          `expected between 3 and 36500 days (AWS Backup's minimum is 3), got ${String(iss.input)}`,
      })
      .max(36500, { error: (iss) => `expected between 3 and 36500 days, got ${String(iss.input)}` })
      .default(7)
      .describe(
        'COMPLIANCE only: days after the first deploy during which the lock can still be changed or removed (a wrong retention can be corrected); after that it is permanent.',
      ),
  })
  .describe('Vault Lock (WORM) of the AWS Backup vaults that hold RDS/Aurora recovery points.');

const snapshotsSchema = z
  .strictObject({
    continuousDays: positiveInt('the days of point-in-time recovery', 35)
      .default(35)
      .describe(
        'Days of point-in-time recovery (AWS Backup continuous backup of RDS/Aurora; AWS allows 1–35).',
      ),
    rpoMinutes: positiveInt('the recovery point objective in minutes', 1440)
      .default(60)
      .describe(
        'Recovery point objective: the RecoveryPointLagMinutes alarm fires when the latest restorable time of a database is older than this.',
      ),
    vaultLock: vaultLockSchema.prefault({}),
  })
  .describe(
    'AWS Backup of the RDS instances and Aurora clusters in `databases` (continuous backup, daily/weekly/monthly/yearly snapshots, copies to the DR region).',
  );

/** Storage classes a DR replica may use: millisecond retrieval only, so a restore from the DR region meets the RTO. */
export const REPLICA_STORAGE_CLASSES = [
  'STANDARD',
  'STANDARD_IA',
  'INTELLIGENT_TIERING',
  'GLACIER_IR',
] as const;

const replicationSchema = z
  .strictObject({
    storageClass: z
      .enum(REPLICA_STORAGE_CLASSES, {
        error: (iss) =>
          `expected one of ${REPLICA_STORAGE_CLASSES.map((c) => `"${c}"`).join(', ')} (classes with millisecond retrieval), got ${JSON.stringify(iss.input)}`,
      })
      .default('GLACIER_IR')
      .describe(
        'Storage class of the replicas in the DR vault; only classes with millisecond retrieval, so a restore from the DR region does not wait hours for an archive.',
      ),
  })
  .describe('Cross-region replication of the vault to the DR region.');

const alertsSchema = z
  .strictObject({
    emails: z
      .array(
        z.email({
          error: (iss) => `expected an e-mail address like "ops@example.com", got "${String(iss.input)}"`,
        }),
      )
      .min(1, { error: 'expected at least one e-mail address, so that failures reach a person' })
      .describe('Addresses subscribed to all alerts.'),
    pagerDutyRoutingKeySecretArn: arn(
      'secretsmanager',
      'arn:aws:secretsmanager:sa-east-1:123456789012:secret:pagerduty-AbCdEf',
    )
      .optional()
      .describe('Secret holding the PagerDuty Events API v2 routing key; critical alerts page when set.'),
    notifyOnSuccess: z.boolean().default(false).describe('Also send a message for every successful backup.'),
  })
  .describe('Who hears about problems.');

const thresholdsSchema = z
  .strictObject({
    maxDurationMinutes: positiveInt('the maximum backup duration in minutes', 1440)
      .default(30)
      .describe('A backup that runs longer raises an alarm.'),
    sizeAnomalyPercent: positiveInt('the size anomaly threshold in percent', 1000)
      .default(30)
      .describe('A backup whose size differs from the trailing average by more than this raises an alarm.'),
    maxSizeGiB: z
      .number({ error: 'expected the maximum backup size in GiB as a number' })
      .positive({ error: (iss) => `expected a positive size in GiB, got ${String(iss.input)}` })
      .default(50)
      .describe('A backup larger than this raises an alarm.'),
  })
  .describe('Alarm thresholds.');

const pricePerGbMonth = (storageClass: string, defaultValue: number) =>
  z
    .number({ error: `expected the ${storageClass} price in currency units per GB-month as a number` })
    .nonnegative({ error: (iss) => `expected a price of at least 0, got ${String(iss.input)}` })
    .default(defaultValue)
    .describe(`${storageClass} per GB-month.`);

const pricesSchema = z
  .strictObject({
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, {
        error: (iss) => `expected an ISO 4217 code such as "USD", got "${String(iss.input)}"`,
      })
      .default('USD')
      .describe('Currency of the prices below.'),
    storageGbMonth: z
      .strictObject({
        STANDARD: pricePerGbMonth('S3 Standard', 0.0405),
        STANDARD_IA: pricePerGbMonth('S3 Standard-IA', 0.0221),
        GLACIER_IR: pricePerGbMonth('S3 Glacier Instant Retrieval', 0.008),
        GLACIER: pricePerGbMonth('S3 Glacier Flexible Retrieval', 0.0072),
        DEEP_ARCHIVE: pricePerGbMonth('S3 Glacier Deep Archive', 0.0032),
      })
      .prefault({})
      .describe(
        'Storage price per GB-month by storage class. Defaults: public S3 list prices of sa-east-1 (first 50 TB tier); check https://aws.amazon.com/s3/pricing/ for your region and date.',
      ),
  })
  .describe(
    "Public per-GB prices the monthly report uses to estimate the vault's storage cost (an estimate, not your bill).",
  );

/** Fargate sizes: vCPU units and the memory (MiB) each allows (AWS Fargate task size table). */
export const FARGATE_SIZES: Readonly<Record<number, { min: number; max: number; step: number }>> = {
  256: { min: 512, max: 2048, step: 512 },
  512: { min: 1024, max: 4096, step: 1024 },
  1024: { min: 2048, max: 8192, step: 1024 },
  2048: { min: 4096, max: 16384, step: 1024 },
  4096: { min: 8192, max: 30720, step: 1024 },
  8192: { min: 16384, max: 61440, step: 4096 },
  16384: { min: 32768, max: 122880, step: 8192 },
};

/** The CPU of a Fargate task (vCPU units): one of the sizes Fargate allows. */
const fargateCpu = (defaultCpu: number, description: string) =>
  z
    .number({ error: 'expected the task CPU in vCPU units (1024 = 1 vCPU) as a number' })
    .refine((cpu) => FARGATE_SIZES[cpu] !== undefined, {
      error: (iss) =>
        `expected one of ${Object.keys(FARGATE_SIZES).join(', ')} (vCPU units, 1024 = 1 vCPU), got ${String(iss.input)}`,
    })
    .default(defaultCpu)
    .describe(description);

/** The memory of a Fargate task in MiB; whether `cpu` allows it is `checkFargateSize`'s. */
const fargateMemoryMiB = (defaultMiB: number, description: string) =>
  z
    .number({ error: 'expected the task memory in MiB as a whole number' })
    .int({ error: 'expected the task memory in MiB as a whole number' })
    // abort: a memory out of every range is one message, not also the size check's.
    .min(512, {
      abort: true,
      error: (iss) => `expected between 512 and 122880 MiB, got ${String(iss.input)}`,
    })
    .max(122880, {
      abort: true,
      error: (iss) => `expected between 512 and 122880 MiB, got ${String(iss.input)}`,
    })
    .default(defaultMiB)
    .describe(description);

/** Reports, on `memoryMiB`, a memory that Fargate does not allow for the task's `cpu`. */
function checkFargateSize(task: { cpu: number; memoryMiB: number }, ctx: z.RefinementCtx): void {
  const size = FARGATE_SIZES[task.cpu];
  if (!size) return; // reported by the cpu check
  const { min, max, step } = size;
  if (task.memoryMiB < min || task.memoryMiB > max || task.memoryMiB % step !== 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['memoryMiB'],
      message: `expected ${min}–${max} MiB in steps of ${step} for cpu ${task.cpu} (Fargate task sizes), got ${task.memoryMiB}`,
    });
  }
}

const dumpTaskSchema = z
  .strictObject({
    cpu: fargateCpu(
      2048,
      'CPU of the Fargate dump task in vCPU units (1024 = 1 vCPU). Two vCPUs let the dump server process and the compress/encrypt pipeline run side by side.',
    ),
    memoryMiB: fargateMemoryMiB(
      4096,
      'Memory of the Fargate dump task in MiB; must be a size Fargate allows for `cpu`.',
    ),
    ephemeralStorageGiB: z
      .number({ error: 'expected the ephemeral storage in GiB as a whole number' })
      .int({ error: 'expected the ephemeral storage in GiB as a whole number' })
      .min(21, { error: (iss) => `expected between 21 and 200 GiB, got ${String(iss.input)}` })
      .max(200, { error: (iss) => `expected between 21 and 200 GiB, got ${String(iss.input)}` })
      .default(50)
      .describe(
        'Ephemeral storage of the Fargate dump task in GiB (21–200), mounted as the writable /tmp: room for a restore that spills the dump to disk (parallel pg_restore), so keep it above the largest backup (`thresholds.maxSizeGiB`).',
      ),
  })
  .superRefine(checkFargateSize)
  .describe('Size of the Fargate task that dumps, exports and deep-verifies each database.');

const filesTaskSchema = z
  .strictObject({
    cpu: fargateCpu(
      1024,
      'CPU of the Fargate files task in vCPU units (1024 = 1 vCPU); it sets which `memoryMiB` sizes Fargate allows.',
    ),
    memoryMiB: fargateMemoryMiB(
      2048,
      'Memory of the Fargate files task in MiB; must be a size Fargate allows for `cpu`. A run holds the previous and the new catalogue in memory: about 2 KiB per object of the largest bucket on top of ~300 MiB (measured peaks: 315 MiB for 10,000 objects, 478 MiB for 100,000). Raise it for a bucket of a million objects or more.',
    ),
  })
  .superRefine(checkFargateSize)
  .describe(
    'Size of the Fargate task that copies and restore-tests each S3-compatible bucket (`buckets[].source`), one task definition per bucket.',
  );

export const configSchema = z
  .strictObject({
    account: z
      .string({ error: 'expected the 12-digit AWS account id' })
      .regex(ACCOUNT, { error: (iss) => `expected a 12-digit AWS account id, got "${String(iss.input)}"` })
      .describe('AWS account that both stacks deploy to.'),
    regions: z
      .strictObject({
        primary: region('primary region').describe('Region of the primary vault and the pipeline.'),
        dr: region('disaster-recovery region').describe('Region of the DR vault (cross-region replica).'),
      })
      .describe('Where Cofre runs and where its copies go.'),
    timeZone: z
      .string()
      .refine(isTimeZone, {
        error: (iss) => `expected an IANA time zone such as "America/Sao_Paulo", got "${String(iss.input)}"`,
      })
      .default('America/Sao_Paulo')
      .describe('Time zone of the schedules and of tier decisions (daily/weekly/monthly/yearly).'),
    terminationProtection: z
      .boolean()
      .default(true)
      .describe('CloudFormation termination protection on both stacks.'),
    breakGlassRoleArn: arn('iam', 'arn:aws:iam::123456789012:role/cofre-break-glass')
      .optional()
      .describe(
        'The only role allowed (with MFA) to delete objects or change lock and lifecycle settings of the vault.',
      ),
    databases: z.array(databaseSchema).default([]).describe('Database servers to protect.'),
    buckets: z.array(bucketSchema).default([]).describe('Application buckets to protect.'),
    configuration: z
      .strictObject({
        secretArns: z
          .array(arn('secretsmanager', 'arn:aws:secretsmanager:sa-east-1:123456789012:secret:app-AbCdEf'))
          .default([])
          .describe('Secrets Manager secrets to snapshot.'),
        ssmParameterPaths: z
          .array(
            z.string().regex(/^\/[A-Za-z0-9_.\-/]*$/, {
              error: (iss) => `expected an SSM parameter path starting with "/", got "${String(iss.input)}"`,
            }),
          )
          .default([])
          .describe('SSM parameter paths to snapshot (recursively).'),
        dataClass: name('data class')
          .default(DATA_CLASS_DEFAULT)
          .describe(
            'Data class of the configuration snapshots: `general` keeps them `retention.configSnapshotDays`, another class its legal years (`retention.classes`).',
          ),
      })
      .prefault({})
      .describe('Configuration to snapshot on change and weekly.'),
    schedules: schedulesSchema.prefault({}),
    retention: retentionSchema.prefault({}),
    objectLock: objectLockSchema.prefault({}),
    replication: replicationSchema.prefault({}),
    snapshots: snapshotsSchema.prefault({}),
    alerts: alertsSchema,
    thresholds: thresholdsSchema.prefault({}),
    prices: pricesSchema.prefault({}),
    dumpTask: dumpTaskSchema.prefault({}),
    filesTask: filesTaskSchema.prefault({}),
  })
  .superRefine((config, ctx) => {
    if (config.regions.primary === config.regions.dr) {
      ctx.addIssue({
        code: 'custom',
        path: ['regions', 'dr'],
        message: `expected a region different from the primary region "${config.regions.primary}"`,
      });
    }
    const classes = new Set([DATA_CLASS_DEFAULT, ...Object.keys(config.retention.classes)]);
    const known = [...classes].map((c) => `"${c}"`).join(', ');
    const checkClass = (value: string | undefined, path: (string | number)[]) => {
      if (value !== undefined && !classes.has(value)) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `expected one of ${known} (see retention.classes), got "${value}"`,
        });
      }
    };
    const ids = new Set<string>();
    config.databases.forEach((db, i) => {
      if (ids.has(db.id))
        ctx.addIssue({
          code: 'custom',
          path: ['databases', i, 'id'],
          message: `expected a unique id, "${db.id}" is used twice`,
        });
      ids.add(db.id);
      checkClass(db.dataClass, ['databases', i, 'dataClass']);
      checkClass(db.tenants?.dataClass, ['databases', i, 'tenants', 'dataClass']);
    });
    const bucketNames = new Set<string>();
    config.buckets.forEach((bucket, i) => {
      checkClass(bucket.dataClass, ['buckets', i, 'dataClass']);
      if (bucketNames.has(bucket.bucketName))
        ctx.addIssue({
          code: 'custom',
          path: ['buckets', i, 'bucketName'],
          message: `expected a bucket listed once, "${bucket.bucketName}" is listed twice`,
        });
      bucketNames.add(bucket.bucketName);
    });
    if (config.buckets.length)
      for (const field of ['filesDifferential', 'filesFull'] as const) {
        const value = config.schedules[field];
        if (!value.startsWith('cron('))
          ctx.addIssue({
            code: 'custom',
            path: ['schedules', field],
            message: `expected a cron expression like "cron(0 3 ? * SUN *)" (AWS Backup rules for the buckets take cron only), got "${value}"`,
          });
      }
    // The AWS Backup restore testing plan of the AWS S3 buckets runs on filesRestoreTest, and takes cron only.
    if (
      config.buckets.some((b) => b.source === undefined) &&
      !/^cron\(/.test(config.schedules.filesRestoreTest) &&
      scheduleExpressionProblem(config.schedules.filesRestoreTest) === undefined
    )
      ctx.addIssue({
        code: 'custom',
        path: ['schedules', 'filesRestoreTest'],
        message: `expected a cron expression such as "cron(0 5 ? * SAT *)": the AWS Backup restore testing plan of the AWS S3 buckets runs on it and accepts cron only, got "${config.schedules.filesRestoreTest}"`,
      });
    checkClass(config.configuration.dataClass, ['configuration', 'dataClass']);
    // The AWS Backup restore testing plan runs on the restore test's schedule, and takes cron only.
    if (
      config.databases.some((db) => db.snapshotRestoreTest !== undefined) &&
      !/^cron\(/.test(config.schedules.restoreTest) &&
      scheduleExpressionProblem(config.schedules.restoreTest) === undefined
    )
      ctx.addIssue({
        code: 'custom',
        path: ['schedules', 'restoreTest'],
        message: `expected a cron expression such as "cron(0 4 ? * SUN#1 *)": the AWS Backup restore testing plan of the RDS instances runs on it and accepts cron only, got "${config.schedules.restoreTest}"`,
      });
    // The shortest-lived kinds of backup (values that failed their own check are reported once, not again here).
    const { tiers, tenantExportDays } = config.retention;
    const shortest = [
      { days: tiers.dailyDays, field: 'retention.tiers.dailyDays', what: 'daily backups' },
      { days: tenantExportDays, field: 'retention.tenantExportDays', what: 'per-tenant exports' },
      { days: tiers.weeklyWeeks * 7, field: '7 × retention.tiers.weeklyWeeks', what: 'weekly backups' },
    ].find(({ days }) => days >= 1 && config.objectLock.days > days);
    if (shortest) {
      ctx.addIssue({
        code: 'custom',
        path: ['objectLock', 'days'],
        message: `expected at most ${shortest.field} (${shortest.days}), or a default lock would outlive the expiry of ${shortest.what}; got ${config.objectLock.days}`,
      });
    }
  });

function isTimeZone(value: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: value });
    return true;
  } catch {
    return false;
  }
}

/** What a `cofre.config.ts` may contain (defaults not yet applied). */
export type CofreConfigInput = z.input<typeof configSchema>;
/** A validated configuration with every default filled in. */
export type CofreConfig = z.output<typeof configSchema>;
export type DatabaseConfig = CofreConfig['databases'][number];
