/**
 * Monthly report: runs on the 1st of each month (EventBridge Scheduler) and publishes the previous
 * month's report (core/alerts/report.ts) to the alerts topic, for the e-mail subscribers. Reads the
 * history table, the vault's size by storage class (AWS/S3 BucketSizeBytes) and the alarms that went
 * to ALARM during the month. `{"month": "YYYY-MM"}` as the event reports another month.
 *
 * Env: COFRE_HISTORY_TABLE, COFRE_TOPIC_ARN, COFRE_VAULT_BUCKET, COFRE_PRICES (JSON), COFRE_ALARM_PREFIX,
 * AWS_REGION.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import {
  CloudWatchClient,
  DescribeAlarmHistoryCommand,
  GetMetricDataCommand,
  type MetricDataQuery,
} from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { jsonEnv, requiredEnv } from '../../core/aws/env';
import { snsSubject } from '../../core/alerts/message';
import { snsPublisher } from '../../core/alerts/notify';
import {
  buildMonthlyReport,
  formatMonthlyReport,
  monthRange,
  previousMonth,
  runsFromHistory,
  S3_STORAGE_TYPES,
  type StoragePrices,
} from '../../core/alerts/report';
import { DynamoHistoryStore, type HistoryStore } from '../../core/history/store';
import { lambdaHandler, powertools } from '../../core/aws/powertools';

export interface MonthlyReportDeps {
  readonly store: Pick<HistoryStore, 'between'>;
  readonly cloudwatch: CloudWatchClient;
  readonly sns: SNSClient;
  readonly logger: Logger;
  readonly now?: () => Date;
}

/** Latest daily BucketSizeBytes of the vault bucket per S3 storage type. */
async function vaultBytes(
  cloudwatch: CloudWatchClient,
  bucket: string,
  now: Date,
): Promise<Record<string, number>> {
  const types = Object.keys(S3_STORAGE_TYPES);
  const queries: MetricDataQuery[] = types.map((type, i) => ({
    Id: `m${i}`,
    MetricStat: {
      Metric: {
        Namespace: 'AWS/S3',
        MetricName: 'BucketSizeBytes',
        Dimensions: [
          { Name: 'BucketName', Value: bucket },
          { Name: 'StorageType', Value: type },
        ],
      },
      Period: 86_400,
      Stat: 'Average',
    },
  }));
  const out = await cloudwatch.send(
    new GetMetricDataCommand({
      MetricDataQueries: queries,
      StartTime: new Date(now.getTime() - 3 * 86_400_000),
      EndTime: now,
      ScanBy: 'TimestampDescending',
    }),
  );
  const bytes: Record<string, number> = {};
  for (const result of out.MetricDataResults ?? []) {
    const type = types[Number(result.Id?.slice(1))];
    const value = result.Values?.[0];
    if (type && value !== undefined) bytes[type] = value;
  }
  return bytes;
}

/** Alarms of this deployment that went to ALARM within [from, to]. */
async function alarmsRaised(cloudwatch: CloudWatchClient, prefix: string, from: string, to: string) {
  const raised: { name: string; at: string; reason?: string }[] = [];
  let token: string | undefined;
  do {
    const out = await cloudwatch.send(
      new DescribeAlarmHistoryCommand({
        StartDate: new Date(from),
        EndDate: new Date(to),
        HistoryItemType: 'StateUpdate',
        MaxRecords: 100,
        NextToken: token,
      }),
    );
    for (const item of out.AlarmHistoryItems ?? [])
      if (item.AlarmName?.startsWith(prefix) && / to ALARM$/.test(item.HistorySummary ?? ''))
        raised.push({ name: item.AlarmName, at: (item.Timestamp ?? new Date(0)).toISOString() });
    token = out.NextToken;
  } while (token);
  return raised.sort((a, b) => a.at.localeCompare(b.at));
}

export function createMonthlyReportHandler(deps: MonthlyReportDeps) {
  const topicArn = requiredEnv('COFRE_TOPIC_ARN');
  const bucket = requiredEnv('COFRE_VAULT_BUCKET');
  const prices = jsonEnv('COFRE_PRICES') as StoragePrices;
  const alarmPrefix = requiredEnv('COFRE_ALARM_PREFIX');
  const region = requiredEnv('AWS_REGION');
  const publish = snsPublisher(deps.sns, topicArn);
  return async (event: { month?: string } | undefined) => {
    const now = (deps.now ?? (() => new Date()))();
    const month = event?.month ?? previousMonth(now);
    const { from, to } = monthRange(month, 'event.month');
    const [records, storageBytes, alarms] = await Promise.all([
      deps.store.between(from, to),
      vaultBytes(deps.cloudwatch, bucket, now),
      alarmsRaised(deps.cloudwatch, alarmPrefix, from, to),
    ]);
    const report = buildMonthlyReport({
      month,
      runs: runsFromHistory(records),
      source: `history table, vault s3://${bucket} (${region})`,
      storageBytes,
      storageBasis: `primary vault s3://${bucket} on ${now.toISOString().slice(0, 10)}, from AWS/S3 BucketSizeBytes; the DR replica is billed separately`,
      prices,
      alarms,
    });
    await publish({
      subject: snsSubject(`[Cofre] Monthly report ${month} (${region})`),
      body: formatMonthlyReport(report),
      attributes: { severity: 'info', job: 'monthly-report', audience: 'people' },
    });
    deps.logger.info('monthly report published', { month, totals: report.totals, storage: report.storage });
    return { month, runs: report.totals.runs };
  };
}

const pt = powertools('cofre-monthly-report');

export const handler = lambdaHandler(pt, 'monthly-report', () =>
  createMonthlyReportHandler({
    store: new DynamoHistoryStore(
      DynamoDBDocumentClient.from(pt.traced(new DynamoDBClient({}))),
      requiredEnv('COFRE_HISTORY_TABLE'),
    ),
    cloudwatch: pt.traced(new CloudWatchClient({})),
    sns: pt.traced(new SNSClient({})),
    logger: pt.logger,
  }),
);
