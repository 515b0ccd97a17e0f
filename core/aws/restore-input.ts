/**
 * The input of the `restore` state machine (state-machines/restore.asl.json), as an operator types
 * it in the Step Functions console: a small JSON object discriminated by `kind`. Parsed with zod;
 * unknown fields are rejected (a field the restore would ignore is a mistake worth hearing about).
 * Every problem is one line `field: expected …, got …` (see {@link inputProblems}).
 *
 * The live checks (does the backup exist, is it this database's, is the confirmation right) are in
 * restore-validate.ts; this module only knows shapes.
 */
import { z } from 'zod';
import { BACKUP_ID } from '../catalog/manifest';
import { RDS_IDENTIFIER } from './rds-restore';

/** What the console can restore. */
export const RESTORE_KINDS = ['database', 'table', 'tenant', 'point-in-time', 'snapshot'] as const;
export type RestoreKind = (typeof RESTORE_KINDS)[number];

/** A plain SQL identifier: the only names a console restore creates or writes into. */
export const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const TABLE = /^([A-Za-z_][A-Za-z0-9_]{0,62}\.)?[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Whether a text holds a control character (C0 or DEL): never part of a tenant id typed by a person. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

const got = (value: unknown) => {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
};

const databaseId = z
  .string({
    error: (iss) => `expected the id of a configured database (databases[].id), got ${got(iss.input)}`,
  })
  .regex(/^[a-z][a-z0-9-]{0,39}$/, {
    error: (iss) => `expected the id of a configured database (databases[].id), got ${got(iss.input)}`,
  });

const backupError = (input: unknown) =>
  `expected "latest" or a backup id like "20260102T020000123Z-0a1b2c3d" (cofre list), got ${got(input)}`;
const backupRef = z
  .string({ error: (iss) => backupError(iss.input) })
  .refine((v) => v === 'latest' || BACKUP_ID.test(v), { error: (iss) => backupError(iss.input) });

const identifier = (what: string) =>
  z.string({ error: (iss) => `expected ${what}, got ${got(iss.input)}` }).regex(IDENTIFIER, {
    error: (iss) =>
      `expected ${what}: letters, digits and "_" (at most 63, not starting with a digit), got ${got(iss.input)}`,
  });

/** A database name inside the server: what backups were made of (may hold "-"). */
const sourceDatabase = z
  .string({ error: (iss) => `expected the name of a database on the server, got ${got(iss.input)}` })
  .regex(/^[A-Za-z0-9_$-]{1,63}$/, {
    error: (iss) =>
      `expected the name of a database on the server (letters, digits, "_", "-", "$"), got ${got(iss.input)}`,
  });

const flag = (what: string) =>
  z.boolean({ error: (iss) => `expected true or false (${what}), got ${got(iss.input)}` });

const confirm = z.string({
  error: (iss) => `expected the name of the database the restore changes, typed again, got ${got(iss.input)}`,
});

const requestedBy = z
  .string({ error: (iss) => `expected who asks for the restore (a name or e-mail), got ${got(iss.input)}` })
  .min(1, { error: 'expected who asks for the restore (a name or e-mail), got ""' })
  .max(200, { error: 'expected at most 200 characters' });

const timeoutMinutes = z
  .number({ error: (iss) => `expected minutes from 5 to 1440, got ${got(iss.input)}` })
  .int({ error: (iss) => `expected whole minutes from 5 to 1440, got ${got(iss.input)}` })
  .min(5, { error: (iss) => `expected minutes from 5 to 1440, got ${got(iss.input)}` })
  .max(1440, { error: (iss) => `expected minutes from 5 to 1440, got ${got(iss.input)}` });

const common = {
  database: databaseId,
  requestedBy: requestedBy.optional(),
  timeoutMinutes: timeoutMinutes.optional(),
};

const unknownKey = {
  error: (iss: { code?: string; keys?: string[]; input?: unknown }) =>
    iss.code === 'unrecognized_keys'
      ? `unknown field(s) ${(iss.keys ?? []).map((k) => `"${k}"`).join(', ')}: not part of this kind's input`
      : `expected an object, got ${got(iss.input)}`,
};

export const databaseRestoreSchema = z.strictObject(
  {
    kind: z.literal('database'),
    ...common,
    backup: backupRef,
    sourceDatabase: sourceDatabase.optional(),
    targetDatabase: identifier('the name of the database to restore into').optional(),
    target: z
      .string({
        error: (iss) =>
          `expected the name of a restore target of the database (databases[].restoreTargets[].name), got ${got(iss.input)}`,
      })
      .regex(/^[a-z][a-z0-9-]{0,39}$/, {
        error: (iss) =>
          `expected the name of a restore target of the database (databases[].restoreTargets[].name), got ${got(iss.input)}`,
      })
      .optional(),
    replace: flag('replace an existing target database').optional(),
    confirm: confirm.optional(),
  },
  unknownKey,
);

export const tableRestoreSchema = z.strictObject(
  {
    kind: z.literal('table'),
    ...common,
    backup: backupRef,
    sourceDatabase: sourceDatabase.optional(),
    table: z
      .string({ error: (iss) => `expected a table as "name" or "schema.name", got ${got(iss.input)}` })
      .regex(TABLE, {
        error: (iss) =>
          `expected a table as "name" or "schema.name" (letters, digits and "_" only, no SQL), got ${got(iss.input)}`,
      }),
    intoTable: identifier('the name of a new table to load the rows into').optional(),
    targetDatabase: identifier('the name of the live database the table is in').optional(),
    confirm: confirm.optional(),
  },
  unknownKey,
);

export const tenantRestoreSchema = z.strictObject(
  {
    kind: z.literal('tenant'),
    ...common,
    backup: backupRef,
    sourceDatabase: sourceDatabase.optional(),
    tenant: z
      .string({ error: (iss) => `expected the tenant id, got ${got(iss.input)}` })
      .refine((v) => v.length >= 1 && v.length <= 200 && !hasControlCharacter(v), {
        error: (iss) => `expected the tenant id (1–200 printable characters), got ${got(iss.input)}`,
      }),
    dryRun: flag('false restores for real; the default true only reports').optional(),
    intoDatabase: identifier('the name of a new database to restore the tenant into').optional(),
    targetDatabase: identifier('the name of the live database of the tenants').optional(),
    acceptUnownedRows: flag('accept deletes that reach rows not owned by the tenant alone').optional(),
    confirm: confirm.optional(),
  },
  unknownKey,
);

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;

export const pointInTimeRestoreSchema = z.strictObject(
  {
    kind: z.literal('point-in-time'),
    ...common,
    time: z
      .string({
        error: (iss) => `expected "latest" or an ISO-8601 time with its offset, got ${got(iss.input)}`,
      })
      .refine((v) => v === 'latest' || (ISO_TIME.test(v) && !Number.isNaN(Date.parse(v))), {
        error: (iss) =>
          `expected "latest" or an ISO-8601 time with its offset, like "2026-01-02T03:04:00Z" or "2026-01-02T00:04:00-03:00", got ${got(iss.input)}`,
      }),
    targetIdentifier: z
      .string({ error: (iss) => `expected a new RDS identifier, got ${got(iss.input)}` })
      .regex(RDS_IDENTIFIER, {
        error: (iss) =>
          `expected a new RDS identifier (a letter, then letters, digits and single hyphens, at most 63, not ending in a hyphen), got ${got(iss.input)}`,
      })
      .optional(),
    instanceClass: z
      .string({ error: (iss) => `expected an instance class like "db.r6g.large", got ${got(iss.input)}` })
      .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, {
        error: (iss) => `expected an instance class like "db.r6g.large", got ${got(iss.input)}`,
      })
      .optional(),
    multiAz: flag('a Multi-AZ copy; default: as the source').optional(),
  },
  unknownKey,
);

