import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { constants as cryptoConstants, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { access, mkdir, open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { Duplex } from 'node:stream';
import type { KMS } from '@aws-sdk/client-kms';
import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  KmsKeyringNode,
  MultiKeyringNode,
  RawAesKeyringNode,
  RawAesWrappingSuiteIdentifier,
  RawRsaKeyringNode,
  type KeyringNode,
  type MessageHeader,
} from '@aws-crypto/client-node';
import { FieldError, UsageError, messageOf } from '../util/errors';
import { fsProblem } from '../util/fs-problems';

/**
 * Client-side envelope encryption with the AWS Encryption SDK: AES-256-GCM data keys with key
 * commitment (HKDF-SHA512), wrapped by the vault's KMS key in AWS or a raw AES-256 key locally,
 * and optionally also by an offline RSA escrow key, so a copy can be opened without AWS.
 *
 * The suite is the committing one *without* ECDSA signatures: every frame is authenticated by GCM,
 * the stored bytes are SHA-256-hashed into the manifest and Object Lock keeps them immutable, and
 * skipping the signature keeps the pipeline within its throughput budget (see the bench). Unsigned
 * messages can be decrypted with `decryptUnsignedMessageStream`, which refuses signed ones.
 */
export const ALGORITHM_SUITE = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY;
export const ALGORITHM_SUITE_NAME = 'ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY';
/** Plaintext bytes per authenticated frame. */
export const FRAME_LENGTH = 1024 * 1024;

const LOCAL_NAMESPACE = 'cofre-local-aes';
const ESCROW_NAMESPACE = 'cofre-escrow-rsa';

const client = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);

/** How a backup's data keys are wrapped (writing) or unwrapped (reading). */
export interface KeyOptions {
  /** Path of a raw 32-byte AES-256 key (`cofre keygen`). */
  readonly keyFile?: string | undefined;
  /** KMS key ARN (or alias ARN) of the vault. */
  readonly kmsKeyArn?: string | undefined;
  /** PEM file of the escrow RSA public key (writing) — data keys are also wrapped for it. */
  readonly escrowPublicKey?: string | undefined;
  /** PEM file of the escrow RSA private key (reading without AWS or the AES key). */
  readonly escrowPrivateKey?: string | undefined;
}

/** A keyring and the ids of the keys it wraps with, as recorded in the manifest. */
export interface Keys {
  readonly keyring: KeyringNode;
  readonly keyIds: readonly string[];
}

