import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Command } from 'commander';
import {
  buildMonthlyReport,
  DEFAULT_PRICES,
  formatMonthlyReport,
  monthRange,
  runsFromCatalog,
  runsFromHistory,
  type ReportInput,
} from '../core/alerts/report';
import { readCatalog } from '../core/catalog/catalog';
import { UsageError } from '../core/util/errors';
import { DynamoHistoryStore } from '../core/history/store';
import { openVault } from '../core/vault';
import type { CliIo } from './io';

interface ReportOpts {
  readonly month: string;
  readonly vault?: string;
  readonly historyTable?: string;
  readonly json?: boolean;
}

/** The report's inputs from a vault: its manifests (successful full backups) and their stored bytes. */
async function fromVault(url: string, io: CliIo, month: string): Promise<ReportInput> {
  const vault = openVault(url, { env: io.env });
  const catalog = await readCatalog(vault);
  const runs = runsFromCatalog(catalog);
  const stored = runs.reduce((n, r) => n + (r.storedBytes ?? 0), 0);
  return {
    month,
    runs,
    source: `vault ${vault.url}`,
    storageBytes: { STANDARD: stored },
    storageBasis: `${catalog.length} backups now in the vault, priced as S3 Standard`,
    prices: DEFAULT_PRICES,
    notes: [
      'A vault holds only backups that succeeded (a failed run leaves no manifest): failures, skips and restore tests are in the history table (--history-table).',
    ],
  };
}

/** The report's inputs from the DynamoDB history table (region from AWS_REGION / the profile). */
async function fromHistoryTable(tableName: string, month: string): Promise<ReportInput> {
  const { from, to } = monthRange(month);
  const store = new DynamoHistoryStore(DynamoDBDocumentClient.from(new DynamoDBClient({})), tableName);
  const records = await store.between(from, to);
  return {
    month,
    runs: runsFromHistory(records),
    source: `history table ${tableName}`,
    notes: ['Storage cost by class comes with the monthly report e-mail (it reads the vault metrics).'],
  };
}

/** `cofre report --month YYYY-MM`: the monthly report from a vault or from the history table. */
export function addReportCommand(program: Command, io: CliIo): void {
  program
    .command('report')
    .description(
      'the monthly report: runs and success rate per database, sizes, durations, compression, restore tests, estimated storage cost',
    )
    .requiredOption('--month <YYYY-MM>', 'the calendar month (UTC), e.g. 2026-10')
    .option(
      '--vault <vault>',
      'read the manifests of this vault (s3://bucket/prefix or file:///absolute/dir)',
    )
    .option('--history-table <name>', 'read the DynamoDB history table (AWS credentials and region needed)')
    .option('--json', 'print the report as JSON on stdout')
    .action(async (opts: ReportOpts) => {
      monthRange(opts.month); // a bad month is exit 2 before anything is read
      if (!opts.vault === !opts.historyTable)
        throw new UsageError('--vault VAULT or --history-table NAME: expected exactly one');
      const input = opts.vault
        ? await fromVault(opts.vault, io, opts.month)
        : await fromHistoryTable(opts.historyTable!, opts.month);
      const report = buildMonthlyReport(input);
      if (opts.json) io.stdout(`${JSON.stringify(report)}\n`);
      else io.stdout(formatMonthlyReport(report));
    });
}
