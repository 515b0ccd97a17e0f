import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MysqldumpTableSelector, type SelectOptions } from '../../../core/sources/mysqldump-select';
import { readAll } from '../../../core/vault';

const big = `(2,'${'x'.repeat(3000)}')`;
const DUMP = [
  '/*!40101 SET NAMES utf8mb4 */;',
  '--',
  '-- Table structure for table `a`',
  '--',
  'DROP TABLE IF EXISTS `a`;',
  'CREATE TABLE `a` (`id` int);',
  '--',
  '-- Dumping data for table `a`',
  '--',
  'LOCK TABLES `a` WRITE;',
  '/*!40000 ALTER TABLE `a` DISABLE KEYS */;',
  'INSERT INTO `a` VALUES',
  '(1,NULL),',
  `${big};`,
  '/*!40000 ALTER TABLE `a` ENABLE KEYS */;',
  'UNLOCK TABLES;',
  'DELIMITER ;;',
  '/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`%`*/ /*!50003 TRIGGER `ta` BEFORE INSERT ON `a` FOR EACH ROW SET @x = 1 */;;',
  'DELIMITER ;',
  '--',
  '-- Table structure for table `b`',
  '--',
  'CREATE TABLE `b` (`id` int);',
  '--',
  '-- Dumping data for table `b`',
  '--',
  'INSERT INTO `b` VALUES (9);',
  '-- Dump completed on 2026-11-23',
  '',
].join('\n');

async function select(options: SelectOptions, size: number): Promise<{ text: string; found: boolean }> {
  const bytes = Buffer.from(DUMP);
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += Math.min(size, bytes.length))
    chunks.push(bytes.subarray(i, i + size));
  const selector = new MysqldumpTableSelector(options);
  const text = (await readAll(Readable.from(chunks).pipe(selector))).toString();
  return { text, found: selector.found };
}

describe('MysqldumpTableSelector', () => {
  it.each([1, 7, 100, Infinity])(
    'keeps the header and one table’s rows only, whatever the chunks (%s)',
    async (size) => {
      const { text, found } = await select({ table: 'a', withDefinition: false }, size);
      expect(found).toBe(true);
      expect(text).toBe(
        // The section's bare `--` comment lines pass through (harmless to the client).
        [
          '/*!40101 SET NAMES utf8mb4 */;',
          '--',
          'INSERT INTO `a` VALUES',
          '(1,NULL),',
          `${big};`,
          '--',
          '',
        ].join('\n'),
      );
    },
  );

  it.each([1, 7, Infinity])('adds the definition and triggers of an absent table (%s)', async (size) => {
    const { text } = await select({ table: 'a', withDefinition: true }, size);
    expect(text).toContain('CREATE TABLE `a`');
    expect(text).toContain('TRIGGER `ta`');
    expect(text).not.toContain('`b`');
    expect(text).not.toMatch(/LOCK TABLES|DISABLE KEYS/);
  });

  it.each([1, 7, Infinity])('renames the table in the INSERTs for --into-table (%s)', async (size) => {
    const { text } = await select({ table: 'a', withDefinition: true, intoTable: 'a_restored' }, size);
    expect(text).toBe(
      [
        '/*!40101 SET NAMES utf8mb4 */;',
        '--',
        'INSERT INTO `a_restored` VALUES',
        '(1,NULL),',
        `${big};`,
        '--',
        '',
      ].join('\n'),
    );
  });

  it('reports a table the dump does not hold', async () => {
    expect((await select({ table: 'zz', withDefinition: false }, Infinity)).found).toBe(false);
  });
});
