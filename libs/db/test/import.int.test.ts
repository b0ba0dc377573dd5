/**
 * importArchive with hostile archives: each is refused with a message naming what is wrong, leaves nothing in the
 * database, and costs bounded memory whatever sizes the archive declares or however far it inflates.
 */
import { randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from './test-db';
import { countStoredPoints } from '../src/testing';
import { EXPORT_FORMAT, importArchive, TAR_END, tarEntry, tarHeader, TarError, type ImportLimits } from '../src';

const t = useTestDatabase();

const MiB = 1024 * 1024;
const RUN = 'r-old-1';
const file = (name: string, body: string | Buffer) => tarEntry(`aft-export/${name}`, Buffer.from(body));
const jsonl = (...rows: unknown[]) => rows.map((r) => `${JSON.stringify(r)}\n`).join('');
const head = () => [
  ...file('project.json', JSON.stringify({ format: EXPORT_FORMAT, project: { name: 'hostile', description: '' } })),
  ...file(
    'runs.jsonl',
    jsonl({
      id: RUN,
      name: 'r1',
      method: 'vft',
      constraint: 'none',
      status: 'succeeded',
      created_at: 1_700_000_000_000,
      updated_at: 1_700_000_000_000,
    }),
  ),
];
const point = (step: unknown, value: unknown, extra: Record<string, unknown> = {}) => ({
  run: RUN,
  key: 'loss',
  step,
  value,
  time: 1_700_000_000_000,
  ...extra,
});

async function team() {
  const slug = `imp-${randomBytes(4).toString('hex')}`;
  return t.db.prisma.team.create({ data: { slug, name: slug } });
}

/** Nothing of the refused import is left: no project, run, point or rollup of the team. */
async function leftOver(teamId: string) {
  const r = await t.db.pool.query<{ projects: number; runs: number }>(
    `SELECT (SELECT count(*)::int FROM project WHERE team_id = $1) AS projects,
            (SELECT count(*)::int FROM run r JOIN project p ON p.id = r.project_id WHERE p.team_id = $1) AS runs`,
    [teamId],
  );
  return { ...r.rows[0]!, points: (await countStoredPoints(t.db.pool, null)).n };
}

async function refused(chunks: Iterable<Buffer> | AsyncIterable<Buffer>, limits?: ImportLimits) {
  const { id } = await team();
  const err = await importArchive(t.db.pool, chunks, { teamId: id, limits }).then(
    () => null,
    (e: unknown) => e as Error,
  );
  expect(err, 'the import should have been refused').toBeInstanceOf(TarError);
  expect(await leftOver(id)).toEqual({ projects: 0, runs: 0, points: 0 });
  return err!.message;
}

/** Peak growth of RSS and heap while `fn` runs, sampled every 20 ms. */
async function growth(fn: () => Promise<unknown>) {
  global.gc?.();
  const base = process.memoryUsage();
  let rss = 0;
  let heap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss - base.rss);
    heap = Math.max(heap, m.heapUsed - base.heapUsed);
  };
  const timer = setInterval(sample, 20);
  try {
    await fn();
  } finally {
    clearInterval(timer);
    sample();
  }
  return { rssMiB: rss / MiB, heapMiB: heap / MiB };
}

/** Counts the bytes that pass (to see how far an import read into an inflating stream). */
const counter = () => {
  const c = { bytes: 0 };
  const t = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      c.bytes += chunk.length;
      cb(null, chunk);
    },
  });
  return Object.assign(c, { stream: t });
};

/** `bytes` zeros as the content of one entry, yielded 1 MiB at a time (never held whole). */
function* zeros(bytes: number) {
  const mib = Buffer.alloc(MiB);
  for (let left = bytes; left > 0; left -= MiB) yield left >= MiB ? mib : mib.subarray(0, left);
}

/** A gzip bomb: the tar stream `blocks` gzipped, built streaming (only the compressed bytes are kept). */
async function gzipped(blocks: Iterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  await pipeline(Readable.from(blocks), createGzip({ level: 9 }), async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) out.push(c);
  });
  return Buffer.concat(out);
}

