/**
 * The first step of the `restore` state machine (lambdas/restore-validate): the console input checked
 * against its schema AND the live state before anything is touched — the database is configured, the
 * backup exists and is this database's (or "latest" resolves to one), the table is in it, the
 * confirmation names the database that the restore changes. Every problem is reported at once, one
 * line per field, as the `Cofre.BadInput` error whose cause the console shows; then nothing was
 * created or changed (not even a history record).
 *
 * What the Lambda cannot see (it is outside the databases' network) the restore task checks first,
 * with the same wording and also before touching anything: that a new target database does not
 * exist yet (core/aws/restore-task.ts).
 */
import { z } from 'zod';
import { readCatalog, type CatalogEntry } from '../catalog/catalog';
import { chainPrefix, sourcePrefixes, tenantChainPrefix } from '../catalog/keys';
import type { HistoryStore, RunningRecords } from '../history/store';
import { restoreRecordId } from './restore-stopped';
import { newBackupId, type Manifest } from '../catalog/manifest';
import { DEFAULT_RETENTION } from '../policy/retention';
import type { Vault } from '../vault';
import { NamedError, TASK_ERRORS } from './task-errors';
import { jobDatabaseSchema, type ContainerJob, type JobDatabase } from './job';
import type { RDSClient } from '@aws-sdk/client-rds';
import { planFromSnapshot, planPointInTime, rdsPlanSchema } from './rds-restore';
import { findRestoreTarget, restoreTargetSchema, type RestoreTarget } from './restore-target';
import {
  inputProblems,
  restoreInputSchema,
  type PointInTimeRestoreInput,
  type RestoreInput,
  type SnapshotRestoreInput,
} from './restore-input';

type LogicalInput = Exclude<RestoreInput, PointInTimeRestoreInput | SnapshotRestoreInput>;

/** A configured database the console may restore (lib/ puts them in `COFRE_RESTORE_DATABASES`). */
export const restoreDatabaseSchema = z.object({
  database: jobDatabaseSchema,
  /** Its dump task definition: the restore runs there (its secret, network and vault prefixes). */
  taskDefinitionArn: z.string().regex(/^arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:task-definition\/.+$/),
});
export type RestoreDatabase = z.infer<typeof restoreDatabaseSchema>;

