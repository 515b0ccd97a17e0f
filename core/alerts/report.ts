/**
 * The monthly report: what the pipeline did in one calendar month (UTC), for auditors and managers.
 * Executions and success rate per job and database, average size and duration, compression savings,
 * restore tests with their measured RTO, alarms raised, and an estimate of the vault's storage cost
 * by storage class. Pure: the Lambda and `cofre report` gather the inputs.
 */
import { UsageError } from '../util/errors';
import type { HistoryKind, HistoryRecord, HistoryStatus } from '../history/records';
import type { CatalogEntry } from '../catalog/catalog';
import { formatBytes, formatDuration } from './message';

/**
 * What a run did: a history kind, or `globals` (PostgreSQL roles and tablespaces, a vault manifest
 * kind that the history records as a full backup of the server).
 */
export type ReportKind = HistoryKind | 'globals';

/** One run, from the history table or from a vault's manifests. */
export interface ReportRun {
  readonly id: string;
  readonly database: string;
  readonly kind: ReportKind;
  readonly status: HistoryStatus;
  readonly startedAt: string;
  readonly finishedAt?: string;
  readonly tenant?: string;
  /** Bytes stored (encrypted, compressed). */
  readonly storedBytes?: number;
  /** Bytes of the dump before compression (vault manifests only). */
  readonly rawBytes?: number;
  readonly message?: string;
}

/** Storage classes priced by the report (`prices.storageGbMonth` in the config). */
export type PricedClass = 'STANDARD' | 'STANDARD_IA' | 'GLACIER_IR' | 'GLACIER' | 'DEEP_ARCHIVE';

export interface StoragePrices {
  readonly currency: string;
  readonly storageGbMonth: Readonly<Record<PricedClass, number>>;
}

/**
 * Defaults of the config's `prices` (public S3 list prices of sa-east-1, first 50 TB tier), for
 * `cofre report` run outside a deployment. A test checks they equal the schema's defaults.
 */
export const DEFAULT_PRICES: StoragePrices = {
  currency: 'USD',
  storageGbMonth: {
    STANDARD: 0.0405,
    STANDARD_IA: 0.0221,
    GLACIER_IR: 0.008,
    GLACIER: 0.0072,
    DEEP_ARCHIVE: 0.0032,
  },
};

/**
 * The `StorageType` dimension values of the `AWS/S3` `BucketSizeBytes` metric, and the class each is
 * billed at (archive objects also bill a little metadata at the Standard rate).
 */
export const S3_STORAGE_TYPES: Readonly<Record<string, PricedClass>> = {
  StandardStorage: 'STANDARD',
  StandardIAStorage: 'STANDARD_IA',
  GlacierInstantRetrievalStorage: 'GLACIER_IR',
  GlacierStorage: 'GLACIER',
  GlacierObjectOverhead: 'GLACIER',
  GlacierS3ObjectOverhead: 'STANDARD',
  DeepArchiveStorage: 'DEEP_ARCHIVE',
  DeepArchiveObjectOverhead: 'DEEP_ARCHIVE',
  DeepArchiveS3ObjectOverhead: 'STANDARD',
};

/** A run group: one database and kind. */
export interface ReportGroup {
  readonly database: string;
  readonly kind: ReportKind;
  readonly runs: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly skipped: number;
  /** Runs still `running` / `verifying` when the report was made (a crashed run stays so). */
  readonly unfinished: number;
  /** succeeded ÷ runs, in percent (one decimal). */
  readonly successRatePercent: number;
  readonly averageStoredBytes?: number;
  readonly averageDurationSeconds?: number;
  /** raw − stored over the runs whose raw size is known. */
  readonly compressionSavedBytes?: number;
  /** Σ raw ÷ Σ stored. */
  readonly compressionRatio?: number;
}

export interface ReportRestoreTest {
  readonly database: string;
  readonly id: string;
  readonly status: HistoryStatus;
  readonly startedAt: string;
  /** Measured RTO: how long the restore took. */
  readonly durationSeconds?: number;
  readonly message?: string;
}

