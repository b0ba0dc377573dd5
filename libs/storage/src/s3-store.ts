/**
 * The S3 backend (AWS S3, MinIO, R2, Ceph): an object is `<prefix><key>` in one bucket, its sha256 in the object's
 * own metadata (`x-amz-meta-sha256`), written in the same request as the bytes, so record and bytes never part.
 * Writes, and how they split into parts, are s3-upload.ts; how one request is tried and cut, s3-request.ts.
 */
import { pipeline, type Readable } from 'node:stream';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
} from '@aws-sdk/client-s3';
import { DEFAULT_RETRY, type RetryPolicy } from './retry';
import { MiB, sender, type Send, type Traffic } from './s3-request';
import { upload, type UploadTarget } from './s3-upload';
import {
  ArtifactNotFoundError,
  BadKeyError,
  checkKey,
  checkPrefix,
  ChecksumMismatchError,
  MAX_KEY_BYTES,
  readAll,
  verifying,
} from './store';
import type { ArtifactStore, GetOptions, GotInfo, ListedObject, ObjectInfo, PutOptions, PutSource } from './store';

/** S3's smallest part (but the last). */
const MIN_PART = 5 * MiB;

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
  private readonly send: Send;
  private readonly uploads: UploadTarget;

  constructor(o: S3StoreOptions) {
    this.client = o.client;
    this.bucket = o.bucket;
    this.prefix = o.prefix ?? '';
    if (this.prefix && !this.prefix.endsWith('/')) this.prefix += '/';
    this.partBytes = Math.min(512 * MiB, Math.max(MIN_PART, o.partBytes ?? 8 * MiB));
    const onRetry = (what: string, e: unknown, attempt: number) => o.onRetry?.(what, e, attempt);
    this.send = sender(o.retry ?? DEFAULT_RETRY, o.requestTimeoutMs ?? 30_000, onRetry);
    this.uploads = {
      client: this.client,
      bucket: this.bucket,
      partBytes: this.partBytes,
      concurrency: Math.max(1, Math.min(16, o.concurrency ?? 4)),
      traffic: this.traffic,
      send: this.send,
      onRetry,
      onProgress: (key, done, total) => o.onProgress?.(key, done, total),
      stat: (key) => this.stat(key),
    };
    this.url = `s3://${this.bucket}/${this.prefix}`.replace(/\/$/, '');
  }

  private k(key: string): string {
    const Key = this.prefix + checkKey(key);
    if (Buffer.byteLength(Key) > MAX_KEY_BYTES)
      throw new BadKeyError(key, `with the store's prefix '${this.prefix}' it is longer than ${MAX_KEY_BYTES} bytes`);
    return Key;
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${this.k(key)}`;
  }

  async put(key: string, body: PutSource, opts: PutOptions = {}): Promise<ObjectInfo> {
    return upload(this.uploads, key, this.k(key), body, opts);
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
