/**
 * The S3 backend (AWS S3, MinIO, R2, Ceph): an object is `<prefix><key>` in one bucket, its sha256 in the object's
 * own metadata (`x-amz-meta-sha256`), written in the same request as the bytes, so record and bytes never part.
 *
 * Up to one part's size an object is one PutObject (atomic in S3). Above it, a multipart upload: parts of bounded
 * size, a few at a time, each retried on its own; the upload is completed only when every part is in (S3 shows
 * nothing under the key before that) and aborted when it fails. A stream is spooled to a temporary file first when
 * it outgrows one part: the sha256 must be known when the upload starts, and a retried part must be read again.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline, type Readable } from 'node:stream';
import { pipeline as pipelineAsync } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DEFAULT_RETRY, StoreTimeoutError, withRetry, type RetryPolicy } from './retry';
import {
  ArtifactNotFoundError,
  BadKeyError,
  checkKey,
  checkPrefix,
  ChecksumMismatchError,
  MAX_KEY_BYTES,
  readAll,
  verifying,
  type ArtifactStore,
  type GetOptions,
  type GotInfo,
  type ListedObject,
  type ObjectInfo,
  type PutOptions,
  type PutSource,
} from './store';

const MiB = 1024 * 1024;
/** S3's smallest part (but the last) and the most parts an upload may have. */
const MIN_PART = 5 * MiB;
const MAX_PARTS = 10_000;

export interface S3StoreOptions {
  client: S3Client;
  bucket: string;
  /** Where under the bucket this store's keys start: '' or ending with '/'. */
  prefix?: string;
  /** Part size of multipart uploads (default 8 MiB, kept within 5–512 MiB); smaller objects are one PutObject. */
  partBytes?: number;
  /** Parts in flight at once (default 4): the memory a put holds is about this many parts. */
  concurrency?: number;
  /** Tries and total time of one request (default DEFAULT_RETRY: 6 tries within 60 s). */
  retry?: RetryPolicy;
  /**
   * Longest one try of a request may take before it is cut and tried again (default 30 s), plus 1 s per MiB of the
   * body it sends; the policy's total gets twice that allowance. A server that accepts and never answers costs a
   * caller this long, not the operating system's TCP timeouts.
   */
  requestTimeoutMs?: number;
  /** Hears of each request that failed and will be retried. */
  onRetry?: (what: string, e: unknown, attempt: number) => void;
  /** Hears of each part (or whole object) acknowledged by the server: bytes so far of `total`. */
  onProgress?: (key: string, done: number, total: number) => void;
}

/** Bytes this store has moved, for benches and logs. */
export interface Traffic {
  up: number;
  down: number;
}

interface Parts {
  size: number;
  read(offset: number, length: number): Promise<Buffer>;
  close(): Promise<void>;
}

const notFound = (e: unknown) => {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    err?.name === 'NoSuchKey' ||
    err?.name === 'NotFound' ||
    (err?.$metadata?.httpStatusCode === 404 && err.name !== 'NoSuchBucket')
  );
};