function fingerprint(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

/** Creates a new random AES-256 key file with mode 0600 (its folder 0700 if new); refuses to overwrite one. */
export async function keygen(file: string): Promise<string> {
  const key = randomBytes(32);
  await makeKeyFolder(path.dirname(path.resolve(file)));
  await writeNewKeyFile(file, key);
  return `local:${fingerprint(key)}`;
}

/** The RSA modulus of escrow keys `keygen --escrow` makes (readPem accepts 3072 and up). */
export const ESCROW_KEY_BITS = 4096;

/**
 * Creates an escrow RSA pair in `dir` (made 0700 if new): `escrow-public.pem` (SPKI, for backups:
 * `--escrow-public-key`) and `escrow-private.pem` (PKCS#8, mode 0600, for the safe:
 * `--escrow-private-key`). Refuses to overwrite either. Returns the paths and the public key's
 * fingerprint, the `escrow:<fingerprint>` key id manifests record.
 */
export async function escrowKeygen(
  dir: string,
): Promise<{ publicKey: string; privateKey: string; fingerprint: string }> {
  await makeKeyFolder(dir);
  const publicFile = path.join(dir, 'escrow-public.pem');
  const privateFile = path.join(dir, 'escrow-private.pem');
  for (const file of [publicFile, privateFile])
    if (
      await access(file).then(
        () => true,
        () => false,
      )
    )
      throw new UsageError(
        `--out: ${file} already exists; Cofre never overwrites a key (a lost key is a lost backup)`,
      );
  const pair = generateKeyPairSync('rsa', {
    modulusLength: ESCROW_KEY_BITS,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeNewKeyFile(privateFile, Buffer.from(pair.privateKey));
  await writeNewKeyFile(publicFile, Buffer.from(pair.publicKey), 0o644);
  return {
    publicKey: publicFile,
    privateKey: privateFile,
    fingerprint: escrowKeyName(createPublicKey(pair.publicKey)),
  };
}

async function makeKeyFolder(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
    throw new UsageError(
      `--out: cannot create the folder ${dir}: ${fsProblem(error, dir) ?? messageOf(error)}`,
    );
  });
}

async function writeNewKeyFile(file: string, bytes: Buffer, mode = 0o600): Promise<void> {
  let handle;
  try {
    handle = await open(file, 'wx', mode);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === 'EEXIST'
        ? `--out: ${file} already exists; Cofre never overwrites a key (a lost key is a lost backup)`
        : `--out: cannot create ${file}: ${fsProblem(error, path.dirname(path.resolve(file))) ?? messageOf(error)}`,
    );
  }
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Reads a raw AES-256 key file; refuses one of the wrong size or readable by other users. */
export async function readKeyFile(file: string): Promise<Buffer> {
  let info;
  let key: Buffer;
  try {
    info = await stat(file);
    key = await readFile(file);
  } catch (error) {
    throw new FieldError('keyFile', `cannot read ${file}: ${fsProblem(error, file) ?? messageOf(error)}`);
  }
  if (key.length !== 32)
    throw new FieldError(
      'keyFile',
      `expected ${file} to hold a raw 32-byte AES-256 key (make one with "cofre keygen"), got ${key.length} bytes`,
    );
  if ((info.mode & 0o077) !== 0)
    throw new FieldError(
      'keyFile',
      `${file} is readable by other users (mode ${(info.mode & 0o777).toString(8)}); run "chmod 600 ${file}"`,
    );
  return key;
}

async function readPem(file: string, field: string, kind: 'public' | 'private'): Promise<KeyObject> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new FieldError(field, `cannot read ${file}: ${fsProblem(error, file) ?? messageOf(error)}`);
  }
  // createPublicKey would quietly derive the public half of a private key: that key belongs in the
  // safe, not on the machine that makes backups.
  if (kind === 'public' && isPrivateKey(text))
    throw new FieldError(
      field,
      `${file} holds a PRIVATE key; give the public key (keep the private one in the safe)`,
    );
  try {
    const key = kind === 'public' ? createPublicKey(text) : createPrivateKey(text);
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`a ${String(key.asymmetricKeyType)} key`);
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 3072) throw new Error('shorter than 3072 bits');
    return key;
  } catch (error) {
    throw new FieldError(
      field,
      `expected an RSA ${kind} key of at least 3072 bits in PEM format in ${file}: ${messageOf(error)}`,
    );
  }
}

function isPrivateKey(text: string): boolean {
  try {
    createPrivateKey(text);
    return true;
  } catch {
    // An encrypted private key cannot be opened without its passphrase; its PEM header still says so.
    return /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text);
  }
}

function escrowKeyName(publicKey: KeyObject): string {
  return fingerprint(publicKey.export({ type: 'spki', format: 'der' }));
}

function rsaKeyring(keyName: string, rsaKey: { publicKey?: string; privateKey?: string }): RawRsaKeyringNode {
  return new RawRsaKeyringNode({
    keyNamespace: ESCROW_NAMESPACE,
    keyName,
    rsaKey,
    padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING,
    oaepHash: 'sha256',
  });
}

/**
 * Builds the keyring from the KEY options. Writing needs exactly one of `keyFile` / `kmsKeyArn`
 * (plus an optional escrow public key); reading accepts any one of `keyFile`, `kmsKeyArn` or
 * `escrowPrivateKey`.
 */
