import { Client, type ClientConfig } from 'pg';
import { quoteIdentifier, type Connection } from './connection';
import { OperationalError, messageOf } from '../util/errors';
import { currentRun, onRunAbort } from '../util/run-context';
import { runTool, spawnTool, type SpawnToolOptions } from './process';
import type { RunningDump, SourceInfo, TableCount } from './types';

/** Databases that are never dumped by "all": templates and managed-service internals. */
export const POSTGRES_SYSTEM_DATABASES = [
  'template0',
  'template1',
  'rdsadmin',
  'azure_maintenance',
  'azure_sys',
  'cloudsqladmin',
];

/** libpq environment for the tools: the password travels here, never in argv. */
export function postgresEnv(c: Connection, database?: string): Record<string, string | undefined> {
  return {
    PGHOST: c.host,
    PGPORT: String(c.port),
    PGUSER: c.user,
    PGPASSWORD: c.password,
    PGDATABASE: database ?? c.database ?? 'postgres',
    PGSSLMODE: c.sslMode,
    PGAPPNAME: 'cofre',
    PGCONNECT_TIMEOUT: '15',
    // The run's session limits (see core/util/run-context.ts) apply to the tools' sessions too.
    PGOPTIONS: `-c lock_timeout=${currentRun().lockTimeoutMs} -c statement_timeout=${currentRun().statementTimeoutMs}`,
  };
}

export function postgresClientConfig(c: Connection, database?: string): ClientConfig {
  const ssl =
    c.sslMode && c.sslMode !== 'disable' && c.sslMode !== 'allow' && c.sslMode !== 'prefer'
      ? { rejectUnauthorized: c.sslMode === 'verify-full' || c.sslMode === 'verify-ca' }
      : undefined;
  return {
    host: c.host,
    port: c.port,
    user: c.user,
    password: c.password,
    database: database ?? c.database ?? 'postgres',
    application_name: 'cofre',
    connectionTimeoutMillis: 15_000,
    lock_timeout: currentRun().lockTimeoutMs,
    statement_timeout: currentRun().statementTimeoutMs,
    ...(ssl ? { ssl } : {}),
  };
}

/**
 * A session with the run's `lock_timeout` and `statement_timeout`, whose running statement is
 * cancelled when the run aborts (a lock wait or a long COPY ends at once; the session stays
 * usable for ROLLBACK and cleanup).
 */
export async function connectPostgres(c: Connection, database?: string): Promise<Client> {
  const config = postgresClientConfig(c, database);
  const client = new Client(config);
  client.on('error', () => undefined); // reported by the query that fails
  try {
    await client.connect();
  } catch (error) {
    throw new OperationalError(
      `cannot connect to PostgreSQL at ${c.host}:${c.port}${database ? ` (database "${database}")` : ''} as ${c.user}: ${messageOf(error)}`,
    );
  }
  const unsubscribe = onRunAbort(() => {
    void cancelRunning(client, config);
  });
  client.once('end', unsubscribe);
  return client;
}

/** pg's statement in flight (internal field: pg has no public "is busy" getter). */
function activeQuery(client: Client): unknown {
  return (client as unknown as { _activeQuery?: unknown })._activeQuery ?? null;
}

/** Cancels the statement `client` is running, if any, from a side session (the protocol's cancel request). */
async function cancelRunning(client: Client, config: ClientConfig): Promise<void> {
  const running = activeQuery(client);
  if (!running) return;
  const side = new Client({ ...config, lock_timeout: undefined, statement_timeout: 10_000 });
  side.on('error', () => undefined);
  try {
    await side.connect();
    // Only the statement that was running when the run aborted, not the cleanup after it.
    if (activeQuery(client) === running)
      await side.query('SELECT pg_cancel_backend($1)', [
        (client as unknown as { processID: number }).processID,
      ]);
  } catch {
    // the session is gone already
  } finally {
    await side.end().catch(() => undefined);
  }
}

function toolOptions(c: Connection, database?: string): SpawnToolOptions {
  return { env: postgresEnv(c, database), secrets: [c.password] };
}

