/**
 * The "fast server" bench dataset (issue 18): one wide table of text-heavy rows (hex text, jsonb /
 * JSON, timestamps, numerics) that the database streams out faster than the existing documents
 * dataset (scripts/bench-data-lib.ts), so that the cost of Cofre's own pipeline is not hidden
 * behind the server's. Deterministic: every value is a function of the row number (md5 of it), so
 * two runs make byte-identical tables.
 *
 * Sizes measured on PostgreSQL 15: ~240 bytes of pg_database_size per row, ~700 MB at 3 000 000
 * rows; MariaDB 10.11 stores the same rows in about the same space.
 */
import { createConnection } from 'mysql2/promise';
import { Client } from 'pg';

export interface FastDataOptions {
  readonly engine: 'postgres' | 'mysql';
  /** Server URL with the database to create (it must not exist). */
  readonly url: string;
  readonly rows: number;
  readonly log?: (line: string) => void;
}

/** Rows per INSERT … SELECT. */
const BATCH = 500_000;

// Per row: a 32-hex reference, 96 hex characters of text, a small jsonb document, two timestamps,
// two numerics. Hex text compresses about 2× with zstd -1, like hashes and tokens in real tables.
const PG_TABLE = `CREATE TABLE ledger_entries (
  id bigint PRIMARY KEY,
  ref text NOT NULL,
  body text NOT NULL,
  doc jsonb NOT NULL,
  booked_at timestamptz NOT NULL,
  settled_at timestamptz,
  amount numeric(14, 2) NOT NULL,
  balance numeric(16, 2) NOT NULL
)`;

const PG_INSERT = `INSERT INTO ledger_entries
SELECT i,
       md5(i::text),
       md5(i::text || 'a') || md5(i::text || 'b') || md5(i::text || 'c'),
       jsonb_build_object('k', substr(md5(i::text || 'k'), 1, 12), 'n', i % 977, 'ok', i % 3 = 0),
       timestamptz '2020-01-01 00:00:00+00' + (i * interval '17 seconds'),
       CASE WHEN i % 5 = 0 THEN NULL ELSE timestamptz '2020-01-02 00:00:00+00' + (i * interval '19 seconds') END,
       ((i * 7919) % 10000000) / 100.0,
       ((i * 104729) % 1000000000) / 100.0
  FROM generate_series($1::bigint, $2::bigint) AS i`;

const MYSQL_TABLE = `CREATE TABLE ledger_entries (
  id BIGINT NOT NULL PRIMARY KEY,
  ref CHAR(32) NOT NULL,
  body TEXT NOT NULL,
  doc JSON NOT NULL,
  booked_at DATETIME(6) NOT NULL,
  settled_at DATETIME(6) NULL,
  amount DECIMAL(14, 2) NOT NULL,
  balance DECIMAL(16, 2) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`;

// MariaDB's Sequence engine (seq_<from>_to_<to>) gives the row numbers.
const mysqlInsert = (lo: number, hi: number) => `INSERT INTO ledger_entries
SELECT seq,
       MD5(seq),
       CONCAT(MD5(CONCAT(seq, 'a')), MD5(CONCAT(seq, 'b')), MD5(CONCAT(seq, 'c'))),
       JSON_OBJECT('k', SUBSTR(MD5(CONCAT(seq, 'k')), 1, 12), 'n', seq % 977, 'ok', seq % 3 = 0),
       TIMESTAMP '2020-01-01 00:00:00' + INTERVAL (seq * 17) SECOND,
       IF(seq % 5 = 0, NULL, TIMESTAMP '2020-01-02 00:00:00' + INTERVAL (seq * 19) SECOND),
       ((seq * 7919) % 10000000) / 100.0,
       ((seq * 104729) % 1000000000) / 100.0
  FROM seq_${lo}_to_${hi}`;

/** Creates the database and fills it; returns its size in bytes (the server's own figure). */
export async function generateFastData(options: FastDataOptions): Promise<number> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const u = new URL(options.url);
  const database = decodeURIComponent(u.pathname.slice(1));
  if (!/^[a-z0-9_]+$/.test(database)) throw new Error(`bench database name must be [a-z0-9_]+: ${database}`);
  const started = performance.now();
  const batches = (run: (lo: number, hi: number) => Promise<unknown>) =>
    (async () => {
      for (let lo = 1; lo <= options.rows; lo += BATCH) {
        const hi = Math.min(lo + BATCH - 1, options.rows);
        await run(lo, hi);
        log(
          `  ${database}: ${hi.toLocaleString('en')}/${options.rows.toLocaleString('en')} rows, ${((performance.now() - started) / 1000).toFixed(0)} s`,
        );
      }
    })();
  if (options.engine === 'postgres') {
    const admin = new URL(options.url);
    admin.pathname = '/postgres';
    const a = new Client({ connectionString: admin.toString() });
    await a.connect();
    await a.query(`CREATE DATABASE ${database} ENCODING 'UTF8' TEMPLATE template0`);
    await a.end();
    const c = new Client({ connectionString: options.url });
    await c.connect();
    try {
      await c.query('SET synchronous_commit = off');
      await c.query(PG_TABLE);
      await batches((lo, hi) => c.query(PG_INSERT, [lo, hi]));
      await c.query('VACUUM (ANALYZE) ledger_entries');
      const { rows } = await c.query<{ s: string }>('SELECT pg_database_size(current_database()) AS s');
      return Number(rows[0]!.s);
    } finally {
      await c.end();
    }
  }
  const c = await createConnection({
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username) || 'root',
    password: decodeURIComponent(u.password),
  });
  try {
    await c.query(`CREATE DATABASE ${database} CHARACTER SET utf8mb4`);
    await c.query(`USE ${database}`);
    await c.query(MYSQL_TABLE);
    await batches((lo, hi) => c.query(mysqlInsert(lo, hi)));
    await c.query('ANALYZE TABLE ledger_entries');
    const [rows] = await c.query(
      'SELECT SUM(data_length + index_length) AS s FROM information_schema.tables WHERE table_schema = ?',
      [database],
    );
    return Number((rows as { s: string }[])[0]!.s);
  } finally {
    await c.end();
  }
}
