/**
 * `npm run bench:export`: a project of 100 runs × 10,000 points (plus samples and events) exported over HTTP from
 * the built app (`next start`) with the SDK, while the server process's resident memory is sampled from /proc;
 * then re-imported into an empty database and counted. Prints JSON: archive size, export and import rates, the
 * server's RSS before and at its peak during the export, and whether the counts match.
 *   npm run bench:export -- --runs 100 --points 10000
 */
import { mkdtempSync, readFileSync, rmSync, statSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createGunzip } from 'node:zlib';
import { createDb, importArchive, insertMetricPoints, insertSamples } from '@aft/db';
import { createTestDatabase } from '@aft/db/testing';
import { exportArchive } from '@aft/tracker';
import { ensureWebBuilt, startApp } from '../lib/app-server';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '100' }, points: { type: 'string', default: '10000' } },
});
const RUNS = Number(values.runs);
const POINTS = Number(values.points);

const rssMiB = (pid: number) => {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0; // the process is gone
  }
};

ensureWebBuilt();
const app = await startApp('aft_benchexport');
const db = createDb({ connectionString: app.databaseUrl, max: 4 });
const dir = mkdtempSync(join(tmpdir(), 'aft-bench-export-'));
const target = await createTestDatabase();
try {
  const team = await db.prisma.team.findUniqueOrThrow({ where: { slug: 'local' } });
  const project = await db.prisma.project.create({ data: { teamId: team.id, name: 'bench-export' } });
  let t0 = performance.now();
  for (let r = 0; r < RUNS; r++) {
    const run = await db.prisma.run.create({
      data: {
        projectId: project.id,
        name: `run-${r}`,
        method: 'aft',
        status: 'succeeded',
        summary: { 'test/task_accuracy': r / RUNS },
      },
    });
    // two keys, POINTS points in all, in batches of 10,000 (the API's batch limit)
    for (let from = 0; from < POINTS; from += 10_000) {
      const n = Math.min(10_000, POINTS - from);
      await insertMetricPoints(db.pool, run.id, {
        keys: ['train/loss', 'val/acc'],
        key: Array.from({ length: n }, (_, i) => (from + i) % 2),
        step: Array.from({ length: n }, (_, i) => Math.floor((from + i) / 2)),
        value: Array.from({ length: n }, (_, i) => Math.exp(-(from + i) / POINTS)),
      });
    }
    await insertSamples(
      db.pool,
      run.id,
      team.id,
      Array.from({ length: 20 }, (_, i) => ({
        step: 100,
        split: 'test',
        questionId: `q${i}`,
        sampleIdx: 0,
        prompt: `question ${i}?`,
        completion: `so ${i}\n#### ${i}`,
        gold: String(i),
        correct: true,
        score: -0.3,
      })),
    );
    await db.prisma.event.create({ data: { runId: run.id, kind: 'note', step: 1, details: {} } });
  }
  const seedS = (performance.now() - t0) / 1000;

  // warm the route (its modules load and compile on the first request), let the server settle, then sample its
  // RSS every 25 ms while the SDK downloads the export
  const warm = await db.prisma.project.create({ data: { teamId: team.id, name: 'warm-up' } });
  await exportArchive({ projectId: warm.id }, join(dir, 'warm.tar.gz'), { url: app.baseUrl, apiKey: app.apiKey });
  await new Promise((r) => setTimeout(r, 1000));
  const rssBefore = rssMiB(app.pid);
  let peak = rssBefore;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(app.pid))), 25);
  const file = join(dir, 'bench.aft.tar.gz');
  t0 = performance.now();
  const bytes = await exportArchive({ projectId: project.id }, file, { url: app.baseUrl, apiKey: app.apiKey }).finally(
    () => clearInterval(sampler),
  );
  const exportS = (performance.now() - t0) / 1000;

  const importTeam = await target.db.prisma.team.create({ data: { slug: 'imported', name: 'imported' } });
  t0 = performance.now();
  const imported = await importArchive(target.db.pool, createReadStream(file).pipe(createGunzip()), {
    teamId: importTeam.id,
  });
  const importS = (performance.now() - t0) / 1000;
  const count = async (pool: typeof db.pool, projectId: string) => {
    const r = await pool.query<{ runs: number; points: number; samples: number; events: number }>(
      `SELECT (SELECT count(*)::int FROM run WHERE project_id = $1) AS runs,
              (SELECT count(*)::int FROM metric_point p JOIN run r ON r.num = p.run_num WHERE r.project_id = $1) +
              (SELECT coalesce(sum(c.count), 0)::int FROM metric_chunk c JOIN run r ON r.num = c.run_num
                WHERE r.project_id = $1) AS points, -- the tail and the folded chunks
              (SELECT count(*)::int FROM sample s JOIN run r ON r.id = s.run_id WHERE r.project_id = $1) AS samples,
              (SELECT count(*)::int FROM event e JOIN run r ON r.id = e.run_id WHERE r.project_id = $1) AS events`,
      [projectId],
    );
    return r.rows[0]!;
  };
  const source = await count(db.pool, project.id);
  const copy = await count(target.db.pool, imported.projectId);
  const points = RUNS * POINTS;
  console.log(
    JSON.stringify(
      {
        runs: RUNS,
        points,
        seed_s: Number(seedS.toFixed(1)),
        archive_mib: Number((statSync(file).size / 2 ** 20).toFixed(1)),
        downloaded_bytes: bytes,
        export_s: Number(exportS.toFixed(1)),
        export_points_per_s: Math.round(points / exportS),
        server_rss_before_mib: Number(rssBefore.toFixed(0)),
        server_rss_peak_mib: Number(peak.toFixed(0)),
        server_rss_growth_mib: Number((peak - rssBefore).toFixed(0)),
        import_s: Number(importS.toFixed(1)),
        import_points_per_s: Math.round(points / importS),
        source_counts: source,
        imported_counts: copy,
        counts_match: JSON.stringify(source) === JSON.stringify(copy),
      },
      null,
      2,
    ),
  );
} finally {
  await db.close();
  await target.drop();
  await app.stop();
  rmSync(dir, { recursive: true, force: true });
}
