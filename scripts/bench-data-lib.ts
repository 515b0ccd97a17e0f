/**
 * Benchmark data for the backup engine: a database of "documents" (tenant ids, hex hashes, jsonb /
 * JSON with varied keys, Portuguese-ish titles, numerics, timestamps) and a child table of
 * events (FK, ~1 per 8 documents), generated server-side in batches (INSERT ... SELECT), so a
 * few million rows take a minute or two. Entropy is realistic: dumps compress roughly like
 * production data (gzip ≈ 2.5×), not like filler.
 *
 * Sizes measured on PostgreSQL 15: ~231 bytes of pg_database_size per document, i.e. ~700 MB at
 * 3 000 000 documents.
 *
 * Used by scripts/bench-data.ts (CLI) and importable by benchmarks. No vitest imports here.
 */
import { createConnection, type Connection as MysqlConnection, type RowDataPacket } from 'mysql2/promise';
import { Client } from 'pg';

export type BenchEngine = 'postgres' | 'mysql';

/** Default --rows: ~700 MB on PostgreSQL; ~230 MB on MariaDB (whose SQL-replay restores are slow). */
export const DEFAULT_BENCH_ROWS: Record<BenchEngine, number> = { postgres: 3_000_000, mysql: 1_000_000 };

export interface BenchDataOptions {
  engine: BenchEngine;
  /** postgres://…/<db> or mysql://…/<db>; the database is created if absent. */
  url: string;
  /** Number of documents (the parent table); events are ~1 per 8 documents. */
  rows: number;
  /** Documents per INSERT ... SELECT (default 200 000 for PostgreSQL, 50 000 for MySQL). */
  batchSize?: number;
  /** PostgreSQL only: setseed() value in [-1, 1] for reproducible data (MySQL's RAND() cannot be seeded per session). */
  seed?: number;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface BenchDataResult {
  engine: BenchEngine;
  database: string;
  /** Whether the database had to be created. */
  created: boolean;
  documents: number;
  events: number;
  /** Rows this run inserted (0 when the database already had enough). */
  insertedDocuments: number;
  /** pg_database_size, or MySQL's data_length + index_length of the database's tables. */
  bytes: number;
  seconds: number;
}

/** Words for titles and JSON values: Portuguese-ish, with accents. */
export const BENCH_WORDS: readonly string[] = `
  consulta retorno exame laudo receita atestado paciente clínica unidade agendamento cancelamento
  remarcação pagamento boleto nota fiscal recibo convênio particular reembolso autorização guia
  procedimento cirurgia internação alta prontuário evolução anamnese diagnóstico tratamento
  medicação dosagem alergia vacina pediatria cardiologia dermatologia ortopedia odontologia
  fisioterapia psicologia nutrição enfermagem triagem urgência emergência ambulatório documento
  contrato aditivo cadastro atualização revisão aprovação pendente concluído arquivado
  digitalizado assinatura certificado declaração relatório mensal anual trimestral folha salário
  férias rescisão admissão colaborador fornecedor cliente endereço telefone ação atenção coração
  pressão visão audição função região órgão pulmão
`
  .trim()
  .split(/\s+/);

/** Cities for JSON values (and titles). */
export const BENCH_CITIES: readonly string[] = `
  São Paulo, Rio de Janeiro, Belo Horizonte, Curitiba, Porto Alegre, Salvador, Recife, Fortaleza,
  Manaus, Belém, Goiânia, Florianópolis, Vitória, Natal, João Pessoa, Maceió, Aracaju, Teresina,
  São Luís, Cuiabá, Campo Grande, Palmas, Boa Vista, Macapá, Rio Branco, Porto Velho
`
  .trim()
  .split(/,\s*/);

const STATUSES = ['rascunho', 'ativo', 'pendente', 'aprovado', 'rejeitado', 'arquivado'] as const;
const EVENT_KINDS = ['criado', 'visualizado', 'editado', 'assinado', 'enviado', 'baixado', 'comentado'];

function defaultLog(line: string): void {
  process.stderr.write(`${line}\n`);
}

function databaseFromUrl(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!name) throw new Error(`the URL names no database: ${url.replace(/\/\/[^@/]*@/, '//***@')}`);
  return name;
}

function formatBytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function progress(
  log: (line: string) => void,
  done: number,
  total: number,
  started: number,
  what = 'documents',
): void {
  const pct = total === 0 ? 100 : (done / total) * 100;
  log(
    `  ${what} ${done.toLocaleString('en')}/${total.toLocaleString('en')} (${pct.toFixed(0)}%) ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

const PG_TABLES = `
CREATE TABLE IF NOT EXISTS bench_documents (
  id bigint PRIMARY KEY,
  tenant_id text NOT NULL,
  content_md5 text NOT NULL,
  title text NOT NULL,
  status text NOT NULL,
  amount numeric(14, 2),
  attributes jsonb NOT NULL,
  created_at timestamptz NOT NULL,
  updated_at timestamptz
);
CREATE TABLE IF NOT EXISTS bench_document_events (
  id bigint PRIMARY KEY,
  document_id bigint NOT NULL,
  at timestamptz NOT NULL,
  kind text NOT NULL,
  actor text,
  payload jsonb
)`;

// Secondary indexes and the FK come after the load (faster, and how restores rebuild them too).
const PG_FINISH = [
  `CREATE INDEX IF NOT EXISTS bench_document_events_document_idx ON bench_document_events (document_id)`,
  `DO $$ BEGIN
     IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'bench_document_events_document_fk') THEN
       ALTER TABLE bench_document_events ADD CONSTRAINT bench_document_events_document_fk
         FOREIGN KEY (document_id) REFERENCES bench_documents (id);
     END IF;
   END $$`,
  `VACUUM (ANALYZE) bench_documents`,
  `VACUUM (ANALYZE) bench_document_events`,
];

/** A random element of the text[] parameter $n of length `length`. */
function pgPick(param: number, length: number): string {
  return `($${param}::text[])[1 + floor(random() * ${length})::int]`;
}

// $1 first id, $2 last id, $3 words, $4 cities, $5 statuses, $6 final row count (time scale).
const PG_WORD = pgPick(3, BENCH_WORDS.length);
const PG_INSERT_DOCUMENTS = `
INSERT INTO bench_documents
SELECT g,
       'tenant-' || lpad((1 + floor(random() * random() * 400))::int::text, 4, '0'),
       md5(g::text || random()::text),
       concat_ws(' ', initcap(${PG_WORD}), ${PG_WORD},
                 CASE WHEN random() < 0.3 THEN 'nº ' || (floor(random() * 99999) + 1)::int END,
                 CASE WHEN random() < 0.15 THEN ${pgPick(4, BENCH_CITIES.length)} END),
       ${pgPick(5, STATUSES.length)},
       CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * random() * 50000)::numeric, 2) END,
       jsonb_strip_nulls(jsonb_build_object(
         'origem', CASE WHEN random() < 0.6 THEN (ARRAY['app', 'web', 'api', 'importação', 'integração'])[1 + floor(random() * 5)::int] END,
         'k' || floor(random() * 40)::int,
           CASE WHEN random() < 0.5 THEN substr(md5(random()::text), 1, 4 + floor(random() * 5)::int) END,
         'tags', CASE WHEN random() < 0.15 THEN jsonb_build_array(${PG_WORD}, ${PG_WORD}) END,
         'cliente', CASE WHEN random() < 0.1 THEN jsonb_build_object(
                   'cpf', lpad(floor(random() * 1e11)::bigint::text, 11, '0'),
                   'cidade', ${pgPick(4, BENCH_CITIES.length)}) END,
         'valor_original', CASE WHEN random() < 0.1 THEN round((random() * 10000)::numeric, 2) END,
         'revisado', CASE WHEN random() < 0.1 THEN random() < 0.5 END
       )),
       ts,
       CASE WHEN random() < 0.4 THEN ts + random() * interval '90 days' END
