import { LineHeadTransform } from './line-heads';

/**
 * Selects one table's section of a mysqldump stream, for a one-table restore. mysqldump marks its
 * sections with comment lines (`-- Table structure for table \`t\``, `-- Dumping data for table
 * \`t\``, `-- Dumping routines …`); this keeps the header (session settings), then the table's data
 * — and, when `withDefinition`, its `DROP/CREATE TABLE` and triggers — and drops everything else.
 * `LOCK TABLES` / `ALTER TABLE … DISABLE KEYS` lines are dropped (they would commit the caller's
 * transaction) and `intoTable` renames the table in the INSERTs. Only the first bytes of each line
 * are examined ({@link LineHeadTransform}), so 20 MiB rows stream through without being buffered.
 */
export interface SelectOptions {
  readonly table: string;
  readonly withDefinition: boolean;
  readonly intoTable?: string | undefined;
}

const HEAD = 512;

type Part = 'header' | 'structure' | 'data' | 'other';

/** A quoted identifier as its UTF-8 bytes read as latin1 (the form lines are examined in). */
function quoteName(name: string): string {
  return Buffer.from(`\`${name.replace(/`/g, '``')}\``, 'utf8').toString('latin1');
}

export class MysqldumpTableSelector extends LineHeadTransform {
  /** Whether the table's data section was seen. */
  found = false;
  private part: Part = 'header';
  private inTarget = false;
  private inDelimiterBlock = false;
  private readonly quoted: string;
  private readonly insertPrefix: string;

  constructor(private readonly options: SelectOptions) {
    super(HEAD);
    this.quoted = quoteName(options.table);
    this.insertPrefix = `INSERT INTO ${this.quoted} VALUES`;
  }

  /** What to emit for a line whose head is `head` (latin1, so bytes map 1:1), or undefined to drop it. */
  protected rewriteHead(head: string): string | undefined {
    const marker =
      /^-- (Table structure for table|Temporary table structure for view|Dumping data for table|Dumping events for database|Dumping routines for database|Final view structure for view|Dump completed)(.*)/.exec(
        head,
      );
    if (marker) {
      const what = marker[1]!;
      const name = (marker[2] ?? '').trim();
      if (what === 'Table structure for table') {
        this.part = 'structure';
        this.inTarget = name === this.quoted;
      } else if (what === 'Dumping data for table') {
        this.part = 'data';
        this.inTarget = name === this.quoted;
        if (this.inTarget) this.found = true;
      } else {
        this.part = 'other';
        this.inTarget = false;
      }
      return undefined;
    }
    if (this.part === 'header') return head.startsWith('--') ? undefined : head;
    if (!this.inTarget) return undefined;
    if (this.part === 'structure')
      return this.options.withDefinition && !this.options.intoTable ? head : undefined;
    // The data part: rows, then the table's triggers.
    if (/^DELIMITER ;;/.test(head)) this.inDelimiterBlock = true;
    if (this.inDelimiterBlock) {
      if (/^DELIMITER ;\s*$/.test(head)) this.inDelimiterBlock = false;
      return this.options.withDefinition && !this.options.intoTable ? head : undefined;
    }
    if (/^(LOCK TABLES|UNLOCK TABLES|\/\*!40000 ALTER TABLE)/.test(head)) return undefined;
    if (this.options.intoTable && head.startsWith(this.insertPrefix))
      return `INSERT INTO ${quoteName(this.options.intoTable)} VALUES${head.slice(this.insertPrefix.length)}`;
    return head;
  }
}
