import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { verifiedPlaintext } from '../../core/catalog/artifact-reader';
import { parseDatabaseUrl, type Engine } from '../../core/sources/connection';
import { buildKeys, keygen, type Keys } from '../../core/vault/crypto';
import type { Manifest } from '../../core/catalog/manifest';
import { spawnMysqlClient } from '../../core/sources/mysql';
import { postgresEnv } from '../../core/sources/postgres';
import { spawnTool } from '../../core/sources/process';
import type { Vault } from '../../core/vault';
import { tempDir } from './temp';

/** A fresh local AES key for a test. */
export async function testKeys(): Promise<{ keyFile: string; keys: Keys }> {
  const keyFile = path.join(tempDir('key'), `k-${randomBytes(3).toString('hex')}`);
  await keygen(keyFile);
  return { keyFile, keys: await buildKeys({ keyFile }, 'encrypt') };
}

/**
 * Loads a backup's decrypted dump into `targetUrl` with the engine's own client (test scaffolding
 * until the restore engine exists): proves the plaintext is a dump the tools accept.
 */
export async function loadDumpInto(
  engine: Engine,
  vault: Vault,
  folder: string,
  manifest: Manifest,
  keys: Keys,
  targetUrl: string,
): Promise<void> {
  const artifact = manifest.artifacts[0]!;
  const target = parseDatabaseUrl(engine, targetUrl);
  const tool =
    engine === 'postgres'
      ? spawnTool(
          'pg_restore',
          ['--no-owner', '--no-acl', '--exit-on-error', `--dbname=${target.database!}`],
          {
            env: postgresEnv(target, target.database),
            stdin: true,
          },
        )
      : spawnMysqlClient(target, target.database!);
  tool.stdout.resume();
  try {
    await pipeline(
      await verifiedPlaintext({ vault, key: `${folder}/${artifact.name}`, artifact, keys }),
      tool.stdin!,
    );
  } catch (error) {
    await tool.finished; // the tool's own message says why it stopped reading
    throw error;
  }
  await tool.finished;
}

/** Manifest row counts keyed as the database helpers key them (`schema.table` / `table`). */
export function manifestRows(engine: Engine, manifest: Manifest): Record<string, number> {
  return Object.fromEntries(
    manifest.artifacts[0]!.tables.map((t) => [
      engine === 'postgres' ? `${t.schema}.${t.name}` : t.name,
      t.rows,
    ]),
  );
}
