/**
 * Issue 16, item 4: a chain lock left by a run that crashed (or lost S3) is recovered without an
 * operator and without a fork. The holder renews it; one not renewed for the stale time is taken
 * over by exactly one run, saying whose it was; a holder that lost its lock does not commit.
 * On the file vault and on S3 (moto honours If-None-Match and If-Match).
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withChainLock } from '../../../core/catalog/catalog';
import { CHAIN_LOCK_NAME, chainPrefix } from '../../../core/catalog/keys';
import { heartbeatMs, parseChainLock, processAlive } from '../../../core/catalog/chain-lock';
import { CancelledError } from '../../../core/util/errors';
import { currentRun } from '../../../core/util/run-context';
import { FileVault, S3Vault, type Vault } from '../../../core/vault';
import { cofre, tempDir } from '../../helpers/cli';
import {
  createDatabase,
  describeDatabase,
  withPostgresClient,
  type TestDatabase,
} from '../../helpers/databases';
import { testKeys } from '../../helpers/engine';
import { recordFault } from '../../helpers/fault-matrix';
import { createVaultBucket, describeLocalAws, localAws } from '../../helpers/local-aws';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The body a run on another host wrote, last renewed `ageMs` ago. */
function foreignLock(ageMs: number, pid = 4242): Buffer {
  const at = new Date(Date.now() - ageMs).toISOString();
  return Buffer.from(
    JSON.stringify({
      host: 'other-host',
      pid,
      startedAt: '2026-01-01T00:00:00.000Z',
      renewedAt: at,
      run: 'x',
    }),
  );
}