/** Parses `COFRE_RESTORE_DATABASES` (a JSON array), or an error naming the variable. */
export function parseRestoreDatabases(text: string, field = 'COFRE_RESTORE_DATABASES'): RestoreDatabase[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${field}: expected a JSON array of { database, taskDefinitionArn }`);
  }
  const parsed = z.array(restoreDatabaseSchema).safeParse(json);
  if (!parsed.success)
    throw new Error(
      `${field}: ${parsed.error.issues.map((i) => `${i.path.map(String).join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

/** What the restore task does for a logical kind, decided and checked by the validation (COFRE_JOB.restore). */
export const logicalPlanSchema = z.object({
  kind: z.enum(['database', 'table', 'tenant']),
  backupId: z.string(),
  /** Kind of the backup: a full dump or one tenant's export. */
  backupKind: z.enum(['full', 'tenant']),
  /** When the backup was started: the restore point. */
  backupStartedAt: z.string(),
  /** The database inside the server the backup is of. */
  sourceDatabase: z.string(),
  /** The database the restore creates (database kind, tenant intoDatabase) or changes. */
  targetDatabase: z.string(),
  /** Whether the target is new (must not exist yet) or existing (must exist). */
  targetIs: z.enum(['new', 'existing']),
  /** database kind: replace an existing target (confirmed). */
  replace: z.boolean(),
  table: z.string().optional(),
  intoTable: z.string().optional(),
  tenant: z.string().optional(),
  dryRun: z.boolean().optional(),
  acceptUnownedRows: z.boolean().optional(),
  /** database kind: the named restore target (another server) restored into, instead of the source's server. */
  target: restoreTargetSchema.optional(),
});
export type LogicalPlan = z.infer<typeof logicalPlanSchema>;

/** A point-in-time restore: the RDS plan, and the time the copy is of (what the post-check compares with). */
export const rdsJobPlanSchema = z.object({
  kind: z.enum(['point-in-time', 'snapshot']),
  rds: rdsPlanSchema,
  /** The restore point: the requested time, or the validation's time for "latest". */
  restorePoint: z.string(),
  /** Where the post-check connects (added by the state machine once the copy is available). */
  endpoint: z.object({ host: z.string(), port: z.number().int() }).optional(),
});
export type RdsJobPlan = z.infer<typeof rdsJobPlanSchema>;

export const restorePlanSchema = z.union([logicalPlanSchema, rdsJobPlanSchema]);
export type RestorePlan = z.infer<typeof restorePlanSchema>;

/** Whether a plan is made by RDS (point-in-time, snapshot) rather than by the restore task. */
export function isRdsPlan(plan: RestorePlan): plan is RdsJobPlan {
  return plan.kind === 'point-in-time' || plan.kind === 'snapshot';
}

/** The job the restore task gets (COFRE_JOB): a container job with the plan. */
export type RestoreJob = ContainerJob & { readonly restore: RestorePlan };

export interface ValidateRestoreEvent {
  readonly input: unknown;
  readonly executionId: string;
}

export interface ValidatedRestore {
  readonly runId: string;
  readonly startedAt: string;
  readonly kind: RestorePlan['kind'];
  readonly database: JobDatabase;
  readonly taskDefinitionArn: string;
  /** Where the restore task and its check run: the restore target's network, or the database's. */
  readonly network: { readonly subnetIds: readonly string[]; readonly securityGroupId: string };
  /** TimeoutSeconds of each task state (the input's `timeoutMinutes`, default 360). */
  readonly timeoutSeconds: number;
  readonly requestedBy: string;
  /** One sentence: what will be restored where. */
  readonly summary: string;
  readonly job: RestoreJob;
}

export interface ValidateRestoreDeps {
  readonly databases: readonly RestoreDatabase[];
  /** The vault, readable under the configured databases' prefixes. */
  readonly vault: Vault;
  readonly history: HistoryStore & RunningRecords;
  /** RDS in the pipeline's region (point-in-time restores). */
  readonly rds?: RDSClient | undefined;
  /** Snapshot restores: this account, the two regions, and RDS in either. */
  readonly aws?:
    | {
        readonly account: string;
        readonly primaryRegion: string;
        readonly drRegion: string;
        readonly rdsIn: (region: string) => RDSClient;
      }
    | undefined;
  readonly now?: () => Date;
}

/** The `Cofre.BadInput` error of a rejected input: one line per problem. */
export function rejection(problems: readonly string[]): NamedError {
  return new NamedError(
    TASK_ERRORS.badInput,
    `restore input rejected, nothing was changed (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.join('\n')}`,
  );
}

const DEFAULT_TIMEOUT_MINUTES = 360;

/**
 * Validates the console input against the schema and the live state; on success records the restore
 * as `running` (kind `restore`) and returns the plan. Throws {@link rejection} otherwise.
 */
export async function validateRestore(
  event: ValidateRestoreEvent,
  deps: ValidateRestoreDeps,
): Promise<ValidatedRestore> {
  const parsed = restoreInputSchema.safeParse(event.input);
  if (!parsed.success) throw rejection(inputProblems(parsed.error, event.input));
  const input = parsed.data;
  const problems: string[] = [];
  const configured = deps.databases.find((d) => d.database.id === input.database);
  if (!configured) {
    const ids = deps.databases.map((d) => d.database.id);
    throw rejection([
      `database: expected one of the configured databases (${ids.length ? ids.join(', ') : 'none configured'}), got "${input.database}"`,
    ]);
  }
  const db = configured.database;
  const now = (deps.now ?? (() => new Date()))();

  let plan: RestorePlan | undefined;
  if (input.kind === 'point-in-time') {
    if (!deps.rds) throw new Error('validateRestore: a point-in-time restore needs an RDS client');
    const rds = await planPointInTime(db, input, deps.rds, now, problems);
    if (rds) plan = { kind: 'point-in-time', rds, restorePoint: rds.restoreTime ?? now.toISOString() };
  } else if (input.kind === 'snapshot') {
    if (!deps.aws)
      throw new Error('validateRestore: a snapshot restore needs the account, the regions and RDS');
    const found = await planFromSnapshot(db, input, deps.aws, now, problems);
    if (found) plan = { kind: 'snapshot', rds: found.plan, restorePoint: found.restorePoint };
  } else {
    const target =
      input.kind === 'database' && input.target !== undefined
        ? findRestoreTarget(db, input.target, problems)
        : undefined;
    const source = await resolveBackup(input, db, deps, problems);
    if (source) checkBackupFits(input, db, source.entry.manifest, problems);
    plan = source ? planOf(input, source.entry.manifest, source.sourceDatabase, now, problems) : undefined;
    if (plan && target) plan = { ...plan, target };
  }
  if (problems.length || !plan) throw rejection(problems);

  // One id per execution, shared with restore-stopped: a stop that raced this write leaves `failed`.
  const runId = event.executionId ? restoreRecordId(event.executionId) : newBackupId(now);
  const requestedBy = input.requestedBy ?? 'console';
  const summary = summaryOf(plan, db.id);
  const written = await deps.history.putUnlessFinished({
    id: runId,
    kind: 'restore',
    database: db.id,
    ...('tenant' in plan && plan.tenant !== undefined ? { tenant: plan.tenant } : {}),
    status: 'running',
    startedAt: now.toISOString(),
    message: summary,
    requestedBy,
    ...(event.executionId ? { executionArn: event.executionId } : {}),
  });
  if (!written)
    throw new NamedError(
      'Cofre.RestoreStopped',
      `restore execution ${event.executionId} was stopped while it was being validated (its history record is already marked failed); nothing was started`,
    );
  return {
    runId,
    startedAt: now.toISOString(),
    kind: plan.kind,
    database: db,
    taskDefinitionArn: configured.taskDefinitionArn,
    network: networkOf(db, plan),
    timeoutSeconds: (input.timeoutMinutes ?? DEFAULT_TIMEOUT_MINUTES) * 60,
    requestedBy,
    summary,
    job: {
      job: 'restore',
      runId,
      startedAt: now.toISOString(),
      database: db,
      requestedBy,
      timeZone: 'UTC',
      retention: DEFAULT_RETENTION,
      restore: plan,
    },
  };
}

/** The network of the restore task: a named target's own, if it has one, else the database's. */
function networkOf(db: JobDatabase, plan: RestorePlan): ValidatedRestore['network'] {
  const target: RestoreTarget | undefined = isRdsPlan(plan) ? undefined : plan.target;
  const network = target?.network ?? db.network;
  return { subnetIds: network.subnetIds, securityGroupId: network.securityGroupId };
}

interface ResolvedBackup {
  readonly entry: CatalogEntry & { readonly manifest: Manifest };
  readonly sourceDatabase: string;
}

/** The backup the input names, or the newest one for "latest"; a problem line otherwise. */
async function resolveBackup(
  input: LogicalInput,
  db: JobDatabase,
  deps: ValidateRestoreDeps,
  problems: string[],
): Promise<ResolvedBackup | undefined> {
  const named = Array.isArray(db.databases) && db.databases.length === 1 ? db.databases[0] : undefined;
  if (input.backup === 'latest') {
    const sourceDatabase = input.sourceDatabase ?? named;
    if (!sourceDatabase) {
      problems.push(
        `sourceDatabase: expected which database of ${db.id} to restore with backup "latest" (${db.id} backs up ${Array.isArray(db.databases) ? db.databases.join(', ') : 'every database of its server'}), got nothing`,
      );
      return undefined;
    }
    const candidates = await readCatalog(deps.vault, chainPrefix(db.id, sourceDatabase));
    if (input.kind === 'tenant')
      candidates.push(
        ...(await readCatalog(deps.vault, tenantChainPrefix(db.id, sourceDatabase, input.tenant))),
      );
    const valid = candidates
      .filter((e): e is CatalogEntry & { manifest: Manifest } => e.manifest !== undefined)
      .sort((a, b) => a.manifest.startedAt.localeCompare(b.manifest.startedAt));
    const newest = valid[valid.length - 1];
    if (!newest) {
      problems.push(
        `backup: expected "latest" to find a backup of ${db.id}/${sourceDatabase}${input.kind === 'tenant' ? ` (full, or of tenant "${input.tenant}")` : ''} in ${deps.vault.url}, found none (has backup-database run? cofre list --vault ${deps.vault.url})`,
      );
      return undefined;
    }
    return { entry: newest, sourceDatabase };
  }
  // A named backup: looked up under every configured database, so one of another database is named as such.
  for (const other of deps.databases) {
    for (const prefix of sourcePrefixes(other.database.id)) {
      const keys = await deps.vault.list(prefix);
      const key = keys.find((k) => k.endsWith(`/${input.backup}/manifest.json`));
      if (!key) continue;
      if (other.database.id !== db.id) {
        problems.push(
          `backup: expected a backup of ${db.id}, got ${input.backup}, a backup of ${other.database.id}`,
        );
        return undefined;
      }
      const entry = (await readCatalog(deps.vault, key.slice(0, -'manifest.json'.length)))[0];
      if (!entry?.manifest) {
        problems.push(
          `backup: expected a backup with a valid manifest, got ${input.backup}, whose manifest is invalid (${(entry?.problems ?? ['unreadable']).join('; ')}); run cofre verify`,
        );
        return undefined;
      }
      if (entry.manifest.sourceId !== db.id) {
        problems.push(
          `backup: expected a backup of ${db.id}, got ${input.backup}, whose manifest says it is of ${entry.manifest.sourceId}`,
        );
        return undefined;
      }
      if (entry.manifest.kind === 'globals') {
        problems.push(
          `backup: expected a backup of one database, got ${input.backup}, which holds the server globals (roles, tablespaces)`,
        );
        return undefined;
      }
      const sourceDatabase = entry.manifest.source.database!;
      if (input.sourceDatabase !== undefined && input.sourceDatabase !== sourceDatabase)
        problems.push(
          `sourceDatabase: expected "${sourceDatabase}" (backup ${input.backup} is of that database) or nothing, got "${input.sourceDatabase}"`,
        );
      return { entry: entry as CatalogEntry & { manifest: Manifest }, sourceDatabase };
    }
  }
  problems.push(
    `backup: expected a backup of ${db.id} in ${deps.vault.url}, got ${input.backup}, which does not exist (cofre list --vault ${deps.vault.url})`,
  );
  return undefined;
}

/** The backup suits the kind: a full backup for a database or table, the right tenant, the table in it. */
function checkBackupFits(input: LogicalInput, db: JobDatabase, m: Manifest, problems: string[]): void {
  if (input.kind !== 'tenant' && m.kind === 'tenant')
    problems.push(
      `backup: expected a full backup for a ${input.kind} restore, got ${m.backupId}, an export of tenant "${m.tenant?.id ?? '?'}" (use kind "tenant")`,
    );
  if (input.kind === 'tenant') {
    if (m.kind === 'tenant' && m.tenant?.id !== input.tenant)
      problems.push(
        `tenant: expected "${m.tenant?.id ?? '?'}" (the tenant backup ${m.backupId} holds), got "${input.tenant}"`,
      );
    if (m.kind === 'full' && !db.tenants)
      problems.push(
        `backup: expected a tenant backup, got the full backup ${m.backupId}, and ${db.id} has no tenant model (databases[].tenants) to find the tenant's rows in it`,
      );
  }
  if (input.kind === 'table' && m.kind === 'full') {
    const tables = m.artifacts.flatMap((a) => a.tables);
    const wanted = input.table.includes('.') ? input.table : undefined;
    const found = tables.filter((t) =>
      wanted ? `${t.schema}.${t.name}` === wanted : t.name === input.table,
    );
    if (found.length === 0) {
      const names = tables.map((t) => `${t.schema}.${t.name}`);
      problems.push(
        `table: expected a table of backup ${m.backupId} (${names.slice(0, 10).join(', ')}${names.length > 10 ? `, … ${names.length} in all` : ''}), got "${input.table}"`,
      );
    } else if (found.length > 1)
      problems.push(
        `table: expected one table, got "${input.table}", which is in several schemas (${found.map((t) => `${t.schema}.${t.name}`).join(', ')}): name it as schema.name`,
      );
  }
}

