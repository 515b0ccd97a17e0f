import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { OperationalError, messageOf } from '../util/errors';
import type { Vault } from '../vault';

/**
 * The lock of one source's hash chain (issue 16, item 4). A backup holds it from before it reads the
 * chain until after its manifest is written, so two backups of one chain never both run (no fork).
 *
 * A crashed run must not block the chain until an operator comes: the holder renews the lock
 * (a compare-and-swap write: S3 `If-Match` on the version it wrote, a file vault's claim made with
 * `O_EXCL`) every {@link heartbeatMs} of the stale time, at most every minute. A lock not renewed for
 * the stale time (default 10 minutes) belongs to no running backup: the next run takes it over with
 * the same compare-and-swap, so of several runs that find it stale exactly one gets it. A holder that
 * cannot renew its lock for half the stale time, or finds it taken over, stops before its manifest:
 * a backup never commits without holding its chain's lock.
 */

/** A lock not renewed for this long is stale (its run crashed, lost its network or was killed). */
export const DEFAULT_CHAIN_LOCK_STALE_MS = 10 * 60_000;
/** Shortest allowed stale time: renewals must have time to happen. */
export const MIN_CHAIN_LOCK_STALE_MS = 1_000;

/** How often a held lock is renewed: a fifth of the stale time, at most every minute. */
export function heartbeatMs(staleAfterMs: number): number {
  return Math.min(60_000, Math.floor(staleAfterMs / 5));
}

export interface ChainLockBody {
  readonly host: string;
  readonly pid: number;
  readonly startedAt: string;
  /** When the holder last renewed it (older locks: `startedAt`). */
  readonly renewedAt: string;
  /** This run's random id: two bodies of different runs are never equal. */
  readonly run: string;
}

export function parseChainLock(bytes: Buffer | undefined): ChainLockBody | undefined {
  try {
    const b = JSON.parse(bytes?.toString('utf8') ?? '') as Partial<ChainLockBody>;
    if (typeof b.host !== 'string' || typeof b.pid !== 'number' || typeof b.startedAt !== 'string')
      return undefined;
    return {
      host: b.host,
      pid: b.pid,
      startedAt: b.startedAt,
      renewedAt: typeof b.renewedAt === 'string' ? b.renewedAt : b.startedAt,
      run: typeof b.run === 'string' ? b.run : '',
    };
  } catch {
    return undefined;
  }
}

/** `ms` as a person reads an age: "42 s", "3 min 5 s", "2 h 10 min". */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`;
  return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`;
}

/** Who holds a lock, for messages: process, host, start and age of its last renewal. */
export function describeHolder(body: ChainLockBody, now: number): string {
  return `process ${body.pid} on ${body.host}, started ${body.startedAt}, last renewed ${formatAge(now - Date.parse(body.renewedAt))} ago`;
}

/** Why a lock provably belongs to no running backup, or `undefined` when it may. */
export function staleReason(
  body: ChainLockBody | undefined,
  now: number,
  staleAfterMs: number,
): string | undefined {
  if (!body) return 'it is not a lock Cofre wrote (unreadable)';
  const age = now - Date.parse(body.renewedAt);
  if (!(age < staleAfterMs))
    return `not renewed for ${formatAge(age)} (stale after ${formatAge(staleAfterMs)})`;
  if (body.host === os.hostname() && body.pid !== process.pid && !processAlive(body.pid))
    return `its process ${body.pid} on this host is gone`;
  return undefined;
}

/**
 * Whether `pid` is a running process. A zombie is not: it has exited and only waits to be reaped,
 * which an init that does not reap (some container and VM inits) never does; its lock is as stale
 * as that of a process that is gone. Where /proc is missing, `kill(pid, 0)` decides.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  try {
    // /proc/<pid>/stat: "pid (comm) state …"; comm may hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/** A chain lock this run holds. */
export interface HeldChainLock {
  readonly key: string;
  /** Aborts when the lock is lost: taken over, or not renewable for half the stale time. */
  readonly lost: AbortSignal;
  /** Renews the lock now; throws if it is no longer this run's. Called before the manifest is written. */
  confirm(): Promise<void>;
  /** Stops renewing and frees the lock, only if it is still this run's. */
  release(): Promise<void>;
}

/** Thrown when a run's chain lock is not (or no longer) its own. */
export class ChainLockError extends OperationalError {}

