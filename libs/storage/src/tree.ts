/**
 * Folders as one artifact (a checkpoint is `checkpoint.json` beside `tensors.bin`): its files go under a version
 * of their own, `<key>/.v/<version>/…`, and then one small object, `<key>/.manifest.json`, names that version with
 * each file's sha256. Writing the manifest is the single atomic step that publishes the folder, so a reader sees
 * the old folder or the new one, never a mix; older versions are removed after it.
 *
 * And files to and from this machine: a download goes to a temporary name beside its target, is verified, and is
 * renamed into place. A manifest is the store's word, not this machine's: every path in it is checked as a key
 * before anything is written under the folder it is fetched to.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  ArtifactNotFoundError,
  BadKeyError,
  checkKey,
  readAll,
  type ArtifactStore,
  type GetOptions,
  type GotInfo,
} from './store';

export const MANIFEST = '.manifest.json';
const VERSIONS = '.v';

export interface TreeManifest {
  format: 'aft-tree/1';
  version: string;
  /** In the order a reader should put them in place (what marks a folder complete comes last). */
  files: { path: string; sha256: string; bytes: number }[];
  /** What the writer says about the folder (a checkpoint's step), readable without fetching it. */
  meta: Record<string, unknown>;
}

/** Writes in progress: neither published nor fetched. */
const isTemporary = (name: string) => /\.(tmp|part)$/.test(name);

/**
 * A temporary name in `dest`'s folder that adds nothing to its name (a name of 255 bytes, the most a key may hold,
 * would not take a suffix): `.aft-<random>.part`.
 */
const partBeside = (dest: string) => join(dirname(dest), `.aft-${randomBytes(6).toString('hex')}.part`);

/** The manifest of `key` as a fetch may trust it: a version that is one name, paths that are keys. */
function checkedManifest(key: string, m: TreeManifest): TreeManifest {
  const fail = (why: string) => {
    throw new BadKeyError(`${key}/${MANIFEST}`, `its manifest ${why}`);
  };
  if (!m || typeof m !== 'object' || !Array.isArray(m.files)) fail('is not an aft-tree manifest');
  if (typeof m.version !== 'string' || m.version.includes('/')) fail('names no version, or one that is not a name');
  try {
    checkKey(m.version);
    for (const f of m.files) {
      if (!f || typeof f.path !== 'string' || typeof f.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(f.sha256))
        fail('lists a file without a path or sha256');
      checkKey(f.path);
    }
  } catch (e) {
    if (e instanceof BadKeyError && e.key !== `${key}/${MANIFEST}`) fail(`names '${e.key}': ${e.reason}`);
    throw e;
  }
  return m;
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (d.isFile() && !isTemporary(d.name)) out.push(relative(dir, join(d.parentPath, d.name)).split(sep).join('/'));
  }
  return out.sort();
}

/** The sha256 of a local file, or null when there is none. */
export async function fileSha256(path: string): Promise<string | null> {
  const h = createHash('sha256');
  try {
    await pipeline(createReadStream(path), h);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return h.digest('hex');
}

export async function readManifest(store: ArtifactStore, key: string): Promise<TreeManifest | null> {
  try {
    return JSON.parse((await readAll((await store.get(`${key}/${MANIFEST}`)).body)).toString('utf8')) as TreeManifest;
  } catch (e) {
    if (e instanceof ArtifactNotFoundError) return null;
    throw e;
  }
}

/** Publishes the folder `dir` as `key`; the files named in `last` are listed last. */
export async function putTree(
  store: ArtifactStore,
  key: string,
  dir: string,
  o: { last?: string[]; meta?: Record<string, unknown> } = {},
): Promise<TreeManifest> {
  const last = o.last ?? [];
  const rank = (p: string) => (last.includes(p) ? last.indexOf(p) + 1 : 0);
  const paths = (await filesUnder(dir)).sort((a, b) => rank(a) - rank(b));
  const version = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const files: TreeManifest['files'] = [];
  for (const path of paths) {
    const info = await store.put(`${key}/${VERSIONS}/${version}/${path}`, { file: join(dir, ...path.split('/')) });
    files.push({ path, sha256: info.sha256!, bytes: info.bytes });
  }
  const manifest: TreeManifest = { format: 'aft-tree/1', version, files, meta: o.meta ?? {} };
  await store.put(`${key}/${MANIFEST}`, Buffer.from(JSON.stringify(manifest)));
  // what no manifest names any more: earlier versions, and the parts of uploads that died before theirs
  for (const old of await store.list(`${key}/${VERSIONS}/`))
    if (!old.key.startsWith(`${key}/${VERSIONS}/${version}/`)) await store.delete(old.key);
  return manifest;
}

/** Downloads `key` to the local file `dest`, verified (against `opts.sha256` too), through a temporary name. */
export async function downloadFile(
  store: ArtifactStore,
  key: string,
  dest: string,
  opts: GetOptions = {},
): Promise<GotInfo> {
  await mkdir(dirname(dest), { recursive: true });
  const tmp = partBeside(dest);
  try {
    const { info, body } = await store.get(key, opts);
    await pipeline(body, createWriteStream(tmp));
    await rename(tmp, dest);
    return info;
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Fetches the folder published as `key` into `dir` (files already there with the same sha256 are kept), renaming
 * each into place in the manifest's order once all are down. Null when nothing is published there.
 */
export async function getTree(store: ArtifactStore, key: string, dir: string): Promise<TreeManifest | null> {
  for (let attempt = 1; ; attempt++) {
    const read = await readManifest(store, key);
    if (!read) return null;
    const m = checkedManifest(key, read);
    const staged: [string, string][] = [];
    try {
      for (const f of m.files) {
        const dest = join(dir, ...f.path.split('/'));
        if ((await fileSha256(dest)) === f.sha256) continue;
        const tmp = partBeside(dest);
        staged.push([tmp, dest]);
        await downloadFile(store, `${key}/${VERSIONS}/${m.version}/${f.path}`, tmp, { sha256: f.sha256 });
      }
      for (const [tmp, dest] of staged) await rename(tmp, dest);
      return m;
    } catch (e) {
      await Promise.all(staged.map(([tmp]) => rm(tmp, { force: true })));
      // a newer version was published (and this one removed) while it was read: read the new manifest
      if (e instanceof ArtifactNotFoundError && attempt < 3) continue;
      throw e;
    }
  }
}
