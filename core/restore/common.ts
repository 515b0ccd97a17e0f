/** What both engines' restores share: the checked plaintext stream, feeding a tool, spilling, table names and counts. */

import { EventEmitter } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline as pipeStages, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { verifiedPlaintext } from '../catalog/artifact-reader';
import { CancelledError, IntegrityError, OperationalError, UsageError, messageOf } from '../util/errors';
import type { Artifact, Manifest } from '../catalog/manifest';
import type { ToolProcess } from '../sources/process';
import type { TableCount } from '../sources/types';
import type { RestoreOptions } from './restore';

export interface Input extends RestoreOptions {
  readonly manifest: Manifest;
  readonly artifact: Artifact;
  readonly key: string;
}

export function compareCounts(
  expected: readonly TableCount[],
  actual: readonly TableCount[],
  where: string,
): void {
  const wrong = expected.filter((t, i) => actual[i]?.rows !== t.rows);
  if (wrong.length)
    throw new IntegrityError(
      `row counts in ${where} differ from the manifest: ${wrong
        .map(
          (t) => `${t.schema}.${t.name} has ${actual[expected.indexOf(t)]?.rows ?? '?'}, expected ${t.rows}`,
        )
        .join('; ')}`,
    );
}

/** Streams the verified plaintext into a tool's stdin; the tool and the stream must both succeed. */
export async function feedTool(
  input: Input,
  tool: ToolProcess,
  options: { transforms?: Transform[]; prefix?: string; suffix?: string } = {},
): Promise<void> {
  const plaintext = await verifiedPlaintext(input);
  const stages: (Readable | Transform)[] = [plaintext];
  stages.push(...(options.transforms ?? []));
  let first: unknown;
  const stopped = new EventEmitter();
  const isStopped = () => first !== undefined;
  const stop = (error: unknown) => {
    first ??= error;
    tool.kill();
    plaintext.destroy();
    stopped.emit('stop');
  };
  const onAbort = () => {
    stop(new CancelledError(String(input.signal?.reason ?? 'signal')));
  };
  if (input.signal?.aborted) onAbort();
  input.signal?.addEventListener('abort', onAbort, { once: true });
  tool.finished.catch(stop);
  try {
    const stdin = tool.stdin!;
    stdin.on('error', () => undefined);
    if (options.prefix) stdin.write(options.prefix);
    for await (const chunk of chainTransforms(stages)) {
      if (first !== undefined) break;
      // A tool that stopped reading (it failed, its backend was killed) has a closed stdin: waiting
      // for 'drain' or 'close' then would wait forever, so the stop is awaited too.
      if (!stdin.write(chunk as Buffer) && !stdin.destroyed)
        await new Promise<void>((resolve) => {
          const done = () => {
            stdin.off('drain', done);
            stdin.off('close', done);
            stopped.off('stop', done);
            resolve();
          };
          stdin.on('drain', done);
          stdin.on('close', done);
          stopped.on('stop', done);
          if (isStopped() || stdin.destroyed) done();
        });
      if (isStopped()) break;
    }
    if (first === undefined) {
      if (options.suffix) stdin.write(options.suffix);
      stdin.end();
    }
  } catch (error) {
    stop(error);
  } finally {
    input.signal?.removeEventListener('abort', onAbort);
  }
  try {
    await tool.finished;
  } catch (error) {
    first ??= error;
  }
  if (first !== undefined) throw first instanceof Error ? first : new OperationalError(messageOf(first));
}

/** The stages joined so that a failure anywhere fails the last one (plain .pipe() would hang). */
function chainTransforms(stages: (Readable | Transform)[]): Readable {
  if (stages.length === 1) return stages[0] as Readable;
  return pipeStages(stages as unknown as [Readable, Transform], () => undefined) as unknown as Readable;
}

/** Writes the verified plaintext to a private local file, runs the tool on it, removes the file. */
export async function spillAndRun(
  input: Input,
  run: (file: string) => ToolProcess | Promise<ToolProcess>,
): Promise<void> {
  const dir = await mkdtemp(path.join(input.spillDir ?? os.tmpdir(), 'cofre-restore-'));
  try {
    const file = path.join(dir, 'dump');
    await pipeline(await verifiedPlaintext(input), createWriteStream(file, { mode: 0o600 }), {
      signal: input.signal,
    });
    const tool = await run(file);
    const onAbort = () => {
      tool.kill();
    };
    input.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await tool.finished;
    } finally {
      input.signal?.removeEventListener('abort', onAbort);
    }
    if (input.signal?.aborted) throw new CancelledError(String(input.signal.reason));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function splitTable(table: string, defaultSchema: string): { schema: string; name: string } {
  const dot = table.indexOf('.');
  return dot === -1
    ? { schema: defaultSchema, name: table }
    : { schema: table.slice(0, dot), name: table.slice(dot + 1) };
}

export function findManifestTable(input: Input, defaultSchema: string): TableCount {
  const wanted = splitTable(input.table!, defaultSchema);
  const match = input.artifact.tables.find((t) => t.schema === wanted.schema && t.name === wanted.name);
  if (!match)
    throw new UsageError(
      `--table: backup ${input.manifest.backupId} has no table "${input.table!}" (it has ${input.artifact.tables
        .slice(0, 12)
        .map((t) => (input.manifest.engine === 'postgres' ? `${t.schema}.${t.name}` : t.name))
        .join(', ')}${input.artifact.tables.length > 12 ? ', …' : ''})`,
    );
  return match;
}
