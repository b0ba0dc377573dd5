/**
 * `npm run bench:query`: p50/p95 latency, over HTTP against the built app, of
 *  (a) a series query for 20 runs × 100,000 points reduced to 1,000 buckets, and
 *  (b) a runs list over 10,000 runs sorted by a summary metric (first page and a later page by cursor).
 * Prints JSON. Target: p95 ≤ 100 ms each.
 */
import { createDb, insertMetricPoints, metricFolder } from '@aft/db';
import { ensureWebBuilt, startApp } from '../lib/app-server';
import { TIMING_CLIENT, timedGet } from '../lib/http-get';

const ITER = 60;
const WARMUP = 5;

function stats(ms: number[]) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => Number(s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1));
  return { p50: q(0.5), p95: q(0.95), max: q(1), n: s.length };
}

let apiKey = '';

async function timeGet(url: string): Promise<{ ms: number; bytes: number; body: unknown }> {
  const t0 = performance.now();
  const res = await fetch(url, { headers: { 'x-api-key': apiKey } });
  const text = await res.text();
  const ms = performance.now() - t0;
  if (!res.ok) throw new Error(`${res.status}: ${text.slice(0, 300)}`);
  return { ms, bytes: text.length, body: JSON.parse(text) };
}

/** p50/p95 of a GET, timed by TIMING_CLIENT (tools/lib/http-get.ts: curl where installed), and its size. */
async function measure(url: () => string) {
  const ms: number[] = [];
  const bytes = (await timeGet(url())).bytes;
  for (let i = 0; i < WARMUP + ITER; i++) {
    const t = await timedGet(url(), { 'x-api-key': apiKey });
    if (i >= WARMUP) ms.push(t);
  }
  return { ...stats(ms), responseBytes: bytes };
}

ensureWebBuilt();
const app = await startApp('aft_benchq');
apiKey = app.apiKey;
const db = createDb({ connectionString: app.databaseUrl, max: 4 });
try {
  const team = await db.prisma.team.findUniqueOrThrow({ where: { slug: 'local' } });
  const project = await db.prisma.project.create({ data: { teamId: team.id, name: 'bench-query' } });

  // (a) 20 runs × 100,000 points of `loss`
  const t0 = performance.now();
  const runIds: string[] = [];
  for (let r = 0; r < 20; r++) {
    const run = await db.prisma.run.create({ data: { projectId: project.id, name: `series-${r}`, method: 'aft' } });
    runIds.push(run.id);
    for (let from = 0; from < 100_000; from += 10_000) {
      const n = 10_000;
      await insertMetricPoints(db.pool, run.id, {
        keys: ['loss'],
        key: new Array<number>(n).fill(0),
        step: Array.from({ length: n }, (_, i) => from + i),
        value: Array.from({ length: n }, (_, i) => Math.exp(-(from + i) / 30_000) + 0.01 * Math.sin(i)),
      });
    }
  }
  // folded as it went (in the background, as the app does): measured once the last chunk is in
  await metricFolder(db.pool).idle();
  // (b) 10,000 runs with summaries
  await db.pool.query(
    `INSERT INTO run (id, project_id, name, method, "constraint", status, summary, tags, config, created_at)
     SELECT 'bench' || i, $1, 'run-' || i, (ARRAY['vft','aft','dpo','pro','rrhf'])[1 + i % 5],
            (ARRAY['none','detach','boundary'])[1 + i % 3], 'succeeded',
            jsonb_build_object('acc', random(), 'ppl', 1 + random()), ARRAY['seed-' || (i % 3)],
            jsonb_build_object('lr', (i % 7) * 1e-4, 'seed', i % 3), now() - (i || ' seconds')::interval
     FROM generate_series(1, 10000) i`,
    [project.id],
  );
  await db.pool.query('ANALYZE');
  const seedSeconds = (performance.now() - t0) / 1000;

  const q = (path: string, input: unknown) =>
    `${app.baseUrl}/api/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`;
  const series = await measure(() => q('metrics.series', { runIds, keys: ['loss'], buckets: 1000 }));
  // the dashboard's read: the same series in binary columns (libs/db/src/series-packed.ts)
  const packed = await measure(() => q('metrics.seriesPacked', { runIds, keys: ['loss'], buckets: 1000 }));
  const check = (await timeGet(q('metrics.series', { runIds, keys: ['loss'], buckets: 1000 }))).body as {
    result: { data: { mode: string; steps: number[]; count: number[] }[] };
  };
  const shape = check.result.data.map((s) => ({
    mode: s.mode,
    buckets: s.steps.length,
    points: s.count.reduce((a, b) => a + b, 0),
  }));

  const listInput = { projectId: project.id, sortBy: 'summary.acc', sortDir: 'desc', limit: 50 };
  const list = await measure(() => q('runs.list', listInput));
  const first = (await timeGet(q('runs.list', listInput))).body as { result: { data: { nextCursor: string } } };
  let cursor = first.result.data.nextCursor;
  for (let i = 0; i < 20; i++) {
    const page = (await timeGet(q('runs.list', { ...listInput, cursor }))).body as {
      result: { data: { nextCursor: string } };
    };
    cursor = page.result.data.nextCursor;
  }
  const deepPage = await measure(() => q('runs.list', { ...listInput, cursor }));
  const filtered = await measure(() =>
    q('runs.list', { ...listInput, method: ['aft'], config: [{ path: 'lr', op: 'gte', value: 3e-4 }] }),
  );

  console.log(
    JSON.stringify(
      {
        bench: 'query',
        client: TIMING_CLIENT,
        seedSeconds: Number(seedSeconds.toFixed(1)),
        seriesQuery20x100k: {
          ...series,
          targetP95: 100,
          series: shape.length,
          bucketsPerSeries: shape[0]?.buckets,
          pointsPerSeries: shape[0]?.points,
        },
        seriesQuery20x100kPacked: { ...packed, targetP95: 100 },
        runsList10kSortedBySummary: { ...list, targetP95: 100 },
        runsList10kPage22ByCursor: deepPage,
        runsList10kFilteredSorted: filtered,
      },
      null,
      2,
    ),
  );
} finally {
  await db.close();
  await app.stop();
}