const rdsTarget = {
  targetIdentifier: z
    .string({ error: (iss) => `expected a new RDS identifier, got ${got(iss.input)}` })
    .regex(RDS_IDENTIFIER, {
      error: (iss) =>
        `expected a new RDS identifier (a letter, then letters, digits and single hyphens, at most 63, not ending in a hyphen), got ${got(iss.input)}`,
    })
    .optional(),
  instanceClass: z
    .string({ error: (iss) => `expected an instance class like "db.r6g.large", got ${got(iss.input)}` })
    .regex(/^db\.[a-z0-9]+\.[a-z0-9]+$/, {
      error: (iss) => `expected an instance class like "db.r6g.large", got ${got(iss.input)}`,
    })
    .optional(),
  multiAz: flag('a Multi-AZ copy; default: as the source').optional(),
};

export const snapshotRestoreSchema = z.strictObject(
  {
    kind: z.literal('snapshot'),
    ...common,
    recoveryPointArn: z.string({
      error: (iss) => `expected the ARN of an RDS recovery point, got ${got(iss.input)}`,
    }),
    ...rdsTarget,
    subnetGroup: z
      .string({ error: (iss) => `expected a DB subnet group name, got ${got(iss.input)}` })
      .regex(/^[A-Za-z0-9 ._-]{1,255}$/, {
        error: (iss) => `expected a DB subnet group name, got ${got(iss.input)}`,
      })
      .optional(),
    securityGroupIds: z
      .array(
        z.string().regex(/^sg-[0-9a-f]{8,17}$/, {
          error: (iss) => `expected a security group id like "sg-0abc12345def67890", got ${got(iss.input)}`,
        }),
        { error: (iss) => `expected a list of security group ids, got ${got(iss.input)}` },
      )
      .min(1, { error: 'expected at least one security group id' })
      .max(5, { error: 'expected at most 5 security group ids' })
      .optional(),
  },
  unknownKey,
);

