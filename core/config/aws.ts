/**
 * Reading and writing the protected values with the AWS SDK (clients passed in). Values are
 * returned as bytes and never logged; errors carry the name, never the value.
 */
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  RestoreSecretCommand,
  type SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import {
  DescribeParametersCommand,
  GetParameterCommand,
  GetParametersByPathCommand,
  PutParameterCommand,
  type ParameterType,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { OperationalError, messageOf } from '../util/errors';
import type { ConfigKind } from './types';

/** A value as read: its bytes and what is needed to write it back the same way. */
export interface ReadValue {
  readonly state: 'present';
  readonly kind: ConfigKind;
  readonly name: string;
  readonly arn?: string | undefined;
  readonly versionId: string;
  readonly valueType: string;
  readonly parameterKeyId?: string | undefined;
  readonly value: Buffer;
}

/** Nothing to read: the secret or parameter does not exist (any more), or is scheduled for deletion. */
export interface Missing {
  readonly state: 'deleted';
  readonly kind: ConfigKind;
  readonly name: string;
  readonly arn?: string | undefined;
  readonly reason: string;
}

export type ReadResult = ReadValue | Missing;

/** The AWS clients of the configuration services. */
export interface ConfigClients {
  readonly secrets: SecretsManagerClient;
  readonly ssm: SSMClient;
}

const nameOf = (error: unknown) => (error as { name?: string }).name ?? '';

/** Secrets Manager's answer for a secret that was deleted or is scheduled for deletion. */
function isDeletedSecret(error: unknown): boolean {
  const name = nameOf(error);
  return (
    name === 'ResourceNotFoundException' ||
    (name === 'InvalidRequestException' && /delet/i.test(messageOf(error)))
  );
}

/** Reads a secret (`versionId`, else AWSCURRENT). */
export async function readSecret(
  clients: ConfigClients,
  id: string,
  fallbackName: string,
  versionId?: string,
): Promise<ReadResult> {
  const get = async (version?: string) =>
    clients.secrets.send(
      new GetSecretValueCommand({ SecretId: id, ...(version ? { VersionId: version } : {}) }),
    );
  let out;
  try {
    try {
      out = await get(versionId);
    } catch (error) {
      // That version may already have lost its staging labels and been removed: read the current one.
      if (!versionId || nameOf(error) !== 'ResourceNotFoundException') throw error;
      out = await get();
    }
  } catch (error) {
    if (isDeletedSecret(error))
      return {
        state: 'deleted',
        kind: 'secret',
        name: fallbackName,
        ...(id.startsWith('arn:') ? { arn: id } : {}),
        reason: `${nameOf(error)}: the secret is deleted or scheduled for deletion`,
      };
    throw new OperationalError(`cannot read secret ${fallbackName}: ${messageOf(error)}`, { cause: error });
  }
  const binary = out.SecretBinary !== undefined;
  return {
    state: 'present',
    kind: 'secret',
    name: out.Name ?? fallbackName,
    arn: out.ARN,
    versionId: out.VersionId ?? 'unknown',
    valueType: binary ? 'binary' : 'string',
    value: binary ? Buffer.from(out.SecretBinary!) : Buffer.from(out.SecretString ?? '', 'utf8'),
  };
}

/** Reads a parameter (decrypted) and, for a SecureString, its KMS key. */
export async function readParameter(clients: ConfigClients, name: string): Promise<ReadResult> {
  let parameter;
  try {
    parameter = (await clients.ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true })))
      .Parameter;
  } catch (error) {
    if (nameOf(error) === 'ParameterNotFound')
      return { state: 'deleted', kind: 'parameter', name, reason: 'ParameterNotFound' };
    throw new OperationalError(`cannot read parameter ${name}: ${messageOf(error)}`, { cause: error });
  }
  let keyId: string | undefined;
  if (parameter?.Type === 'SecureString') {
    const described = await clients.ssm.send(
      new DescribeParametersCommand({
        ParameterFilters: [{ Key: 'Name', Option: 'Equals', Values: [name] }],
      }),
    );
    keyId = described.Parameters?.[0]?.KeyId;
  }
  return {
    state: 'present',
    kind: 'parameter',
    name: parameter?.Name ?? name,
    arn: parameter?.ARN,
    versionId: String(parameter?.Version ?? 'unknown'),
    valueType: parameter?.Type ?? 'String',
    ...(keyId ? { parameterKeyId: keyId } : {}),
    value: Buffer.from(parameter?.Value ?? '', 'utf8'),
  };
}