/** Server version and the versions of pg_dump / pg_restore on this machine. */
export async function postgresInfo(c: Connection): Promise<SourceInfo> {
  // The two tools answer while the connection is made (each is a process start, through Debian's
  // wrapper a Perl one: ~0.1 s of every backup's start when run one after the other).
  const versionOf = async (tool: string) =>
    (await runTool(tool, ['--version'])).trim().replace(/^\S+ \(PostgreSQL\) /, '');
  const versions = Promise.all([versionOf('pg_dump'), versionOf('pg_restore')]);
  versions.catch(() => undefined); // awaited below; a failed connection must not leave it unhandled
  const client = await connectPostgres(c);
  try {
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    const [pgDump, pgRestore] = await versions;
    return {
      serverVersion: rows[0]!.server_version,
      toolVersions: { pg_dump: pgDump, pg_restore: pgRestore },
    };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** The databases of a server that "all" means: every connectable non-template database not excluded. */
export async function listPostgresDatabases(
  c: Connection,
  exclude: readonly string[] = [],
): Promise<string[]> {
  const client = await connectPostgres(c);
  try {
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname',
    );
    const skip = new Set([...POSTGRES_SYSTEM_DATABASES, ...exclude]);
    return rows.map((r) => r.datname).filter((d) => !skip.has(d));
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Ordinary tables whose rows pg_dump dumps (no views, foreign or partitioned parents, extension tables). */
const TABLES_SQL = `
  SELECT n.nspname AS schema, c.relname AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r'
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  ORDER BY 1, 2`;

function quoteIdent(name: string): string {
  return quoteIdentifier('postgres', name);
}

/** Exact row counts of `tables` (each `FROM ONLY`, so partitions are not counted twice). */
export async function countRows(
  client: Client,
  tables: readonly { readonly schema: string; readonly name: string }[],
): Promise<TableCount[]> {
  const out: TableCount[] = [];
  for (const t of tables) {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM ONLY ${quoteIdent(t.schema)}.${quoteIdent(t.name)}`,
    );
    out.push({ schema: t.schema, name: t.name, rows: Number(rows[0]!.n) });
  }
  return out;
}

/**
 * Starts `pg_dump --format=custom --compress=0` of one database inside a snapshot exported by a
 * repeatable-read transaction of ours; the same transaction counts every table's rows, so the
 * counts are exactly what the dump contains, whatever is written meanwhile.
 */
export async function startPostgresDump(c: Connection, database: string): Promise<RunningDump> {
  const client = await connectPostgres(c, database);
  let aborted = false;
  let snapshot: string;
  try {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const { rows } = await client.query<{ s: string }>('SELECT pg_export_snapshot() AS s');
    snapshot = rows[0]!.s;
  } catch (error) {
    await client.end().catch(() => undefined);
    throw new OperationalError(`cannot export a snapshot of "${database}": ${messageOf(error)}`);
  }
  const tool = spawnTool(
    'pg_dump',
    ['--format=custom', '--compress=0', `--snapshot=${snapshot}`, '--no-password'],
    { ...toolOptions(c, database), largeStdout: true },
  );
  const counting = (async (): Promise<TableCount[]> => {
    const { rows: tables } = await client.query<{ schema: string; name: string }>(TABLES_SQL);
    return countRows(client, tables);
  })();
  counting.catch(() => undefined);
  const completed = (async () => {
    try {
      await tool.finished;
    } catch (error) {
      // A count may be waiting behind the same lock or connection problem: do not wait for it.
      await client.end().catch(() => undefined);
      throw error;
    }
    try {
      return await counting;
    } catch (error) {
      throw new OperationalError(`counting the rows of "${database}" failed: ${messageOf(error)}`);
    } finally {
      await client.query('COMMIT').catch(() => undefined);
      await client.end().catch(() => undefined);
    }
  })();
  completed.catch(() => undefined);
  return {
    format: 'pg_dump-custom',
    extension: 'pgdump',
    stdout: tool.stdout,
    completed,
    abort() {
      if (aborted) return;
      aborted = true;
      tool.kill();
      void client.end().catch(() => undefined);
    },
  };
}

/** Starts `pg_dumpall --globals-only` (roles, tablespaces; role passwords left out, as RDS requires). */
export function startPostgresGlobalsDump(c: Connection): RunningDump {
  const tool = spawnTool(
    'pg_dumpall',
    ['--globals-only', '--no-role-passwords', '--no-password'],
    toolOptions(c),
  );
  const completed = tool.finished.then(() => []);
  completed.catch(() => undefined);
  return {
    format: 'pg_dumpall-globals-sql',
    extension: 'sql',
    stdout: tool.stdout,
    completed,
    abort: () => {
      tool.kill();
    },
  };
}
