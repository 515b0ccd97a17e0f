import { Transform } from 'node:stream';

const NL = 0x0a;

/**
 * A stream that passes a text dump line by line, letting a subclass rewrite or drop each line
 * after seeing only its first `headBytes` bytes. The head is given as latin1 (one character per
 * byte, so any rewrite maps back to the same bytes); the rest of a long line — a 20 MiB row —
 * streams through, or is dropped with its head, without being buffered.
 */
export abstract class LineHeadTransform extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  /** For the rest of a line whose head was decided: emit it, drop it, or not yet decided. */
  private rest: 'emit' | 'drop' | undefined;

  constructor(private readonly maxHead: number) {
    super();
  }

  /** The text to emit in place of a line's head (latin1), or `undefined` to drop the whole line. */
  protected abstract rewriteHead(head: string): string | undefined;

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    let i = 0;
    while (i < chunk.length) {
      const nl = chunk.indexOf(NL, i);
      const end = nl === -1 ? chunk.length : nl + 1;
      if (this.rest !== undefined) {
        if (this.rest === 'emit') this.push(chunk.subarray(i, end));
        i = end;
        if (nl !== -1) this.rest = undefined;
        continue;
      }
      const take = Math.min(end - i, this.maxHead - this.headBytes);
      this.head.push(chunk.subarray(i, i + take));
      this.headBytes += take;
      i += take;
      const lineEnded = chunk[i - 1] === NL;
      if (lineEnded || this.headBytes >= this.maxHead) {
        const emitted = this.emitHead();
        if (!lineEnded) this.rest = emitted ? 'emit' : 'drop';
      }
    }
    callback();
  }

  override _flush(callback: (error?: Error | null) => void): void {
    if (this.headBytes) this.emitHead();
    callback();
  }

  /** Decides the gathered head; returns whether the line is kept. */
  private emitHead(): boolean {
    const head = Buffer.concat(this.head, this.headBytes);
    this.head = [];
    this.headBytes = 0;
    const text = head.toString('latin1');
    const out = this.rewriteHead(text);
    if (out === undefined) return false;
    this.push(out === text ? head : Buffer.from(out, 'latin1'));
    return true;
  }
}
