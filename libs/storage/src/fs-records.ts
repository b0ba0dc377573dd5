/**
 * The filesystem backend's own files under `<root>/.aft/` (docs/architecture.md, "The artifact store"):
 *
 *   records/<2 hex>/<sha256 of the key>.json   each object's sha256, size, key and the inode its bytes were written
 *                                              to; named by a hash, so that no key's record can stand where another
 *                                              key's folder must (`a` and `a.json/x`), and no name outgrows 255 bytes
 *   locks/<sha256 of the key>.lock             held by a writer for the two renames that replace record and bytes
 *   tmp/                                       writes in progress; leftovers of a crash are swept on open
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { RESERVED, shownKey } from './store';

export interface FsRecord {
  key: string;
  sha256: string;
  bytes: number;
  /** The inode the bytes were written to: a reader that opened other bytes knows the pair is mid-replacement. */
  ino: string;
}

export const code = (e: unknown) => (e as NodeJS.ErrnoException | null)?.code;

/** A lock older than this was left by a writer that died between its two renames (a write holds it for ms). */
const STALE_LOCK_MS = 10_000;
/** The longest a writer waits for another's renames before it gives up. */
const LOCK_WAIT_MS = 30_000;
/** Leftovers in tmp/ (and locks) older than this are a crash's, not a write's: a write touches its file as it goes. */
const LEFTOVER_MS = 60 * 60 * 1000;

export class FsRecords {
  readonly dir: string;

  constructor(readonly root: string) {
    this.dir = join(root, RESERVED);
  }

  private static hash(key: string): string {
    return createHash('sha256').update(key).digest('hex');
  }

  file(key: string): string {
    const h = FsRecords.hash(key);
    return join(this.dir, 'records', h.slice(0, 2), `${h}.json`);
  }

  get tmp(): string {
    return join(this.dir, 'tmp');
  }

  /**
   * The key's record, or null when it has none. Only a missing file means none: a record that cannot be read or
   * is not the key's refuses the read (a throw) rather than letting the object through unverified.
   */
  async read(key: string): Promise<FsRecord | null> {
    const file = this.file(key);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      if (code(e) === 'ENOENT') return null;
      throw e;
    }
    let r: Partial<FsRecord> | null = null;
    try {
      r = JSON.parse(text) as Partial<FsRecord>;
    } catch {
      // refused below
    }
    if (!r || r.key !== key || typeof r.sha256 !== 'string' || typeof r.bytes !== 'number' || typeof r.ino !== 'string')
      throw new Error(`the sha256 record of '${shownKey(key)}' (${file}) is not a record of it; refusing to read it`);
    return r as FsRecord;
  }

  /**
   * Holds the key's lock while `f` runs: writers of one key replace record and bytes one pair at a time, so the
   * last record written is the last bytes' (two writers could otherwise leave B's record beside A's bytes). A file
   * made with O_EXCL, so it holds across processes sharing the directory.
   */
  async locked<T>(key: string, f: () => Promise<T>): Promise<T> {
    const dir = join(this.dir, 'locks');
    const file = join(dir, `${FsRecords.hash(key)}.lock`);
    const start = Date.now();
    for (let i = 0; ; i++) {
      try {
        await (await open(file, 'wx')).close();
        break;
      } catch (e) {
        if (code(e) === 'ENOENT') {
          await mkdir(dir, { recursive: true });
          continue;
        }
        if (code(e) !== 'EEXIST') throw e;
      }
      const st = await stat(file).catch(() => null);
      if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) {
        await rm(file, { force: true });
        continue;
      }
      if (Date.now() - start > LOCK_WAIT_MS)
        throw new Error(`'${shownKey(key)}' stayed locked for ${LOCK_WAIT_MS} ms by another writer (${file})`);
      await sleep(Math.min(20, 1 + i));
    }
    try {
      return await f();
    } finally {
      await rm(file, { force: true });
    }
  }

  /** Removes what crashed writes left in tmp/ and locks/ (older than an hour); never fails the store's opening. */
  async sweep(now = Date.now()): Promise<void> {
    // turbopackIgnore: the web server bundles this store, and a readdir of a computed path would otherwise make
    // Next trace (and ship) the whole repository
    for (const sub of ['tmp', 'locks']) {
      const dir = join(/*turbopackIgnore: true*/ this.dir, sub);
      const names = await readdir(/*turbopackIgnore: true*/ dir).catch(() => [] as string[]);
      for (const n of names) {
        const path = join(/*turbopackIgnore: true*/ dir, n);
        const st = await stat(/*turbopackIgnore: true*/ path).catch(() => null);
        if (st && now - st.mtimeMs > LEFTOVER_MS)
          await rm(/*turbopackIgnore: true*/ path, { recursive: true, force: true });
      }
    }
  }
}
