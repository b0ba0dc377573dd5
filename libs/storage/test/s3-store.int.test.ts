/**
 * The S3 backend against the store contract, over HTTP to a real S3 protocol server (s3rver) the test starts:
 * a bucket per test. And what is its own: an object written around the store (a raw PutObject) is refused, with
 * or without a forged sha256, unless the caller gives the sha256 it recorded; parts are bounded; keys count the
 * prefix against S3's 1024 bytes; listings read %-escaped keys; a get without Content-Length has no size.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadKeyError, ChecksumMismatchError, readAll, S3Store, s3Client, sha256Of } from '../src';
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
    // s3rver keeps an object as files named `<name>._S3rver_metadata.json` and the like
    longestName: 229,
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
    // the caller's own record of the bytes verifies them when the object has none
    await raw.send(new PutObjectCommand({ Bucket: store.bucket, Key: 'x/k', Body: 'around it' }));
    const ok = await store.get('x/k', { sha256: sha256Of(Buffer.from('around it')) });
    expect((await readAll(ok.body)).toString()).toBe('around it');
    raw.destroy();
  });

  it("counts the store's prefix against S3's 1024 bytes: a longer key is a BadKeyError, not the server's error", async () => {
    const store = await s3.store({ prefix: 'team/' });
    const key = `${'a'.repeat(250)}/${'b'.repeat(250)}/${'c'.repeat(250)}/${'d'.repeat(250)}/e123456789012345`;
    expect(Buffer.byteLength(key)).toBe(1020);
    await store.put(key.slice(0, -1), Buffer.from('1018 + 5 bytes'));
    const e = await store.put(key, Buffer.from('x')).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(BadKeyError);
    expect((e as BadKeyError).reason).toBe("with the store's prefix 'team/' it is longer than 1024 bytes");
    expect(store.traffic.up).toBe(Buffer.byteLength('1018 + 5 bytes'));
  });

  /** A client on the test server whose answers `edit` changes, as another S3 implementation would give them. */
  function editedClient(command: string, edit: (output: Record<string, unknown>) => void): S3Client {
    const client = s3Client(s3.env);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const r = await next(args);
        if (context.commandName === command) edit(r.output as unknown as Record<string, unknown>);
        return r;
      },
      { step: 'initialize' },
    );
    return client;
  }

  it('lists keys exactly: as s3rver gives them, and %-escaped as AWS does with encoding-type=url', async () => {
    const keys = ['k/a b', 'k/a+b', 'k/100%', 'k/x&y=z', 'k/é'];
    const plain = await s3.store({ prefix: 'p/' });
    for (const k of keys) await plain.put(k, Buffer.from(k));
    expect((await plain.list('k/')).map((o) => o.key)).toEqual([...keys].sort());
    // what AWS sends for encoding-type=url: each key form-encoded, a space as '+'
    const escaping = new S3Store({
      client: editedClient('ListObjectsV2Command', (o) => {
        o['EncodingType'] = 'url';
        for (const c of (o['Contents'] ?? []) as { Key: string }[])
          c.Key = encodeURIComponent(c.Key).replace(/%2F/g, '/').replace(/%20/g, '+');
      }),
      bucket: plain.bucket,
      prefix: 'p/',
    });
    expect((await escaping.list('k/')).map((o) => o.key)).toEqual([...keys].sort());
  });

  it('a get answered without Content-Length has no size (null, never 0) and is still verified', async () => {
    const plain = await s3.store();
    const body = randomBytes(50_000);
    await plain.put('n/k', body);
    const store = new S3Store({
      client: editedClient('GetObjectCommand', (o) => delete o['ContentLength']),
      bucket: plain.bucket,
    });
    const got = await store.get('n/k');
    expect(got.info.bytes).toBeNull();
    expect(sha256Of(await readAll(got.body))).toBe(sha256Of(body));
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