describe('importArchive refuses hostile archives', () => {
  it('an entry declaring 8 GiB: refused at its header, before any of it is read', async () => {
    const huge = tarHeader('aft-export/metrics/part-00001.jsonl', 8 * 1024 * MiB - 1);
    let msg = '';
    const m = await growth(async () => {
      msg = await refused([...head(), huge, Buffer.alloc(4 * MiB)]);
    });
    expect(msg).toMatch(/metrics\/part-00001\.jsonl declares 8589934591 bytes; entries are at most 67108864 bytes/);
    expect(m.rssMiB).toBeLessThan(64);
  });

  it('an entry declaring more bytes than the archive holds: refused when the stream ends', async () => {
    const msg = await refused([
      ...head(),
      tarHeader('aft-export/metrics/part-00001.jsonl', 10 * MiB),
      Buffer.alloc(1024),
    ]);
    expect(msg).toMatch(/archive ends inside aft-export\/metrics\/part-00001\.jsonl/);
  });

  it('a gzip bomb of 1 GiB of zeros in one entry (~1 MB compressed): refused at the header, memory flat', async () => {
    const GiB = 1024 * MiB;
    const bomb = await gzipped([
      ...head(),
      tarHeader('aft-export/samples/part-00001.jsonl', GiB),
      ...zeros(GiB),
      TAR_END,
    ]);
    expect(bomb.length).toBeLessThan(2 * MiB);
    const seen = counter();
    let msg = '';
    const m = await growth(async () => {
      msg = await refused(Readable.from([bomb]).pipe(createGunzip()).pipe(seen.stream));
    });
    expect(msg).toMatch(/samples\/part-00001\.jsonl declares 1073741824 bytes/);
    expect(seen.bytes).toBeLessThan(64 * MiB);
    expect(m.rssMiB).toBeLessThan(100);
  });

  it('a gzip bomb of 1 GiB of zeros that no single entry exceeds: stopped by the inflated-bytes cap', async () => {
    // runs.csv is skipped unread, so only the count of inflated bytes can stop this one
    const GiB = 1024 * MiB;
    const bomb = await gzipped([...head(), tarHeader('aft-export/runs.csv', GiB), ...zeros(GiB), TAR_END]);
    const seen = counter();
    let msg = '';
    const m = await growth(async () => {
      msg = await refused(Readable.from([bomb]).pipe(createGunzip()).pipe(seen.stream), { maxTotalBytes: 256 * MiB });
    });
    expect(msg).toBe("archive is over 268435456 bytes uncompressed (the import's limit)");
    // read no further than the cap (plus what the streams buffer)
    expect(seen.bytes).toBeLessThan(260 * MiB);
    expect(m.rssMiB).toBeLessThan(100);
    expect(m.heapMiB).toBeLessThan(64);
  });

  it('a number field holding a string, a non-integer step or an unknown value string: refused naming the field', async () => {
    const part = (...rows: unknown[]) => [...head(), ...file('metrics/part-00001.jsonl', jsonl(...rows)), TAR_END];
    expect(await refused(part(point(1, 0.5), point('NaN', 0.5)))).toBe(
      'aft-export/metrics/part-00001.jsonl line 2: step: Invalid input: expected number, received string',
    );
    expect(await refused(part(point(1.5, 0.5)))).toMatch(/line 1: step: must be an integer/);
    expect(await refused(part(point(2 ** 31, 0.5)))).toMatch(/line 1: step: must fit in 32 bits/);
    expect(await refused(part(point(1, 'abc')))).toMatch(
      /line 1: value: must be a number or one of "NaN", "Infinity", "-Infinity"/,
    );
    expect(await refused(part(point(1, 1, { time: 1e15 })))).toMatch(/line 1: time: must be a time in years 1 to 9999/);
    const run = (extra: Record<string, unknown>) => [
      ...file('project.json', JSON.stringify({ format: EXPORT_FORMAT, project: { name: 'x' } })),
      ...file(
        'runs.jsonl',
        jsonl({ id: RUN, name: 'r', method: 'vft', constraint: 'none', status: 'succeeded', ...extra }),
      ),
      TAR_END,
    ];
    expect(await refused(run({ seed: '7' }))).toMatch(/runs\.jsonl line 1: seed: Invalid input: expected number/);
    expect(await refused(run({ status: 'exploded' }))).toMatch(/runs\.jsonl line 1: status:/);
  });

  it('a line over the line cap, a link entry, an unknown file and a file given twice are refused', async () => {
    const long = [...head(), ...file('events/part-00001.jsonl', `${' '.repeat(2 * MiB)}\n`), TAR_END];
    expect(await refused(long, { maxLineBytes: MiB })).toBe(
      'aft-export/events/part-00001.jsonl line 1 is 2097152 bytes; lines are at most 1048576 bytes',
    );
    const link = tarHeader('aft-export/artifacts.jsonl', 0);
    link[156] = '2'.charCodeAt(0);
    link.write('        ', 148, 8, 'ascii');
    let sum = 0;
    for (const b of link) sum += b;
    link.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
    expect(await refused([...head(), link, TAR_END])).toMatch(/artifacts\.jsonl is not a regular file \(type '2'\)/);
    expect(await refused([...head(), ...file('../../etc/passwd', 'x'), TAR_END])).toMatch(/unexpected file/);
    expect(await refused([...head(), ...file('runs.jsonl', ''), TAR_END])).toBe(
      'aft-export/runs.jsonl is in the archive twice',
    );
  });

  it('more entries than the cap: refused', async () => {
    const parts = Array.from({ length: 20 }, (_, i) =>
      file(`events/part-${String(i + 1).padStart(5, '0')}.jsonl`, ''),
    ).flat();
    expect(await refused([...head(), ...parts, TAR_END], { maxEntries: 10 })).toBe(
      "archive has over 10 entries (the import's limit)",
    );
  });

  it('a well-formed archive still imports (NaN and Infinity values included)', async () => {
    const { id } = await team();
    const archive = [
      ...head(),
      ...file('metrics/part-00001.jsonl', jsonl(point(0, 1.5), point(1, 'NaN'), point(2, '-Infinity'))),
      ...file('runs.csv', '=cmd|calc\n'),
      TAR_END,
    ];
    const r = await importArchive(t.db.pool, archive, { teamId: id });
    expect(r.counts).toMatchObject({ runs: 1, metrics: 3 });
  });
});
