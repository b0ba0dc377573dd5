/**
 * `npm run bench:scale`: the chunked metric store at scale (issue 20; docs/architecture.md, "The metric store").
 * SDK writers (separate processes) log SCALE_RUNS runs × 10 keys × SCALE_STEPS steps of realistic curves through
 * the HTTP API of the built app; then every run's points are folded into chunks (`foldPending`), the metric
 * tables vacuumed, and reads timed over HTTP. Prints JSON: bytes per point on disk (all metric tables and
 * indexes), ingest points/s, fold points/s, series / zoom / runs-list p50 and p95.
 * The shape is SCALE_RUNS=1000 SCALE_STEPS=10000 (100M points); defaults are 100 × 10,000 (10M).
 *   SCALE_RUNS=100 SCALE_STEPS=10000 SCALE_WRITERS=2 SCALE_LIST_RUNS=100000 npm run bench:scale
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createDb, foldPending, foldRun, insertMetricPoints } from '@aft/db';
import { curve } from '@aft/db/testing';
import { ensureWebBuilt, ROOT, startApp } from '../lib/app-server';
import { cpuSeconds, postgresCpu } from '../lib/cpu';
import { TIMING_CLIENT, timedGet } from '../lib/http-get';

const env = (k: string, d: number) => Number(process.env[k] ?? d);
const RUNS = env('SCALE_RUNS', 100);
const STEPS = env('SCALE_STEPS', 10_000);
const WRITERS = env('SCALE_WRITERS', 2);
const LIST_RUNS = env('SCALE_LIST_RUNS', 100_000);
// the series goal's shape: 20 runs of one key × LONG_STEPS points, written straight to the database (not timed)
const LONG_RUNS = 20;
const LONG_STEPS = env('SCALE_LONG_STEPS', 1_000_000);
const ITER = 40;

const stats = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => Number(s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(1));
  return { p50: q(0.5), p95: q(0.95), max: q(1), n: s.length };
};

ensureWebBuilt();
const app = await startApp('aft_bscale');
const db = createDb({ connectionString: app.databaseUrl, max: 4 });
const get = async (path: string, input: unknown) => {
  const t0 = performance.now();
  const res = await fetch(`${app.baseUrl}/api/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input))}`, {
    headers: { 'x-api-key': app.apiKey },
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path} ${res.status}: ${text.slice(0, 300)}`);
  return { ms: performance.now() - t0, body: JSON.parse(text) as { result: { data: unknown } } };
};
/** p50/p95 of a procedure's GET, timed by TIMING_CLIENT (tools/lib/http-get.ts: curl where installed). */
const measure = async (path: string, input: () => unknown) => {
  const ms: number[] = [];
  for (let i = 0; i < ITER + 3; i++) {
    const url = `${app.baseUrl}/api/trpc/${path}?input=${encodeURIComponent(JSON.stringify(input()))}`;
    const t = await timedGet(url, { 'x-api-key': app.apiKey });
    if (i >= 3) ms.push(t);
  }
  return stats(ms);
};
const sizes = async () => {
  const r = await db.pool.query<{ t: string; bytes: string }>(
    `SELECT t, pg_total_relation_size(t)::text AS bytes
     FROM unnest(ARRAY['metric_point', 'metric_chunk', 'metric_rollup', 'run_metric']) AS t`,
  );
  return Object.fromEntries(r.rows.map((x) => [x.t, Number(x.bytes)]));
};

