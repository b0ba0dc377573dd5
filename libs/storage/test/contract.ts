/**
 * The contract every backend keeps, as one suite each backend's test file runs: round trips (bytes, streams,
 * files past one part), listing by prefix, stat, delete, overwrite, refusing bad keys and wrong checksums, a failed
 * put leaving nothing, folders published whole (tree.ts), reads checked against the sha256 the caller recorded, and
 * manifests that would write outside their folder refused.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ArtifactNotFoundError,
  BadKeyError,
  ChecksumMismatchError,
  getTree,
  MANIFEST,
  putTree,
  readAll,
  readManifest,
  sha256Of,
  type ArtifactStore,
} from '../src';

export interface Backend {
  store: ArtifactStore;
  /** Objects bigger than this take the multipart path (S3); the test writes files past it. */
  partBytes: number;
  /** The longest name the backend's disk takes (default 255 bytes; a test server may add to names). */
  longestName?: number;
  /** Changes an object's stored bytes behind the store's back. */
  tamper(key: string, bytes: Buffer): Promise<void>;
}

/** Reads a body, returning what arrived before it failed as well as the failure. */
async function drain(body: Readable): Promise<{ got: number; error: unknown }> {
  let got = 0;
  try {
    for await (const c of body) got += (c as Buffer).length;
    return { got, error: null };
  } catch (error) {
    return { got, error };
  }
}

