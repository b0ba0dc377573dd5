/**
 * The filesystem backend: an object is the file `<root>/<key>`, so a directory laid out as before (the worker's
 * `runs/<id>/…`) is a store as it stands. Its own files live under `<root>/.aft/` (fs-records.ts): a record of each
 * object's sha256, the locks of writers, and writes in progress in `.aft/tmp/`, on the same filesystem, so that an
 * object appears by one rename and a listing never shows half a file.
 *
 * A file the store did not write (one from before it, or copied in by hand) has no record: it is read unverified
 * (unless the caller says what sha256 it expects) and its stat says sha256 null. A file changed after the store
 * wrote it fails its checksum on read.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pipeline as pipelineCb, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { code, FsRecords, type FsRecord } from './fs-records';
import {
  ArtifactNotFoundError,
  checkKey,
  checkPrefix,
  ChecksumMismatchError,
  KeyConflictError,
  RESERVED,
  verifying,
} from './store';
import type { ArtifactStore, GetOptions, GotInfo, ListedObject, ObjectInfo, PutOptions, PutSource } from './store';

interface Sidecar {
  sha256: string;
  bytes: number;
}

const missing = (e: unknown) => ['ENOENT', 'ENOTDIR', 'EISDIR'].includes(code(e) ?? '');

/** How often a reader that caught a writer between its two renames looks again (the writer holds them for ms). */
const REREADS = 8;

/** An open object: the file pinned by its handle, and the record that goes with those bytes (or none). */
interface Opened {
  fh: FileHandle;
  size: number;
  modified: Date;
  rec: FsRecord | null;
}