export async function buildKeys(
  options: KeyOptions,
  purpose: 'encrypt' | 'decrypt',
  kms?: () => KMS,
): Promise<Keys> {
  const primaries = [
    options.keyFile,
    options.kmsKeyArn,
    purpose === 'decrypt' ? options.escrowPrivateKey : undefined,
  ];
  const given = primaries.filter((v) => v !== undefined).length;
  if (given !== 1)
    throw new UsageError(
      purpose === 'encrypt'
        ? 'KEY: expected exactly one of --key-file FILE or --kms-key ARN (optionally with --escrow-public-key PEM)'
        : 'KEY: expected exactly one of --key-file FILE, --kms-key ARN or --escrow-private-key PEM',
    );
  let primary: KeyringNode;
  const keyIds: string[] = [];
  if (options.keyFile) {
    const key = await readKeyFile(options.keyFile);
    const keyName = fingerprint(key);
    primary = new RawAesKeyringNode({
      keyNamespace: LOCAL_NAMESPACE,
      keyName,
      unencryptedMasterKey: key,
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    });
    keyIds.push(`local:${keyName}`);
  } else if (options.kmsKeyArn) {
    if (!/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)\/.+$/.test(options.kmsKeyArn))
      throw new FieldError(
        'kmsKeyArn',
        `expected a KMS key ARN like "arn:aws:kms:sa-east-1:123456789012:key/…", got "${options.kmsKeyArn}"`,
      );
    if (!kms) throw new FieldError('kmsKeyArn', 'no KMS client available');
    const kmsClient = kms();
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- the SDK's own KeyringNode subclass, typed through its generic base
    primary = new KmsKeyringNode({ generatorKeyId: options.kmsKeyArn, clientProvider: () => kmsClient });
    keyIds.push(`kms:${options.kmsKeyArn}`);
  } else {
    const privateKey = await readPem(options.escrowPrivateKey!, 'escrowPrivateKey', 'private');
    const keyName = escrowKeyName(createPublicKey(privateKey));
    primary = rsaKeyring(keyName, {
      privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    });
    keyIds.push(`escrow:${keyName}`);
  }
  if (purpose === 'encrypt' && options.escrowPublicKey) {
    const publicKey = await readPem(options.escrowPublicKey, 'escrowPublicKey', 'public');
    const keyName = escrowKeyName(publicKey);
    const escrow = rsaKeyring(keyName, {
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    keyIds.push(`escrow:${keyName}`);
    return { keyring: new MultiKeyringNode({ generator: primary, children: [escrow] }), keyIds };
  }
  return { keyring: primary, keyIds };
}

/**
 * A stream that encrypts into an AWS Encryption SDK message bound to `context`.
 *
 * The SDK's own encrypt stream must never be destroyed mid-message: it pipes two inner streams
 * without an error callback, so a destroy throws an uncaught "Premature close". This wrapper can
 * be destroyed safely (as a failed pipeline does): it ends the inner stream and discards the rest.
 */
export function encryptStream(keys: Keys, context: Record<string, string>): Duplex {
  const inner = client.encryptStream(keys.keyring, {
    suiteId: ALGORITHM_SUITE,
    encryptionContext: context,
    frameLength: FRAME_LENGTH,
  });
  let innerDone = false;
  const outer = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (inner.write(chunk)) callback();
      else
        inner.once('drain', () => {
          callback();
        });
    },
    final(callback) {
      inner.end();
      callback();
    },
    read() {
      inner.resume();
    },
    destroy(error, callback) {
      if (!innerDone) {
        inner.removeAllListeners('data');
        inner.on('error', () => undefined);
        inner.resume();
        if (!inner.writableEnded) inner.end();
      }
      callback(error);
    },
  });
  inner.on('data', (chunk: Buffer) => {
    if (!outer.push(chunk)) inner.pause();
  });
  inner.once('end', () => {
    innerDone = true;
    outer.push(null);
  });
  inner.once('error', (error: Error) => {
    innerDone = true;
    outer.destroy(error);
  });
  return outer;
}

/**
 * A stream that authenticates and decrypts an unsigned AWS Encryption SDK message, and fails if
 * its encryption context does not carry `expected` (so an artifact cannot be swapped for another
 * backup's, even one encrypted under the same key).
 */
export function decryptStream(keys: Keys, expected: Record<string, string>): Duplex {
  const stream = client.decryptUnsignedMessageStream(keys.keyring);
  stream.once('MessageHeader', (header: MessageHeader) => {
    for (const [key, value] of Object.entries(expected)) {
      if (header.encryptionContext[key] !== value) {
        stream.destroy(
          new Error(
            `encryption context mismatch: ${key} is "${header.encryptionContext[key] ?? '(absent)'}", expected "${value}"`,
          ),
        );
        return;
      }
    }
  });
  return stream;
}
