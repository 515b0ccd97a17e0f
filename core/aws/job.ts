/**
 * The execution input of the state machines (what an EventBridge Scheduler schedule sends), and the
 * job the Fargate task receives as `COFRE_JOB`. Validated at the edge with zod; every error names
 * the field. The database entry mirrors `databaseSchema` of `lib/config/schema.ts` after defaults
 * (runtime code does not import lib/; a test parses the schedule input that lib/ builds).
 */
import { z } from 'zod';
import { ENGINES } from '../sources/connection';
import { UsageError } from '../util/errors';
import { DEFAULT_RETENTION, type RetentionSettings, type Tier } from '../policy/retention';
import type { HistoryKind } from '../history/records';

/** The orchestrated jobs (state machines). */
export const JOBS = [
  'backup-database',
  'backup-tenants',
  'verify-integrity',
  'restore-test',
  'restore',
] as const;
export type JobName = (typeof JOBS)[number];

/** History kind of each job (verify-integrity: what it verifies, for the notify event). */
export const JOB_KIND: Record<JobName, HistoryKind> = {
  'backup-database': 'full',
  'backup-tenants': 'tenant',
  'verify-integrity': 'full',
  'restore-test': 'restore-test',
  restore: 'restore',
};

/**
 * Whether a job writes history records. verify-integrity does not: the history has no kind for it
 * yet (a `verify` kind needs the alert labels of core/alerts to know it too), and writing it as
 * `full` would make a verification look like a good backup to the freshness check.
 */
export function recordsHistory(job: JobName): boolean {
  return job !== 'verify-integrity';
}

const identifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_$]{0,62}$/, {
  error: (iss) => `expected a plain SQL identifier, got "${String(iss.input)}"`,
});

export const jobDatabaseSchema = z.looseObject({
  id: z.string().regex(/^[a-z][a-z0-9-]{0,39}$/, {
    error: (iss) =>
      `expected a database id of lowercase letters, digits and "-", got ${JSON.stringify(iss.input)}`,
  }),
  engine: z.enum(ENGINES, {
    error: (iss) => `expected "postgres" or "mysql", got ${JSON.stringify(iss.input)}`,
  }),
  rdsInstanceId: z.string().min(1).optional(),
  rdsClusterId: z.string().min(1).optional(),
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  databases: z.union([z.literal('all'), z.array(z.string().min(1)).min(1)], {
    error: 'expected "all" or a non-empty list of database names',
  }),
  excludeDatabases: z.array(z.string().min(1)).default([]),
  credentialsSecretArn: z.string().regex(/^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/, {
    error: (iss) => `expected a Secrets Manager secret ARN, got ${JSON.stringify(iss.input)}`,
  }),
  network: z.looseObject({
    vpcId: z
      .string()
      .regex(/^vpc-[0-9a-f]{8,17}$/, { error: 'expected a VPC id like "vpc-0abc12345def67890"' }),
    subnetIds: z
      .array(
        z.string().regex(/^subnet-[0-9a-f]{8,17}$/, {
          error: 'expected a subnet id like "subnet-0abc12345def67890"',
        }),
      )
      .min(1, { error: 'expected at least one subnet id' }),
    securityGroupId: z
      .string()
      .regex(/^sg-[0-9a-f]{8,17}$/, { error: 'expected a security group id like "sg-0abc12345def67890"' }),
  }),
  dataClass: z.string().min(1).default('general'),
  tenants: z
    .looseObject({
      table: z.string().regex(/^([A-Za-z_][A-Za-z0-9_$]{0,62}\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}$/, {
        error: (iss) => `expected a table as "name" or "schema.name", got ${JSON.stringify(iss.input)}`,
      }),
      keyColumn: identifier,
      tenantColumn: identifier,
      dataClass: z.string().min(1).optional(),
    })
    .optional(),
});
export type JobDatabase = z.infer<typeof jobDatabaseSchema>;

const retentionSchema: z.ZodType<RetentionSettings> = z.looseObject({
  tiers: z.object({
    dailyDays: z.number().int().positive(),
    weeklyWeeks: z.number().int().positive(),
    monthlyMonths: z.number().int().positive(),
    yearlyYears: z.number().int().positive(),
  }),
  classes: z.record(z.string(), z.object({ years: z.number().int().positive() })),
  tenantExportDays: z.number().int().positive(),
});

