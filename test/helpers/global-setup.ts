/**
 * Once per `npm test` (vitest globalSetup): the tricky MySQL fixture's 10 MiB BLOB is a ~20 MiB
 * INSERT, above MariaDB's default 16 MiB max_allowed_packet, so the server's global value is raised
 * to 64 MiB before any test file runs and put back after the last one. (Raising and restoring it
 * per test file raced: one file put it back while another was still restoring a dump.)
 *
 * Restores raise it themselves now (see test/core/restore/mysql-packet.test.ts, which runs against a
 * private server at the default 16 MiB); this stays for the test helpers that load the fixture and
 * dumps with plain clients (loadTrickySchema, loadDumpInto), which do not.
 */
import { createConnection } from 'mysql2/promise';

const WANTED = 64 * 1024 * 1024;

export default async function setup(): Promise<() => Promise<void>> {
  const url = new URL(process.env.COFRE_TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/');
  const connect = () =>
    createConnection({
      host: url.hostname,
      port: Number(url.port || 3306),
      user: decodeURIComponent(url.username) || 'root',
      password: decodeURIComponent(url.password),
      connectTimeout: 3000,
    });
  let original: number | undefined;
  try {
    const c = await connect();
    try {
      const [rows] = await c.query<import('mysql2').RowDataPacket[]>(
        'SELECT @@global.max_allowed_packet AS p',
      );
      const current = Number(rows[0]!.p);
      if (current < WANTED) {
        await c.query(`SET GLOBAL max_allowed_packet = ${WANTED}`);
        original = current;
      }
    } finally {
      await c.end();
    }
  } catch {
    // No MySQL here: its tests skip (or, under CI=true, fail) by themselves.
  }
  return async () => {
    if (original === undefined) return;
    let c;
    try {
      c = await connect();
    } catch (error) {
      // The server went away during the run (a restarted server starts from its own configuration):
      // nothing to put back, and no reason to fail a run whose tests passed.
      console.warn(
        `global-setup: MariaDB unreachable at teardown, max_allowed_packet not put back: ${String(error)}`,
      );
      return;
    }
    try {
      await c.query(`SET GLOBAL max_allowed_packet = ${original}`);
    } finally {
      await c.end();
    }
  };
}
