import { KMS } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { Command } from 'commander';
import type { ConfigClients } from '../core/config/aws';
import {
  diffSnapshots,
  listSnapshots,
  parseAsOf,
  readSnapshotValue,
  restoreSnapshot,
  snapshotAsOf,
  summary,
} from '../core/config/query';
import { CONFIG_KINDS, type ConfigKind } from '../core/config/types';
import { buildKeys } from '../core/vault/crypto';
import { UsageError } from '../core/util/errors';
import { openVault, sdkClientConfig } from '../core/vault';
import type { CliIo } from './io';

interface CommonOpts {
  readonly vault: string;
  readonly kind?: string;
  readonly json?: boolean;
}
interface KeyOpts {
  readonly keyFile?: string;
  readonly kmsKey?: string;
  readonly escrowPrivateKey?: string;
}

function kindOf(value: string | undefined): ConfigKind | undefined {
  if (value === undefined) return undefined;
  if (!(CONFIG_KINDS as readonly string[]).includes(value))
    throw new UsageError(`--kind: expected ${CONFIG_KINDS.join(' or ')}, got "${value}"`);
  return value as ConfigKind;
}

/** SDK settings from the CLI's environment (endpoint, region, credentials), as openVault does for S3. */

function clientsFor(env: NodeJS.ProcessEnv): ConfigClients {
  return {
    secrets: new SecretsManagerClient(sdkClientConfig(env, 'AWS_ENDPOINT_URL_SECRETS_MANAGER')),
    ssm: new SSMClient(sdkClientConfig(env, 'AWS_ENDPOINT_URL_SSM')),
  };
}

async function keysFor(opts: KeyOpts, env: NodeJS.ProcessEnv) {
  return buildKeys(
    { keyFile: opts.keyFile, kmsKeyArn: opts.kmsKey, escrowPrivateKey: opts.escrowPrivateKey },
    'decrypt',
    () =>
      new KMS({
        ...sdkClientConfig(env, 'AWS_ENDPOINT_URL_KMS'),
        ...(opts.kmsKey ? { region: opts.kmsKey.split(':')[3] } : {}),
      }),
  );
}

const short = (sha: string | undefined) => (sha ? sha.slice(0, 16) : '-');

