/**
 * The plaintext of a per-tenant backup: one SQL script, one section per table in FK load order,
 * that the engine's own client can load (`psql -f` / `mysql <`) and that Cofre reads back section
 * by section.
 *
 *   -- cofre:tenant-export {"engine":"postgres","tenant":"42",...}
 *   SET client_encoding = 'UTF8'; ...                       (session settings, one per line)
 *   -- cofre:table {"key":"public.patients","schema":"public","name":"patients","columns":[...]}
 *   COPY "public"."patients" ("id", "name") FROM stdin;      PostgreSQL: COPY text format,
 *   1	Ana                                                   exactly one line per row
 *   \.
 *   -- cofre:table {"key":"patients",...}
 *   INSERT INTO `patients` (`id`,`name`) VALUES               MySQL: batched INSERTs,
 *   (1,'Ana'),                                               exactly one line per row
 *   (2,'Bia');
 *   -- cofre:end {"tables":2}
 *
 * One line per row holds because COPY's text format escapes newlines (`\n`), and the MySQL values
 * are escaped by mysql2's `escape` (sqlstring), which also writes newlines as `\n`. The trailer
 * makes a truncated plaintext detectable even before the manifest's hash is checked.
 */
import type { Engine } from '../sources/connection';
import { IntegrityError } from '../util/errors';
import type { TableCount } from '../sources/types';

export const TABLE_MARK = '-- cofre:table ';
export const HEADER_MARK = '-- cofre:tenant-export ';
export const END_MARK = '-- cofre:end ';
export const COPY_END = '\\.';

/** What the header of a section says about its table. */
export interface SectionTable {
  readonly key: string;
  readonly schema: string;
  readonly name: string;
  /** The columns whose values the section holds, in order (generated columns left out). */
  readonly columns: readonly string[];
}

const NL = 0x0a;

/**
 * Splits bytes into lines (without the `\n`), exactly: only `\n` ends a line, and the bytes are not
 * decoded. A line cut across chunks is carried to the next one.
 */
class LineSplitter {
  private carry: Buffer | undefined;

  push(chunk: Buffer, line: (bytes: Buffer) => void): void {
    let start = 0;
    for (let nl = chunk.indexOf(NL); nl !== -1; nl = chunk.indexOf(NL, start)) {
      const piece = chunk.subarray(start, nl);
      line(this.carry ? Buffer.concat([this.carry, piece]) : piece);
      this.carry = undefined;
      start = nl + 1;
    }
    if (start < chunk.length)
      this.carry = this.carry
        ? Buffer.concat([this.carry, chunk.subarray(start)])
        : Buffer.from(chunk.subarray(start));
  }

  /** The last line, when the bytes did not end with `\n`. */
  end(line: (bytes: Buffer) => void): void {
    if (this.carry?.length) line(this.carry);
    this.carry = undefined;
  }
}

/** The lines of a byte stream (see {@link LineSplitter}), each as a Buffer. */
export async function* lines(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const splitter = new LineSplitter();
  const ready: Buffer[] = [];
  const take = (line: Buffer) => ready.push(line);
  for await (const chunk of source) {
    splitter.push(chunk, take);
    yield* ready.splice(0);
  }
  splitter.end(take);
  yield* ready.splice(0);
}

function startsWith(line: Buffer, text: string): boolean {
  return line.length >= text.length && line.toString('latin1', 0, text.length) === text;
}

/** A section's table, from its `-- cofre:table` line. */
export function parseTableMark(line: Buffer): SectionTable {
  const text = line.toString('utf8', TABLE_MARK.length);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new IntegrityError(
      `tenant export: unreadable section header ${JSON.stringify(text.slice(0, 200))}`,
    );
  }
  const t = parsed as Partial<SectionTable>;
  if (
    typeof t.key !== 'string' ||
    typeof t.schema !== 'string' ||
    typeof t.name !== 'string' ||
    !Array.isArray(t.columns) ||
    !t.columns.every((c) => typeof c === 'string')
  )
    throw new IntegrityError(`tenant export: section header without key, schema, name and columns: ${text}`);
  return { key: t.key, schema: t.schema, name: t.name, columns: t.columns };
}

export function tableMark(table: SectionTable): string {
  const { key, schema, name, columns } = table;
  return `${TABLE_MARK}${JSON.stringify({ key, schema, name, columns })}\n`;
}

/** What a reader is told, line by line. */
export type SectionEvent =
  | { readonly type: 'table'; readonly table: SectionTable }
  /** PostgreSQL: the `COPY … FROM stdin;` line opening the section's rows. */
  | { readonly type: 'copy-start'; readonly table: SectionTable }
  /** One row: a COPY text line (PostgreSQL) or one `(…),` tuple line (MySQL). */
  | { readonly type: 'row'; readonly table: SectionTable; readonly line: Buffer }
  /** PostgreSQL: `\.`; MySQL: the tuple line ending with `;` was the statement's last. */
  | { readonly type: 'rows-end'; readonly table: SectionTable }
  /** MySQL: `INSERT INTO … VALUES` opening a statement. */
  | { readonly type: 'insert-start'; readonly table: SectionTable; readonly line: Buffer }
  /** Any other line before the first section (session settings). */
  | { readonly type: 'setting'; readonly line: Buffer }
  | { readonly type: 'end'; readonly tables: number };