export class S3Store implements ArtifactStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly partBytes: number;
  readonly traffic: Traffic = { up: 0, down: 0 };
  private readonly client: S3Client;
  private readonly concurrency: number;
  private readonly policy: RetryPolicy;
  private readonly requestTimeoutMs: number;

  constructor(private readonly o: S3StoreOptions) {
    this.client = o.client;
    this.bucket = o.bucket;
    this.prefix = o.prefix ?? '';
    if (this.prefix && !this.prefix.endsWith('/')) this.prefix += '/';
    this.partBytes = Math.min(512 * MiB, Math.max(MIN_PART, o.partBytes ?? 8 * MiB));
    this.concurrency = Math.max(1, Math.min(16, o.concurrency ?? 4));
    this.policy = o.retry ?? DEFAULT_RETRY;
    this.requestTimeoutMs = o.requestTimeoutMs ?? 30_000;
    this.url = `s3://${this.bucket}/${this.prefix}`.replace(/\/$/, '');
  }

  private k(key: string): string {
    const Key = this.prefix + checkKey(key);
    if (Buffer.byteLength(Key) > MAX_KEY_BYTES)
      throw new BadKeyError(key, `with the store's prefix '${this.prefix}' it is longer than ${MAX_KEY_BYTES} bytes`);
    return Key;
  }

  /**
   * One request, tried as the policy says: each try is cut at its own limit (the signal aborts it) and all of them
   * at the policy's total. The timer stops when the answer's headers are in, so a body still streaming is not cut.
   */
  private send<T>(what: string, f: (abortSignal: AbortSignal) => Promise<T>, bytes = 0, once = false): Promise<T> {
    const allowance = Math.round((bytes / MiB) * 1000);
    const policy: RetryPolicy = {
      ...this.policy,
      ...(once && { attempts: 1 }),
      ...(this.policy.totalMs && { totalMs: this.policy.totalMs + 2 * allowance }),
    };
    return withRetry(
      async (_attempt, msLeft) => {
        const ms = Math.min(this.requestTimeoutMs + allowance, msLeft);
        if (ms <= 0) throw new StoreTimeoutError(what, policy.totalMs ?? 0);
        const ac = new AbortController();
        const timer = setTimeout(() => ac.abort(), ms);
        try {
          return await f(ac.signal);
        } catch (e) {
          throw ac.signal.aborted ? new StoreTimeoutError(what, ms, e) : e;
        } finally {
          clearTimeout(timer);
        }
      },
      policy,
      (e, attempt) => this.o.onRetry?.(what, e, attempt),
    );
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${this.k(key)}`;
  }

  async put(key: string, body: PutSource, opts: PutOptions = {}): Promise<ObjectInfo> {
    const Key = this.k(key);
    if (body instanceof Uint8Array) {
      const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
      return this.putParts(key, Key, await bufferParts(buf), opts);
    }
    if ('file' in body) return this.putParts(key, Key, await fileParts(body.file), opts);
    // a stream: kept in memory while it fits one part, else spooled to a file that retries can read again
    // (one iterator throughout: leaving a for-await loop early would destroy the stream)
    const it = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const chunks: Buffer[] = [];
    let n = 0;
    let ended = false;
    while (n <= this.partBytes) {
      const r = await it.next();
      if ((ended = Boolean(r.done))) break;
      chunks.push(r.value);
      n += r.value.length;
    }
    if (ended) return this.putParts(key, Key, await bufferParts(Buffer.concat(chunks)), opts);
    const dir = await mkdtemp(join(tmpdir(), 'aft-spool-'));
    try {
      const file = join(dir, 'body');
      await pipelineAsync(async function* () {
        yield* chunks;
        for (let r = await it.next(); !r.done; r = await it.next()) yield r.value;
      }, createWriteStream(file));
      return await this.putParts(key, Key, await fileParts(file), opts);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async putParts(key: string, Key: string, src: Parts, opts: PutOptions): Promise<ObjectInfo> {
    try {
      const sha256 = await hashParts(src, this.partBytes);
      if (opts.sha256 && opts.sha256 !== sha256)
        throw new ChecksumMismatchError(key, opts.sha256, sha256, ' (refused on write)');
      if (src.size <= this.partBytes) {
        const buf = await src.read(0, src.size);
        await this.send(
          `put ${Key}`,
          (abortSignal) =>
            this.client.send(
              new PutObjectCommand({
                Bucket: this.bucket,
                Key,
                Body: buf,
                ContentLength: buf.length,
                Metadata: { sha256 },
              }),
              { abortSignal },
            ),
          buf.length,
        );
        this.traffic.up += buf.length;
        this.o.onProgress?.(key, buf.length, buf.length);
      } else {
        // an upload the server lost (a restart that dropped it: NoSuchUpload) starts over, once or twice; other
        // failures have had their retries, part by part
        for (let attempt = 1; ; attempt++) {
          try {
            await this.multipart(key, Key, src, sha256);
            break;
          } catch (e) {
            if ((e as { name?: string }).name !== 'NoSuchUpload' || attempt >= 3) throw e;
            this.o.onRetry?.(`upload of ${Key}`, e, attempt);
          }
        }
      }
      return { key, bytes: src.size, sha256, modified: new Date() };
    } finally {
      await src.close();
    }
  }

  private async multipart(key: string, Key: string, src: Parts, sha256: string): Promise<void> {
    const size = src.size;
    const partBytes = Math.max(this.partBytes, Math.ceil(size / MAX_PARTS));
    const count = Math.ceil(size / partBytes);
    const created = await this.send(`create upload ${Key}`, (abortSignal) =>
      this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key, Metadata: { sha256 } }), {
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
        const r = await this.send(
          `part ${i + 1}/${count} of ${Key}`,
          (abortSignal) =>
            this.client.send(
              new UploadPartCommand({
                Bucket: this.bucket,
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
        this.traffic.up += buf.length;
        this.o.onProgress?.(key, (done += buf.length), size);
      }
    };
    try {
      // every lane settles before an abort, so that no part lands after it
      const lanes = await Promise.allSettled(
        Array.from({ length: Math.min(this.concurrency, count) }, () =>
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
      await this.send(`complete ${Key}`, (abortSignal) =>
        this.client.send(
          new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId, MultipartUpload: { Parts } }),
          { abortSignal },
        ),
      ).catch(async (e: unknown) => {
        // a retried complete whose first try did complete (its answer lost) finds no upload: the object is there
        if ((e as { name?: string }).name === 'NoSuchUpload' && (await this.stat(key))?.sha256 === sha256) return;
        throw e;
      });
    } catch (e) {
      failed = true;
      // best effort: the parts were never visible; a bucket lifecycle rule reaps any an abort cannot reach
      await this.send(
        `abort upload ${Key}`,
        (abortSignal) =>
          this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId }), { abortSignal }),
        0,
        true,
      ).catch(() => undefined);
      throw e;
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<{ info: GotInfo; body: Readable }> {
    const Key = this.k(key);
    const r = await this.send(`get ${Key}`, (abortSignal) =>
      this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key }), { abortSignal }),
    ).catch((e: unknown) => {
      throw notFound(e) ? new ArtifactNotFoundError(key) : e;
    });
    const raw = r.Body as Readable;
    const recorded = r.Metadata?.['sha256'] ?? null;
    const sha256 = opts.sha256 ?? recorded;
    if (!sha256 || (opts.sha256 && recorded && recorded !== opts.sha256)) {
      raw.destroy();
      throw new ChecksumMismatchError(key, sha256, null, sha256 ? ` (the object's metadata says ${recorded})` : '');
    }
    // no Content-Length: the size is unknown (null), never 0, and the stream is checked by its sha256 alone
    const bytes = r.ContentLength ?? null;
    const v = verifying(key, sha256, bytes);
    raw.on('data', (c: Buffer) => (this.traffic.down += c.length));
    // either end's failure or early close ends the other: a download abandoned midway frees its connection
    pipeline(raw, v, () => undefined);
    return { info: { key, bytes, sha256, modified: r.LastModified ?? new Date(0) }, body: v };
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const Key = this.k(key);
    try {
      const r = await this.send(`head ${Key}`, (abortSignal) =>
        this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }), { abortSignal }),
      );
      return {
        key,
        bytes: r.ContentLength ?? 0,
        sha256: r.Metadata?.['sha256'] ?? null,
        modified: r.LastModified ?? new Date(0),
      };
    } catch (e) {
      if (notFound(e)) return null;
      throw e;
    }
  }

  async list(prefix: string): Promise<ListedObject[]> {
    const Prefix = this.prefix + checkPrefix(prefix);
    const out: ListedObject[] = [];
    let ContinuationToken: string | undefined;
    do {
      // keys come back %-escaped (XML cannot carry every character a key may hold), when the server did escape them
      const r = await this.send(`list ${Prefix}`, (abortSignal) =>
        this.client.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix, ContinuationToken, EncodingType: 'url' }),
          { abortSignal },
        ),
      );
      const decode = r.EncodingType === 'url' ? urlDecoded : (k: string) => k;
      for (const o of r.Contents ?? [])
        out.push({
          key: decode(o.Key!).slice(this.prefix.length),
          bytes: o.Size ?? 0,
          modified: o.LastModified ?? new Date(0),
        });
      ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    const Key = this.k(key);
    await this.send(`delete ${Key}`, (abortSignal) =>
      this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key }), { abortSignal }),
    );
  }

  async deletePrefix(prefix: string): Promise<number> {
    if (!prefix.endsWith('/')) throw new Error(`deletePrefix takes a folder ('${prefix}/'), not '${prefix}'`);
    const keys = (await this.list(prefix)).map((o) => o.key);
    // one DeleteObject each, a few at a time: DeleteObjects' Content-MD5 rules differ across S3 servers
    let i = 0;
    await Promise.all(
      Array.from({ length: Math.min(8, keys.length) }, async () => {
        while (i < keys.length) await this.delete(keys[i++]!);
      }),
    );
    return keys.length;
  }

  /** A small object read whole and verified (manifests). */
  async getBuffer(key: string): Promise<Buffer> {
    return readAll((await this.get(key)).body);
  }
}

/** A key as ListObjectsV2 gives it with `encoding-type=url`: form-encoded, `+` for a space (as botocore reads it). */
const urlDecoded = (k: string) => decodeURIComponent(k.replace(/\+/g, ' '));

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
