/**
 * The fault matrix of issue 16 as the tests measured it: with COFRE_FAULT_MATRIX=<file.jsonl> set,
 * each fault case appends one row (engine, fault, operation, exit code, reason, time to end,
 * leftovers); `npx tsx scripts/fault-matrix.ts <file.jsonl>` renders them as a markdown table.
 * Without the variable nothing is written.
 */
import { appendFileSync } from 'node:fs';

export interface FaultCell {
  readonly engine: 'postgres' | 'mysql' | 'file' | 's3' | '-';
  readonly fault: string;
  readonly operation: string;
  /** The exit code, or the error class for in-process runs (`rejects`). */
  readonly outcome: string;
  /** The one-line reason the run gave (trimmed). */
  readonly reason: string;
  /** From the fault to the end of the run; negative when not a timed run (what a next run found). */
  readonly ms: number;
  /** What was left afterwards, as the test checked it ("none", or what the next run removed). */
  readonly leftovers: string;
}

export function recordFault(cell: FaultCell): void {
  const file = process.env.COFRE_FAULT_MATRIX;
  if (!file) return;
  // Names that change from run to run are shortened, so the table reads as the cases, not the paths.
  const reason = cell.reason
    .replace(/\s+/g, ' ')
    .replace(/cofre_t_[a-z_]+?_\d+_[0-9a-f]{8}(_cofre_restoring_[0-9a-f]+)?/g, (_m, tmp?: string) =>
      tmp ? '<db>_cofre_restoring_<hex>' : '<db>',
    )
    .replace(/file:\/\/\/tmp\/[\w.-]+(\/[\w.-]+)*/g, 'file://<dir>')
    .replace(/\/tmp\/cofre-[\w-]+/g, '<dir>')
    .replace(/s3:\/\/cofre-t-[\w-]+\/p\d+/g, 's3://<bucket>/<prefix>')
    .replace(/\d{8}T\d{9}Z-[0-9a-f]{8}/g, '<id>')
    .replace(/\b[0-9a-f]{64}\b/g, '<sha256>')
    .replace(/\b\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>')
    .trim()
    .slice(0, 260);
  // One short line per append: whole lines even when test files run in parallel workers.
  appendFileSync(file, `${JSON.stringify({ ...cell, reason })}\n`);
}

/** The last line starting with `cofre:`, `FAILED` or `LEFTOVER` in `stderr` (the run's one-line reason). */
export function reasonLine(stderr: string): string {
  return (
    stderr
      .split('\n')
      .filter((l) => l.startsWith('cofre:') || l.startsWith('FAILED') || l.startsWith('LEFTOVER'))
      .pop() ?? ''
  );
}
