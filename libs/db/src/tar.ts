/**
 * A minimal POSIX (ustar) tar writer and reader: enough for export archives, which hold regular files only.
 * Each entry's size must be known before its header, so streamed files are written as parts of bounded size
 * (metrics/part-00001.jsonl, …) — memory stays at one part however large the export.
 */

const BLOCK = 512;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** The 512-byte header of a regular file. */
export function tarHeader(name: string, size: number, mtimeS = Math.floor(Date.now() / 1000)): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long (100 bytes at most): ${name}`);
  const h = Buffer.alloc(BLOCK, 0);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(0o644, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii');
  h.write(octal(0, 8), 116, 8, 'ascii');
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(mtimeS, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii'); // checksum counts as spaces while it is computed
  h.write('0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** One file as tar blocks: header, content, padding to a whole block. */
export function tarEntry(name: string, content: Buffer): Buffer[] {
  const pad = (BLOCK - (content.length % BLOCK)) % BLOCK;
  return [tarHeader(name, content.length), content, Buffer.alloc(pad)];
}

/** The end of an archive: two zero blocks. */
export const TAR_END = Buffer.alloc(BLOCK * 2);

/** A tar stream this reader refuses: corrupt, of a kind export archives never hold, or over a limit. */
export class TarError extends Error {}

export interface TarLimits {
  /** Largest entry kept whole in memory; a header declaring more is refused before its content is read. */
  maxEntryBytes?: number;
  /** Most bytes read from the stream in all (after gunzip): where a gzip bomb stops. */
  maxTotalBytes?: number;
  /** Most entries. */
  maxEntries?: number;
}

export const TAR_LIMITS: Required<TarLimits> = {
  maxEntryBytes: 64 * 1024 * 1024,
  maxTotalBytes: 32 * 1024 * 1024 * 1024,
  maxEntries: 100_000,
};

const asBuffer = (c: Buffer | Uint8Array) =>
  Buffer.isBuffer(c) ? c : Buffer.from(c.buffer, c.byteOffset, c.byteLength);

/**
 * Reads a tar stream entry by entry; each file's content is yielded whole, so memory is bounded by
 * `maxEntryBytes` (export parts are far smaller). Entries `keep` turns down (it may also throw to refuse one) and
 * directories are skipped as they stream, without being buffered. Throws TarError on a corrupt header, a link or
 * other special entry, or a limit passed.
 */
export async function* readTar(
  chunks: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
  opts: TarLimits & { keep?: (name: string) => boolean } = {},
): AsyncGenerator<{ name: string; content: Buffer }> {
  const limits = { ...TAR_LIMITS, ...opts };
  // chunks are joined only once enough have arrived for the next header or file: linear in the archive's size
  let parts: Buffer[] = [];
  let len = 0;
  const take = (n: number): Buffer => {
    const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, len);
    parts = [all.subarray(n)];
    len = all.length - n;
    return all.subarray(0, n);
  };
  const drop = (n: number) => {
    while (n > 0 && parts.length) {
      const p = parts[0]!;
      if (p.length <= n) {
        parts.shift();
        n -= p.length;
        len -= p.length;
      } else {
        parts[0] = p.subarray(n);
        len -= n;
        n = 0;
      }
    }
  };
  let total = 0;
  let entries = 0;
  let need: { name: string; size: number; skip: number | null } | null = null;
  for await (const chunk of chunks) {
    const c = asBuffer(chunk);
    total += c.length;
    if (total > limits.maxTotalBytes)
      throw new TarError(`archive is over ${limits.maxTotalBytes} bytes uncompressed (the import's limit)`);
    parts.push(c);
    len += c.length;
    for (;;) {
      if (!need) {
        if (len < BLOCK) break;
        const h = take(BLOCK);
        if (h.every((b) => b === 0)) return;
        let sum = 0;
        for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
        const field = (a: number, b: number) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '').trim();
        if (!/^[0-7]{1,8}$/.test(field(148, 156)) || sum !== parseInt(field(148, 156), 8))
          throw new TarError('not a tar archive (bad header checksum)');
        const prefix = h.subarray(257, 263).toString('latin1') === 'ustar\0' ? field(345, 500) : '';
        const name = prefix ? `${prefix}/${field(0, 100)}` : field(0, 100);
        // base-256 sizes (high bit set) and anything but octal digits are refused, not read as NaN
        const sizeField = field(124, 136);
        if (!/^[0-7]{0,11}$/.test(sizeField))
          throw new TarError(`tar entry ${name}: size field is not an octal number`);
        const size = sizeField ? parseInt(sizeField, 8) : 0;
        const type = String.fromCharCode(h[156]!);
        if (++entries > limits.maxEntries)
          throw new TarError(`archive has over ${limits.maxEntries} entries (the import's limit)`);
        if (!name) throw new TarError('tar entry without a name');
        let skip: number | null = null;
        if (type === '5') skip = size;
        else if (type !== '0' && type !== '\0')
          throw new TarError(
            `tar entry ${name} is not a regular file (type '${type}'); export archives hold files only`,
          );
        else if (opts.keep && !opts.keep(name)) skip = size;
        else if (size > limits.maxEntryBytes)
          throw new TarError(
            `tar entry ${name} declares ${size} bytes; entries are at most ${limits.maxEntryBytes} bytes`,
          );
        need = { name, size, skip: skip === null ? null : Math.ceil(skip / BLOCK) * BLOCK };
      }
      if (need.skip !== null) {
        const n = Math.min(need.skip, len);
        drop(n);
        need.skip -= n;
        if (need.skip > 0) break;
        need = null;
        continue;
      }
      const padded = Math.ceil(need.size / BLOCK) * BLOCK;
      if (len < padded) break;
      const content = Buffer.from(take(padded).subarray(0, need.size));
      const name = need.name;
      need = null;
      yield { name, content };
    }
  }
  if (need) throw new TarError(`archive ends inside ${need.name}`);
}
