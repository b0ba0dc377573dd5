/**
 * The S3 backend against the store contract, over HTTP to a real S3 protocol server (s3rver) the test starts:
 * a bucket per test. And what is its own: an object written around the store (a raw PutObject) is refused, with
 * or without a forged sha256, and parts are bounded.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChecksumMismatchError, readAll, s3Client, sha256Of } from '../src';
import { startS3rver, type TestS3 } from '../src/testing';
import { storeContract } from './contract';

const PART = 5 * 1024 * 1024;
let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3?.close();
});

storeContract('s3', async () => {
  const store = await s3.store({ partBytes: PART, prefix: 'team/' });
  return {
    store,
    partBytes: PART,
    tamper: async (key, bytes) => writeFileSync(s3.objectFile(store.bucket, `team/${key}`), bytes),
  };
});

describe('s3 backend', () => {
  it('refuses an object overwritten around the store: no sha256 recorded, or a forged one', async () => {
    const store = await s3.store();
    const raw = s3Client(s3.env);
    await store.put('x/k', Buffer.from('through the store'));
    await raw.send(new PutObjectCommand({ Bucket: store.bucket, Key: 'x/k', Body: 'around it' }));
    await expect(store.get('x/k')).rejects.toThrow("artifact 'x/k' has no recorded sha256; refusing to read it");
    await raw.send(
      new PutObjectCommand({
        Bucket: store.bucket,
        Key: 'x/k',
        Body: 'around it',
        Metadata: { sha256: sha256Of(Buffer.from('through the store')) },
      }),
    );
    await expect(readAll((await store.get('x/k')).body)).rejects.toThrow(ChecksumMismatchError);
    raw.destroy();
  });

  it('keeps its keys under the URL prefix, and names objects by s3:// URI', async () => {
    const store = await s3.store({ prefix: 'a/b' });
    await store.put('k', Buffer.from('x'));
    expect(store.url).toBe(`s3://${store.bucket}/a/b`);
    expect(store.uri('k')).toBe(`s3://${store.bucket}/a/b/k`);
    expect((await store.list('')).map((o) => o.key)).toEqual(['k']);
  });

  it('a download abandoned midway gives its connection back (more than the pool holds, none left hanging)', async () => {
    const store = await s3.store();
    await store.put('big/abandoned.bin', randomBytes(3 * 1024 * 1024));
    for (let i = 0; i < 80; i++) {
      const { body } = await store.get('big/abandoned.bin');
      await new Promise((r) => body.once('readable', r));
      body.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(await s3.connections()).toBeLessThan(5); // 17 when abandoned responses were left open
  }, 30_000);

  it('uploads 64 MiB in bounded parts and streams it back (timed)', async () => {
    const store = await s3.store({ partBytes: 8 * 1024 * 1024 });
    const big = randomBytes(64 * 1024 * 1024);
    const parts: number[] = [];
    const traced = await s3.store({
      bucket: store.bucket,
      partBytes: 8 * 1024 * 1024,
      onProgress: (_k, d) => parts.push(d),
    });
    let t0 = performance.now();
    await traced.put('big/64m.bin', big);
    const up = performance.now() - t0;
    expect(parts).toHaveLength(8);
    t0 = performance.now();
    const got = await readAll((await traced.get('big/64m.bin')).body);
    const down = performance.now() - t0;
    expect(sha256Of(got)).toBe(sha256Of(big));
    expect(traced.traffic).toEqual({ up: big.length, down: big.length });
    console.log(`[s3rver] 64 MiB multipart put: ${up.toFixed(0)} ms; streamed get, verified: ${down.toFixed(0)} ms`);
  });
});