function behavesAsAChainLock(name: string, make: () => Promise<Vault>) {
  describe(`chain lock on ${name}`, () => {
    let n = 0;
    const prefix = () => `full/src${++n}/db/`;

    it('a lock not renewed for the stale time is taken over, naming its owner and age; a fresh one blocks', async () => {
      const vault = await make();
      const p = prefix();
      const key = `${p}${CHAIN_LOCK_NAME}`;
      // Left by a run that lost the vault 11 minutes ago (default stale time 10 minutes).
      expect(await vault.createExclusive(key, foreignLock(11 * 60_000))).toBe(true);
      const lines: string[] = [];
      const started = Date.now();
      const took = await withChainLock(
        vault,
        p,
        () => Promise.resolve('ran'),
        (l) => lines.push(l),
      );
      expect(took).toBe('ran');
      expect(lines.join('\n')).toMatch(
        new RegExp(
          `taking over the stale chain lock ${vault.url}/${key} of process 4242 on other-host, started 2026-01-01T00:00:00.000Z, last renewed 11 min( \\d+ s)? ago: not renewed for 11 min( \\d+ s)? \\(stale after 10 min\\)`,
        ),
      );
      recordFault({
        engine: vault.kind,
        fault: 'chain lock left by a crashed run (not renewed 11 min)',
        operation: 'next backup of the chain',
        outcome: 'taken over, backup runs',
        reason: lines.find((l) => l.startsWith('taking over')) ?? '',
        ms: Date.now() - started,
        leftovers: 'none (the lock is released after the run)',
      });
      // Released after the run: the next one takes it at once.
      expect(await withChainLock(vault, p, () => Promise.resolve(1))).toBe(1);

      // Renewed 2 minutes ago: another backup is running; refused, naming it.
      expect(await vault.createExclusive(key, foreignLock(2 * 60_000))).toBe(true);
      const ran: string[] = [];
      const refused = withChainLock(vault, p, () => {
        ran.push('ran');
        return Promise.resolve();
      });
      await expect(refused).rejects.toThrow(
        new RegExp(
          `another backup of ${p.slice(0, -1)} is running: the chain lock ${vault.url}/${key} is held by process 4242 on other-host, started 2026-01-01T00:00:00.000Z, last renewed 2 min( \\d+ s)? ago; this run did not start and wrote nothing. A lock not renewed for 10 min is stale`,
        ),
      );
      expect(ran).toEqual([]);
      // The stale time is an option: with 1 minute, the same lock is stale.
      expect(
        await withChainLock(vault, p, () => Promise.resolve(2), undefined, { staleAfterMs: 60_000 }),
      ).toBe(2);
    });

    it('of several runs that find the same stale lock, exactly one takes it over (no fork)', async () => {
      const vault = await make();
      const p = prefix();
      expect(await vault.createExclusive(`${p}${CHAIN_LOCK_NAME}`, foreignLock(60 * 60_000))).toBe(true);
      let inside = 0;
      let most = 0;
      const runs = await Promise.allSettled(
        [1, 2, 3, 4].map(() =>
          withChainLock(vault, p, async () => {
            most = Math.max(most, ++inside);
            await sleep(300);
            inside--;
          }),
        ),
      );
      expect(runs.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      expect(most).toBe(1);
      for (const r of runs)
        if (r.status === 'rejected')
          expect(String(r.reason)).toMatch(
            /another backup of .* (is running|took over the stale chain lock|took the chain lock)|another run is taking it over right now/,
          );
    });

    it('the holder renews its lock, so a long backup is never taken for stale', async () => {
      const vault = await make();
      const p = prefix();
      const key = `${p}${CHAIN_LOCK_NAME}`;
      // Renewed every 600 ms: a stall of the event loop or the disk of up to 2.4 s (a loaded CI machine)
      // still leaves the lock fresh; with 1 s it did not, and the inner run rightly took it over.
      const staleAfterMs = 3_000;
      expect(heartbeatMs(staleAfterMs)).toBe(600);
      await withChainLock(
        vault,
        p,
        async (lock) => {
          const first = parseChainLock(await vault.readBytes(key))!;
          await sleep(3_500); // longer than the stale time
          const later = parseChainLock(await vault.readBytes(key))!;
          expect(Date.parse(later.renewedAt)).toBeGreaterThan(Date.parse(first.renewedAt));
          expect(later.startedAt).toBe(first.startedAt);
          expect(later.pid).toBe(process.pid);
          expect(later.host).toBe(os.hostname());
          // Another run on another host with the same stale time finds it fresh and stays out.
          await expect(
            withChainLock(vault, p, () => Promise.resolve(), undefined, { staleAfterMs }),
          ).rejects.toThrow(/is running: .* last renewed \d+ s ago/);
          await lock.confirm();
        },
        undefined,
        { staleAfterMs },
      );
    });

    it('a holder whose lock was taken over stops its tools and does not commit; it leaves the new lock alone', async () => {
      const vault = await make();
      const p = prefix();
      const key = `${p}${CHAIN_LOCK_NAME}`;
      const usurper = foreignLock(0, 777);
      const started = Date.now();
      let runSignal: AbortSignal | undefined;
      const running = withChainLock(
        vault,
        p,
        async (lock) => {
          runSignal = currentRun().signal;
          // Someone takes the lock over behind this run's back (as after a long network outage).
          const mine = (await vault.readBytes(key))!;
          expect(await vault.replaceExclusive(key, mine, usurper)).toBe(true);
          // The next renewal (every 200 ms) finds the lock gone: its tools and sessions are told to stop,
          // within the 10 s bound of a fault (waited for as an event, not a fixed sleep, so load cannot fail it).
          const signal = runSignal!;
          await new Promise<void>((resolve, reject) => {
            if (signal.aborted) {
              resolve();
              return;
            }
            const timer = setTimeout(() => {
              reject(new Error('the run was not told to stop within 10 s'));
            }, 10_000);
            signal.addEventListener(
              'abort',
              () => {
                clearTimeout(timer);
                resolve();
              },
              { once: true },
            );
          });
          expect(signal.aborted).toBe(true);
          await lock.confirm(); // the commit point refuses
          return 'committed';
        },
        undefined,
        { staleAfterMs: 1_000 },
      );
      await expect(running).rejects.toBeInstanceOf(CancelledError);
      await expect(running).rejects.toThrow(
        /the chain lock .* is no longer this run's \(taken over by process 777 on other-host, .*\); the backup is not committed/,
      );
      // Its release did not free the usurper's lock.
      expect((await vault.readBytes(key))?.equals(usurper)).toBe(true);
      recordFault({
        engine: vault.kind,
        fault: 'chain lock taken over while the backup runs',
        operation: 'full backup (holder)',
        outcome: 'CancelledError (exit 1)',
        reason: String(await running.catch((e: unknown) => e)).split('\n')[0]!,
        ms: Date.now() - started,
        leftovers: "none (manifest not written; the new holder's lock kept)",
      });
    });
  });
}

describe('a claim left by a run that crashed while renewing (file vault)', () => {
  it('blocks only the takeover of that lock version, and the message says which file to delete', async () => {
    const dir = tempDir('claim');
    const vault = new FileVault(dir);
    const p = 'full/src/db/';
    const body = foreignLock(60 * 60_000);
    expect(await vault.createExclusive(`${p}${CHAIN_LOCK_NAME}`, body)).toBe(true);
    const claim = `${dir}/${p}${CHAIN_LOCK_NAME}.claim-${createHash('sha256').update(body).digest('hex').slice(0, 16)}`;
    writeFileSync(claim, '');
    await expect(withChainLock(vault, p, () => Promise.resolve())).rejects.toThrow(
      /could not be taken over although it did not change: .* left a "=lock\.json\.claim-\*" file beside it; if that file is older than a minute, delete it/,
    );
    rmSync(claim);
    expect(await withChainLock(vault, p, () => Promise.resolve('ran'))).toBe('ran');
  });
});

describe('a holder that cannot reach its vault to renew (S3 unreachable)', () => {
  it('keeps retrying, and after half the stale time stops its run and does not commit', async () => {
    const inner = new FileVault(tempDir('unreachable'));
    let reachable = true;
    const vault: Vault = {
      url: inner.url,
      kind: inner.kind,
      objectLockMode: inner.objectLockMode,
      write: (k, b, o) => inner.write(k, b, o),
      read: (k, sig) => inner.read(k, sig),
      readBytes: (k) => inner.readBytes(k),
      sha256: (k, c) => inner.sha256(k, c),
      stat: (k) => inner.stat(k),
      list: (p) => inner.list(p),
      createExclusive: (k, b) => inner.createExclusive(k, b),
      remove: (k) => inner.remove(k),
      release: (k, e) => inner.release(k, e),
      replaceExclusive: (k, e, b) =>
        reachable ? inner.replaceExclusive(k, e, b) : Promise.reject(new Error('connect ETIMEDOUT')),
    };
    const lines: string[] = [];
    const started = Date.now();
    const running = withChainLock(
      vault,
      'full/src/db/',
      async (lock) => {
        reachable = false;
        // Renewals every 200 ms fail; lost after 500 ms. Waited for as an event (up to 10 s), not a fixed
        // sleep, so a loaded machine whose timers run late cannot fail it.
        const signal = currentRun().signal!;
        const deadline = Date.now() + 10_000;
        while (!signal.aborted && Date.now() < deadline) await sleep(50);
        expect(signal.aborted).toBe(true);
        reachable = true;
        await lock.confirm();
        return 'committed';
      },
      (l) => lines.push(l),
      { staleAfterMs: 1_000 },
    );
    await expect(running).rejects.toThrow(
      /the chain lock .* is no longer this run's \(not renewed for \d+ s: connect ETIMEDOUT\); the backup is not committed/,
    );
    expect(lines.join('\n')).toMatch(/could not renew the chain lock .* \(retrying\): connect ETIMEDOUT/);
    // Reachable again: its lock, still the version it wrote, is freed.
    expect(await inner.readBytes(`full/src/db/${CHAIN_LOCK_NAME}`)).toBeUndefined();
    recordFault({
      engine: 'file',
      fault: 'vault unreachable while the backup runs (lock not renewable)',
      operation: 'full backup (holder)',
      outcome: 'CancelledError (exit 1)',
      reason: String(await running.catch((e: unknown) => e)).split('\n')[0]!,
      ms: Date.now() - started,
      leftovers:
        'the lock (not releasable while unreachable): stale after 10 min, taken over by the next run',
    });
  });
});

describe('temporary files of lock writes (file vault)', () => {
  it('a contender’s lock file being written is not a leftover; one older than a minute is removed', async () => {
    const dir = tempDir('lock-temp');
    const vault = new FileVault(dir);
    const p = 'full/src/db/';
    mkdirSync(`${dir}/${p}`, { recursive: true });
    const fresh = `${dir}/${p}${CHAIN_LOCK_NAME}.tmp-aaaaaaaaaaaa`;
    const old = `${dir}/${p}${CHAIN_LOCK_NAME}.tmp-bbbbbbbbbbbb`;
    writeFileSync(fresh, '{}');
    writeFileSync(old, '{}');
    const then = new Date(Date.now() - 5 * 60_000);
    utimesSync(old, then, then);
    const lines: string[] = [];
    await withChainLock(
      vault,
      p,
      () => Promise.resolve(),
      (l) => lines.push(l),
    );
    expect(existsSync(fresh)).toBe(true);
    expect(existsSync(old)).toBe(false);
    expect(lines.join('\n')).toMatch(/removing .*=lock\.json\.tmp-bbbbbbbbbbbb: a temporary file/);
    expect(await vault.list('full/')).toEqual([]);
  });
});

behavesAsAChainLock('a file vault', () => Promise.resolve(new FileVault(tempDir('chain-lock'))));

describeLocalAws('chain lock on S3 (moto)', () => {
  const aws = localAws();
  let bucket: string;
  beforeAll(async () => {
    bucket = await createVaultBucket(aws.s3);
  });
  afterAll(() => {
    aws.s3.destroy();
  });
  behavesAsAChainLock('an S3 vault (moto, Object Lock)', () =>
    Promise.resolve(
      new S3Vault({ client: aws.s3, bucket, prefix: `p${Date.now()}`, objectLockMode: 'COMPLIANCE' }),
    ),
  );
});

describe('--chain-lock-stale-after (flag)', () => {
  it('is a duration of at least 1 s (exit 2 naming the flag otherwise)', async () => {
    const r = await cofre([
      'backup',
      '--engine',
      'postgres',
      '--url',
      'postgres://u@127.0.0.1:1/db',
      '--vault',
      `file://${tempDir('stale-flag')}/v`,
      '--key-file',
      '/nonexistent',
      '--chain-lock-stale-after',
      '500ms',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^cofre: --chain-lock-stale-after: expected at least 1s, got "500ms"$/m);
  });
});

describeDatabase('postgres', '--chain-lock-stale-after (backup)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createDatabase('postgres', 'stale_flag');
    await withPostgresClient(db.url, (c) => c.query('CREATE TABLE t AS SELECT 1 AS a'));
  });
  afterAll(async () => {
    await db.drop();
  });

  it('decides when a left lock is stale: 2 min old blocks by default, is taken over with 1m', async () => {
    const dir = tempDir('stale-backup');
    const vault = new FileVault(dir);
    const { keyFile } = await testKeys();
    const key = `${chainPrefix(db.name, db.name)}${CHAIN_LOCK_NAME}`;
    expect(await vault.createExclusive(key, foreignLock(2 * 60_000))).toBe(true);
    const args = [
      'backup',
      '--engine',
      'postgres',
      '--url',
      db.url,
      '--vault',
      `file://${dir}`,
      '--key-file',
      keyFile,
    ];
    const blocked = await cofre(args);
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(
      /FAILED .*: another backup of .* is running: .* held by process 4242 on other-host/,
    );
    const taken = await cofre([...args, '--chain-lock-stale-after', '1m']);
    expect(taken.code).toBe(0);
    expect(taken.stderr).toMatch(
      /taking over the stale chain lock .* of process 4242 on other-host.*: not renewed for 2 min/,
    );
    expect(await vault.readBytes(key)).toBeUndefined();
  });
});

describe('processAlive: the liveness of a lock holder on this host', () => {
  it('a running process is alive; an exited one and a zombie (exited, never reaped) are not', async () => {
    expect(processAlive(process.pid)).toBe(true);
    // `sleep 0.1` runs in the background of a shell that then becomes `sleep 5` (exec): nobody
    // reaps the first sleep, so it stays a zombie, as a SIGKILLed cofre does under an init that does
    // not reap (it made the next backup wait for a lock nobody held).
    const shell = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 5'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    try {
      const zombie = Number(
        await new Promise<string>((resolve) =>
          shell.stdout.once('data', (d: Buffer) => {
            resolve(d.toString());
          }),
        ),
      );
      expect(processAlive(zombie)).toBe(true);
      await new Promise((r) => setTimeout(r, 500));
      const stat = readFileSync(`/proc/${zombie}/stat`, 'utf8');
      expect(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)).toBe('Z');
      expect(processAlive(zombie)).toBe(false);
    } finally {
      shell.kill('SIGKILL');
    }
    await new Promise((r) => shell.once('exit', r));
    await new Promise((r) => setTimeout(r, 50));
    expect(processAlive(shell.pid!)).toBe(false);
  });
});
