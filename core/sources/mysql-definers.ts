import { Transform } from 'node:stream';

const HEAD = 2048;
const NL = 0x0a;
/** Only the clauses mysqldump writes (in version comments, or `CREATE DEFINER=` of routines), never data. */
const DEFINER = /(\/\*!5\d{4} DEFINER=|CREATE DEFINER=)`(?:[^`]|``)*`@`(?:[^`]|``)*`/g;

/**
 * Rewrites every `DEFINER=\`user\`@\`host\`` clause of a mysqldump stream (views, triggers,
 * routines, events) to `DEFINER=CURRENT_USER`, so the restore works on a server that lacks the
 * source's accounts — on RDS, creating an object for another definer needs SUPER or
 * SET_USER_ID, which the master user does not have. mysqldump writes these clauses at the start
 * of their lines; only each line's first 2 KiB is examined, so large rows stream through.
 */
export class DefinerRewriter extends Transform {
  /** How many clauses were rewritten. */
  rewritten = 0;
  private head: Buffer[] = [];
  private headBytes = 0;
  private passRest = false;

  override _transform(
    chunk: Buffer,
    _encoding: BufferEncoding,
    callback: (error?: Error | null) => void,
  ): void {
    let i = 0;
    while (i < chunk.length) {
      const nl = chunk.indexOf(NL, i);
      const end = nl === -1 ? chunk.length : nl + 1;
      if (this.passRest) {
        this.push(chunk.subarray(i, end));
        i = end;
        if (nl !== -1) this.passRest = false;
        continue;
      }
      const take = Math.min(end - i, HEAD - this.headBytes);
      this.head.push(chunk.subarray(i, i + take));
      this.headBytes += take;
      i += take;
      const lineEnded = chunk[i - 1] === NL;
      if (lineEnded || this.headBytes >= HEAD) {
        this.flushHead();
        this.passRest = !lineEnded;
      }
    }
    callback();
  }

  override _flush(callback: (error?: Error | null) => void): void {
    if (this.headBytes) this.flushHead();
    callback();
  }

  private flushHead(): void {
    const head = Buffer.concat(this.head, this.headBytes);
    this.head = [];
    this.headBytes = 0;
    const text = head.toString('latin1');
    // Row data (MySQL's INSERT lines, MariaDB's one-tuple lines) is never rewritten.
    if (!text.includes('DEFINER=`') || text.startsWith('INSERT INTO ') || text.startsWith('(')) {
      this.push(head);
      return;
    }
    const rewritten = text.replace(DEFINER, (_match, clause: string) => {
      this.rewritten++;
      return `${clause}CURRENT_USER`;
    });
    this.push(Buffer.from(rewritten, 'latin1'));
  }
}
