/**
 * The filesystem backend against the store contract, and what is its own: files it did not write are read
 * unverified (a directory from before the store works as it stands), and its bookkeeping stays under `.aft/`.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FsStore, readAll } from '../src';
import { storeContract } from './contract';

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

function newStore() {
  const root = mkdtempSync(join(tmpdir(), 'aft-fs-store-'));
  roots.push(root);
  return new FsStore(root);
}

storeContract('fs', async () => {
  const store = newStore();
  return {
    store,
    partBytes: 5 * 1024 * 1024,
    tamper: async (key, bytes) => writeFileSync(join(store.root, ...key.split('/')), bytes),
  };
});

describe('fs backend', () => {
  it('keeps the layout: an object is <root>/<key>; a file from before the store reads unverified', async () => {
    const store = newStore();
    await store.put('mlflow/r1/plots/loss.png', Buffer.from('png'));
    expect(readdirSync(join(store.root, 'mlflow', 'r1', 'plots'))).toEqual(['loss.png']);
    expect(readdirSync(store.root).sort()).toEqual(['.aft', 'mlflow']);
    expect(readdirSync(join(store.root, '.aft', 'tmp'))).toEqual([]);

    mkdirSync(join(store.root, 'runs', 'old'), { recursive: true });
    writeFileSync(join(store.root, 'runs', 'old', 'samples.jsonl'), 'legacy');
    expect(await store.stat('runs/old/samples.jsonl')).toMatchObject({ bytes: 6, sha256: null });
    expect((await readAll((await store.get('runs/old/samples.jsonl')).body)).toString()).toBe('legacy');
  });

  it('a key where a file stands as a folder (or the reverse) is a conflict naming the key', async () => {
    const store = newStore();
    await store.put('c/a.txt', Buffer.from('file'));
    await expect(store.put('c/a.txt/b.txt', Buffer.from('x'))).rejects.toThrow(
      "cannot store 'c/a.txt/b.txt': a file is in the way of its folder",
    );
    await store.put('c/d/x', Buffer.from('x'));
    await expect(store.put('c/d', Buffer.from('x'))).rejects.toThrow("'c/d' is a folder");
    expect((await store.list('c/')).map((o) => o.key)).toEqual(['c/a.txt', 'c/d/x']);
  });

  it('a delete takes the folders it emptied, and deletePrefix the records too', async () => {
    const store = newStore();
    await store.put('d/e/f/g', Buffer.from('x'));
    await store.delete('d/e/f/g');
    expect(readdirSync(store.root).filter((n) => n !== '.aft')).toEqual([]);
    await store.put('d/e/1', Buffer.from('1'));
    await store.put('d/e/2', Buffer.from('2'));
    expect(await store.deletePrefix('d/')).toBe(2);
    expect(readdirSync(join(store.root, '.aft', 'sha256'))).toEqual([]);
  });
});
