import { createRequire } from 'node:module';
import path from 'node:path';
import { BackupClient } from '@aws-sdk/client-backup';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { RDSClient } from '@aws-sdk/client-rds';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Command } from 'commander';
import { UsageError, messageOf } from '../core/util/errors';
import { DynamoHistoryStore } from '../core/history/store';
import { formatRdsStatus, rdsStatus, type RdsStatusTarget } from '../core/rds/status';
import { sdkClientConfig } from '../core/vault';
import { ConfigError, parseConfig, type CofreConfig } from '../lib/config';
import type { CliIo } from './cofre';

interface StatusOpts {
  readonly historyTable: string;
  readonly config?: string;
  readonly json?: boolean;
}

/**
 * The deployment's configuration (`cofre.config.ts`, or `--config` / `COFRE_CONFIG`), validated as
 * at synth; a missing or invalid file is exit 2, naming it.
 */
export function loadConfigFile(file: string): CofreConfig {
  // Loaded at run time (not bundled), TypeScript through tsx as `cdk synth` does.
  const load = createRequire(path.join(process.cwd(), 'cofre-cli.js'));
  let loaded: { default?: unknown };
  try {
    load('tsx/cjs');
    loaded = load(file) as { default?: unknown };
  } catch (error) {
    throw new UsageError(`--config: cannot load ${file}: ${messageOf(error).split('\n')[0]}`);
  }
  try {
    return parseConfig(loaded.default ?? loaded);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(`--config: ${file}: ${error.message}`);
    throw error;
  }
}

/** The RDS instances and Aurora clusters AWS Backup protects, with the ARN it knows each by. */
export function rdsTargetsOf(config: CofreConfig): RdsStatusTarget[] {
  return config.databases.flatMap((db) => {
    const [kind, id] =
      db.rdsInstanceId !== undefined
        ? ['db', db.rdsInstanceId]
        : db.rdsClusterId !== undefined
          ? ['cluster', db.rdsClusterId]
          : [undefined, undefined];
    if (!kind || !id) return [];
    return [
      {
        database: db.id,
        ...(db.rdsInstanceId !== undefined ? { rdsInstanceId: db.rdsInstanceId } : {}),
        ...(db.rdsClusterId !== undefined ? { rdsClusterId: db.rdsClusterId } : {}),
        resourceArn: `arn:aws:rds:${config.regions.primary}:${config.account}:${kind}:${id}`,
      },
    ];
  });
}

/** `cofre rds status`: point-in-time lag, newest snapshot and its DR copy, last restore test, per database. */
export function addRdsCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const rds = program.command('rds').description('RDS/Aurora protected by AWS Backup');
  rds
    .command('status')
    .description(
      'for each RDS instance or Aurora cluster of the configuration: latest restorable time and lag, the newest snapshot and its DR-region copy, the last restore test and its restore time; exit 1 when anything is wrong or could not be read',
    )
    .requiredOption('--history-table <name>', 'the DynamoDB history table (stack output HistoryTableName)')
    .option('--config <file>', 'the configuration file (default: $COFRE_CONFIG or ./cofre.config.ts)')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: StatusOpts) => {
      const file = path.resolve(opts.config ?? io.env.COFRE_CONFIG ?? 'cofre.config.ts');
      const config = loadConfigFile(file);
      const targets = rdsTargetsOf(config);
      if (targets.length === 0)
        throw new UsageError(
          `--config: ${file} names no RDS instance or Aurora cluster (databases[].rdsInstanceId / rdsClusterId)`,
        );
      const base = sdkClientConfig(io.env, 'AWS_ENDPOINT_URL');
      const inRegion = (region: string) => ({ ...base, region });
      const { primary, dr } = config.regions;
      const status = await rdsStatus(targets, {
        rds: new RDSClient(inRegion(primary)),
        backup: new BackupClient(inRegion(primary)),
        drBackup: new BackupClient(inRegion(dr)),
        history: new DynamoHistoryStore(
          DynamoDBDocumentClient.from(new DynamoDBClient(inRegion(primary))),
          opts.historyTable,
        ),
        now: new Date(),
        limits: { rpoMinutes: config.snapshots.rpoMinutes },
      });
      if (opts.json) io.stdout(`${JSON.stringify(status)}\n`);
      else io.stdout(formatRdsStatus(status));
      const failed = status.databases.flatMap((d) => d.errors.map((e) => `${d.database}: ${e}`));
      if (failed.length)
        io.stderr(`cofre: could not read (status unknown, not assumed fine): ${failed.join('; ')}\n`);
      if (!status.ok) setExitCode(1);
    });
}
