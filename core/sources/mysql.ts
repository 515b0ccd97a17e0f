import { createConnection, type Connection as MysqlConnection, type RowDataPacket } from 'mysql2/promise';
import type { Connection } from './connection';
import { OperationalError, messageOf } from '../util/errors';
import { currentRun, onRunAbort } from '../util/run-context';
import { MysqldumpRowCounter } from './mysqldump-rows';
import { runTool, spawnTool, type ToolProcess } from './process';
import type { RunningDump, SourceInfo, TableCount } from './types';

/** Databases that are never dumped by "all". */
export const MYSQL_SYSTEM_DATABASES = ['information_schema', 'performance_schema', 'mysql', 'sys'];

/** The dump tool: MariaDB's `mariadb-dump` when present, else `mysqldump`. */
export const MYSQLDUMP = 'mysqldump';

/**
 * A MySQL option file with the connection settings, read by the tool as
 * `--defaults-extra-file=/dev/fd/4` from a pipe (see `spawnTool`'s `optionFile`), so the password
 * is in neither argv nor the environment nor a file on disk.
 */
export function mysqlOptionFile(c: Connection): string {
  const quote = (v: string) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
  const lines = [
    '[client]',
    `host=${quote(c.host)}`,
    `port=${c.port}`,
    `user=${quote(c.user)}`,
    'protocol=TCP',
  ];
  if (c.password !== undefined) lines.push(`password=${quote(c.password)}`);
  if (c.sslMode) lines.push(`ssl-mode=${c.sslMode.toUpperCase()}`);
  // The run's lock limit (core/util/run-context.ts) for the restoring client's session too (the
  // [mysql] group: only the mysql client knows init-command).
  lines.push('[mysql]', `init-command=${quote(lockLimitSql())}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The `mysql` client loading SQL from its stdin into `database` (binary-safe, 1 GiB packets on the
 * client side), credentials through the piped option file; its stdout is drained.
 */
export function spawnMysqlClient(c: Connection, database: string): ToolProcess {
  const tool = spawnTool(
    'mysql',
    ['--defaults-extra-file=/dev/fd/4', '--binary-mode', '--max-allowed-packet=1G', '--', database],
    { optionFile: mysqlOptionFile(c), stdin: true, secrets: [c.password] },
  );
  tool.stdout.resume();
  return tool;
}

/** The run's lock-wait limit as one SET (whole seconds; MySQL and MariaDB both have both variables). */
function lockLimitSql(): string {
  const seconds = Math.max(1, Math.ceil(currentRun().lockTimeoutMs / 1000));
  return `SET SESSION lock_wait_timeout = ${seconds}, innodb_lock_wait_timeout = ${seconds}`;
}

/**
 * A session with the run's lock-wait limit (metadata and row locks) and statement limit (MariaDB's
 * `max_statement_time`; MySQL has no equivalent for writes), whose running statement is killed
 * (`KILL QUERY`) when the run aborts; the session stays usable for ROLLBACK and cleanup.
 */
export async function connectMysql(c: Connection, database?: string): Promise<MysqlConnection> {
  const conn = await openMysql(c, database);
  try {
    await conn.query(lockLimitSql());
    const limit = currentRun().statementTimeoutMs;
    if (limit > 0)
      await conn.query(`SET SESSION max_statement_time = ${limit / 1000}`).catch(() => undefined);
  } catch (error) {
    conn.destroy();
    throw new OperationalError(
      `cannot set the session limits on MySQL at ${c.host}:${c.port}: ${messageOf(error)}`,
    );
  }
  const unsubscribe = onRunAbort(() => {
    void killRunning(c, conn);
  });
  core(conn).once('end', unsubscribe);
  return conn;
}

/** mysql2's command in flight (internal field: mysql2 has no public "is busy" getter). */
function activeCommand(conn: MysqlConnection): unknown {
  return core(conn)._command ?? null;
}

/** The callback connection under mysql2's promise wrapper. */
function core(conn: MysqlConnection): import('node:events').EventEmitter & { _command?: unknown } {
  return (conn as unknown as { connection: import('node:events').EventEmitter & { _command?: unknown } })
    .connection;
}

/** Kills the statement `conn` is running, if any, from a side session. */
async function killRunning(c: Connection, conn: MysqlConnection): Promise<void> {
  const running = activeCommand(conn);
  if (!running) return;
  try {
    const side = await openMysql(c);
    try {
      // Only the statement that was running when the run aborted, not the cleanup after it.
      if (activeCommand(conn) === running) await side.query(`KILL QUERY ${conn.threadId}`);
    } finally {
      await side.end().catch(() => undefined);
    }
  } catch {
    // the session is gone already
  }
}

async function openMysql(c: Connection, database?: string): Promise<MysqlConnection> {
  try {
    return await createConnection({
      host: c.host,
      port: c.port,
      user: c.user,
      password: c.password ?? '',
      database,
      connectTimeout: 15_000,
      supportBigNumbers: true,
      bigNumberStrings: true,
      ...(c.sslMode && c.sslMode.toLowerCase() !== 'disabled' ? { ssl: {} } : {}),
    });
  } catch (error) {
    throw new OperationalError(
      `cannot connect to MySQL at ${c.host}:${c.port}${database ? ` (database "${database}")` : ''} as ${c.user}: ${messageOf(error)}`,
    );
  }
}

interface ClientFlavour {
  readonly version: string;
  readonly mariadb: boolean;
}

/** mysqldump's flavour, asked once per PATH (a backup asked twice: for the manifest and the arguments). */
const dumpClients = new Map<string, Promise<ClientFlavour>>();

function dumpClient(): Promise<ClientFlavour> {
  const path = process.env.PATH ?? '';
  let asked = dumpClients.get(path);
  if (!asked) {
    asked = runTool(MYSQLDUMP, ['--version']).then((out) => {
      const text = out.trim();
      return { version: text.replace(/^\S+\s+/, ''), mariadb: /mariadb/i.test(text) };
    });
    dumpClients.set(path, asked);
    // A failure is not kept: the next call asks again (the tool may have been installed since).
    asked.catch(() => dumpClients.delete(path));
  }
  return asked;
}

export async function mysqlInfo(c: Connection): Promise<SourceInfo> {
  const flavour = dumpClient(); // answers while the connection is made
  flavour.catch(() => undefined); // awaited below; a failed connection must not leave it unhandled
  const conn = await connectMysql(c);
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT VERSION() AS v');
    const client = await flavour;
    return { serverVersion: String(rows[0]!.v), toolVersions: { mysqldump: client.version } };
  } finally {
    await conn.end().catch(() => undefined);
  }
}

export async function listMysqlDatabases(c: Connection, exclude: readonly string[] = []): Promise<string[]> {
  const conn = await connectMysql(c);
  try {
    const [rows] = await conn.query<RowDataPacket[]>(
      'SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA ORDER BY 1',
    );
    const skip = new Set([...MYSQL_SYSTEM_DATABASES, ...exclude]);
    return rows.map((r) => String(r.name)).filter((d) => !skip.has(d));
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/**
 * The options for the installed mysqldump against this server: the common consistent, complete
 * set, plus `--set-gtid-purged=OFF` (MySQL 8 client: a dump that restores on any server) and
 * `--column-statistics=0` (MySQL 8 client against MariaDB or MySQL 5.7, which lack the histogram table).
 */
export function mysqldumpArgs(client: ClientFlavour, serverVersion: string, database: string): string[] {
  const args = [
    '--defaults-extra-file=/dev/fd/4',
    '--single-transaction',
    '--quick',
    '--routines',
    '--triggers',
    '--events',
    '--hex-blob',
    '--no-tablespaces',
    '--default-character-set=utf8mb4',
    '--skip-lock-tables',
    '--max-allowed-packet=1G',
  ];
  if (!client.mariadb) {
    args.push('--set-gtid-purged=OFF');
    if (/mariadb/i.test(serverVersion) || /^5\./.test(serverVersion)) args.push('--column-statistics=0');
  }
  args.push('--', database);
  return args;
}

/**
 * Starts mysqldump of one database in a consistent-snapshot transaction. Row counts are taken
 * from the dump's own bytes ({@link MysqldumpRowCounter}), and the dump must end with mysqldump's
 * completion line.
 */
export async function startMysqlDump(
  c: Connection,
  database: string,
  serverVersion: string,
): Promise<RunningDump> {
  const conn = await connectMysql(c, database);
  let tables: { schema: string; name: string }[];
  try {
    const [rows] = await conn.query<RowDataPacket[]>(
      "SELECT TABLE_NAME AS name FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1",
      [database],
    );
    tables = rows.map((r) => ({ schema: database, name: String(r.name) }));
  } finally {
    await conn.end().catch(() => undefined);
  }
  const client = await dumpClient();
  const counter = new MysqldumpRowCounter();
  const tool = spawnTool(MYSQLDUMP, mysqldumpArgs(client, serverVersion, database), {
    optionFile: mysqlOptionFile(c),
    secrets: [c.password],
    errorPattern: /(^|: )(error|couldn't execute|got error)/i,
    largeStdout: true,
  });
  const completed = (async (): Promise<TableCount[]> => {
    await tool.finished;
    if (!counter.completed)
      throw new OperationalError(`mysqldump of "${database}" ended without its "-- Dump completed" line`);
    // A table created after our listing but inside mysqldump's snapshot is in the dump: count it too.
    const known = new Set(tables.map((t) => t.name));
    for (const name of counter.rows.keys()) if (!known.has(name)) tables.push({ schema: database, name });
    return tables.map((t) => ({ ...t, rows: counter.rows.get(t.name) ?? 0 }));
  })();
  completed.catch(() => undefined);
  return {
    format: 'mysqldump-sql',
    extension: 'sql',
    stdout: tool.stdout,
    completed,
    abort: () => {
      tool.kill();
    },
    observe: (chunk) => {
      counter.push(chunk);
    },
    largestStatementBytes: () => counter.largestStatementBytes,
  };
}
