/**
 * The artifact store's contract (docs/architecture.md, "The artifact store"): named objects (checkpoint files,
 * sample sets, uploaded MLflow artifacts) with a sha256 recorded beside each, checked on every read. Two backends
 * keep it: a local directory (fs-store.ts) and an S3-compatible bucket (s3-store.ts); test/contract.ts holds both to
 * the same tests.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';

export interface ObjectInfo {
  key: string;
  bytes: number;
  /** The sha256 recorded when the object was written; null only for files the filesystem backend did not write. */
  sha256: string | null;
  modified: Date;
}

/** A listing's entry: S3 lists no metadata, so no sha256 here (stat has it). */
export type ListedObject = Omit<ObjectInfo, 'sha256'>;

/** What `get` says of the object: its size is null when the server did not say (no Content-Length). */
export type GotInfo = Omit<ObjectInfo, 'bytes'> & { bytes: number | null };

export interface GetOptions {
  /**
   * The sha256 the caller recorded for the key (a database row): the bytes are verified against it, and refused
   * at once when the store recorded another — what is served is what the caller recorded, not whatever the key
   * holds now. It also verifies a file the filesystem backend holds no record of.
   */
  sha256?: string;
}

export interface PutOptions {
  /** What the caller already knows the bytes hash to: the put is refused (and nothing written) when they do not. */
  sha256?: string;
}

/** A body to store: bytes, a stream (read once, to its end) or a file on this machine. */
export type PutSource = Uint8Array | Readable | { file: string };

export interface ArtifactStore {
  /** `file:///…` or `s3://bucket/prefix`: where this store keeps its objects. */
  readonly url: string;
  /** The object's address as artifact records hold it (`s3://bucket/prefix/key`, `file:///root/key`). */
  uri(key: string): string;
  /** Writes the object whole or not at all: a reader sees the old object or the new one, never part of one. */
  put(key: string, body: PutSource, opts?: PutOptions): Promise<ObjectInfo>;
  /**
   * The object's bytes as a stream that fails (with ChecksumMismatchError) instead of ending when they do not hash
   * to the recorded sha256; its last chunk is held back until they do, so a consumer never has every byte of a
   * corrupt object. Throws ArtifactNotFoundError for a missing key.
   */
  get(key: string, opts?: GetOptions): Promise<{ info: GotInfo; body: Readable }>;
  stat(key: string): Promise<ObjectInfo | null>;
  /** Every object whose key starts with `prefix` (a plain string prefix, as S3's), sorted by key. */
  list(prefix: string): Promise<ListedObject[]>;
  /** Removes the object; a missing one is not an error. */
  delete(key: string): Promise<void>;
  /** Removes every object under `prefix` (which must end with `/`); returns how many were removed. */
  deletePrefix(prefix: string): Promise<number>;
}

export class ArtifactNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`no artifact at '${key}'`);
  }
}

/** The bytes read do not hash to the sha256 recorded with them (or none was recorded where one must be). */
export class ChecksumMismatchError extends Error {
  constructor(
    readonly key: string,
    readonly expected: string | null,
    /** What the bytes hashed to; null when they were refused before being read (a size that differs already). */
    readonly actual: string | null,
    detail = '',
  ) {
    super(
      expected === null
        ? `artifact '${key}' has no recorded sha256${detail}; refusing to read it unverified`
        : `artifact '${key}' failed its checksum: recorded sha256 ${expected}${actual ? `, read ${actual}` : ''}${detail}`,
    );
  }
}

/** A file where a folder must be, or a folder where a file must be (the filesystem backend only). */
export class KeyConflictError extends Error {
  constructor(
    readonly key: string,
    /** `file-above`: a file stands where the key needs a folder; `folder`: the key itself is a folder. */
    readonly kind: 'file-above' | 'folder',
  ) {
    super(
      `cannot store '${key}': ${kind === 'file-above' ? 'a file is in the way of its folder' : `'${key}' is a folder, so it cannot be a file`}`,
    );
  }
}

/** Control characters and the bidirectional-text overrides and isolates (U+202A–202E, U+2066–2069). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const INVISIBLE = /[\x00-\x1f\x7f\u202a-\u202e\u2066-\u2069]/g;

/** A key as an error message may show it: the invisible characters escaped, at most 200 characters. */
export const shownKey = (key: string): string =>
  key.slice(0, 200).replace(INVISIBLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** A key no backend may hold, and why (`reason` completes "the key …", for messages naming the caller's field). */
export class BadKeyError extends Error {
  constructor(
    readonly key: string,
    readonly reason: string,
  ) {
    super(`bad artifact key '${shownKey(key)}': ${reason}`);
  }
}

/** The top-level name the filesystem backend keeps its own files under (records, locks, temporary files). */
export const RESERVED = '.aft';

/** A name's most bytes on the filesystems the store runs on (ext4, xfs, NFS): the fs backend adds nothing to it. */
export const MAX_NAME_BYTES = 255;
/** S3's most bytes in a key (the S3 backend counts its prefix in). */
export const MAX_KEY_BYTES = 1024;

/**
 * Refuses keys that could escape a root, differ in meaning between the backends, fail on a filesystem rather than
 * here (a name past 255 bytes), or read differently than they are (control and bidi characters, which S3's XML
 * listing cannot carry either).
 */
export function checkKey(key: string): string {
  const why = keyProblem(key);
  if (why) throw new BadKeyError(key, why);
  return key;
}

function keyProblem(key: string): string | null {
  if (!key) return 'it is empty';
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) return `it is longer than ${MAX_KEY_BYTES} bytes`;
  if (/[\\]/.test(key)) return "it holds a '\\'";
  if (new RegExp(INVISIBLE.source).test(key))
    return 'it holds a control character or a bidirectional-text control (U+202A–202E, U+2066–2069)';
  const parts = key.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return "a name in it is empty, '.' or '..'";
  if (parts[0] === RESERVED) return `it is under '${RESERVED}/', which the store keeps for itself`;
  if (parts.some((p) => Buffer.byteLength(p) > MAX_NAME_BYTES))
    return `a name in it is longer than ${MAX_NAME_BYTES} bytes`;
  return null;
}

/** A prefix for list/deletePrefix: empty, or a key's start (a trailing `/` allowed). */
export function checkPrefix(prefix: string): string {
  if (prefix !== '') checkKey(prefix.endsWith('/') ? prefix.slice(0, -1) : prefix);
  return prefix;
}

/**
 * A pass-through that hashes what flows and checks it at the end. It holds the latest chunk back until the next
 * arrives, and the final one until the digest matches: a corrupt object's stream fails one chunk short.
 */
export function verifying(key: string, expected: string | null, bytes: number | null): Transform {
  const hash = createHash('sha256');
  let held: Buffer | null = null;
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      hash.update(chunk);
      seen += chunk.length;
      const out = held;
      held = chunk;
      done(null, out ?? undefined);
    },
    flush(done: TransformCallback) {
      const actual = hash.digest('hex');
      if (expected === null || actual !== expected) return done(new ChecksumMismatchError(key, expected, actual));
      if (bytes !== null && seen !== bytes)
        return done(new ChecksumMismatchError(key, expected, actual, ` (${seen} bytes read, ${bytes} recorded)`));
      if (held) this.push(held);
      done();
    },
  });
}

/** Reads a stream to its end as one buffer (for small objects: manifests, tests). */
export async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export const sha256Of = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