/** Every secret (ARN and name) Secrets Manager lists, deleted ones excluded. */
export async function listSecrets(clients: ConfigClients): Promise<{ arn: string; name: string }[]> {
  const found: { arn: string; name: string }[] = [];
  let token: string | undefined;
  do {
    const out = await clients.secrets.send(new ListSecretsCommand({ NextToken: token, MaxResults: 100 }));
    for (const s of out.SecretList ?? [])
      if (s.ARN && s.Name && !s.DeletedDate) found.push({ arn: s.ARN, name: s.Name });
    token = out.NextToken;
  } while (token);
  return found;
}

/** Every parameter name under `path` (recursively), plus `path` itself when it is a parameter. */
export async function listParameters(clients: ConfigClients, path: string): Promise<string[]> {
  const names = new Set<string>();
  let token: string | undefined;
  do {
    const out = await clients.ssm.send(
      new GetParametersByPathCommand({ Path: path, Recursive: true, NextToken: token }),
    );
    for (const p of out.Parameters ?? []) if (p.Name) names.add(p.Name);
    token = out.NextToken;
  } while (token);
  if (path !== '/') {
    try {
      const out = await clients.ssm.send(new GetParameterCommand({ Name: path.replace(/\/+$/, '') }));
      if (out.Parameter?.Name) names.add(out.Parameter.Name);
    } catch (error) {
      if (nameOf(error) !== 'ParameterNotFound') throw error;
    }
  }
  return [...names].sort();
}

/** What a restore did to write the value back. */
export interface WriteBack {
  /** The version the write created. */
  readonly versionId: string;
  /** Steps taken before the write (a cancelled deletion, a re-created secret). */
  readonly steps: readonly string[];
}

/**
 * Writes `value` as a **new** version of the secret: cancels a scheduled deletion first, or creates
 * the secret again (same name) when it is gone. Never deletes anything.
 */
export async function writeSecret(
  clients: ConfigClients,
  name: string,
  valueType: string,
  value: Buffer,
): Promise<WriteBack> {
  const body =
    valueType === 'binary'
      ? { SecretBinary: new Uint8Array(value) }
      : { SecretString: value.toString('utf8') };
  const steps: string[] = [];
  let deletedDate: Date | undefined;
  try {
    deletedDate = (await clients.secrets.send(new DescribeSecretCommand({ SecretId: name }))).DeletedDate;
  } catch (error) {
    if (nameOf(error) !== 'ResourceNotFoundException') throw error;
    const out = await clients.secrets.send(new CreateSecretCommand({ Name: name, ...body }));
    steps.push('created the secret again (it no longer existed)');
    return { versionId: out.VersionId ?? 'unknown', steps };
  }
  // Secrets Manager refuses new values for a secret scheduled for deletion: cancel the deletion first.
  if (deletedDate) {
    await clients.secrets.send(new RestoreSecretCommand({ SecretId: name }));
    steps.push('cancelled its scheduled deletion');
  }
  const out = await clients.secrets.send(new PutSecretValueCommand({ SecretId: name, ...body }));
  return { versionId: out.VersionId ?? 'unknown', steps };
}

/** Writes `value` as a new version of the parameter (created again if it was deleted). */
export async function writeParameter(
  clients: ConfigClients,
  name: string,
  valueType: string,
  value: Buffer,
  keyId: string | undefined,
): Promise<WriteBack> {
  const out = await clients.ssm.send(
    new PutParameterCommand({
      Name: name,
      Value: value.toString('utf8'),
      Type: valueType as ParameterType,
      Overwrite: true,
      ...(valueType === 'SecureString' && keyId ? { KeyId: keyId } : {}),
    }),
  );
  return { versionId: String(out.Version ?? 'unknown'), steps: [] };
}
