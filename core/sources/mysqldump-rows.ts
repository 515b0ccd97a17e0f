/**
 * Counts the rows of each table in a mysqldump stream, as it passes: every `INSERT INTO \`t\`
 * VALUES (…),(…);` statement (starting a line) contributes its top-level tuples, up to the `;`
 * outside any string. MySQL's mysqldump writes a statement on one line, MariaDB's puts each tuple
 * on a line of its own; both escape quotes and backslashes inside strings, which this follows.
 *
 * This is how Cofre gets MySQL row counts that are exact under concurrent writes: they are counted
 * from the very bytes of the dump (taken in mysqldump's consistent-snapshot transaction), not from
 * a second query that would see another moment.
 */
const INSERT = Buffer.from('INSERT INTO `');
const TRAILER = Buffer.from('-- Dump completed');
/** Routines, triggers and events are dumped between `DELIMITER ;;` and `DELIMITER ;`: their bodies may hold INSERTs. */
const DELIMITER = Buffer.from('DELIMITER ');
const enum S {
  LineStart,
  SkipLine,
  Name,
  Tuples,
}
const NL = 0x0a;
const QUOTE = 0x27;
const BACKSLASH = 0x5c;
const BACKTICK = 0x60;
const OPEN = 0x28;
const CLOSE = 0x29;
const SEMICOLON = 0x3b;
/** The bytes that end a run inside a quoted string (1) and outside one (1). */
const IN_STRING = new Uint8Array(256);
IN_STRING[QUOTE] = IN_STRING[BACKSLASH] = 1;
const OUTSIDE = new Uint8Array(256);
OUTSIDE[QUOTE] = OUTSIDE[OPEN] = OUTSIDE[CLOSE] = OUTSIDE[SEMICOLON] = 1;

export class MysqldumpRowCounter {
  /** Rows per table name, in the order the tables first appear. */
  readonly rows = new Map<string, number>();
  /** Whether the dump ended with mysqldump's "-- Dump completed" line. */
  completed = false;
  /**
   * Bytes of the largest INSERT statement: the restore target's `max_allowed_packet` must be at
   * least this (with `--hex-blob`, a 10 MiB BLOB makes a 20 MiB statement).
   */
  largestStatementBytes = 0;
  private statementBytes = 0;
  private state = S.LineStart;
  private matched = 0; // bytes of the line matched against INSERT / TRAILER
  private insertOk = true;
  private trailerOk = true;
  private delimiterOk = true;
  private delimiter: number[] = [];
  /** Inside a `DELIMITER ;;` block (routine bodies are not data). */
  private inRoutines = false;
  private name: number[] = [];
  private pendingBacktick = false;
  private current = '';
  private inString = false;
  private escape = false;
  private depth = 0;

  push(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case S.LineStart: {
          const b = chunk[i]!;
          if (b === NL) {
            this.resetLine();
            i++;
            break;
          }
          this.insertOk &&= !this.inRoutines && this.matched < INSERT.length && INSERT[this.matched] === b;
          this.trailerOk &&= this.matched < TRAILER.length && TRAILER[this.matched] === b;
          if (this.delimiterOk && this.matched >= DELIMITER.length) {
            // Collect the new delimiter up to the end of the line (handled at the newline).
            if (b !== 0x0d) this.delimiter.push(b);
            this.matched++;
            i++;
            break;
          }
          this.delimiterOk &&= this.matched < DELIMITER.length && DELIMITER[this.matched] === b;
          this.matched++;
          i++;
          if (this.insertOk && this.matched === INSERT.length) {
            this.state = S.Name;
            this.name = [];
            this.statementBytes = INSERT.length;
          } else if (this.trailerOk && this.matched === TRAILER.length) {
            this.completed = true;
            this.state = S.SkipLine;
          } else if (!this.insertOk && !this.trailerOk && !this.delimiterOk) {
            this.state = S.SkipLine;
          }
          break;
        }
        case S.SkipLine: {
          const nl = chunk.indexOf(NL, i);
          if (nl === -1) {
            i = n;
          } else {
            i = nl + 1;
            this.resetLine();
          }
          break;
        }
        case S.Name: {
          const b = chunk[i]!;
          this.statementBytes++;
          if (this.pendingBacktick) {
            this.pendingBacktick = false;
            if (b === BACKTICK) {
              this.name.push(BACKTICK);
              i++;
              break;
            }
            this.current = Buffer.from(this.name).toString('utf8');
            if (!this.rows.has(this.current)) this.rows.set(this.current, 0);
            this.state = S.Tuples;
            this.inString = false;
            this.escape = false;
            this.depth = 0;
            this.statementBytes--;
            break; // re-read b in Tuples
          }
          if (b === BACKTICK) this.pendingBacktick = true;
          else this.name.push(b);
          i++;
          break;
        }
        case S.Tuples: {
          // The hot loop (every byte of every row): locals, not fields.
          let depth = this.depth;
          let inString = this.inString;
          let escape = this.escape;
          let rows = 0;
          let j = i;
          let ended = false;
          // Bytes that matter are found by a lookup-table loop the JIT compiles to a load and a
          // compare per byte: inside a string only a quote or a backslash, outside only a quote,
          // a parenthesis or a semicolon. (A native indexOf per quote and per backslash cost
          // ~150 ns a call, ~15 calls a row of JSON text: the row counter was the largest CPU cost
          // of a MariaDB backup, issue 18; a plain per-byte branch loop was twice as slow as this.)
          if (escape && j < n) {
            escape = false;
            j++;
          }
          while (j < n) {
            if (inString) {
              while (j < n && IN_STRING[chunk[j]!] === 0) j++;
              if (j >= n) break;
              if (chunk[j++] === BACKSLASH) {
                if (j >= n) {
                  escape = true;
                  break;
                }
                j++;
              } else inString = false;
              continue;
            }
            while (j < n && OUTSIDE[chunk[j]!] === 0) j++;
            if (j >= n) break;
            const b = chunk[j++]!;
            if (b === QUOTE) inString = true;
            else if (b === OPEN) {
              if (depth === 0) rows++;
              depth++;
            } else if (b === CLOSE) depth--;
            else if (depth === 0) {
              ended = true; // the statement's semicolon
              break;
            }
          }
          this.depth = depth;
          this.inString = inString;
          this.escape = escape;
          if (rows) this.rows.set(this.current, (this.rows.get(this.current) ?? 0) + rows);
          this.statementBytes += j - i;
          i = j;
          if (ended) {
            this.largestStatementBytes = Math.max(this.largestStatementBytes, this.statementBytes);
            this.state = S.SkipLine;
          }
          break;
        }
      }
    }
  }

  private resetLine(): void {
    if (this.state === S.LineStart && this.delimiterOk && this.matched > DELIMITER.length) {
      this.inRoutines = Buffer.from(this.delimiter).toString('latin1').trim() !== ';';
    }
    this.delimiter = [];
    this.delimiterOk = true;
    this.state = S.LineStart;
    this.matched = 0;
    this.insertOk = true;
    this.trailerOk = true;
  }
}
