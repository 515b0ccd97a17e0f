/** The V8 collector's entry point, present when node runs with --expose-gc (cli/launch.js GC_FLAGS). */
type Gc = (options: { type: 'minor' }) => void;

/** Bytes of a stream between two young-generation collections. */
export const YOUNG_GC_EVERY = 8 * 1024 * 1024;

/**
 * A young-generation collection every `every` bytes of a stream, when the process exposes `gc`
 * (the streaming commands' child and the Fargate image: cli/launch.js GC_FLAGS); a no-op elsewhere.
 *
 * Why: every read from a dump tool's pipe is a new Buffer outside the JavaScript heap, dead as soon
 * as it is copied into zstd's pool, but freed only by the next scavenge. Scavenges come from the
 * JavaScript allocations of the stream, so with large reads (a tool writing 1 MiB at a time) they
 * come rarely, the dead Buffers pile up past V8's global limit, and V8 answers with a full
 * mark-compact of the heap every ~17 MB: 40 per 680 MB in about half the runs, 0.5–0.8 s. One
 * scavenge per 8 MiB (~0.3 ms each) frees them on time: 1 mark-compact per backup in every run.
 * (Not in `verify --deep`: its 17–18 mark-compacts per 622 MB stayed with one scavenge per 8 MiB,
 * since what they free there are 1 MiB chunks still queued between stages, already promoted.)
 */
export function youngGcEvery(every: number): (bytes: number) => void {
  const gc = (globalThis as { gc?: Gc }).gc;
  if (typeof gc !== 'function') return () => undefined;
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < every) return;
    since = 0;
    gc({ type: 'minor' });
  };
}
