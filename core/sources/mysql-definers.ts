import { LineHeadTransform } from './line-heads';

const HEAD = 2048;
/** Only the clauses mysqldump writes (in version comments, or `CREATE DEFINER=` of routines), never data. */
const DEFINER = /(\/\*!5\d{4} DEFINER=|CREATE DEFINER=)`(?:[^`]|``)*`@`(?:[^`]|``)*`/g;

/**
 * Rewrites every `DEFINER=\`user\`@\`host\`` clause of a mysqldump stream (views, triggers,
 * routines, events) to `DEFINER=CURRENT_USER`, so the restore works on a server that lacks the
 * source's accounts — on RDS, creating an object for another definer needs SUPER or
 * SET_USER_ID, which the master user does not have. mysqldump writes these clauses at the start
 * of their lines; only each line's first 2 KiB is examined, so large rows stream through.
 */
export class DefinerRewriter extends LineHeadTransform {
  /** How many clauses were rewritten. */
  rewritten = 0;

  constructor() {
    super(HEAD);
  }

  protected rewriteHead(text: string): string {
    // Row data (MySQL's INSERT lines, MariaDB's one-tuple lines) is never rewritten.
    if (!text.includes('DEFINER=`') || text.startsWith('INSERT INTO ') || text.startsWith('(')) return text;
    return text.replace(DEFINER, (_match, clause: string) => {
      this.rewritten++;
      return `${clause}CURRENT_USER`;
    });
  }
}