FROM generate_series($1::bigint, $2::bigint) AS g,
     LATERAL (SELECT timestamptz '2020-01-01 00:00:00+00' + (g::float8 / $6::bigint) * interval '1800 days'
                     + random() * interval '1 day' AS ts) AS t`;

// Events for every 10th document (two for every 40th): ids 3 * document id + n never collide.
// $1 first id, $2 last id, $3 words, $4 event kinds.
const PG_INSERT_EVENTS = `
INSERT INTO bench_document_events
SELECT 3 * d.id + n, d.id,
       d.created_at + n * random() * interval '30 days',
       ${pgPick(4, EVENT_KINDS.length)},
       CASE WHEN random() < 0.8 THEN 'usuario' || floor(random() * 5000)::int || '@' || d.tenant_id || '.com.br' END,
       CASE WHEN random() < 0.5 THEN NULL ELSE jsonb_build_object(
         'ip', concat_ws('.', floor(random() * 256)::int, floor(random() * 256)::int,
                         floor(random() * 256)::int, floor(random() * 256)::int),
         'agente', (ARRAY['Mozilla/5.0', 'okhttp/4.12', 'curl/8.5', 'Cofre-Sync/1.0'])[1 + floor(random() * 4)::int],
         'nota', ${PG_WORD}) END
FROM bench_documents d
CROSS JOIN LATERAL generate_series(1, CASE WHEN d.id % 40 = 0 THEN 2 WHEN d.id % 10 = 0 THEN 1 ELSE 0 END) AS n
WHERE d.id BETWEEN $1::bigint AND $2::bigint`;

async function pgEnsureDatabase(url: string, database: string): Promise<boolean> {
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount) return false;
    await client.query(
      `CREATE DATABASE "${database.replace(/"/g, '""')}" ENCODING 'UTF8' TEMPLATE template0`,
    );
    return true;
  } finally {
    await client.end();
  }
}