/**
 * Reads a tenant export line by line, checking its structure as it goes (a section header before
 * any rows, rows only inside a COPY or INSERT, the trailer last with the right section count), and
 * calls `on` for each event; resolves with the row count of every section once the trailer was
 * seen. Throws {@link IntegrityError} for anything out of place, including a missing trailer.
 */
export class SectionReader {
  private table: SectionTable | undefined;
  private mode: 'none' | 'copy' | 'insert' = 'none';
  private ended = false;
  private readonly counts: TableCount[] = [];

  constructor(
    private readonly engine: Engine,
    private readonly on: (event: SectionEvent) => void | Promise<void> = () => undefined,
  ) {}

  /** Reads one line and awaits the listener's handling of what it was. */
  async line(line: Buffer): Promise<void> {
    for (const event of this.read(line)) await this.on(event);
  }

  /** Reads one line (no listener): for counting and checking only. */
  feed(line: Buffer): void {
    this.read(line);
  }

  private read(line: Buffer): SectionEvent[] {
    if (this.ended) throw new IntegrityError(`tenant export: data after the end marker (${preview(line)})`);
    if (this.mode === 'copy') {
      if (line.length === 2 && line[0] === 0x5c && line[1] === 0x2e) {
        this.mode = 'none';
        return [{ type: 'rows-end', table: this.table! }];
      }
      this.count();
      return [{ type: 'row', table: this.table!, line }];
    }
    if (this.mode === 'insert') {
      this.count();
      const last = line[line.length - 1];
      if (last === 0x3b /* ; */) {
        this.mode = 'none';
        return [
          { type: 'row', table: this.table!, line },
          { type: 'rows-end', table: this.table! },
        ];
      }
      if (last !== 0x2c /* , */)
        throw new IntegrityError(`tenant export: a row of ${this.table!.key} does not end with "," or ";"`);
      return [{ type: 'row', table: this.table!, line }];
    }
    if (startsWith(line, TABLE_MARK)) {
      this.table = parseTableMark(line);
      this.counts.push({ schema: this.table.schema, name: this.table.name, rows: 0 });
      return [{ type: 'table', table: this.table }];
    }
    if (startsWith(line, END_MARK)) {
      let tables: unknown;
      try {
        tables = (JSON.parse(line.toString('utf8', END_MARK.length)) as { tables?: unknown }).tables;
      } catch {
        tables = undefined;
      }
      if (tables !== this.counts.length)
        throw new IntegrityError(
          `tenant export: the end marker announces ${String(tables)} tables, ${this.counts.length} were read`,
        );
      this.ended = true;
      return [{ type: 'end', tables: this.counts.length }];
    }
    if (this.engine === 'postgres' && startsWith(line, 'COPY ')) {
      if (!this.table) throw new IntegrityError('tenant export: COPY before any section header');
      this.mode = 'copy';
      return [{ type: 'copy-start', table: this.table }];
    }
    if (this.engine === 'mysql' && startsWith(line, 'INSERT INTO ')) {
      if (!this.table) throw new IntegrityError('tenant export: INSERT before any section header');
      this.mode = 'insert';
      return [{ type: 'insert-start', table: this.table, line }];
    }
    if (this.table)
      throw new IntegrityError(
        `tenant export: unexpected line in section ${this.table.key}: ${preview(line)}`,
      );
    return [{ type: 'setting', line }];
  }

  /** The row counts, once the whole export was read; throws if it ended early. */
  finish(): readonly TableCount[] {
    if (this.mode !== 'none')
      throw new IntegrityError(`tenant export: it ends inside the rows of ${this.table?.key ?? '?'}`);
    if (!this.ended) throw new IntegrityError('tenant export: it ends without its end marker (truncated)');
    return this.counts;
  }

  private count(): void {
    const last = this.counts[this.counts.length - 1]!;
    this.counts[this.counts.length - 1] = { ...last, rows: last.rows + 1 };
  }
}

function preview(line: Buffer): string {
  return JSON.stringify(line.toString('utf8', 0, Math.min(line.length, 120)));
}

/**
 * Checks a tenant export's structure and counts its rows as the bytes pass: `push` every chunk in
 * order, then `finish` (throws {@link IntegrityError} for anything out of place).
 */
export class SectionCounter {
  private readonly reader: SectionReader;
  private readonly splitter = new LineSplitter();
  private readonly feed = (line: Buffer) => {
    this.reader.feed(line);
  };

  constructor(engine: Engine) {
    this.reader = new SectionReader(engine);
  }

  push(chunk: Buffer): void {
    this.splitter.push(chunk, this.feed);
  }

  finish(): readonly TableCount[] {
    this.splitter.end(this.feed);
    return this.reader.finish();
  }
}