/** A new database name from the source's: `<source>_restored_<yyyymmddhhmm>`, at most 63 characters. */
export function defaultTargetName(sourceDatabase: string, now: Date): string {
  const stamp = now.toISOString().slice(0, 16).replace(/[-:T]/g, '');
  const base = sourceDatabase.replace(/[^A-Za-z0-9_]/g, '_').replace(/^([0-9])/, '_$1');
  const suffix = `_restored_${stamp}`;
  return `${base.slice(0, 63 - suffix.length)}${suffix}`;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** The plan, with the target decided and the confirmation checked. */
function planOf(
  input: LogicalInput,
  m: Manifest,
  sourceDatabase: string,
  now: Date,
  problems: string[],
): LogicalPlan | undefined {
  const base = {
    backupId: m.backupId,
    backupKind: m.kind === 'tenant' ? ('tenant' as const) : ('full' as const),
    backupStartedAt: m.startedAt,
    sourceDatabase,
  };
  const confirmed = (target: string, why: string) => {
    if (input.confirm === target) return;
    problems.push(
      `confirm: expected "${target}" (${why}), got ${input.confirm === undefined ? 'nothing' : JSON.stringify(input.confirm)}`,
    );
  };
  const liveTarget = (given: string | undefined): string | undefined => {
    const target = given ?? sourceDatabase;
    if (IDENT.test(target)) return target;
    problems.push(
      `targetDatabase: expected the live database's name as a plain identifier; "${sourceDatabase}" is not one, so give it`,
    );
    return undefined;
  };
  if (input.kind === 'database') {
    const target = input.targetDatabase ?? defaultTargetName(sourceDatabase, now);
    const replace = input.replace === true;
    if (replace) confirmed(target, `replace: true drops the existing database ${target} after the restore`);
    else if (input.confirm !== undefined)
      problems.push(
        `confirm: expected nothing (a restore into a new database changes nothing that exists; confirm goes with replace: true), got ${JSON.stringify(input.confirm)}`,
      );
    return {
      kind: 'database',
      ...base,
      targetDatabase: target,
      targetIs: replace ? 'existing' : 'new',
      replace,
    };
  }
  if (input.kind === 'table') {
    const target = liveTarget(input.targetDatabase);
    if (!target) return undefined;
    confirmed(
      target,
      input.intoTable
        ? `the restore adds the table ${input.intoTable} to the live database ${target}`
        : `the restore replaces the rows of ${input.table} in the live database ${target}`,
    );
    if (input.intoTable && input.intoTable === input.table.split('.').pop())
      problems.push(
        `intoTable: expected a new table's name, got "${input.intoTable}", the table being restored (leave intoTable out to replace its rows)`,
      );
    return {
      kind: 'table',
      ...base,
      targetDatabase: target,
      targetIs: 'existing',
      replace: input.intoTable === undefined,
      table: input.table,
      ...(input.intoTable ? { intoTable: input.intoTable } : {}),
    };
  }
  const dryRun = input.dryRun ?? true;
  if (input.intoDatabase !== undefined) {
    if (dryRun)
      problems.push(
        `dryRun: expected false with intoDatabase (a restore into a new database), got ${input.dryRun === undefined ? 'nothing (true by default)' : 'true'}`,
      );
    if (input.confirm !== undefined)
      problems.push(
        `confirm: expected nothing (a restore into the new database ${input.intoDatabase} changes nothing that exists), got ${JSON.stringify(input.confirm)}`,
      );
    if (input.acceptUnownedRows !== undefined)
      problems.push('acceptUnownedRows: expected nothing with intoDatabase (no live rows are deleted)');
    return {
      kind: 'tenant',
      ...base,
      targetDatabase: input.intoDatabase,
      targetIs: 'new',
      replace: false,
      tenant: input.tenant,
      dryRun: false,
    };
  }
  const target = liveTarget(input.targetDatabase);
  if (!target) return undefined;
  if (dryRun) {
    if (input.confirm !== undefined)
      problems.push(
        `confirm: expected nothing with a dry run (it changes nothing; set dryRun: false to restore), got ${JSON.stringify(input.confirm)}`,
      );
    if (input.acceptUnownedRows !== undefined)
      problems.push('acceptUnownedRows: expected nothing with a dry run (it deletes nothing)');
  } else
    confirmed(target, `dryRun: false replaces tenant ${input.tenant}'s rows in the live database ${target}`);
  return {
    kind: 'tenant',
    ...base,
    targetDatabase: target,
    targetIs: 'existing',
    replace: false,
    tenant: input.tenant,
    dryRun,
    ...(input.acceptUnownedRows !== undefined ? { acceptUnownedRows: input.acceptUnownedRows } : {}),
  };
}

function summaryOf(plan: RestorePlan, id: string): string {
  if (isRdsPlan(plan))
    return plan.kind === 'snapshot'
      ? `recovery point ${plan.rds.snapshotArn ?? '?'} (${plan.restorePoint}) of ${plan.rds.source} (${id}) restored into the new ${plan.rds.resource} ${plan.rds.target} in ${plan.rds.region ?? 'the primary region'}`
      : `${plan.rds.resource === 'cluster' ? 'Aurora cluster' : 'RDS instance'} ${plan.rds.source} of ${id} restored to ${plan.rds.restoreTime ?? 'its latest restorable time'} into the new ${plan.rds.resource} ${plan.rds.target}`;
  const from = `backup ${plan.backupId} of ${id}/${plan.sourceDatabase} (${plan.backupStartedAt})`;
  if (plan.kind === 'database')
    return `${from} restored into ${plan.replace ? 'the existing (replaced)' : 'the new'} database ${plan.targetDatabase}${plan.target ? ` on restore target ${plan.target.name}` : ''}`;
  if (plan.kind === 'table')
    return `table ${plan.table} from ${from} restored into ${plan.intoTable ? `the new table ${plan.intoTable} of` : ''} ${plan.targetDatabase}`.replace(
      / {2}/g,
      ' ',
    );
  return `${plan.dryRun ? 'dry run of tenant' : 'tenant'} ${plan.tenant} from ${from} ${plan.dryRun ? 'against' : 'restored into'} ${plan.targetIs === 'new' ? 'the new database' : 'the live database'} ${plan.targetDatabase}`;
}