export const jobInputSchema = z
  .looseObject({
    database: jobDatabaseSchema,
    taskDefinitionArn: z.string().regex(/^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition\/.+$/, {
      error: (iss) => `expected an ECS task definition ARN, got ${JSON.stringify(iss.input)}`,
    }),
    requestedBy: z.string({ error: 'expected who started the run ("schedule" or a principal)' }).min(1),
    timeZone: z
      .string()
      .refine(
        (tz) => {
          try {
            new Intl.DateTimeFormat('en', { timeZone: tz });
            return true;
          } catch {
            return false;
          }
        },
        {
          error: (iss) =>
            `expected an IANA time zone such as "America/Sao_Paulo", got ${JSON.stringify(iss.input)}`,
        },
      )
      .default('America/Sao_Paulo'),
    retention: retentionSchema.default(DEFAULT_RETENTION),
    timeoutMinutes: z.number().int().min(5).max(1440).default(360),
    tenantBatchSize: z.number().int().min(1).max(500).default(50),
    verifyDays: z.number().int().min(1).max(366).default(7),
  })
  .superRefine((input, ctx) => {
    const db = input.database;
    const sources = (['rdsInstanceId', 'rdsClusterId', 'host'] as const).filter((k) => db[k] !== undefined);
    if (sources.length !== 1)
      ctx.addIssue({
        code: 'custom',
        path: ['database', sources[1] ?? 'host'],
        message: `expected exactly one of rdsInstanceId, rdsClusterId or host${sources.length ? `, got ${sources.join(' and ')}` : ''}`,
      });
  });
export type JobInput = z.infer<typeof jobInputSchema>;

/** The problems of a zod parse, one `field: message` each. */
export function zodProblems(error: z.ZodError, root = 'input'): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : root}: ${i.message}`);
}

/** Parses the execution input; a {@link UsageError} naming every bad field otherwise. */
export function parseJobInput(value: unknown): JobInput {
  const result = jobInputSchema.safeParse(value);
  if (!result.success)
    throw new UsageError(`invalid execution input: ${zodProblems(result.error).join('; ')}`);
  return result.data;
}

/** What the Fargate task gets as `COFRE_JOB` (JSON): one run, or one batch of it. */
export const containerJobSchema = z.looseObject({
  job: z.enum(JOBS),
  runId: z.string().min(1),
  startedAt: z.string().min(1),
  database: jobDatabaseSchema,
  requestedBy: z.string().min(1),
  timeZone: z.string().min(1),
  retention: retentionSchema,
  /** Tier of a full backup, decided by prepare. */
  tier: z.enum(['daily', 'weekly', 'monthly', 'yearly']).optional(),
  /** backup-tenants: the batch's tenant ids. */
  tenants: z.array(z.string().min(1)).optional(),
  /** verify-integrity: the batch's backup ids. */
  backupIds: z.array(z.string().min(1)).optional(),
  tenantBatchSize: z.number().int().positive().optional(),
  verifyDays: z.number().int().positive().optional(),
});
export type ContainerJob = z.infer<typeof containerJobSchema> & { tier?: Tier };

/** Parses `COFRE_JOB` (text or value); a {@link UsageError} naming the field otherwise. */
export function parseContainerJob(value: unknown, field = 'COFRE_JOB'): ContainerJob {
  let json = value;
  if (typeof value === 'string') {
    try {
      json = JSON.parse(value);
    } catch {
      throw new UsageError(`${field}: expected JSON, got ${JSON.stringify(value.slice(0, 40))}…`);
    }
  }
  const result = containerJobSchema.safeParse(json);
  if (!result.success)
    throw new UsageError(
      `invalid ${field}: ${result.error.issues.map((i) => `${[field, ...i.path.map(String)].join('.')}: ${i.message}`).join('; ')}`,
    );
  return result.data;
}

/** Name of the lock that keeps runs of one job for one database from overlapping. */
export function lockName(job: JobName, databaseId: string): string {
  return `${job}#${databaseId}`;
}
