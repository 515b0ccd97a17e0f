import { describe, expect, it } from 'vitest';
import { MysqldumpRowCounter } from '../../../core/sources/mysqldump-rows';

function count(text: string, chunkSize = Infinity): MysqldumpRowCounter {
  const counter = new MysqldumpRowCounter();
  const bytes = Buffer.from(text, 'utf8');
  const step = Math.min(chunkSize, bytes.length || 1);
  for (let i = 0; i < bytes.length; i += step) counter.push(bytes.subarray(i, i + step));
  return counter;
}

const MARIADB = [
  '-- MariaDB dump 10.19',
  'DROP TABLE IF EXISTS `t`;',
  'CREATE TABLE `t` (`id` int, `v` text) ENGINE=InnoDB;',
  'INSERT INTO `t` VALUES',
  "(1,'a(b),(c'),",
  "(2,'it\\'s \\\\'),",
  "(3,'São Paulo ção 😀;'),",
  '(4,NULL),',
  '(5,0x28290A);',
  'INSERT INTO `we``ird` VALUES (1),(2);',
  'DELIMITER ;;',
  '/*!50003 CREATE*/ /*!50003 TRIGGER `tr` AFTER INSERT ON `t` FOR EACH ROW BEGIN',
  'INSERT INTO `audit` VALUES (NEW.id);',
  'END */;;',
  'DELIMITER ;',
  "INSERT INTO `t2` VALUES (1,'x');",
  '-- Dump completed on 2026-11-23  6:19:25',
  '',
].join('\n');

describe('MysqldumpRowCounter', () => {
  it('counts the tuples of each table in MariaDB’s one-row-per-line format', () => {
    const c = count(MARIADB);
    expect(Object.fromEntries(c.rows)).toEqual({ t: 5, 'we`ird': 2, t2: 1 });
    expect(c.completed).toBe(true);
  });

  it('counts MySQL’s one-statement-per-line format', () => {
    const c = count(
      "INSERT INTO `t` VALUES (1,'a'),(2,'b'),(3,'c');\nINSERT INTO `t` VALUES (4,'d');\n-- Dump completed\n",
    );
    expect(c.rows.get('t')).toBe(4);
  });

  it('gives the same counts whatever the chunk boundaries', () => {
    const whole = Object.fromEntries(count(MARIADB).rows);
    for (const size of [1, 2, 3, 7, 13, 64])
      expect(Object.fromEntries(count(MARIADB, size).rows)).toEqual(whole);
  });

  it('ignores INSERTs inside routine and trigger bodies', () => {
    expect(count(MARIADB).rows.has('audit')).toBe(false);
  });

  it('notices a dump that lacks the completion line (truncated)', () => {
    const truncated = MARIADB.slice(0, MARIADB.indexOf('-- Dump completed'));
    expect(count(truncated).completed).toBe(false);
  });
});

it('measures the largest INSERT statement (what the restore target’s max_allowed_packet must allow)', () => {
  const big = `INSERT INTO \`b\` VALUES (1,0x${'ab'.repeat(5000)}),(2,'${'x'.repeat(100)}');`;
  const small = 'INSERT INTO `s` VALUES (1);';
  for (const size of [1, 7, 1000, Infinity])
    expect(count(`${small}\n${big}\n${small}\n`, size).largestStatementBytes).toBe(Buffer.byteLength(big));
});

describe('MysqldumpRowCounter on generated dumps (seeded: a failure prints its seed)', () => {
  function rng(seed: number) {
    let s = seed >>> 0 || 1;
    return () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return (s >>> 0) / 2 ** 32;
    };
  }
  it('counts every tuple whatever the strings hold and wherever the chunks split (300 dumps)', () => {
    const seed = Number(process.env.COFRE_FUZZ_SEED ?? 18);
    for (let k = 0; k < 300; k++) {
      const random = rng(seed * 1000 + k);
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
      // Strings with escaped quotes and backslashes, parentheses, semicolons, or long runs of none.
      const str = () =>
        `'${Array.from({ length: Math.floor(random() * 6) }, () =>
          pick(["\\'", '\\\\', '(', ')', ';', '),(', 'ação', 'x'.repeat(Math.floor(random() * 400)), "''"]),
        ).join('')}'`;
      const expected: Record<string, number> = {};
      const lines = ['-- MariaDB dump 10.19'];
      for (let t = 0; t < 1 + Math.floor(random() * 4); t++) {
        const table = pick(['t', 'a`b', 'ledger']);
        const tuples = Array.from(
          { length: 1 + Math.floor(random() * 30) },
          (_, i) => `(${i},${str()},NULL)`,
        );
        expected[table] = (expected[table] ?? 0) + tuples.length;
        const mysqlStyle = random() < 0.5;
        lines.push(
          `INSERT INTO \`${table.replace(/`/g, '``')}\` VALUES${mysqlStyle ? ' ' : '\n'}${tuples.join(mysqlStyle ? ',' : ',\n')};`,
        );
      }
      lines.push('-- Dump completed on 2026-11-29', '');
      const bytes = Buffer.from(lines.join('\n'));
      const counter = new MysqldumpRowCounter();
      for (let at = 0; at < bytes.length;) {
        const size = 1 + Math.floor(random() * (random() < 0.2 ? 4 : 5000));
        counter.push(bytes.subarray(at, at + size));
        at += size;
      }
      expect(Object.fromEntries(counter.rows), `seed ${seed}, case ${k}`).toEqual(expected);
      expect(counter.completed, `seed ${seed}, case ${k}`).toBe(true);
    }
  });
});