async function generatePostgres(
  opts: BenchDataOptions,
  log: (line: string) => void,
): Promise<BenchDataResult> {
  const started = performance.now();
  const database = databaseFromUrl(opts.url);
  const created = await pgEnsureDatabase(opts.url, database);
  const client = new Client({ connectionString: opts.url });
  await client.connect();
  try {
    await client.query('SET synchronous_commit = off');
    await client.query(PG_TABLES);
    if (opts.seed !== undefined) await client.query('SELECT setseed($1)', [opts.seed]);
    const { rows: maxRows } = await client.query<{ max: string | null }>(
      'SELECT max(id) AS max FROM bench_documents',
    );
    const first = Number(maxRows[0]?.max ?? 0) + 1;
    const batch = opts.batchSize ?? 200_000;
    log(`${database}: ${created ? 'created' : 'exists'}; documents ${first}..${opts.rows}`);
    for (let lo = first; lo <= opts.rows; lo += batch) {
      const hi = Math.min(lo + batch - 1, opts.rows);
      await client.query('BEGIN');
      await client.query(PG_INSERT_DOCUMENTS, [lo, hi, BENCH_WORDS, BENCH_CITIES, STATUSES, opts.rows]);
      await client.query(PG_INSERT_EVENTS, [lo, hi, BENCH_WORDS, EVENT_KINDS]);
      await client.query('COMMIT');
      progress(log, hi, opts.rows, started);
    }
    if (first <= opts.rows) {
      log('  indexes, foreign key, VACUUM ANALYZE…');
      for (const sql of PG_FINISH) await client.query(sql);
    }
    const { rows: stats } = await client.query<{ documents: string; events: string; bytes: string }>(`
      SELECT (SELECT count(*) FROM bench_documents) AS documents,
             (SELECT count(*) FROM bench_document_events) AS events,
             pg_database_size(current_database()) AS bytes`);
    const s = stats[0]!;
    return {
      engine: 'postgres',
      database,
      created,
      documents: Number(s.documents),
      events: Number(s.events),
      insertedDocuments: Math.max(0, opts.rows - first + 1),
      bytes: Number(s.bytes),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

function mysqlConfig(url: string, database?: string): Parameters<typeof createConnection>[0] {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 3306,
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    ...(database ? { database } : {}),
    charset: 'utf8mb4_unicode_ci',
    supportBigNumbers: true,
    bigNumberStrings: true,
  };
}

function mysqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function mysqlPick(values: readonly string[]): string {
  return `ELT(1 + FLOOR(RAND() * ${values.length}), ${values.map(mysqlString).join(', ')})`;
}

const MYSQL_TABLES = [
  `CREATE TABLE IF NOT EXISTS bench_documents (
     id BIGINT NOT NULL PRIMARY KEY,
     tenant_id VARCHAR(20) NOT NULL,
     content_md5 CHAR(32) NOT NULL,
     title VARCHAR(255) NOT NULL,
     status VARCHAR(20) NOT NULL,
     amount DECIMAL(14, 2) NULL,
     attributes JSON NOT NULL,
     created_at DATETIME(6) NOT NULL,
     updated_at DATETIME(6) NULL
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
  `CREATE TABLE IF NOT EXISTS bench_document_events (
     id BIGINT NOT NULL PRIMARY KEY,
     document_id BIGINT NOT NULL,
     at DATETIME(6) NOT NULL,
     kind VARCHAR(20) NOT NULL,
     actor VARCHAR(100) NULL,
     payload JSON NULL,
     KEY bench_document_events_document_idx (document_id),
     CONSTRAINT bench_document_events_document_fk FOREIGN KEY (document_id) REFERENCES bench_documents (id)
   ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci`,
];

/** Integers 0..99 999 in a session temporary table (no recursive CTE limits to tune). */
const MYSQL_SEQ = [
  'DROP TEMPORARY TABLE IF EXISTS bench_seq',
  'CREATE TEMPORARY TABLE bench_seq (n INT NOT NULL PRIMARY KEY) ENGINE=InnoDB',
  `INSERT INTO bench_seq (n)
   SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d
   FROM ${Array.from(
     { length: 5 },
     (_, i) =>
       `(SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL SELECT 4 UNION ALL
         SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL SELECT 8 UNION ALL SELECT 9) AS ${'abcef'[i]!}`,
   ).join(' CROSS JOIN ')}`,
];

const WORD = mysqlPick(BENCH_WORDS);
const CITY = mysqlPick(BENCH_CITIES);

// ? = first id, ? = last id overall (time scale), ? = batch size
const MYSQL_INSERT_DOCUMENTS = `
INSERT INTO bench_documents
SELECT id,
       CONCAT('tenant-', LPAD(1 + FLOOR(RAND() * RAND() * 400), 4, '0')),
       MD5(CONCAT(id, RAND())),
       CONCAT_WS(' ', ${WORD}, ${WORD},
                 IF(RAND() < 0.3, CONCAT('nº ', 1 + FLOOR(RAND() * 99999)), NULL),
                 IF(RAND() < 0.15, ${CITY}, NULL)),
       ${mysqlPick(STATUSES)},
       IF(RAND() < 0.1, NULL, ROUND(RAND() * RAND() * 50000, 2)),
       CONCAT('{', CONCAT_WS(', ',
         IF(RAND() < 0.6, CONCAT('"origem": ', JSON_QUOTE(${mysqlPick(['app', 'web', 'api', 'importação', 'integração'])})), NULL),
         CONCAT('"k', FLOOR(RAND() * 40), '": ',
                IF(RAND() < 0.5, JSON_QUOTE(SUBSTR(MD5(RAND()), 1, 4 + FLOOR(RAND() * 5))), 'null')),
         IF(RAND() < 0.15, CONCAT('"tags": ', JSON_ARRAY(${WORD}, ${WORD})), NULL),
         IF(RAND() < 0.1, CONCAT('"cliente": ',
            JSON_OBJECT('cpf', LPAD(FLOOR(RAND() * 1e11), 11, '0'), 'cidade', ${CITY})), NULL),
         IF(RAND() < 0.1, CONCAT('"valor_original": ', ROUND(RAND() * 10000, 2)), NULL),
         IF(RAND() < 0.1, CONCAT('"revisado": ', IF(RAND() < 0.5, 'true', 'false')), NULL)), '}'),
       ts,
       IF(RAND() < 0.4, ts + INTERVAL FLOOR(RAND() * 90 * 86400) SECOND, NULL)
FROM (SELECT ? + n AS id,
             TIMESTAMP '2020-01-01 00:00:00' + INTERVAL FLOOR((? + n) / ? * 1800 * 86400 + RAND() * 86400) SECOND AS ts
      FROM bench_seq WHERE n < ?) AS g`;

const MYSQL_INSERT_EVENTS = `
INSERT INTO bench_document_events
SELECT 3 * d.id + s.n, d.id,
       d.created_at + INTERVAL FLOOR(s.n * RAND() * 30 * 86400) SECOND,
       ${mysqlPick(EVENT_KINDS)},
       IF(RAND() < 0.8, CONCAT('usuario', FLOOR(RAND() * 5000), '@', d.tenant_id, '.com.br'), NULL),
       IF(RAND() < 0.5, NULL, JSON_OBJECT(
         'ip', CONCAT_WS('.', FLOOR(RAND() * 256), FLOOR(RAND() * 256), FLOOR(RAND() * 256), FLOOR(RAND() * 256)),
         'agente', ${mysqlPick(['Mozilla/5.0', 'okhttp/4.12', 'curl/8.5', 'Cofre-Sync/1.0'])},
         'nota', ${WORD}))
FROM bench_documents d
JOIN (SELECT n FROM bench_seq WHERE n BETWEEN 1 AND 2) AS s
  ON s.n <= CASE WHEN d.id % 40 = 0 THEN 2 WHEN d.id % 10 = 0 THEN 1 ELSE 0 END
WHERE d.id BETWEEN ? AND ?`;

async function generateMysql(opts: BenchDataOptions, log: (line: string) => void): Promise<BenchDataResult> {
  const started = performance.now();
  const database = databaseFromUrl(opts.url);
  let created = false;
  const admin: MysqlConnection = await createConnection(mysqlConfig(opts.url));
  try {
    const [existing] = await admin.query<RowDataPacket[]>(
      'SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?',
      [database],
    );
    if (existing.length === 0) {
      await admin.query(
        `CREATE DATABASE \`${database.replace(/`/g, '``')}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
      );
      created = true;
    }
  } finally {
    await admin.end();
  }
  const conn = await createConnection(mysqlConfig(opts.url, database));
  try {
    for (const sql of MYSQL_TABLES) await conn.query(sql);
    for (const sql of MYSQL_SEQ) await conn.query(sql);
    const [maxRows] = await conn.query<RowDataPacket[]>('SELECT MAX(id) AS max FROM bench_documents');
    const first = Number(maxRows[0]?.max ?? 0) + 1;
    const batch = Math.min(opts.batchSize ?? 50_000, 100_000);
    log(`${database}: ${created ? 'created' : 'exists'}; documents ${first}..${opts.rows}`);
    for (let lo = first; lo <= opts.rows; lo += batch) {
      const hi = Math.min(lo + batch - 1, opts.rows);
      await conn.beginTransaction();
      await conn.query(MYSQL_INSERT_DOCUMENTS, [lo, lo, opts.rows, hi - lo + 1]);
      await conn.query(MYSQL_INSERT_EVENTS, [lo, hi]);
      await conn.commit();
      progress(log, hi, opts.rows, started);
    }
    log('  ANALYZE TABLE…');
    await conn.query('ANALYZE TABLE bench_documents, bench_document_events');
    const [stats] = await conn.query<RowDataPacket[]>(`
      SELECT (SELECT COUNT(*) FROM bench_documents) AS documents,
             (SELECT COUNT(*) FROM bench_document_events) AS events,
             (SELECT SUM(DATA_LENGTH + INDEX_LENGTH) FROM information_schema.TABLES
              WHERE TABLE_SCHEMA = DATABASE()) AS bytes`);
    const s = stats[0]!;
    return {
      engine: 'mysql',
      database,
      created,
      documents: Number(s.documents),
      events: Number(s.events),
      insertedDocuments: Math.max(0, opts.rows - first + 1),
      bytes: Number(s.bytes),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await conn.end();
  }
}

/** Creates (if absent) and fills the benchmark database; resumes from the highest existing id. */
export async function generateBenchData(opts: BenchDataOptions): Promise<BenchDataResult> {
  if (!Number.isSafeInteger(opts.rows) || opts.rows < 1) throw new Error(`rows must be a positive integer`);
  const log = opts.log ?? defaultLog;
  const result =
    opts.engine === 'postgres' ? await generatePostgres(opts, log) : await generateMysql(opts, log);
  log(
    `${result.database}: ${result.documents.toLocaleString('en')} documents, ` +
      `${result.events.toLocaleString('en')} events, ${formatBytes(result.bytes)} ` +
      `(${result.bytes.toLocaleString('en')} bytes) in ${result.seconds.toFixed(1)} s`,
  );
  return result;
}

export { formatBytes };
