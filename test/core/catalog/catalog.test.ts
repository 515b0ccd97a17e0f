import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { findBackup } from '../../../core/catalog/catalog';
import { sourcePrefixes } from '../../../core/catalog/keys';
import { FileVault, type Vault } from '../../../core/vault';
import { tempDir } from '../../helpers/cli';

/** A file vault that remembers which prefixes were listed. */
function listingVault(): { vault: Vault; listed: string[] } {
  const inner = new FileVault(tempDir('catalog'));
  const listed: string[] = [];
  const vault: Vault = {
    url: inner.url,
    kind: inner.kind,
    objectLockMode: inner.objectLockMode,
    write: (k, b, o) => inner.write(k, b, o),
    read: (k, s) => inner.read(k, s),
    readBytes: (k) => inner.readBytes(k),
    sha256: (k, c) => inner.sha256(k, c),
    stat: (k) => inner.stat(k),
    createExclusive: (k, b) => inner.createExclusive(k, b),
    remove: (k) => inner.remove(k),
    replaceExclusive: (k, e, b) => inner.replaceExclusive(k, e, b),
    release: (k, e) => inner.release(k, e),
    list: (prefix) => {
      listed.push(prefix);
      return inner.list(prefix);
    },
  };
  return { vault, listed };
}

describe('findBackup', () => {
  it("looks only under the given prefixes (a dump task may list only its source's), and names a backup it cannot see", async () => {
    const { vault, listed } = listingVault();
    const id = '20260101T000000000Z-0000000a';
    await vault.write(`full/app-prod/app/${id}/manifest.json`, Readable.from(['{}']), { tags: {} });
    await vault.write(
      `full/ledger-prod/ledger/20260101T000000000Z-0000000b/manifest.json`,
      Readable.from(['{}']),
      {
        tags: {},
      },
    );
    expect(sourcePrefixes('app-prod')).toEqual(['full/app-prod/', 'tenants/app-prod/']);
    const entry = await findBackup(vault, id, sourcePrefixes('app-prod'));
    expect(entry.folder).toBe(`full/app-prod/app/${id}`);
    expect(listed.sort()).toEqual(['full/app-prod/', 'tenants/app-prod/']);
    await expect(
      findBackup(vault, '20260101T000000000Z-0000000b', sourcePrefixes('app-prod')),
    ).rejects.toThrow(/no backup "20260101T000000000Z-0000000b"/);
    listed.length = 0;
    expect((await findBackup(vault, '20260101T000000000Z-0000000b')).folder).toMatch(/^full\/ledger-prod\//);
    expect(listed.sort()).toEqual(['full/', 'tenants/']);
  });
});
