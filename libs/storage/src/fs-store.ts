/**
 * The filesystem backend: an object is the file `<root>/<key>`, so a directory laid out as before (the worker's
 * `runs/<id>/…`, the MLflow API's `mlflow/<run>/…`) is a store as it stands. Its own files live under `<root>/.aft/`:
 * the sha256 of each object in `.aft/sha256/<key>.json` and writes in progress in `.aft/tmp/`, on the same
 * filesystem, so that an object appears by one rename and a listing never shows half a file.
 *
 * A file the store did not write (one from before it, or copied in by hand) has no recorded sha256: it is read
 * unverified and its stat says sha256 null. A file changed after the store wrote it fails its checksum on read.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pipeline as pipelineCb, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import {
  ArtifactNotFoundError,
  checkKey,
  checkPrefix,
  ChecksumMismatchError,
  KeyConflictError,
  RESERVED,
  verifying,
  type ArtifactStore,
  type ListedObject,
  type ObjectInfo,
  type PutOptions,
  type PutSource,
} from './store';

interface Sidecar {
  sha256: string;
  bytes: number;
}

const code = (e: unknown) => (e as NodeJS.ErrnoException | null)?.code;
const missing = (e: unknown) => ['ENOENT', 'ENOTDIR', 'EISDIR'].includes(code(e) ?? '');

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

export class FsStore implements ArtifactStore {
  readonly root: string;
  readonly url: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.url = pathToFileURL(this.root).href;
  }

  private path(key: string): string {
    return join(this.root, ...checkKey(key).split('/'));
  }

  private sidecarPath(key: string): string {
    return `${join(this.root, RESERVED, 'sha256', ...key.split('/'))}.json`;
  }

  private async sidecar(key: string): Promise<Sidecar | null> {
    try {
      return JSON.parse(await readFile(this.sidecarPath(key), 'utf8')) as Sidecar;
    } catch (e) {
      if (missing(e)) return null;
      throw e;
    }
  }

  uri(key: string): string {
    return pathToFileURL(this.path(key)).href;
  }

  async put(key: string, body: PutSource, opts: PutOptions = {}): Promise<ObjectInfo> {
    const dest = this.path(key);
    const tmpDir = join(this.root, RESERVED, 'tmp');
    await mkdir(tmpDir, { recursive: true });
    const tmp = join(tmpDir, randomBytes(8).toString('hex'));
    const side = this.sidecarPath(key);
    try {
      const rec = await writeHashed(tmp, body);
      if (opts.sha256 && opts.sha256 !== rec.sha256)
        throw new ChecksumMismatchError(key, opts.sha256, rec.sha256, ' (refused on write)');
      await mkdir(dirname(dest), { recursive: true }).catch((e: unknown) => {
        throw code(e) === 'EEXIST' || code(e) === 'ENOTDIR' ? new KeyConflictError(key, 'file-above') : e;
      });
      if ((await stat(dest).catch(() => null))?.isDirectory()) throw new KeyConflictError(key, 'folder');
      // the record first, then the bytes: a crash between leaves an old file failing its new checksum (refused),
      // never new bytes passing unverified
      await mkdir(dirname(side), { recursive: true });
      const previous = await readFile(side).catch(() => null);
      await writeFile(`${tmp}.json`, JSON.stringify(rec));
      await rename(`${tmp}.json`, side);
      try {
        await rename(tmp, dest);
      } catch (e) {
        await (previous ? writeFile(side, previous) : rm(side, { force: true })).catch(() => undefined);
        throw ['EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EEXIST'].includes(code(e) ?? '')
          ? new KeyConflictError(key, 'folder')
          : e;
      }
      return { key, ...rec, modified: (await stat(dest)).mtime };
    } finally {
      await rm(tmp, { force: true });
      await rm(`${tmp}.json`, { force: true });
    }
  }

  async get(key: string): Promise<{ info: ObjectInfo; body: Readable }> {
    const path = this.path(key);
    // the record is read on both sides of the open: a writer between the two is seen, and the read starts over
    for (let i = 0; ; i++) {
      const before = await this.sidecar(key);
      const fh = await open(path, 'r').catch((e: unknown) => {
        throw missing(e) ? new ArtifactNotFoundError(key) : e;
      });
      const st = await fh.stat();
      const rec = await this.sidecar(key);
      if (!st.isFile()) {
        await fh.close();
        throw new ArtifactNotFoundError(key);
      }
      if (before?.sha256 !== rec?.sha256 && i < 3) {
        await fh.close();
        continue;
      }
      if (rec && rec.bytes !== st.size) {
        await fh.close();
        throw new ChecksumMismatchError(key, rec.sha256, null, ` (${st.size} bytes on disk, ${rec.bytes} recorded)`);
      }
      const raw = fh.createReadStream();
      let body: Readable = raw;
      if (rec) {
        const v = verifying(key, rec.sha256, rec.bytes);
        // either end's failure or early close ends the other (and closes the file)
        pipelineCb(raw, v, () => undefined);
        body = v;
      }
      return { info: { key, bytes: st.size, sha256: rec?.sha256 ?? null, modified: st.mtime }, body };
    }
  }

  async stat(key: string): Promise<ObjectInfo | null> {
    const st = await stat(this.path(key)).catch((e: unknown) => {
      if (missing(e)) return null;
      throw e;
    });
    if (!st?.isFile()) return null;
    return { key, bytes: st.size, sha256: (await this.sidecar(key))?.sha256 ?? null, modified: st.mtime };
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
    await unlink(path).catch((e: unknown) => {
      if (!missing(e)) throw e;
    });
    await rm(this.sidecarPath(key), { force: true });
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
    const n = (await this.list(checkPrefix(prefix))).length;
    const parts = prefix.slice(0, -1).split('/');
    await rm(join(this.root, ...parts), { recursive: true, force: true });
    await rm(join(this.root, RESERVED, 'sha256', ...parts), { recursive: true, force: true });
    return n;
  }
}
