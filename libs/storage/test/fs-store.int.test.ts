/**
 * The filesystem backend against the store contract, and what is its own: files it did not write are read
 * unverified (a directory from before the store works as it stands) unless the caller gives their sha256, its
 * bookkeeping stays under `.aft/` with a record per key that no other key's folder can block, writers of one key
 * never leave one's record beside another's bytes, and a crashed write's leftovers are swept.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChecksumMismatchError, FsStore, readAll, sha256Of } from '../src';
import { storeContract } from './contract';

/** Where the store keeps the record of `key`. */
const recordOf = (store: FsStore, key: string) => {
  const h = createHash('sha256').update(key).digest('hex');
  return join(store.root, '.aft', 'records', h.slice(0, 2), `${h}.json`);
};

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
    expect(existsSync(recordOf(store, 'd/e/1'))).toBe(true);
    expect(await store.deletePrefix('d/')).toBe(2);
    expect(existsSync(recordOf(store, 'd/e/1'))).toBe(false);
    expect(existsSync(recordOf(store, 'd/e/2'))).toBe(false);
  });

  it("one key's record never stands where another key's folder must (`a` beside `a.json/x`), in either order", async () => {
    for (const keys of [
      ['s/a', 's/a.json/x'],
      ['s/a.json/x', 's/a'],
    ]) {
      const store = newStore();
      for (const k of keys) await store.put(k, Buffer.from(k));
      for (const k of keys) {
        expect((await store.stat(k))?.sha256).toBe(sha256Of(Buffer.from(k)));
        expect((await readAll((await store.get(k)).body)).toString()).toBe(k);
      }
    }
  });

  it('a record that cannot be read refuses the read; only a missing one means a file from before the store', async () => {
    const store = newStore();
    await store.put('r/k', Buffer.from('recorded'));
    rmSync(recordOf(store, 'r/k'));
    mkdirSync(recordOf(store, 'r/k')); // EISDIR on read
    await expect(store.get('r/k')).rejects.toThrow(/EISDIR/);
    await expect(store.stat('r/k')).rejects.toThrow(/EISDIR/);
    rmSync(recordOf(store, 'r/k'), { recursive: true });
    writeFileSync(recordOf(store, 'r/k'), JSON.stringify({ key: 'r/other', sha256: 'x', bytes: 8, ino: '1' }));
    await expect(store.get('r/k')).rejects.toThrow("the sha256 record of 'r/k'");
    rmSync(recordOf(store, 'r/k'));
    expect(await store.stat('r/k')).toMatchObject({ sha256: null });
  });

  it('a file from before the store is verified against the sha256 the caller gives', async () => {
    const store = newStore();
    mkdirSync(join(store.root, 'mlflow', 'r0'), { recursive: true });
    writeFileSync(join(store.root, 'mlflow', 'r0', 'old.txt'), 'legacy');
    const right = await store.get('mlflow/r0/old.txt', { sha256: sha256Of(Buffer.from('legacy')) });
    expect(right.info.sha256).toBe(sha256Of(Buffer.from('legacy')));
    expect((await readAll(right.body)).toString()).toBe('legacy');
    const wrong = await store.get('mlflow/r0/old.txt', { sha256: sha256Of(Buffer.from('other')) });
    await expect(readAll(wrong.body)).rejects.toThrow(ChecksumMismatchError);
  });

  it('writers of one key at once leave a record that matches the bytes; readers meanwhile get one whole object', async () => {
    const store = newStore();
    const bodies = Array.from({ length: 6 }, (_, i) => randomBytes(20_000 + i * 1000));
    const hashes = new Set(bodies.map(sha256Of));
    let readsDone = 0;
    let writing = true;
    await store.put('c/k', bodies[0]!);
    const reader = (async () => {
      while (writing) {
        const { info, body } = await store.get('c/k');
        const got = await readAll(body); // a record beside other bytes would fail here
        expect(hashes.has(sha256Of(got))).toBe(true);
        expect(info.sha256).toBe(sha256Of(got));
        readsDone++;
      }
    })();
    for (let round = 0; round < 25; round++) {
      await Promise.all(bodies.map((b) => store.put('c/k', b)));
      const got = await readAll((await store.get('c/k')).body);
      expect(hashes.has(sha256Of(got)), `round ${round}`).toBe(true);
      expect((await store.stat('c/k'))?.sha256, `round ${round}`).toBe(sha256Of(got));
    }
    writing = false;
    await reader;
    expect(readsDone).toBeGreaterThan(0);
    expect(readdirSync(join(store.root, '.aft', 'locks'))).toEqual([]);
  });

  it("sweeps a crashed write's leftovers (older than an hour) from .aft/tmp when opened; recent ones stay", async () => {
    const root = newStore().root;
    const tmp = join(root, '.aft', 'tmp');
    mkdirSync(tmp, { recursive: true });
    for (const n of ['old', 'old.json', 'recent']) writeFileSync(join(tmp, n), 'x');
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const n of ['old', 'old.json']) utimesSync(join(tmp, n), twoHoursAgo, twoHoursAgo);
    const store = new FsStore(root);
    await store.put('w/k', Buffer.from('x'));
    expect(readdirSync(tmp)).toEqual(['recent']);
  });
});