/** Writes `body` to `file`, hashing it on the way, and flushes it to disk before anyone may rename it into place. */
export async function writeHashed(file: string, body: PutSource): Promise<Sidecar> {
  const hash = createHash('sha256');
  let bytes = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _e, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const source =
    body instanceof Uint8Array
      ? Readable.from([Buffer.from(body)])
      : 'file' in body
        ? createReadStream(body.file)
        : body;
  await pipeline(source, counter, createWriteStream(file));
  const fh = await open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** Writes a small file and flushes it, so that a rename of it never publishes an empty one after a crash. */
async function writeSynced(file: string, data: string | Buffer): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export class FsStore implements ArtifactStore {
  readonly root: string;
  readonly url: string;
  private readonly records: FsRecords;
  /** The sweep of crashed writes' leftovers, started on open; writes wait for it (it never fails). */
  private readonly swept: Promise<void>;

  constructor(root: string) {
    this.root = resolve(root);
    this.url = pathToFileURL(this.root).href;
    this.records = new FsRecords(this.root);
    this.swept = this.records.sweep().catch(() => undefined);
  }

  private path(key: string): string {
    return join(this.root, ...checkKey(key).split('/'));
  }

  uri(key: string): string {
    return pathToFileURL(this.path(key)).href;
  }

  async put(key: string, body: PutSource, opts: PutOptions = {}): Promise<ObjectInfo> {
    const dest = this.path(key);
    await this.swept;
    await mkdir(this.records.tmp, { recursive: true });
    const tmp = join(this.records.tmp, randomBytes(8).toString('hex'));
    const recordFile = this.records.file(key);
    try {
      const written = await writeHashed(tmp, body);
      if (opts.sha256 && opts.sha256 !== written.sha256)
        throw new ChecksumMismatchError(key, opts.sha256, written.sha256, ' (refused on write)');
      await mkdir(dirname(dest), { recursive: true }).catch((e: unknown) => {
        throw code(e) === 'EEXIST' || code(e) === 'ENOTDIR' ? new KeyConflictError(key, 'file-above') : e;
      });
      if ((await stat(dest).catch(() => null))?.isDirectory()) throw new KeyConflictError(key, 'folder');
      // a rename keeps the inode and the mtime: the record can name the bytes it goes with before they move
      const st = await stat(tmp, { bigint: true });
      const rec: FsRecord = { key, ...written, ino: String(st.ino) };
      await mkdir(dirname(recordFile), { recursive: true });
      await writeSynced(`${tmp}.json`, JSON.stringify(rec));
      await this.records.locked(key, async () => {
        // the record first, then the bytes: a crash between leaves an old file failing its new checksum (refused),
        // never new bytes passing unverified; a reader between the two sees the record name other bytes, and waits
        const previous = await readFile(recordFile).catch((e: unknown) => {
          if (code(e) === 'ENOENT') return null;
          throw e;
        });
        await rename(`${tmp}.json`, recordFile);
        try {
          await rename(tmp, dest);
        } catch (e) {
          await (previous ? writeSynced(recordFile, previous) : rm(recordFile, { force: true })).catch(() => undefined);
          throw ['EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EEXIST'].includes(code(e) ?? '')
            ? new KeyConflictError(key, 'folder')
            : e;
        }
      });
      return { key, ...written, modified: st.mtime };
    } finally {
      await rm(tmp, { force: true });
      await rm(`${tmp}.json`, { force: true });
    }
  }

  /**
   * Opens the object with the record of the bytes opened. A record naming another inode is a writer between its
   * two renames: looked at again, briefly. Still another after that (a crash between them, a file moved in by
   * hand, a copy of the directory): the bytes are checked against the record as they are.
   */
  private async open(key: string): Promise<Opened> {
    const path = this.path(key);
    for (let i = 0; ; i++) {
      const fh = await open(path, 'r').catch((e: unknown) => {
        throw missing(e) ? new ArtifactNotFoundError(key) : e;
      });
      try {
        const st = await fh.stat({ bigint: true });
        if (!st.isFile()) throw new ArtifactNotFoundError(key);
        const rec = await this.records.read(key);
        if (!rec || rec.ino === String(st.ino) || i >= REREADS)
          return { fh, size: Number(st.size), modified: st.mtime, rec };
      } catch (e) {
        await fh.close();
        throw e;
      }
      await fh.close();
      await sleep(2 ** i);
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<{ info: GotInfo; body: Readable }> {
    const { fh, size, modified, rec } = await this.open(key);
    const expected = opts.sha256 ?? rec?.sha256 ?? null;
    const refuse = async (detail: string) => {
      await fh.close();
      throw new ChecksumMismatchError(key, expected, null, detail);
    };
    if (rec && opts.sha256 && rec.sha256 !== opts.sha256) await refuse(` (the store recorded ${rec.sha256})`);
    if (rec && rec.bytes !== size) await refuse(` (${size} bytes on disk, ${rec.bytes} recorded)`);
    const raw = fh.createReadStream();
    let body: Readable = raw;
    if (expected) {
      const v = verifying(key, expected, size);
      // either end's failure or early close ends the other (and closes the file)
      pipelineCb(raw, v, () => undefined);
      body = v;
    }
    return { info: { key, bytes: size, sha256: expected, modified }, body };
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    let o: Opened;
    try {
      o = await this.open(key);
    } catch (e) {
      if (e instanceof ArtifactNotFoundError) return null;
      throw e;
    }
    await o.fh.close();
    return { key, bytes: o.size, sha256: o.rec?.sha256 ?? null, modified: o.modified };
  }

  async list(prefix: string): Promise<ListedObject[]> {
    checkPrefix(prefix);
    const cut = prefix.lastIndexOf('/');
    const base = cut >= 0 ? prefix.slice(0, cut) : '';
    const out: ListedObject[] = [];
    const walk = async (dirKey: string): Promise<void> => {
      const dir = dirKey ? join(this.root, ...dirKey.split('/')) : this.root;
      const entries = await readdir(dir, { withFileTypes: true }).catch((e: unknown) => {
        if (missing(e)) return [];
        throw e;
      });
      for (const d of entries) {
        if (!dirKey && d.name === RESERVED) continue;
        const key = dirKey ? `${dirKey}/${d.name}` : d.name;
        if (d.isDirectory()) {
          if (`${key}/`.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(key);
        } else if (d.isFile() && key.startsWith(prefix)) {
          const st = await stat(join(dir, d.name)).catch(() => null);
          if (st) out.push({ key, bytes: st.size, modified: st.mtime });
        }
      }
    };
    await walk(base);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    const path = this.path(key);
    // under the key's lock: a put between the two removals would be left without its record
    await this.records.locked(key, async () => {
      await unlink(path).catch((e: unknown) => {
        if (!missing(e)) throw e;
      });
      await rm(this.records.file(key), { force: true });
    });
    // folders the object was the last file of go too, as they would in a bucket (never the root)
    for (let dir = dirname(path); dir.startsWith(this.root + '/') && dir !== this.root; dir = dirname(dir)) {
      if (
        !(await rmdir(dir).then(
          () => true,
          () => false,
        ))
      )
        break;
    }
  }

  async deletePrefix(prefix: string): Promise<number> {
    if (!prefix.endsWith('/')) throw new Error(`deletePrefix takes a folder ('${prefix}/'), not '${prefix}'`);
    const keys = (await this.list(checkPrefix(prefix))).map((o) => o.key);
    // the records first, then the folder: a crash between leaves files without records (removed by the next
    // delete), not records that would refuse a later file at their key
    for (const key of keys) await rm(this.records.file(key), { force: true });
    await rm(join(this.root, ...prefix.slice(0, -1).split('/')), { recursive: true, force: true });
    return keys.length;
  }
}
