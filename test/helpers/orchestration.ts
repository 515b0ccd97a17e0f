/**
 * What the local state machine tests share: the execution input of a job for a test database (as a
 * schedule would send it), and a local pipeline (file vault, file history, collected metrics) whose
 * tasks connect to that database.
 */
import path from 'node:path';
import { parseDatabaseUrl, type Connection } from '../../core/sources/connection';
import type { Keys } from '../../core/vault/crypto';
import { FileHistoryStore } from '../../core/history/store';
import type { MetricDatum } from '../../core/policy/metrics';
import type { LocalPipelineOptions } from '../../core/local/state-machine-runner';
import type { TenantModel } from '../../core/tenants/plan';
import { openVault } from '../../core/vault';
import { tempDir } from './cli';

export interface JobInputOptions {
  readonly id?: string;
  readonly databases?: string[];
  readonly tenants?: TenantModel;
  readonly tenantBatchSize?: number;
}

/** The execution input of a job for the PostgreSQL database at `url` (database id `demo`). */
export function localJobInput(url: string, o: JobInputOptions = {}) {
  const u = new URL(url);
  return {
    database: {
      id: o.id ?? 'demo',
      engine: 'postgres',
      host: u.hostname,
      port: Number(u.port || 5432),
      databases: o.databases ?? [decodeURIComponent(u.pathname.slice(1))],
      excludeDatabases: [],
      credentialsSecretArn: 'arn:aws:secretsmanager:us-east-1:000000000000:secret:cofre-local',
      network: { vpcId: 'vpc-00000000', subnetIds: ['subnet-00000000'], securityGroupId: 'sg-00000000' },
      dataClass: 'general',
      ...(o.tenants ? { tenants: o.tenants } : {}),
    },
    taskDefinitionArn: 'arn:aws:ecs:us-east-1:000000000000:task-definition/cofre-local:1',
    requestedBy: 'test',
    ...(o.tenantBatchSize ? { tenantBatchSize: o.tenantBatchSize } : {}),
  };
}

/** A local pipeline in a new temporary folder (pushed on `dirs` for cleanup) against the database at `url`. */
export function localPipeline(
  url: string,
  keys: { keys: Keys; decryptKeys: Keys },
  dirs: string[],
  extra: Partial<LocalPipelineOptions> = {},
) {
  const dir = tempDir('orch');
  dirs.push(dir);
  const vault = openVault(`file://${path.join(dir, 'vault')}`);
  const history = new FileHistoryStore(path.join(dir, 'history'));
  const metrics: { database: string; data: readonly MetricDatum[] }[] = [];
  const options: LocalPipelineOptions = {
    history,
    vault,
    keys: keys.keys,
    decryptKeys: keys.decryptKeys,
    connect: (job): Promise<Connection> => {
      const c = parseDatabaseUrl('postgres', url);
      return Promise.resolve({
        ...c,
        host: job.database.host ?? c.host,
        database: Array.isArray(job.database.databases) ? job.database.databases[0] : c.database,
      });
    },
    metrics: {
      emit: (database, data) => {
        metrics.push({ database, data });
      },
    },
    retryIntervalMs: 0,
    ...extra,
  };
  return { dir, vault, history, metrics, options };
}