/** `cofre config list|show|restore|diff`: configuration snapshots in the vault's `config/`. */
export function addConfigCommand(program: Command, io: CliIo, setExitCode: (code: number) => void): void {
  const config = program
    .command('config')
    .description('configuration snapshots (Secrets Manager secrets, SSM parameters) in the vault, by date');
  const withKey = (c: Command) =>
    c
      .option('--kms-key <arn>', 'KMS key ARN of the vault')
      .option('--key-file <file>', 'raw AES-256 key (local vaults)')
      .option('--escrow-private-key <pem>', 'offline escrow RSA private key');
  const common = (c: Command) =>
    c
      .requiredOption('--vault <vault>', 's3://bucket/prefix or file:///absolute/dir')
      .option('--kind <kind>', 'secret or parameter (only when a name is both)')
      .option('--json', 'print one JSON object on stdout');

  common(
    config
      .command('list')
      .description(
        'with --name: every snapshot of it up to --as-of; without: what every name held at --as-of',
      )
      .option('--name <name>', 'secret or parameter name')
      .option(
        '--as-of <date>',
        'point in time (2026-03-01 = end of that day UTC, or 2026-03-01T14:30:00Z)',
        'now',
      ),
  ).action(async (opts: CommonOpts & { name?: string; asOf: string }) => {
    const asOf = opts.asOf === 'now' ? new Date() : parseAsOf(opts.asOf, '--as-of');
    const vault = openVault(opts.vault, { env: io.env });
    const rows = await listSnapshots(vault, { name: opts.name, kind: kindOf(opts.kind), asOf });
    for (const r of rows)
      io.stderr(
        `${r.at}  ${r.kind.padEnd(9)} ${r.name}  ${r.state === 'present' ? `version ${r.versionId} sha256 ${short(r.sha256)}` : 'DELETED'}  ${r.trigger}${r.eventName ? ` ${r.eventName}` : ''}${r.changedBy ? ` by ${r.changedBy}` : ''}\n`,
      );
    if (!rows.length)
      io.stderr(
        `no configuration snapshot${opts.name ? ` of "${opts.name}"` : ''} as of ${asOf.toISOString()}\n`,
      );
    if (opts.json) io.stdout(`${JSON.stringify({ asOf: asOf.toISOString(), snapshots: rows })}\n`);
    setExitCode(0);
  });

  withKey(
    common(
      config
        .command('show')
        .description(
          'the snapshot of one name in effect at --as-of: metadata and SHA-256; the value only with --reveal',
        )
        .requiredOption('--name <name>', 'secret or parameter name')
        .requiredOption(
          '--as-of <date>',
          'point in time (2026-03-01 = end of that day UTC, or 2026-03-01T14:30:00Z)',
        )
        .option('--reveal', 'print the value (decrypted; needs the vault key)'),
    ),
  ).action(async (opts: CommonOpts & KeyOpts & { name: string; asOf: string; reveal?: boolean }) => {
    const asOf = parseAsOf(opts.asOf, '--as-of');
    const vault = openVault(opts.vault, { env: io.env });
    const snapshot = await snapshotAsOf(vault, opts.name, asOf, kindOf(opts.kind));
    const s = summary(snapshot);
    let value: Buffer | undefined;
    if (opts.reveal) value = await readSnapshotValue(vault, await keysFor(opts, io.env), snapshot);
    io.stderr(
      `${s.kind} ${s.name} as of ${asOf.toISOString()}: ${s.state === 'present' ? `version ${s.versionId} (${s.valueType}), ${s.bytes} bytes, sha256 ${s.sha256}` : 'DELETED'}\n` +
        `  changed ${s.at}${s.eventName ? ` by ${s.eventName}` : ''}${s.changedBy ? ` (${s.changedBy})` : ''}; snapshot ${s.trigger} ${s.takenAt}; locked until ${s.lockUntil ?? '-'}\n` +
        (s.note ? `  note: ${s.note}\n` : '') +
        (value
          ? ''
          : s.state === 'present'
            ? '  (value hidden: add --reveal and the vault key to print it)\n'
            : ''),
    );
    const revealed =
      value === undefined
        ? undefined
        : s.valueType === 'binary'
          ? { valueBase64: value.toString('base64') }
          : { value: value.toString('utf8') };
    if (opts.json) io.stdout(`${JSON.stringify({ ...s, ...revealed })}\n`);
    else if (revealed) io.stdout(`${'value' in revealed ? revealed.value : revealed.valueBase64}\n`);
    setExitCode(0);
  });

  withKey(
    common(
      config
        .command('restore')
        .description(
          'write the value one name had at --as-of back as a NEW version (never deletes; a deleted secret is brought back)',
        )
        .requiredOption('--name <name>', 'secret or parameter name')
        .requiredOption(
          '--as-of <date>',
          'point in time (2026-03-01 = end of that day UTC, or 2026-03-01T14:30:00Z)',
        )
        .option('--dry-run', 'say what would be written; change nothing'),
    ),
  ).action(async (opts: CommonOpts & KeyOpts & { name: string; asOf: string; dryRun?: boolean }) => {
    const asOf = parseAsOf(opts.asOf, '--as-of');
    const vault = openVault(opts.vault, { env: io.env });
    const report = await restoreSnapshot({
      vault,
      keys: await keysFor(opts, io.env),
      clients: clientsFor(io.env),
      name: opts.name,
      kind: kindOf(opts.kind),
      asOf,
      dryRun: opts.dryRun ?? false,
    });
    const target = `${report.kind} ${report.name}`;
    const from = `version ${report.snapshot.versionId} of ${report.snapshot.at} (sha256 ${short(report.snapshot.sha256)})`;
    const now =
      report.current.state === 'present'
        ? `now version ${report.current.versionId} (sha256 ${short(report.current.sha256)})`
        : 'now deleted';
    io.stderr(
      report.unchanged
        ? `OK ${target} already holds ${from}; nothing written\n`
        : report.dryRun
          ? `DRY RUN ${target}: would write ${from} as a new version; ${now}; nothing changed\n`
          : `OK ${target}: wrote ${from} as new version ${report.newVersionId}${report.steps.length ? ` (${report.steps.join(', ')})` : ''}; read back, SHA-256 matches\n`,
    );
    if (opts.json) io.stdout(`${JSON.stringify(report)}\n`);
    setExitCode(0);
  });

  config
    .command('diff')
    .description('names and SHA-256 of what changed between two points in time (never values)')
    .requiredOption('--vault <vault>', 's3://bucket/prefix or file:///absolute/dir')
    .requiredOption('--from <date>', 'earlier point in time')
    .requiredOption('--to <date>', 'later point in time')
    .option('--json', 'print one JSON object on stdout')
    .action(async (opts: { vault: string; from: string; to: string; json?: boolean }) => {
      const from = parseAsOf(opts.from, '--from');
      const to = parseAsOf(opts.to, '--to');
      if (from.getTime() > to.getTime()) throw new UsageError('--from: expected a point in time before --to');
      const vault = openVault(opts.vault, { env: io.env });
      const changes = await diffSnapshots(vault, from, to);
      for (const c of changes)
        io.stderr(
          `${c.change.padEnd(8)} ${c.kind.padEnd(9)} ${c.name}  ${short(c.from?.sha256)} -> ${short(c.to?.sha256)}\n`,
        );
      io.stderr(`${changes.length} changed between ${from.toISOString()} and ${to.toISOString()}\n`);
      if (opts.json)
        io.stdout(`${JSON.stringify({ from: from.toISOString(), to: to.toISOString(), changes })}\n`);
      setExitCode(0);
    });
}