export interface ReportStorageLine {
  readonly storageClass: PricedClass;
  readonly bytes: number;
  readonly pricePerGbMonth: number;
  readonly monthlyCost: number;
}

export interface MonthlyReport {
  /** `YYYY-MM`. */
  readonly month: string;
  readonly from: string;
  readonly to: string;
  /** Where the runs came from (`history table X`, `vault file:///…`). */
  readonly source: string;
  readonly groups: readonly ReportGroup[];
  readonly totals: { readonly runs: number; readonly succeeded: number; readonly successRatePercent: number };
  readonly restoreTests: readonly ReportRestoreTest[];
  readonly alarms?: readonly { readonly name: string; readonly at: string; readonly reason?: string }[];
  readonly storage?: {
    readonly currency: string;
    readonly lines: readonly ReportStorageLine[];
    readonly totalBytes: number;
    readonly monthlyCost: number;
    /** How the bytes were measured. */
    readonly basis: string;
  };
  readonly notes: readonly string[];
}

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** The first and last instants (UTC) of `YYYY-MM`; a usage error naming `--month` otherwise. */
export function monthRange(month: string, option = '--month'): { from: string; to: string } {
  const m = MONTH.exec(month);
  if (!m) throw new UsageError(`${option}: expected a month as YYYY-MM (e.g. 2026-10), got "${month}"`);
  const year = Number(m[1]);
  const index = Number(m[2]) - 1;
  const from = new Date(Date.UTC(year, index, 1));
  const to = new Date(Date.UTC(year, index + 1, 1) - 1);
  return { from: from.toISOString(), to: to.toISOString() };
}

