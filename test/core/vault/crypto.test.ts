import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KMS } from '@aws-sdk/client-kms';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildKeys,
  decryptStream,
  encryptStream,
  keygen,
  readKeyFile,
  type Keys,
} from '../../../core/vault/crypto';
import { UsageError } from '../../../core/util/errors';
import { readAll } from '../../../core/vault';
import { clientConfig, createKmsKey, describeLocalAws, localAws } from '../../helpers/local-aws';
import { tempDir } from '../../helpers/temp';

const dir = tempDir('crypto');
const context = { 'cofre:backup-id': '20261123T000000000Z-00000000', 'cofre:tier': 'daily' };

async function seal(keys: Keys, plaintext: Buffer, ctx = context): Promise<Buffer> {
  return readAll(Readable.from([plaintext]).pipe(encryptStream(keys, ctx)));
}

async function open(keys: Keys, ciphertext: Buffer, ctx: Record<string, string> = context): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(
    Readable.from([ciphertext]),
    decryptStream(keys, ctx),
    async (source: AsyncIterable<Buffer>) => {
      for await (const c of source) chunks.push(c);
    },
  );
  return Buffer.concat(chunks);
}

describe('key files', () => {
  it('keygen writes 32 random bytes with mode 0600 and never overwrites', async () => {
    const file = path.join(dir, 'k-new');
    expect(await keygen(file)).toMatch(/^local:[0-9a-f]{16}$/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect((await readKeyFile(file)).length).toBe(32);
    await expect(keygen(file)).rejects.toThrow(/--out: .* already exists; Cofre never overwrites a key/);
  });

  it.each([
    ['missing', () => path.join(dir, 'nope'), /^keyFile: cannot read/],
    [
      'wrong size',
      () => {
        const f = path.join(dir, 'short');
        writeFileSync(f, randomBytes(16), { mode: 0o600 });
        return f;
      },
      /^keyFile: expected .* to hold a raw 32-byte AES-256 key .*got 16 bytes/,
    ],
    [
      'readable by others',
      () => {
        const f = path.join(dir, 'open');
        writeFileSync(f, randomBytes(32));
        chmodSync(f, 0o644);
        return f;
      },
      /^keyFile: .* is readable by other users \(mode 644\); run "chmod 600/,
    ],
  ])('refuses a key file that is %s (exit 2)', async (_what, make, message) => {
    const p = readKeyFile(make());
    await expect(p).rejects.toThrow(message);
    await expect(p).rejects.toBeInstanceOf(UsageError);
    await expect(p).rejects.toMatchObject({ field: 'keyFile' });
  });

  it('asks for exactly one KEY', async () => {
    await expect(buildKeys({}, 'encrypt')).rejects.toThrow(
      /KEY: expected exactly one of --key-file FILE or --kms-key ARN/,
    );
  });
});

describe('envelope encryption', () => {
  let aes: Keys;
  let aesWithEscrow: Keys;
  let escrowOnly: Keys;
  const plaintext = randomBytes(3 * 1024 * 1024 + 17);

  beforeAll(async () => {
    const keyFile = path.join(dir, 'k-aes');
    await keygen(keyFile);
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 3072 });
    writeFileSync(path.join(dir, 'escrow.pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(path.join(dir, 'escrow.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), {
      mode: 0o600,
    });
    aes = await buildKeys({ keyFile }, 'encrypt');
    aesWithEscrow = await buildKeys(
      { keyFile, escrowPublicKey: path.join(dir, 'escrow.pub.pem') },
      'encrypt',
    );
    escrowOnly = await buildKeys({ escrowPrivateKey: path.join(dir, 'escrow.pem') }, 'decrypt');
  });

  it('round-trips with the local AES key, and the ciphertext is not the plaintext', async () => {
    const sealed = await seal(aes, plaintext);
    expect(sealed.includes(plaintext.subarray(0, 64))).toBe(false);
    expect((await open(aes, sealed)).equals(plaintext)).toBe(true);
  });

  it('lets the offline escrow private key alone open a copy (no AWS, no AES key)', async () => {
    expect(aesWithEscrow.keyIds).toHaveLength(2);
    const sealed = await seal(aesWithEscrow, plaintext);
    expect((await open(escrowOnly, sealed)).equals(plaintext)).toBe(true);
    await expect(open(escrowOnly, await seal(aes, plaintext))).rejects.toThrow();
  });

  it('refuses another key, a flipped byte and another backup’s encryption context', async () => {
    const sealed = await seal(aes, plaintext);
    const otherFile = path.join(dir, 'k-other');
    await keygen(otherFile);
    await expect(open(await buildKeys({ keyFile: otherFile }, 'decrypt'), sealed)).rejects.toThrow();
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1000]! ^= 0x01;
    await expect(open(aes, flipped)).rejects.toThrow();
    await expect(open(aes, sealed, { ...context, 'cofre:backup-id': 'another' })).rejects.toThrow(
      /encryption context mismatch/,
    );
  });

  it('can be destroyed mid-message without an uncaught error', async () => {
    const stream = encryptStream(aes, context);
    const errors: unknown[] = [];
    stream.on('error', (e) => errors.push(e));
    stream.resume();
    stream.write(randomBytes(1024 * 1024));
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    stream.destroy(new Error('dump failed'));
    await new Promise((r) => setTimeout(r, 200));
    process.off('uncaughtException', onUncaught);
    expect(uncaught).toEqual([]);
    expect(errors.map(String)).toEqual(['Error: dump failed']);
  });

  it('rejects a malformed KMS key ARN, naming the kmsKeyArn field (the CLI says --kms-key)', async () => {
    const built = buildKeys({ kmsKeyArn: 'alias/cofre' }, 'encrypt', () => new KMS({}));
    await expect(built).rejects.toThrow(/^kmsKeyArn: expected a KMS key ARN like/);
    await expect(built).rejects.toMatchObject({ field: 'kmsKeyArn', exitCode: 2 });
  });
});

describeLocalAws('KMS keyring against the local AWS (moto KMS)', () => {
  it('wraps data keys with the vault’s KMS key, bound to the encryption context: a wrong context cannot decrypt', async () => {
    const aws = localAws();
    const arn = await createKmsKey(aws.kms, 'vault key');
    const plaintext = randomBytes(2 * 1024 * 1024 + 5);
    const kms = () => new KMS(clientConfig());
    const keys = await buildKeys({ kmsKeyArn: arn }, 'encrypt', kms);
    expect(keys.keyIds).toEqual([`kms:${arn}`]);
    const sealed = await seal(keys, plaintext);
    const reader = await buildKeys({ kmsKeyArn: arn }, 'decrypt', kms);
    expect((await open(reader, sealed)).equals(plaintext)).toBe(true);
    // The data key is wrapped by KMS with the context: KMS itself refuses it under another one.
    const other = { ...context, 'cofre:backup-id': '20991231T000000000Z-ffffffff' };
    await expect(open(reader, sealed, other)).rejects.toThrow(
      /encryption context mismatch|InvalidCiphertext/,
    );
    // And another key cannot unwrap it.
    const stranger = await createKmsKey(aws.kms, 'another key');
    const wrongKey = await buildKeys({ kmsKeyArn: stranger }, 'decrypt', kms);
    await expect(open(wrongKey, sealed)).rejects.toThrow();
  });
});
