import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { OperationalError, UsageError, messageOf } from '../util/errors';

export const ENGINES = ['postgres', 'mysql'] as const;
export type Engine = (typeof ENGINES)[number];

/** Where and as whom to connect. `password` is kept out of every log line and every argv. */
export interface Connection {
  readonly engine: Engine;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string | undefined;
  /** The database named in the URL, if any. */
  readonly database: string | undefined;
  /** PostgreSQL `sslmode` / MySQL `ssl-mode` from the URL's query string, if any. */
  readonly sslMode: string | undefined;
}

const SCHEMES: Record<string, Engine> = {
  'postgres:': 'postgres',
  'postgresql:': 'postgres',
  'mysql:': 'mysql',
  'mariadb:': 'mysql',
};

/** The engine names accepted besides `postgres` and `mysql` (the URL schemes' own names). */
const ENGINE_ALIASES: Record<string, Engine> = { postgresql: 'postgres', mariadb: 'mysql' };

/** Checks an engine name given on the command line (`postgresql` and `mariadb` are accepted too). */
export function parseEngine(value: string, field = '--engine'): Engine {
  if ((ENGINES as readonly string[]).includes(value)) return value as Engine;
  const alias = ENGINE_ALIASES[value];
  if (alias) return alias;
  throw new UsageError(`${field}: expected "postgres" or "mysql", got "${value}"`);
}

/** The engine a database URL's scheme names (`postgres:`/`postgresql:`, `mysql:`/`mariadb:`). */
export function engineOfUrl(url: string, field = '--url'): Engine {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(
      `${field}: expected a URL like "postgres://user@host:5432/dbname" or "mysql://user@host:3306/dbname", got "${redactUrl(url)}"`,
    );
  }
  const scheme = SCHEMES[parsed.protocol];
  if (!scheme)
    throw new UsageError(
      `${field}: expected a postgres://, postgresql://, mysql:// or mariadb:// URL, got "${parsed.protocol}//…"`,
    );
  return scheme;
}

/**
 * Parses `postgres://user:pass@host:5432/db?sslmode=require` or `mysql://user@host:3306/db`.
 * Errors name the field and never echo the password.
 */
export function parseDatabaseUrl(engine: Engine, url: string, field = '--url'): Connection {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(
      `${field}: expected a URL like "${engine === 'postgres' ? 'postgres://user@host:5432/dbname' : 'mysql://user@host:3306/dbname'}", got "${redactUrl(url)}"`,
    );
  }
  const scheme = SCHEMES[parsed.protocol];
  if (!scheme)
    throw new UsageError(
      `${field}: expected a postgres://, postgresql://, mysql:// or mariadb:// URL, got "${parsed.protocol}//…"`,
    );
  if (scheme !== engine) throw new UsageError(`${field}: the URL is for ${scheme} but --engine is ${engine}`);
  if (!parsed.hostname) throw new UsageError(`${field}: expected a host name in the URL`);
  const port = parsed.port ? Number(parsed.port) : engine === 'postgres' ? 5432 : 3306;
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || undefined;
  if (database?.includes('/'))
    throw new UsageError(`${field}: expected at most one database name in the path`);
  return {
    engine,
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    user: decodeURIComponent(parsed.username) || (engine === 'postgres' ? 'postgres' : 'root'),
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    database,
    sslMode: parsed.searchParams.get('sslmode') ?? parsed.searchParams.get('ssl-mode') ?? undefined,
  };
}

/** The URL with its password replaced by `***`, safe for logs and manifests. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

/** A quoted SQL identifier: `"name"` for PostgreSQL, `` `name` `` for MySQL, quotes doubled. */
export function quoteIdentifier(engine: Engine, name: string): string {
  return engine === 'postgres' ? `"${name.replace(/"/g, '""')}"` : `\`${name.replace(/`/g, '``')}\``;
}

/** `user@host:port/db`, never the password. */
export function describeConnection(c: Connection, database = c.database): string {
  return `${c.user}@${c.host}:${c.port}${database ? `/${database}` : ''}`;
}

const rdsSecretSchema = z.looseObject({
  username: z.string().min(1),
  password: z.string(),
  host: z.string().optional(),
  port: z.union([z.number(), z.string()]).optional(),
  dbname: z.string().optional(),
});

/**
 * Fills in the password (and missing user/host/port/database) from, in order: the URL, the
 * environment (`COFRE_DB_PASSWORD`, then the tool's own `PGPASSWORD` / `MYSQL_PWD`), or a Secrets
 * Manager secret in the RDS JSON format.
 */
export async function resolveCredentials(
  connection: Connection,
  options: {
    env?: NodeJS.ProcessEnv;
    secretArn?: string | undefined;
    secrets?: SecretsManagerClient | undefined;
  } = {},
): Promise<Connection> {
  if (options.secretArn) {
    if (!options.secrets) throw new UsageError('--secret: no Secrets Manager client available');
    let text: string | undefined;
    try {
      const out = await options.secrets.send(new GetSecretValueCommand({ SecretId: options.secretArn }));
      text = out.SecretString;
    } catch (error) {
      throw new OperationalError(`--secret: could not read ${options.secretArn}: ${messageOf(error)}`);
    }
    let secret: z.infer<typeof rdsSecretSchema>;
    try {
      secret = rdsSecretSchema.parse(JSON.parse(text ?? ''));
    } catch {
      throw new UsageError(
        `--secret: expected ${options.secretArn} to hold JSON in the RDS format ({"username": ..., "password": ...})`,
      );
    }
    return {
      ...connection,
      user: secret.username,
      password: secret.password,
      host: secret.host ?? connection.host,
      port: secret.port !== undefined ? Number(secret.port) : connection.port,
      database: connection.database ?? secret.dbname,
    };
  }
  if (connection.password !== undefined) return connection;
  const env = options.env ?? process.env;
  const fromEnv =
    env.COFRE_DB_PASSWORD ?? (connection.engine === 'postgres' ? env.PGPASSWORD : env.MYSQL_PWD);
  return { ...connection, password: fromEnv };
}