export const restoreInputSchema = z.discriminatedUnion(
  'kind',
  [
    databaseRestoreSchema,
    tableRestoreSchema,
    tenantRestoreSchema,
    pointInTimeRestoreSchema,
    snapshotRestoreSchema,
  ],
  {
    error: (iss) =>
      typeof iss.input === 'object' && iss.input !== null && !Array.isArray(iss.input)
        ? `expected one of ${RESTORE_KINDS.map((k) => `"${k}"`).join(', ')}, got ${got((iss.input as { kind?: unknown } | undefined)?.kind)}`
        : `expected an object with a "kind", got ${got(iss.input)}`,
  },
);
export type RestoreInput = z.infer<typeof restoreInputSchema>;
export type DatabaseRestoreInput = z.infer<typeof databaseRestoreSchema>;
export type TableRestoreInput = z.infer<typeof tableRestoreSchema>;
export type TenantRestoreInput = z.infer<typeof tenantRestoreSchema>;
export type PointInTimeRestoreInput = z.infer<typeof pointInTimeRestoreSchema>;
export type SnapshotRestoreInput = z.infer<typeof snapshotRestoreSchema>;

/** One line per problem: `field: expected …` (an unknown field: one line naming it). */
export function inputProblems(error: z.ZodError, input?: unknown): string[] {
  const kind = (input as { kind?: unknown } | null | undefined)?.kind;
  return error.issues.flatMap((i) => {
    const field = i.path.length ? i.path.map(String).join('.') : 'input';
    if (i.code === 'unrecognized_keys')
      return i.keys.map(
        (key) =>
          `${[...i.path.map(String), key].join('.')}: unknown field, not part of a "${String(kind)}" restore (see README "Restore from the console")`,
      );
    // An unknown discriminator is reported at the root by zod: it is about `kind`.
    return [
      `${field === 'input' && /^expected one of "database"/.test(i.message) ? 'kind' : field}: ${i.message}`,
    ];
  });
}
