/**
 * `npm run bench:ui`: in headless Debian Chromium against the built app, with 100,000 runs in one project (BENCH_RUNS),
 *  (a) navigation → an interactive runs table (rows drawn and hydrated: ticking a row's checkbox updates the
 *      compare button), and
 *  (b) navigation → a drawn compare page for 20 runs (results table and the curves' canvas), and
 *  (c) navigation → a drawn paired comparison of 20 runs × 2,000 questions (4 arms × 5 seeds with test/greedy
 *      outcomes: every arm's row with its dots; the server reads the outcomes and bootstraps on each request).
 * Each is measured cold-ish several times; prints JSON with the median and max. Target: ≤ 1.5 s each.
 */
import { createDb, insertMetricPoints } from '@aft/db';
import { ensureWebBuilt, signIn, startApp } from '../lib/app-server';
import { launchChromium } from '../lib/browser';

const RUNS = Number(process.env['BENCH_RUNS'] ?? 100_000);
const ITER = Number(process.env['BENCH_ITER'] ?? 5);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

ensureWebBuilt();
const app = await startApp('aft_benchui');
const db = createDb({ connectionString: app.databaseUrl, max: 4 });
const browser = await launchChromium();
try {
  const team = await db.prisma.team.findUniqueOrThrow({ where: { slug: 'local' } });
  const project = await db.prisma.project.create({ data: { teamId: team.id, name: 'bench-ui' } });
  const t0 = performance.now();
  // 10,000 runs across methods × constraints × seeds, with the summary metrics the results table reads
  await db.pool.query(
    `INSERT INTO run (id, project_id, name, method, "constraint", status, seed, config, summary, tags, created_at)
     SELECT 'bench-' || i, $1, 'run-' || i,
            (ARRAY['vft','rft','aft','dpo','rrhf','pro'])[1 + i % 6],
            (ARRAY['none','detach','boundary'])[1 + (i / 6) % 3],
            'succeeded', i % 5, jsonb_build_object('lr', 3e-4, 'beta', 1 + i % 3),
            jsonb_build_object('test/task_accuracy', 0.3 + (i % 97) / 500.0, 'test/assessment_accuracy', 0.6 + (i % 31) / 200.0,
                               'test/score_gap', (i % 13) / 10.0, 'test/ref_perplexity', 1.1 + (i % 7) / 50.0),
            ARRAY['bench'], now() - (i || ' seconds')::interval
     FROM generate_series(1, $2) AS i`,
    [project.id, RUNS],
  );
  const ids = Array.from({ length: 20 }, (_, i) => `bench-${i + 1}`);
  for (const id of ids) {
    await insertMetricPoints(db.pool, id, {
      keys: ['val/task_accuracy', 'train/loss'],
      key: Array.from({ length: 2000 }, (_, i) => i % 2),
      step: Array.from({ length: 2000 }, (_, i) => Math.floor(i / 2)),
      value: Array.from({ length: 2000 }, (_, i) => (i % 2 ? Math.exp(-i / 800) : 0.2 + i / 8000)),
    });
  }
  // (c): continued VFT, AFT, DPO and PRO over seeds 0–4, each with 2,000 test/greedy outcomes (AFT a little better)
  const pairedIds = Array.from({ length: 20 }, (_, i) => `bench-paired-${i}`);
  await db.pool.query(
    `INSERT INTO run (id, project_id, name, method, "constraint", status, seed, parent_run_id, config, tags)
     SELECT 'bench-paired-' || i, $1, 'paired-' || i, (ARRAY['vft','aft','dpo','pro'])[1 + i / 5],
            (ARRAY['none','detach','none','boundary'])[1 + i / 5], 'succeeded', i % 5, 'bench-' || (1 + i % 5),
            jsonb_build_object('beta', 0.1), ARRAY['bench']
     FROM generate_series(0, 19) AS i`,
    [project.id],
  );
  await db.pool.query(
    `INSERT INTO sample (run_id, step, split, question_id, sample_idx, prompt, completion, correct)
     SELECT 'bench-paired-' || i, 3000, 'test/greedy', 'q' || q, 0, '', '',
            -- per question a base difficulty; an arm's skill (AFT's highest, DPO the same as VFT's) and its seed move the threshold
            (hashtext('q' || q) & 1023) < 450 + (ARRAY[0, 40, 0, -10])[1 + i / 5] + (i % 5) * 6
              + (hashtext(i || ':' || q) & 63) - 32
     FROM generate_series(0, 19) AS i, generate_series(0, 1999) AS q`,
  );
  await db.pool.query('ANALYZE sample');
  const seedSeconds = (performance.now() - t0) / 1000;

  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await signIn(context, app);
  const page = await context.newPage();
  // warm the server's routes once (the first request compiles nothing under `next start`, but fills caches)
  await page.goto(`${app.baseUrl}/projects/${project.id}`);
  await page.goto(`${app.baseUrl}/compare?runs=${ids.join(',')}`);

  const table: number[] = [];
  for (let i = 0; i < ITER; i++) {
    await page.goto('about:blank');
    const start = performance.now();
    await page.goto(`${app.baseUrl}/projects/${project.id}?sort=summary.test%2Ftask_accuracy`, { waitUntil: 'commit' });
    const box = page.locator('[data-testid="runs-table"] [data-run] input[type="checkbox"]').first();
    await box.waitFor();
    // interactive = hydrated: a click changes React state
    for (;;) {
      await box.click();
      if ((await page.textContent('[data-testid="compare-selected"]'))?.includes('1')) break;
      await page.waitForTimeout(20);
    }
    table.push(performance.now() - start);
  }

  const compare: number[] = [];
  for (let i = 0; i < ITER; i++) {
    await page.goto('about:blank');
    const start = performance.now();
    await page.goto(`${app.baseUrl}/compare?runs=${ids.join(',')}`, { waitUntil: 'commit' });
    await page.locator('[data-testid="results-table"] tbody tr').first().waitFor();
    await page.locator('[data-testid="compare-plot"] canvas').first().waitFor();
    compare.push(performance.now() - start);
  }
  const paired: number[] = [];
  const pairedUrl = `${app.baseUrl}/compare?runs=${pairedIds.join(',')}`;
  await page.goto(pairedUrl);
  for (let i = 0; i < ITER; i++) {
    await page.goto('about:blank');
    const start = performance.now();
    await page.goto(pairedUrl, { waitUntil: 'commit' });
    // drawn: the last arm's row with one dot per seed
    await page.locator('[data-testid="paired-row"]').nth(2).locator('[data-testid="paired-dot"]').nth(4).waitFor();
    paired.push(performance.now() - start);
  }
  const pairedVerdicts = await page.locator('[data-testid="paired-verdict"]').allTextContents();

  const rowsInDom = await (async () => {
    await page.goto(`${app.baseUrl}/projects/${project.id}`);
    await page.locator('[data-testid="runs-table"] [data-run]').first().waitFor();
    return page.locator('[data-testid="runs-table"] [data-run]').count();
  })();
  console.log(
    JSON.stringify(
      {
        bench: 'ui',
        runs: RUNS,
        seedSeconds: Number(seedSeconds.toFixed(1)),
        rowsInDom,
        tableInteractiveMs: { median: Math.round(median(table)), max: Math.round(Math.max(...table)), n: table.length },
        compare20RunsDrawnMs: {
          median: Math.round(median(compare)),
          max: Math.round(Math.max(...compare)),
          n: compare.length,
        },
        paired20RunsX2000QuestionsDrawnMs: {
          median: Math.round(median(paired)),
          max: Math.round(Math.max(...paired)),
          n: paired.length,
          verdicts: pairedVerdicts,
        },
        targetMs: 1500,
      },
      null,
      2,
    ),
  );
} finally {
  await browser.close();
  await db.close();
  await app.stop();
}
