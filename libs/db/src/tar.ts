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

/**
 * Reads a tar stream entry by entry; each file's content is yielded whole (export parts are bounded, so this is
 * bounded too). Throws on a corrupt header.
 */
export async function* readTar(
  chunks: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
): AsyncGenerator<{ name: string; content: Buffer }> {
  // chunks are joined only once enough have arrived for the next header or file: linear in the archive's size
  let parts: Buffer[] = [];
  let len = 0;
  const take = (n: number): Buffer => {
    const all = parts.length === 1 ? parts[0]! : Buffer.concat(parts, len);
    parts = [all.subarray(n)];
    len = all.length - n;
    return all.subarray(0, n);
  };
  let need: { name: string; size: number } | null = null;
  for await (const c of chunks) {
    parts.push(Buffer.from(c));
    len += c.length;
    for (;;) {
      if (!need) {
        if (len < BLOCK) break;
        const h = take(BLOCK);
        if (h.every((b) => b === 0)) return;
        let sum = 0;
        for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
        const field = (a: number, b: number) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '').trim();
        if (sum !== parseInt(field(148, 156), 8)) throw new Error('not a tar archive (bad header checksum)');
        need = { name: field(0, 100), size: parseInt(field(124, 136) || '0', 8) };
      }
      const padded = Math.ceil(need.size / BLOCK) * BLOCK;
      if (len < padded) break;
      const content = Buffer.from(take(padded).subarray(0, need.size));
      const name = need.name;
      need = null;
      yield { name, content };
    }
  }
  if (need) throw new Error(`archive ends inside ${need.name}`);
}