try {
  // ingest
  const per = Math.ceil(RUNS / WRITERS);
  const children = Array.from({ length: WRITERS }, (_, i) =>
    fork(`${ROOT}/tools/bench/scale-writer.ts`, [app.baseUrl, app.apiKey, String(per), String(STEPS), String(i)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  await Promise.all(children.map((c) => new Promise((r) => c.once('message', r))));
  const cpu0 = { server: cpuSeconds(app.pid), postgres: await postgresCpu(db.pool) };
  const writersCpu0 = children.map((c) => cpuSeconds(c.pid!));
  const t0 = performance.now();
  const done = children.map(
    (c) =>
      new Promise<{ points: number; cpu: number }>((res, rej) => {
        c.once('message', (m) => res({ ...(m as { points: number }), cpu: cpuSeconds(c.pid!) }));
        c.once('exit', (code) => code && rej(new Error(`writer exited ${code}`)));
      }),
  );
  for (const c of children) c.send('go');
  const written = await Promise.all(done);
  const points = written.reduce((a, r) => a + r.points, 0);
  const ingestSeconds = (performance.now() - t0) / 1000;
  // where the ingest's time went: the web server, the database's backends (the app's pool keeps its connections),
  // the SDK writers; `available` is every core for the ingest's wall time
  const ingestCpu = {
    webServer: Number((cpuSeconds(app.pid) - cpu0.server).toFixed(1)),
    postgresBackends: Number(((await postgresCpu(db.pool)) - cpu0.postgres).toFixed(1)),
    writers: Number(written.reduce((a, r, i) => a + r.cpu - writersCpu0[i]!, 0).toFixed(1)),
    available: Number((availableParallelism() * ingestSeconds).toFixed(1)),
  };
  await db.pool.query('VACUUM ANALYZE metric_point, metric_rollup, run_metric');
  const beforeFold = await sizes();

  // fold (every run has finished: all of its points), then vacuum
  const f0 = performance.now();
  const folded = await foldPending(db.pool);
  const foldSeconds = (performance.now() - f0) / 1000;
  await db.pool.query('VACUUM ANALYZE metric_point, metric_chunk, metric_rollup, run_metric');
  const afterVacuum = await sizes();
  await db.pool.query('VACUUM FULL metric_point, metric_chunk, metric_rollup, run_metric');
  await db.pool.query('ANALYZE');
  const afterFull = await sizes();
  const perPoint = (s: Record<string, number>) =>
    Object.fromEntries([
      ...Object.entries(s).map(([k, v]) => [k, Number((v / points).toFixed(3))]),
      ['total', Number((Object.values(s).reduce((a, b) => a + b, 0) / points).toFixed(3))],
    ]);
  const chunkPayload = await db.pool.query<{ b: string; n: string }>(
    'SELECT sum(octet_length(payload))::text AS b, sum(count)::text AS n FROM metric_chunk',
  );

  // reads
  const runs = await db.pool.query<{ id: string }>(
    "SELECT r.id FROM run r JOIN project p ON p.id = r.project_id WHERE p.name = 'bench-scale' ORDER BY r.num LIMIT 20",
  );
  const runIds = runs.rows.map((r) => r.id);
  const series = await measure('metrics.series', () => ({ runIds, keys: ['loss'], buckets: 1000 }));
  const seriesPacked = await measure('metrics.seriesPacked', () => ({ runIds, keys: ['loss'], buckets: 1000 }));
  const zoom = await measure('metrics.series', () => {
    const lo = Math.floor(Math.random() * (STEPS - 2000));
    return {
      runIds: [runIds[Math.floor(Math.random() * runIds.length)]],
      keys: ['loss'],
      buckets: 2000,
      minStep: lo,
      maxStep: lo + 1999,
    };
  });
  const zoomCheck = (
    await get('metrics.series', { runIds: [runIds[0]], keys: ['loss'], buckets: 2000, minStep: 100, maxStep: 2099 })
  ).body.result.data as { mode: string; steps: number[] }[];

  // 20 runs × LONG_STEPS points of `loss`, folded, then the same series read
  const project = await db.pool.query<{ id: string }>("SELECT id FROM project WHERE name = 'bench-scale'");
  const longIds: string[] = [];
  const g0 = performance.now();
  for (let r = 0; r < LONG_RUNS; r++) {
    const id = `long-${r}`;
    const num = await db.pool.query<{ num: string }>(
      `INSERT INTO run (id, project_id, name, method, "constraint", status) VALUES ($1, $2, $1, 'aft', 'none', 'succeeded')
       RETURNING num::text AS num`,
      [id, project.rows[0]!.id],
    );
    for (let from = 0; from < LONG_STEPS; from += 10_000) {
      const c = curve('loss', {
        seed: r,
        from,
        count: Math.min(10_000, LONG_STEPS - from),
        nanRate: 1e-5,
        spikeRate: 1e-5,
      });
      // as the API stores a trainer's batch: whole chunks straight away
      await insertMetricPoints(db.pool, id, {
        keys: ['loss'],
        key: c.steps.map(() => 0),
        step: c.steps,
        value: c.values,
        time: c.times,
      });
    }
    await foldRun(db.pool, num.rows[0]!.num, { force: true });
    longIds.push(id);
  }
  const longSeed = (performance.now() - g0) / 1000;
  // settled, as a lab's finished runs are: autovacuum's first pass over the new rows would otherwise run meanwhile
  await db.pool.query('VACUUM ANALYZE metric_point, metric_chunk, metric_rollup, run_metric');
  const longSeries = await measure('metrics.series', () => ({ runIds: longIds, keys: ['loss'], buckets: 1000 }));
  // what the dashboard reads (binary columns, libs/db/src/series-packed.ts)
  const longPacked = await measure('metrics.seriesPacked', () => ({ runIds: longIds, keys: ['loss'], buckets: 1000 }));

  const l0 = performance.now();
  await db.pool.query(
    `INSERT INTO run (id, project_id, name, method, "constraint", status, summary, tags, config, created_at)
     SELECT 'scale' || i, $1, 'list-' || i, 'aft', 'none', 'succeeded',
            jsonb_build_object('acc', random(), 'ppl', 1 + random()), ARRAY['seed-' || (i % 3)],
            jsonb_build_object('lr', (i % 7) * 1e-4), now() - (i || ' seconds')::interval
     FROM generate_series(1, $2::int) i`,
    [project.rows[0]!.id, LIST_RUNS],
  );
  await db.pool.query('ANALYZE run, run_summary_value');
  const listSeed = (performance.now() - l0) / 1000;
  const list = await measure('runs.list', () => ({
    projectId: project.rows[0]!.id,
    sortBy: 'summary.acc',
    sortDir: 'desc',
    limit: 50,
  }));

  console.log(
    JSON.stringify(
      {
        bench: 'scale',
        client: TIMING_CLIENT,
        shape: { runs: RUNS, keys: 10, steps: STEPS, writers: WRITERS },
        points,
        ingest: {
          seconds: Number(ingestSeconds.toFixed(1)),
          pointsPerSecond: Math.round(points / ingestSeconds),
          goal: 300_000,
          cpuSeconds: ingestCpu,
        },
        fold: { seconds: Number(foldSeconds.toFixed(1)), pointsPerSecond: Math.round(folded / foldSeconds), folded },
        bytesPerPoint: {
          goal: 4,
          beforeFold: perPoint(beforeFold),
          afterFoldVacuum: perPoint(afterVacuum),
          afterFoldVacuumFull: perPoint(afterFull),
          chunkPayloadOnly: Number((Number(chunkPayload.rows[0]!.b) / Number(chunkPayload.rows[0]!.n)).toFixed(3)),
        },
        series20Runs: { ...series, pointsPerSeries: STEPS, buckets: 1000 },
        series20RunsPacked: { ...seriesPacked, pointsPerSeries: STEPS, buckets: 1000 },
        series20LongRuns: {
          ...longSeries,
          pointsPerSeries: LONG_STEPS,
          buckets: 1000,
          seedSeconds: Number(longSeed.toFixed(1)),
          goalP95: 50,
        },
        series20LongRunsPacked: { ...longPacked, pointsPerSeries: LONG_STEPS, buckets: 1000, goalP95: 50 },
        zoom2000Raw: { ...zoom, mode: zoomCheck[0]?.mode, points: zoomCheck[0]?.steps.length, goalP95: 30 },
        runsListSortedBySummary: { ...list, runs: LIST_RUNS, seedSeconds: Number(listSeed.toFixed(1)), goalP95: 100 },
      },
      null,
      2,
    ),
  );
} finally {
  await db.close();
  await app.stop();
}