export function storeContract(name: string, make: () => Promise<Backend>) {
  describe(`${name}: the artifact store contract`, () => {
    const tmp = mkdtempSync(join(tmpdir(), 'aft-contract-'));
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    it('round-trips bytes, a stream and a file larger than a part, each with its sha256', async () => {
      const { store, partBytes } = await make();
      const small = randomBytes(1000);
      expect(await store.put('a/small.bin', small)).toMatchObject({ bytes: 1000, sha256: sha256Of(small) });
      expect(await readAll((await store.get('a/small.bin')).body)).toEqual(small);

      const big = randomBytes(2 * partBytes + 12_345);
      const file = join(tmp, 'big.bin');
      writeFileSync(file, big);
      const t0 = performance.now();
      const put = await store.put('a/big.bin', { file });
      const ms = performance.now() - t0;
      expect(put).toMatchObject({ key: 'a/big.bin', bytes: big.length, sha256: sha256Of(big) });
      const got = await store.get('a/big.bin');
      expect(got.info).toMatchObject({ bytes: big.length, sha256: sha256Of(big) });
      expect(sha256Of(await readAll(got.body))).toBe(sha256Of(big));
      console.log(`[${name}] put of ${(big.length / 2 ** 20).toFixed(1)} MiB: ${ms.toFixed(0)} ms`);

      const streamed = await store.put(
        'a/streamed.bin',
        Readable.from([big.subarray(0, partBytes), big.subarray(partBytes)]),
      );
      expect(streamed.sha256).toBe(sha256Of(big));
      expect((await store.stat('a/streamed.bin'))?.sha256).toBe(sha256Of(big));
      const tiny = await store.put('a/tiny.txt', Readable.from([Buffer.from('he'), Buffer.from('llo')]));
      expect(tiny.sha256).toBe(sha256Of(Buffer.from('hello')));
    });

    it('lists by string prefix, sorted; stat, delete and deletePrefix', async () => {
      const { store } = await make();
      for (const k of ['p/b/2', 'p/b/1', 'p/c', 'pq', 'other/x']) await store.put(k, Buffer.from(k));
      expect((await store.list('p/')).map((o) => o.key)).toEqual(['p/b/1', 'p/b/2', 'p/c']);
      expect((await store.list('p/b')).map((o) => o.key)).toEqual(['p/b/1', 'p/b/2']);
      expect((await store.list('p')).map((o) => o.key)).toEqual(['p/b/1', 'p/b/2', 'p/c', 'pq']);
      expect((await store.list('')).map((o) => o.key)).toEqual(['other/x', 'p/b/1', 'p/b/2', 'p/c', 'pq']);
      expect(await store.list('nothing/')).toEqual([]);
      expect((await store.list('p/c'))[0]).toMatchObject({ key: 'p/c', bytes: 3 });

      expect(await store.stat('p/c')).toMatchObject({ key: 'p/c', bytes: 3, sha256: sha256Of(Buffer.from('p/c')) });
      expect(await store.stat('p/none')).toBeNull();
      expect(await store.stat('p/b')).toBeNull(); // a folder is not an object

      await store.delete('p/b/1');
      await store.delete('p/b/1'); // again: not an error
      expect(await store.stat('p/b/1')).toBeNull();
      await expect(store.get('p/b/1')).rejects.toThrow(ArtifactNotFoundError);
      await expect(store.get('p/b/1')).rejects.toThrow("no artifact at 'p/b/1'");
      expect(await store.deletePrefix('p/')).toBe(2);
      expect((await store.list('')).map((o) => o.key)).toEqual(['other/x', 'pq']);
    });

    it('an overwrite replaces the object and its sha256', async () => {
      const { store } = await make();
      await store.put('o/k', Buffer.from('one'));
      await store.put('o/k', Buffer.from('two, longer'));
      expect((await readAll((await store.get('o/k')).body)).toString()).toBe('two, longer');
      expect((await store.stat('o/k'))?.sha256).toBe(sha256Of(Buffer.from('two, longer')));
    });

    it('refuses bytes that do not match their recorded sha256, naming the key; never the whole corrupt body', async () => {
      const { store, tamper } = await make();
      const good = randomBytes(300_000);
      await store.put('m/same-size.bin', good);
      const bad = Buffer.from(good);
      bad[123_456] = bad[123_456]! ^ 0xff;
      await tamper('m/same-size.bin', bad);
      const { got, error } = await drain((await store.get('m/same-size.bin')).body);
      expect(error).toBeInstanceOf(ChecksumMismatchError);
      expect(String(error)).toContain("artifact 'm/same-size.bin' failed its checksum");
      expect(got).toBeLessThan(good.length);

      await store.put('m/other-size.bin', good);
      await tamper('m/other-size.bin', good.subarray(0, 1000));
      const r = await store.get('m/other-size.bin').then(
        (g) => drain(g.body),
        (e: unknown) => ({ got: 0, error: e }),
      );
      expect(r.error).toBeInstanceOf(ChecksumMismatchError);
      expect(String(r.error)).toContain("'m/other-size.bin'");
    });

    it('refuses a put whose bytes do not hash to the sha256 given, and stores nothing', async () => {
      const { store } = await make();
      await expect(store.put('w/x', Buffer.from('abc'), { sha256: sha256Of(Buffer.from('abd')) })).rejects.toThrow(
        /'w\/x' failed its checksum.*refused on write/,
      );
      expect(await store.stat('w/x')).toBeNull();
    });

    it('refuses keys that could escape or mean different things on the two backends', async () => {
      const { store } = await make();
      for (const k of ['', '../x', 'a/../b', 'a//b', '/a', 'a/', './a', 'a\\b', '.aft/x', 'a\0b'])
        await expect(store.put(k, Buffer.from('x')), k).rejects.toThrow(BadKeyError);
      await expect(store.get('../etc/passwd')).rejects.toThrow(BadKeyError);
    });

    it('keeps names of up to 255 bytes; refuses longer ones, control and bidi characters, saying why', async () => {
      const { store, longestName = 255 } = await make();
      const longest = `n/${'é'.repeat((longestName - 1) / 2)}x`; // 2 bytes each in UTF-8
      await store.put(longest, Buffer.from('long'));
      expect((await readAll((await store.get(longest)).body)).toString()).toBe('long');
      expect((await store.list('n/')).map((o) => o.key)).toEqual([longest]);
      const refused = async (k: string, why: RegExp) => {
        const e = await store.put(k, Buffer.from('x')).catch((err: unknown) => err);
        expect(e, JSON.stringify(k)).toBeInstanceOf(BadKeyError);
        expect((e as BadKeyError).reason, JSON.stringify(k)).toMatch(why);
      };
      await refused(`n/${'é'.repeat(128)}`, /a name in it is longer than 255 bytes/);
      for (const k of ['n/a\x01b', 'n/a\nb', 'n/a\x7fb', 'n/a\u202eb', 'n/\u2066x', 'n/x\u2069', 'n/\u202a'])
        await refused(k, /control character or a bidirectional-text control/);
      expect(String(await store.get('n/evil\u202etxt.exe').catch((e: unknown) => e))).toContain('evil\\u202etxt.exe');
    });

    it('reads against the sha256 the caller recorded: another recorded by the store is refused up front', async () => {
      const { store } = await make();
      const one = Buffer.from('the bytes the database recorded');
      const two = Buffer.from('bytes written to the key since');
      await store.put('e/k', one);
      expect((await readAll((await store.get('e/k', { sha256: sha256Of(one) })).body)).toString()).toBe(one.toString());
      await store.put('e/k', two);
      const e = await store.get('e/k', { sha256: sha256Of(one) }).catch((err: unknown) => err);
      expect(e).toBeInstanceOf(ChecksumMismatchError);
      expect(String(e)).toContain(`recorded sha256 ${sha256Of(one)}`);
    });

    it('fetches no manifest whose paths or version are not keys, and writes nothing outside its folder', async () => {
      const { store } = await make();
      const base = join(tmp, `evil-${randomBytes(3).toString('hex')}`);
      const dest = join(base, 'fetched');
      const sha = sha256Of(Buffer.from('x'));
      const publish = async (version: string, path: string) =>
        store.put(
          `runs/evil/checkpoint/${MANIFEST}`,
          Buffer.from(
            JSON.stringify({ format: 'aft-tree/1', version, files: [{ path, sha256: sha, bytes: 1 }], meta: {} }),
          ),
        );
      for (const [version, path] of [
        ['v1', '../outside/x'],
        ['v1', 'a/../../outside/x'],
        ['../../..', 'outside/x'],
        ['v1/..', 'outside/x'],
        ['v1', 'a\u202ex'],
      ] as const) {
        await publish(version, path);
        await expect(getTree(store, 'runs/evil/checkpoint', dest), `${version} ${path}`).rejects.toThrow(BadKeyError);
      }
      expect(existsSync(join(base, 'outside'))).toBe(false);
      expect(existsSync(join(dirname(base), 'outside'))).toBe(false);
    });

    it('a put whose source fails midway leaves nothing under the key, nor an older object changed', async () => {
      const { store, partBytes } = await make();
      const failing = () =>
        Readable.from(
          (async function* () {
            yield randomBytes(partBytes);
            yield randomBytes(partBytes);
            throw new Error('source broke');
          })(),
        );
      await expect(store.put('f/new.bin', failing())).rejects.toThrow('source broke');
      expect(await store.stat('f/new.bin')).toBeNull();
      expect(await store.list('f/')).toEqual([]);
      await store.put('f/old.bin', Buffer.from('old'));
      await expect(store.put('f/old.bin', failing())).rejects.toThrow('source broke');
      expect((await readAll((await store.get('f/old.bin')).body)).toString()).toBe('old');
      expect((await store.list('f/')).map((o) => o.key)).toEqual(['f/old.bin']);
    });

    it('publishes a folder whole: a reader gets one version, older versions go, unchanged files are kept', async () => {
      const { store } = await make();
      const src = join(tmp, `tree-${randomBytes(3).toString('hex')}`);
      mkdirSync(join(src, 'sub'), { recursive: true });
      writeFileSync(join(src, 'tensors.bin'), randomBytes(50_000));
      writeFileSync(join(src, 'checkpoint.json'), '{"step":10}');
      writeFileSync(join(src, 'sub', 'x.txt'), 'x');
      writeFileSync(join(src, 'tensors.bin.tmp'), 'a write in progress');
      const m1 = await putTree(store, 'runs/r1/checkpoint', src, { last: ['checkpoint.json'], meta: { step: 10 } });
      expect(m1.files.map((f) => f.path)).toEqual(['sub/x.txt', 'tensors.bin', 'checkpoint.json']);
      expect((await readManifest(store, 'runs/r1/checkpoint'))?.meta).toEqual({ step: 10 });

      const dest = join(tmp, `tree-out-${randomBytes(3).toString('hex')}`);
      expect((await getTree(store, 'runs/r1/checkpoint', dest))?.version).toBe(m1.version);
      expect(readFileSync(join(dest, 'checkpoint.json'), 'utf8')).toBe('{"step":10}');
      expect(readFileSync(join(dest, 'sub', 'x.txt'), 'utf8')).toBe('x');

      writeFileSync(join(src, 'checkpoint.json'), '{"step":20}');
      const m2 = await putTree(store, 'runs/r1/checkpoint', src, { last: ['checkpoint.json'], meta: { step: 20 } });
      const versions = new Set((await store.list('runs/r1/checkpoint/.v/')).map((o) => o.key.split('/')[4]));
      expect([...versions]).toEqual([m2.version]);
      await getTree(store, 'runs/r1/checkpoint', dest);
      expect(readFileSync(join(dest, 'checkpoint.json'), 'utf8')).toBe('{"step":20}');
      expect(await getTree(store, 'runs/none/checkpoint', dest)).toBeNull();
    });
  });
}
