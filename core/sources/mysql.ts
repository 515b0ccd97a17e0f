import { createConnection, type Connection as MysqlConnection, type RowDataPacket } from 'mysql2/promise';
import type { Connection } from '../connection';
import { OperationalError, messageOf } from '../errors';
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

export async function connectMysql(c: Connection, database?: string): Promise<MysqlConnection> {
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

async function dumpClient(): Promise<ClientFlavour> {
  const text = (await runTool(MYSQLDUMP, ['--version'])).trim();
  return { version: text.replace(/^\S+\s+/, ''), mariadb: /mariadb/i.test(text) };
}

export async function mysqlInfo(c: Connection): Promise<SourceInfo> {
  const conn = await connectMysql(c);
  try {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT VERSION() AS v');
    const client = await dumpClient();
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
