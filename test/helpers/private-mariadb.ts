/**
 * A private MariaDB server for one test file: its own data directory and port on 127.0.0.1, the
 * server's defaults (max_allowed_packet 16 MiB), root without a password. Tests that change global
 * settings use it instead of the shared server, where other test runs overlap; stopping it (and a
 * crash of the test) leaves nothing behind on the shared server.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createConnection } from 'mysql2/promise';
import { tempDir } from './temp';

export interface PrivateMariadb {
  /** `mysql://root@127.0.0.1:PORT/` */
  readonly adminUrl: string;
  readonly port: number;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

/** Why a private server cannot be started here, or undefined when it can. */
export function privateMariadbUnavailable(): string | undefined {
  for (const tool of ['mariadb-install-db', 'mariadbd'])
    if (spawnSync('sh', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0)
      return `${tool} is not installed (apt-get install mariadb-server)`;
  return undefined;
}

export async function startPrivateMariadb(): Promise<PrivateMariadb> {
  const dir = tempDir('mariadb');
  const data = path.join(dir, 'data');
  const install = spawnSync(
    'mariadb-install-db',
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--user=${os.userInfo().username}`,
      '--auth-root-authentication-method=normal',
      '--skip-test-db',
    ],
    { encoding: 'utf8' },
  );
  if (install.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`mariadb-install-db failed: ${install.stderr || install.stdout}`);
  }
  const port = await freePort();
  const daemon = existsOnPath('mariadbd') ? 'mariadbd' : '/usr/sbin/mariadbd';
  const child: ChildProcess = spawn(
    daemon,
    [
      '--no-defaults',
      `--datadir=${data}`,
      `--user=${os.userInfo().username}`,
      `--port=${port}`,
      '--bind-address=127.0.0.1',
      `--socket=${path.join(dir, 'sock')}`,
      `--pid-file=${path.join(dir, 'pid')}`,
      '--skip-log-bin',
      '--innodb-buffer-pool-size=64M',
    ],
    { stdio: 'ignore' },
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<boolean>((resolve) =>
        child.once('exit', () => {
          resolve(true);
        }),
      );
      child.kill('SIGTERM');
      const done = await Promise.race([
        exited,
        new Promise<boolean>((r) =>
          setTimeout(() => {
            r(false);
          }, 20_000),
        ),
      ]);
      if (!done) child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const c = await createConnection({ host: '127.0.0.1', port, user: 'root', connectTimeout: 1000 });
      await c.end();
      break;
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) {
        await stop();
        throw new Error(`the private MariaDB did not start: ${String(error)}`, { cause: error });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return { adminUrl: `mysql://root@127.0.0.1:${port}/`, port, stop };
}

function existsOnPath(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}
