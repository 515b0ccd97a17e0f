/**
 * Running and timing the contenders of `npm run bench`: wall time, and the peak resident set of the
 * Cofre (node) processes of the run, sampled from /proc: `cofre backup` runs in a child process
 * (cli/launch.js), so the first process alone would show only the launcher.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';

export interface Run {
  seconds: number;
  /** Peak RSS of the largest node process of the run, MiB (when asked for). */
  peakRssMiB?: number;
  storedBytes?: number;
}

function descendants(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    try {
      const children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8').trim();
      if (children) out.push(...children.split(/\s+/).map(Number));
    } catch {
      // exited
    }
  }
  return out;
}

/** The largest peak RSS (VmHWM) of the node processes in `pid`'s tree, MiB. */
export function nodePeakMiB(pid: number): number {
  let peak = 0;
  for (const p of descendants(pid)) {
    try {
      if (!readlinkSync(`/proc/${p}/exe`).endsWith('/node')) continue;
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /VmHWM:\s+(\d+) kB/.exec(status);
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
    } catch {
      // exited
    }
  }
  return peak;
}

/** Runs a command, timing it; `rss` samples the peak RSS of its node processes every 50 ms. */
export async function timed(cmd: string, argv: string[], env: NodeJS.ProcessEnv, rss = false): Promise<Run> {
  const start = process.hrtime.bigint();
  const child = spawn(cmd, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let peak = 0;
  const sampler = rss
    ? setInterval(() => {
        peak = Math.max(peak, nodePeakMiB(child.pid!));
      }, 50)
    : undefined;
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (sampler) clearInterval(sampler);
  if (code !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed (${String(code)}): ${stderr}`);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, ...(rss ? { peakRssMiB: peak } : {}) };
}

/** A bash pipeline (pipefail), timed. */
export function sh(script: string, env: NodeJS.ProcessEnv): Promise<Run> {
  return timed('/bin/bash', ['-o', 'pipefail', '-c', script], env);
}

/** The median of the runs' seconds (and the largest peak RSS). */
export function median(runs: readonly Run[]): Run {
  const sorted = [...runs].sort((a, b) => a.seconds - b.seconds);
  const peaks = runs.map((r) => r.peakRssMiB).filter((p): p is number => p !== undefined);
  return {
    seconds: sorted[Math.floor(sorted.length / 2)]!.seconds,
    ...(peaks.length ? { peakRssMiB: Math.max(...peaks) } : {}),
  };
}
