/**
 * The S3 backend's writes. Up to one part's size an object is one PutObject (atomic in S3). Above it, a multipart
 * upload: parts of bounded size, a few at a time, each retried on its own; the upload is completed only when every
 * part is in (S3 shows nothing under the key before that) and aborted when it fails. A stream is spooled to a
 * temporary file first when it outgrows one part: the sha256 must be known when the upload starts, and a retried
 * part must be read again.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { Send, Traffic } from './s3-request';
import { ChecksumMismatchError, type ObjectInfo, type PutOptions, type PutSource } from './store';

/** The most parts an upload may have. */
const MAX_PARTS = 10_000;

/** What an upload needs of the store it writes to. */
export interface UploadTarget {
  client: S3Client;
  bucket: string;
  partBytes: number;
  /** Parts in flight at once. */
  concurrency: number;
  traffic: Traffic;
  send: Send;
  onRetry(what: string, e: unknown, attempt: number): void;
  onProgress(key: string, done: number, total: number): void;
  /** For a complete whose answer was lost: the object's recorded sha256 says whether it did complete. */
  stat(key: string): Promise<ObjectInfo | null>;
}

interface Parts {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Writes `body` at `Key` (the caller's `key` under the store's prefix), whole or not at all. */
export async function upload(
  t: UploadTarget,
  key: string,
  Key: string,
  body: PutSource,
  opts: PutOptions,
): Promise<ObjectInfo> {
  if (body instanceof Uint8Array) {
    const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    return putParts(t, key, Key, await bufferParts(buf), opts);
  }
  if ('file' in body) return putParts(t, key, Key, await fileParts(body.file), opts);
  // a stream: kept in memory while it fits one part, else spooled to a file that retries can read again
  // (one iterator throughout: leaving a for-await loop early would destroy the stream)
  const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let n = 0;
  let ended = false;
  while (n <= t.partBytes) {
    const r = await it.next();
    if ((ended = Boolean(r.done))) break;
    chunks.push(r.value);
    n += r.value.length;
  }
  if (ended) return putParts(t, key, Key, await bufferParts(Buffer.concat(chunks)), opts);
  const dir = await mkdtemp(join(tmpdir(), 'aft-spool-'));
  try {
    const file = join(dir, 'body');
    await pipelineAsync(async function* () {
      yield* chunks;
      for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
    }, createWriteStream(file));
    return await putParts(t, key, Key, await fileParts(file), opts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function putParts(t: UploadTarget, key: string, Key: string, src: Parts, opts: PutOptions): Promise<ObjectInfo> {
  try {
    const sha256 = await hashParts(src, t.partBytes);
    if (opts.sha256 && opts.sha256 !== sha256)
      throw new ChecksumMismatchError(key, opts.sha256, sha256, ' (refused on write)');
    if (src.size <= t.partBytes) {
      const buf = await src.read(0, src.size);
      await t.send(
        `put ${Key}`,
        (abortSignal) =>
          t.client.send(
            new PutObjectCommand({ Bucket: t.bucket, Key, Body: buf, ContentLength: buf.length, Metadata: { sha256 } }),
            { abortSignal },
          ),
        buf.length,
      );
      t.traffic.up += buf.length;
      t.onProgress(key, buf.length, buf.length);
    } else {
      // an upload the server lost (a restart that dropped it: NoSuchUpload) starts over, once or twice; other
      // failures have had their retries, part by part
      for (let attempt = 1; ; attempt++) {
        try {
          await multipart(t, key, Key, src, sha256);
          break;
        } catch (e) {
          if ((e as { name?: string }).name !== 'NoSuchUpload' || attempt >= 3) throw e;
          t.onRetry(`upload of ${Key}`, e, attempt);
        }
      }
    }
    return { key, bytes: src.size, sha256, modified: new Date() };
  } finally {
    await src.close();
  }
}

async function multipart(t: UploadTarget, key: string, Key: string, src: Parts, sha256: string): Promise<void> {
  const size = src.size;
  const partBytes = Math.max(t.partBytes, Math.ceil(size / MAX_PARTS));
  const count = Math.ceil(size / partBytes);
  const created = await t.send(`create upload ${Key}`, (abortSignal) =>
    t.client.send(new CreateMultipartUploadCommand({ Bucket: t.bucket, Key, Metadata: { sha256 } }), {
      abortSignal,
    }),
  );
  const UploadId = created.UploadId!;
  const etags: string[] = new Array<string>(count);
  // the file is hashed again as its parts are read, in order: one that changed since the put began is refused
  const again = createHash('sha256');
  let reading = Promise.resolve();
  let next = 0;
  let done = 0;
  let failed = false;
  const readPart = (i: number) => {
    const p = reading.then(async () => {
      const buf = await src.read(i * partBytes, Math.min(partBytes, size - i * partBytes));
      again.update(buf);
      return buf;
    });
    reading = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  };
  const lane = async () => {
    while (next < count && !failed) {
      const i = next++;
      const buf = await readPart(i);
      const r = await t.send(
        `part ${i + 1}/${count} of ${Key}`,
        (abortSignal) =>
          t.client.send(
            new UploadPartCommand({
              Bucket: t.bucket,
              Key,
              UploadId,
              PartNumber: i + 1,
              Body: buf,
              ContentLength: buf.length,
            }),
            { abortSignal },
          ),
        buf.length,
      );
      etags[i] = r.ETag!;
      t.traffic.up += buf.length;
      t.onProgress(key, (done += buf.length), size);
    }
  };
  try {
    // every lane settles before an abort, so that no part lands after it
    const lanes = await Promise.allSettled(
      Array.from({ length: Math.min(t.concurrency, count) }, () =>
        lane().catch((e: unknown) => {
          failed = true;
          throw e;
        }),
      ),
    );
    const lost = lanes.find((l) => l.status === 'rejected');
    if (lost) throw lost.reason;
    if (again.digest('hex') !== sha256) throw new Error(`'${key}' changed while it was being uploaded`);
    const Parts = etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 }));
    await t
      .send(`complete ${Key}`, (abortSignal) =>
        t.client.send(
          new CompleteMultipartUploadCommand({ Bucket: t.bucket, Key, UploadId, MultipartUpload: { Parts } }),
          { abortSignal },
        ),
      )
      .catch(async (e: unknown) => {
        // a retried complete whose first try did complete (its answer lost) finds no upload: the object is there
        if ((e as { name?: string }).name === 'NoSuchUpload' && (await t.stat(key))?.sha256 === sha256) return;
        throw e;
      });
  } catch (e) {
    failed = true;
    // best effort: the parts were never visible; a bucket lifecycle rule reaps any an abort cannot reach
    await t
      .send(
        `abort upload ${Key}`,
        (abortSignal) =>
          t.client.send(new AbortMultipartUploadCommand({ Bucket: t.bucket, Key, UploadId }), { abortSignal }),
        0,
        true,
      )
      .catch(() => undefined);
    throw e;
  }
}

async function bufferParts(buf: Buffer): Promise<Parts> {
  return {
    size: buf.length,
    read: async (offset, length) => buf.subarray(offset, offset + length),
    close: async () => undefined,
  };
}

async function fileParts(file: string): Promise<Parts> {
  const fh = await open(file, 'r');
  const { size } = await fh.stat();
  return {
    size,
    async read(offset, length) {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) throw new Error(`${file} shrank while it was being uploaded`);
        got += bytesRead;
      }
      return buf;
    },
    close: () => fh.close(),
  };
}

/** The sha256 of a source, read a part at a time (it goes in the upload's metadata, so it comes first). */
async function hashParts(src: Parts, partBytes: number): Promise<string> {
  const h = createHash('sha256');
  for (let o = 0; o < src.size; o += partBytes) h.update(await src.read(o, Math.min(partBytes, src.size - o)));
  return h.digest('hex');
}
