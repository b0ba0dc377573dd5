/**
 * The S3 server going away mid-upload, for real: s3rver's connections are dropped and it stops listening while a
 * multipart upload is between parts. Back within the retry budget (restarted on the same port and directory), the
 * put retries and succeeds; gone for longer, the put fails and nothing of it is visible — no object, and an older
 * object under the key unchanged. And a server that takes requests and never answers: each try is cut at its
 * limit and all of them at the policy's total.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAll, S3Store, s3Client, sha256Of, StoreTimeoutError } from '../src';
import { startS3rver, startSilentServer, type TestS3 } from '../src/testing';

const PART = 5 * 1024 * 1024;
let s3: TestS3;
const tmp = mkdtempSync(join(tmpdir(), 'aft-s3-faults-'));
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3?.close();
  rmSync(tmp, { recursive: true, force: true });
});

function bigFile(name: string, parts: number) {
  const bytes = randomBytes(parts * PART + 4321);
  const file = join(tmp, name);
  writeFileSync(file, bytes);
  return { bytes, file };
}

describe('the server going away mid-upload', () => {
  it('back within the retry budget: the put retries the parts in flight and completes', async () => {
    const { bytes, file } = bigFile('retry.bin', 8);
    const retries: string[] = [];
    let stopped = false;
    let restarted: Promise<void> = Promise.resolve();
    const store = await s3.store({
      partBytes: PART,
      concurrency: 2,
      onRetry: (what, e) => retries.push(`${what}: ${(e as Error).name}`),
      onProgress: (_k, done) => {
        if (stopped || done < 2 * PART) return;
        stopped = true;
        restarted = s3.stop().then(() => new Promise((r) => setTimeout(r, 1200)).then(() => s3.start()));
      },
    });
    const t0 = performance.now();
    const info = await store.put('ck/tensors.bin', { file });
    await restarted;
    expect(stopped).toBe(true);
    expect(retries.length).toBeGreaterThan(0);
    expect(retries.some((r) => /^part \d+\/9 of ck\/tensors\.bin/.test(r))).toBe(true);
    expect(info.sha256).toBe(sha256Of(bytes));
    expect(sha256Of(await readAll((await store.get('ck/tensors.bin')).body))).toBe(sha256Of(bytes));
    console.log(
      `[s3rver] ${(bytes.length / 2 ** 20).toFixed(0)} MiB put across a 1.2 s outage: ` +
        `${(performance.now() - t0).toFixed(0)} ms, ${retries.length} retried requests`,
    );
  });

  it('gone for longer: the put fails, and nothing of it is visible under the key', async () => {
    const { file } = bigFile('fail.bin', 6);
    let stopped = false;
    const store = await s3.store({
      partBytes: PART,
      concurrency: 2,
      retry: { attempts: 3, baseMs: 50, maxMs: 200 },
      onProgress: (_k, done) => {
        if (!stopped && done >= PART) {
          stopped = true;
          void s3.stop();
        }
      },
    });
    const old = await s3.store({ bucket: store.bucket });
    await old.put('ck/tensors.bin', Buffer.from('the previous checkpoint'));
    await expect(store.put('ck/tensors.bin', { file })).rejects.toThrow();
    await expect(store.put('ck/other.bin', { file })).rejects.toThrow(); // never started: refused at once
    await s3.start();
    expect(stopped).toBe(true);
    expect((await old.list('ck/')).map((o) => o.key)).toEqual(['ck/tensors.bin']);
    expect((await readAll((await old.get('ck/tensors.bin')).body)).toString()).toBe('the previous checkpoint');
    expect(await old.stat('ck/other.bin')).toBeNull();
  });

  it('a single-part put retries a refused connection until the server is back', async () => {
    const store = await s3.store({ retry: { attempts: 6, baseMs: 200, maxMs: 1000 } });
    await s3.stop();
    const back = new Promise((r) => setTimeout(r, 400)).then(() => s3.start());
    const info = await store.put('small/k', Buffer.from('small'));
    await back;
    expect(info.sha256).toBe(sha256Of(Buffer.from('small')));
    expect((await readAll((await store.get('small/k')).body)).toString()).toBe('small');
  });
});

describe('a server that never answers', () => {
  it('cuts each try at its limit and gives up at the total: put, get, stat and list fail within it', async () => {
    const silent = await startSilentServer();
    const client = s3Client(silent.env);
    const store = new S3Store({
      client,
      bucket: 'silent',
      requestTimeoutMs: 300,
      retry: { attempts: 50, baseMs: 20, maxMs: 50, totalMs: 1_000 },
    });
    try {
      for (const [what, op] of [
        ['put', () => store.put('k', Buffer.from('x'))],
        ['get', () => store.get('k')],
        ['stat', () => store.stat('k')],
        ['list', () => store.list('')],
      ] as const) {
        const before = silent.accepted();
        const t0 = performance.now();
        const e = await (op as () => Promise<unknown>)().catch((err: unknown) => err);
        const ms = performance.now() - t0;
        expect(e, what).toBeInstanceOf(StoreTimeoutError);
        expect(ms, what).toBeGreaterThan(800);
        expect(ms, what).toBeLessThan(2_500);
        expect(silent.accepted() - before, what).toBeGreaterThan(1); // tried again within the total
        console.log(`[silent s3] ${what}: gave up after ${ms.toFixed(0)} ms, ${silent.accepted() - before} tries`);
      }
    } finally {
      client.destroy();
      await silent.close();
    }
  });
});