/**
 * Takes the chain lock `key` in `vault`, taking over a stale one; throws {@link ChainLockError}
 * naming the holder when a running backup has it.
 */
export async function acquireChainLock(
  vault: Vault,
  key: string,
  options: {
    readonly chain: string;
    readonly staleAfterMs?: number | undefined;
    readonly log?: ((line: string) => void) | undefined;
  },
): Promise<HeldChainLock> {
  const staleAfterMs = options.staleAfterMs ?? DEFAULT_CHAIN_LOCK_STALE_MS;
  const log = options.log ?? (() => undefined);
  const where = `${vault.url}/${key}`;
  const startedAt = new Date().toISOString();
  const run = randomBytes(8).toString('hex');
  const bodyAt = (renewedAt: string) =>
    Buffer.from(
      `${JSON.stringify({ host: os.hostname(), pid: process.pid, startedAt, renewedAt, run } satisfies ChainLockBody)}\n`,
    );
  let current = bodyAt(startedAt);
  if (!(await vault.createExclusive(key, current))) {
    const existing = await vault.readBytes(key);
    if (existing === undefined) {
      // Released between the two calls: one more try, then it is another run's.
      if (!(await vault.createExclusive(key, current)))
        throw new ChainLockError(
          `another backup of ${options.chain} took the chain lock ${where} at the same moment; this run did not start and wrote nothing`,
        );
    } else {
      const body = parseChainLock(existing);
      const now = Date.now();
      const stale = staleReason(body, now, staleAfterMs);
      if (stale === undefined)
        throw new ChainLockError(
          `another backup of ${options.chain} is running: the chain lock ${where} is held by ${describeHolder(body!, now)}; this run did not start and wrote nothing. A lock not renewed for ${formatAge(staleAfterMs)} is stale and the next backup takes it over`,
        );
      log(
        `taking over the stale chain lock ${where}${body ? ` of ${describeHolder(body, now)}` : ''}: ${stale}`,
      );
      current = bodyAt(new Date().toISOString());
      if (!(await vault.replaceExclusive(key, existing, current))) {
        const now2 = await vault.readBytes(key).catch(() => undefined);
        throw new ChainLockError(
          now2 !== undefined && now2.equals(existing)
            ? `the stale chain lock ${where} could not be taken over although it did not change: another run is taking it over right now, or (file vault) a run that crashed while renewing it left a "${key.split('/').pop()!}.claim-*" file beside it; if that file is older than a minute, delete it. This run did not start and wrote nothing`
            : `another backup of ${options.chain} took over the stale chain lock ${where} at the same moment; this run did not start and wrote nothing`,
        );
      }
    }
  }

  const controller = new AbortController();
  let lastRenewed = Date.now();
  let renewing: Promise<void> | undefined;
  let released = false;
  const lose = (why: string) => {
    if (!controller.signal.aborted)
      controller.abort(
        `the chain lock ${where} is no longer this run's (${why}); the backup is not committed`,
      );
  };
  const renew = async (): Promise<void> => {
    if (released || controller.signal.aborted) return;
    const next = bodyAt(new Date().toISOString());
    try {
      if (await vault.replaceExclusive(key, current, next)) {
        current = next;
        lastRenewed = Date.now();
        return;
      }
      const holder = parseChainLock(await vault.readBytes(key).catch(() => undefined));
      lose(holder ? `taken over by ${describeHolder(holder, Date.now())}` : 'it was removed');
    } catch (error) {
      const since = Date.now() - lastRenewed;
      if (since >= staleAfterMs / 2) lose(`not renewed for ${formatAge(since)}: ${messageOf(error)}`);
      else log(`could not renew the chain lock ${where} (retrying): ${messageOf(error)}`);
    }
  };
  const timer = setInterval(() => {
    renewing ??= renew().finally(() => (renewing = undefined));
  }, heartbeatMs(staleAfterMs));
  timer.unref();

  return {
    key,
    lost: controller.signal,
    async confirm() {
      await renewing;
      await renew();
      if (controller.signal.aborted) throw new ChainLockError(String(controller.signal.reason));
    },
    async release() {
      clearInterval(timer);
      await renewing;
      released = true;
      // Only if it is still the version this run wrote (a lock taken over is the new holder's);
      // also after a lost renewal, when the vault is reachable again.
      await vault.release(key, current);
    },
  };
}