/** The month before the one `now` is in (UTC), as `YYYY-MM`. */
export function previousMonth(now: Date): string {
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1));
  return `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
}

/** History records as report runs (records without a database are configuration snapshots: `-`). */
export function runsFromHistory(records: readonly HistoryRecord[]): ReportRun[] {
  return records.map((r) => ({
    id: r.id,
    database: r.database ?? '-',
    kind: r.kind,
    status: r.status,
    startedAt: r.startedAt,
    ...(r.finishedAt ? { finishedAt: r.finishedAt } : {}),
    ...(r.tenant ? { tenant: r.tenant } : {}),
    ...(r.bytes !== undefined ? { storedBytes: r.bytes } : {}),
    ...(r.message ? { message: r.message } : {}),
  }));
}

/**
 * A vault's manifests as report runs: every manifest is a succeeded backup (a failed run leaves no
 * manifest) of the manifest's kind (full, globals, tenant). The database is the manifest's source id
 * (`databases[].id`).
 */
export function runsFromCatalog(entries: readonly CatalogEntry[]): ReportRun[] {
  return entries.flatMap((e) => {
    const m = e.manifest;
    if (!m) return [];
    return [
      {
        id: m.backupId,
        database: m.sourceId,
        kind: m.kind,
        ...(m.tenant ? { tenant: m.tenant.id } : {}),
        status: 'succeeded' as const,
        startedAt: m.startedAt,
        finishedAt: m.finishedAt,
        storedBytes: m.artifacts.reduce((n, a) => n + a.bytes.stored, 0),
        rawBytes: m.artifacts.reduce((n, a) => n + a.bytes.raw, 0),
      },
    ];
  });
}

const durationOf = (r: ReportRun): number | undefined =>
  r.finishedAt ? Math.max(0, (Date.parse(r.finishedAt) - Date.parse(r.startedAt)) / 1000) : undefined;

const average = (values: number[]): number | undefined =>
  values.length ? values.reduce((a, b) => a + b, 0) / values.length : undefined;

const rate = (ok: number, all: number) => (all === 0 ? 0 : Math.round((ok / all) * 1000) / 10);

const GIB = 1024 ** 3;

export interface ReportInput {
  readonly month: string;
  /** Runs of any time: the report keeps those started within the month. */
  readonly runs: readonly ReportRun[];
  readonly source: string;
  /** Bytes in the vault by S3 storage type (`BucketSizeBytes` / `StorageType`) or by priced class. */
  readonly storageBytes?: Readonly<Record<string, number>>;
  readonly storageBasis?: string;
  readonly prices?: StoragePrices;
  readonly alarms?: readonly { readonly name: string; readonly at: string; readonly reason?: string }[];
  readonly notes?: readonly string[];
}

/** Builds the report (pure). */
export function buildMonthlyReport(input: ReportInput): MonthlyReport {
  const { from, to } = monthRange(input.month);
  const runs = input.runs.filter((r) => r.startedAt >= from && r.startedAt <= to);
  const backups = runs.filter((r) => r.kind !== 'restore-test' && r.kind !== 'restore');
  const keyOf = (r: ReportRun) => `${r.database}\u0000${r.kind}`;
  const byKey = new Map<string, ReportRun[]>();
  for (const r of backups) byKey.set(keyOf(r), [...(byKey.get(keyOf(r)) ?? []), r]);
  const groups: ReportGroup[] = [...byKey.values()]
    .map((group): ReportGroup => {
      const ok = group.filter((r) => r.status === 'succeeded');
      const count = (s: HistoryStatus) => group.filter((r) => r.status === s).length;
      const withRaw = ok.filter((r) => r.rawBytes !== undefined && r.storedBytes !== undefined);
      const raw = withRaw.reduce((n, r) => n + r.rawBytes!, 0);
      const stored = withRaw.reduce((n, r) => n + r.storedBytes!, 0);
      const avgSize = average(ok.flatMap((r) => (r.storedBytes !== undefined ? [r.storedBytes] : [])));
      const avgDuration = average(ok.flatMap((r) => durationOf(r) ?? []));
      return {
        database: group[0]!.database,
        kind: group[0]!.kind,
        runs: group.length,
        succeeded: ok.length,
        failed: count('failed'),
        skipped: count('skipped'),
        unfinished: count('running') + count('verifying'),
        successRatePercent: rate(ok.length, group.length),
        ...(avgSize !== undefined ? { averageStoredBytes: Math.round(avgSize) } : {}),
        ...(avgDuration !== undefined ? { averageDurationSeconds: Math.round(avgDuration * 10) / 10 } : {}),
        ...(withRaw.length && stored > 0
          ? { compressionSavedBytes: raw - stored, compressionRatio: Math.round((raw / stored) * 100) / 100 }
          : {}),
      };
    })
    .sort((a, b) => a.database.localeCompare(b.database) || a.kind.localeCompare(b.kind));

  const restoreTests = runs
    .filter((r) => r.kind === 'restore-test')
    .map((r): ReportRestoreTest => {
      const d = durationOf(r);
      return {
        database: r.database,
        id: r.id,
        status: r.status,
        startedAt: r.startedAt,
        ...(d !== undefined ? { durationSeconds: Math.round(d) } : {}),
        ...(r.message ? { message: r.message } : {}),
      };
    });

  let storage: MonthlyReport['storage'];
  if (input.storageBytes && input.prices) {
    const byClass = new Map<PricedClass, number>();
    for (const [type, bytes] of Object.entries(input.storageBytes)) {
      const cls =
        S3_STORAGE_TYPES[type] ??
        (Object.keys(input.prices.storageGbMonth).includes(type) ? (type as PricedClass) : undefined);
      if (!cls) continue;
      byClass.set(cls, (byClass.get(cls) ?? 0) + bytes);
    }
    const lines = [...byClass.entries()]
      .filter(([, bytes]) => bytes > 0)
      .map(([storageClass, bytes]) => {
        const price = input.prices!.storageGbMonth[storageClass];
        return {
          storageClass,
          bytes,
          pricePerGbMonth: price,
          monthlyCost: Math.round((bytes / GIB) * price * 100) / 100,
        };
      });
    storage = {
      currency: input.prices.currency,
      lines,
      totalBytes: lines.reduce((n, l) => n + l.bytes, 0),
      monthlyCost: Math.round(lines.reduce((n, l) => n + (l.bytes / GIB) * l.pricePerGbMonth, 0) * 100) / 100,
      basis: input.storageBasis ?? 'vault size by storage class',
    };
  }

  const succeeded = groups.reduce((n, g) => n + g.succeeded, 0);
  const total = groups.reduce((n, g) => n + g.runs, 0);
  return {
    month: input.month,
    from,
    to,
    source: input.source,
    groups,
    totals: { runs: total, succeeded, successRatePercent: rate(succeeded, total) },
    restoreTests,
    ...(input.alarms ? { alarms: input.alarms } : {}),
    ...(storage ? { storage } : {}),
    notes: input.notes ?? [],
  };
}

const KIND_WORDS: Partial<Record<ReportKind, string>> = {
  full: 'full backups',
  globals: 'server globals',
  tenant: 'tenant exports',
  files: 'file copies',
  config: 'configuration snapshots',
  snapshot: 'RDS snapshots',
};

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** The report as plain text (the e-mail body, and `cofre report` without `--json`). */
export function formatMonthlyReport(report: MonthlyReport): string {
  const lines: string[] = [
    `Cofre monthly report for ${report.month} (${report.from.slice(0, 10)} to ${report.to.slice(0, 10)}, UTC)`,
    `Source: ${report.source}`,
    '',
    `Runs: ${report.totals.runs}, succeeded: ${report.totals.succeeded} (${report.totals.successRatePercent} %)`,
    '',
  ];
  if (report.groups.length === 0) lines.push('No backups ran this month.');
  else
    lines.push(
      ...table([
        [
          'database / job',
          'runs',
          'ok',
          'failed',
          'skipped',
          'success',
          'avg size',
          'avg time',
          'compression',
        ],
        ...report.groups.map((g) => [
          `${g.database} ${KIND_WORDS[g.kind] ?? g.kind}`,
          String(g.runs),
          String(g.succeeded),
          String(g.failed),
          String(g.skipped),
          `${g.successRatePercent} %`,
          g.averageStoredBytes !== undefined ? formatBytes(g.averageStoredBytes) : '-',
          g.averageDurationSeconds !== undefined ? formatDuration(g.averageDurationSeconds * 1000) : '-',
          g.compressionRatio !== undefined
            ? `${g.compressionRatio.toFixed(2)}:1, ${formatBytes(g.compressionSavedBytes ?? 0)} saved`
            : '-',
        ]),
      ]),
    );
  lines.push('', 'Restore tests (measured RTO):');
  if (report.restoreTests.length === 0) lines.push('  none this month');
  for (const t of report.restoreTests)
    lines.push(
      `  ${t.startedAt.slice(0, 10)} ${t.database}: ${t.status.toUpperCase()}${t.durationSeconds !== undefined ? `, RTO ${formatDuration(t.durationSeconds * 1000)}` : ''}${t.message ? ` (${t.message})` : ''}`,
    );
  if (report.alarms) {
    lines.push('', `Alarms raised: ${report.alarms.length}`);
    for (const a of report.alarms) lines.push(`  ${a.at.slice(0, 16).replace('T', ' ')} ${a.name}`);
  }
  if (report.storage) {
    const s = report.storage;
    lines.push('', `Estimated storage cost (${s.basis}):`);
    if (s.lines.length === 0) lines.push('  no stored bytes reported');
    else
      lines.push(
        ...table([
          ['class', 'size', `${s.currency}/GB-month`, `${s.currency}/month`],
          ...s.lines.map((l) => [
            l.storageClass,
            formatBytes(l.bytes),
            String(l.pricePerGbMonth),
            l.monthlyCost.toFixed(2),
          ]),
          ['total', formatBytes(s.totalBytes), '', s.monthlyCost.toFixed(2)],
        ]).map((l) => `  ${l}`),
      );
  }
  for (const note of report.notes) lines.push('', `Note: ${note}`);
  return `${lines.join('\n')}\n`;
}
