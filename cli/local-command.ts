import type { Command } from 'commander';
import { UsageError } from '../core/util/errors';
import { runCofreLocal } from '../core/local/cofre-local';
import type { CliIo } from './io';

/**
 * `cofre local` (`npm start`): the backup-database and backup-tenants state machines on this
 * machine against $DATABASE_URL or an embedded PostgreSQL with a demo dataset, then a restore test.
 */
export function addLocalCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  program
    .command('local')
    .description(
      'run the whole pipeline locally (no AWS): $DATABASE_URL or an embedded PostgreSQL with demo data',
    )
    .option('--vault <vault>', 'file:///absolute/dir (default: an S3 server on loopback)')
    .option('--key-file <file>', 'raw AES-256 key (default: a new one in a temporary folder)')
    .option(
      '--tenants <table,keyColumn,tenantColumn>',
      'tenant model of the $DATABASE_URL database, e.g. public.clinics,id,clinic_id',
    )
    .option('--keep', 'leave the servers running and the temporary files in place')
    .option('--json', 'print the report as one JSON object on stdout')
    .action(
      async (opts: {
        vault?: string;
        keyFile?: string;
        tenants?: string;
        keep?: boolean;
        json?: boolean;
      }) => {
        let tenants;
        if (opts.tenants !== undefined) {
          const [table, keyColumn, tenantColumn, ...rest] = opts.tenants.split(',').map((s) => s.trim());
          if (!table || !keyColumn || !tenantColumn || rest.length)
            throw new UsageError(`--tenants: expected "table,keyColumn,tenantColumn", got "${opts.tenants}"`);
          tenants = { table, keyColumn, tenantColumn };
        }
        const report = await runCofreLocal({
          env: io.env,
          vault: opts.vault,
          keyFile: opts.keyFile,
          tenants,
          keep: opts.keep,
          signal: io.signal,
          log: (line) => {
            io.stderr(`${line}\n`);
          },
        });
        if (opts.json) io.stdout(`${JSON.stringify(report)}\n`);
        setExitCode(report.ok ? 0 : 1);
      },
    );
}
