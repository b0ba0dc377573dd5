/**
 * GPU jobs in the dashboard (docs/architecture.md, "GPU jobs"): the sweep launcher's GPU choice reaches the spec and
 * the queue (the e2e worker has no GPU, so a GPU parent waits, as the launch warns and the runs table's status
 * title says), and the runs table says where each run trained.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { createDb, type Db } from '@aft/db';
import { ARTIFACTS, callApi, launch, signedInPage } from './browser';

let browser: Browser;
let page: Page;
let db: Db;
const base = () => inject('baseUrl');
const suffix = randomBytes(4).toString('hex');

beforeAll(async () => {
  browser = await launch();
  page = await signedInPage(browser);
  db = createDb({ connectionString: inject('databaseUrl'), max: 2 });
});
afterAll(async () => {
  await db?.close();
  await browser?.close();
});

type SweepView = {
  runs: { id: string; status: string; parentRunId: string | null; config: Record<string, unknown> }[];
};

describe('the GPU choice in the sweep launcher', () => {
  it('puts the VFT parent on a GPU: it waits for a GPU worker while the spec and run record what it asked', async () => {
    await page.goto(`${base()}/sweeps/new?project=e2e-gpu-${suffix}`);
    await page.click('button[data-preset="smoke"]');
    await page.getByLabel('VFT parents on a GPU').check();
    // a preset keeps the choice: where it trains is not the experiment's
    await page.click('button[data-preset="beta"]');
    expect(await page.getByLabel('VFT parents on a GPU').isChecked()).toBe(true);
    expect(await page.getByLabel('Alignment runs on a GPU').isChecked()).toBe(false);
    await page.click('button[data-preset="smoke"]');
    await page.fill('input[aria-label="Name"]', 'e2e gpu sweep');
    await expect
      .poll(() => page.textContent('[data-testid="run-count"]'))
      .toBe('4 alignment runs from 1 VFT parent (max 256)');
    await page.screenshot({ path: resolve(ARTIFACTS, 'sweep-form-gpu.png'), fullPage: true });

    await page.click('button[type="submit"]');
    // the e2e worker takes CPU jobs only: the launch goes ahead and says its GPU parent waits for a GPU worker
    const warning = page.locator('[data-testid="launch-warning"]');
    await warning.waitFor();
    expect(await warning.textContent()).toContain('no live worker takes GPU jobs (AFT_WORKER_GPUS)');
    await page.screenshot({ path: resolve(ARTIFACTS, 'sweep-form-no-gpu-worker.png'), fullPage: true });
    await warning.getByRole('link', { name: 'Open the sweep' }).click();
    await page.waitForURL(/\/sweeps\/(?!new)[^/?]+$/);
    const sweepId = page.url().split('/').at(-1)!;
    const sweep = await callApi<SweepView>('sweeps.get', { id: sweepId }, 'GET');
    const parent = sweep.runs.find((r) => r.parentRunId === null)!;
    expect(parent.config).toMatchObject({ resources: { gpu: 1 } });
    for (const r of sweep.runs.filter((x) => x.parentRunId !== null)) expect(r.config).not.toHaveProperty('resources');
    const spec = await db.pool.query(`SELECT spec FROM sweep WHERE id = $1`, [sweepId]);
    expect(spec.rows[0].spec.resources).toEqual({ vft: { gpu: 1 } });
    // the e2e worker takes CPU jobs only: after a while the GPU parent is still queued
    await page.waitForTimeout(3_000);
    expect((await callApi<SweepView>('sweeps.get', { id: sweepId }, 'GET')).runs.map((r) => r.status)).toEqual(
      sweep.runs.map(() => 'queued'),
    );
    await callApi('sweeps.cancel', { id: sweepId });
  });
});

describe('the runs table’s "Trained on" column', () => {
  it('shows backend · device / host, the whole adapter in the title, and can be hidden', async () => {
    const team = await db.prisma.team.findUniqueOrThrow({ where: { slug: 'local' } });
    const project = (await db.prisma.project.create({ data: { teamId: team.id, name: `e2e-trained-${suffix}` } })).id;
    const adapter = 'mesa, software, llvmpipe-llvm-15-0-6-256-bits-, llvmpipe: Mesa 25.0.7 (LLVM 15.0.6) 0.0.1';
    const runs: [string, string | null, Record<string, unknown>][] = [
      ['vft-gpu', 'webgpu', { backend: 'webgpu', 'backend.adapter': adapter, 'worker.host': 'gpu-1' }],
      ['aft-cpu', 'wasm', { backend: 'wasm', 'backend.kernels': 'simd-bmm', 'worker.host': 'cpu-7' }],
      ['older', 'wasm', {}],
      ['queued', null, { resources: { gpu: 1 } }],
    ];
    for (const [i, [name, backend, config]] of runs.entries()) {
      await db.pool.query(
        `INSERT INTO run (id, project_id, name, method, status, seed, backend, config, summary, created_at)
         VALUES ($1, $2, $3, 'vft', $4, 1, $5, $6, $7, now() - $8::int * interval '1 minute')`,
        [
          `e2e-trained-${suffix}-${i}`,
          project,
          name,
          backend ? 'succeeded' : 'queued',
          backend,
          JSON.stringify({ preset: 'tiny', seed: 1, ...config }),
          JSON.stringify({ 'test/task_accuracy': 0.1 * i }),
          i,
        ],
      );
    }
    await page.goto(`${base()}/projects/${project}`);
    const table = page.locator('[data-testid="runs-table"]');
    await table.locator('[role="row"]').nth(runs.length).waitFor();
    expect(await table.locator('.tr.head').textContent()).toContain('Trained on');
    const cell = (i: number) => table.locator(`[data-run="e2e-trained-${suffix}-${i}"] .td.trained`);
    expect(await cell(0).textContent()).toBe('webgpu · llvmpipe / gpu-1');
    expect(await cell(0).getAttribute('title')).toBe(`webgpu · ${adapter} · on gpu-1`);
    expect(await cell(1).textContent()).toBe('wasm / cpu-7');
    expect(await cell(2).textContent()).toBe('wasm');
    expect(await cell(3).textContent()).toBe('—');
    const status = (i: number) => table.locator(`[data-run="e2e-trained-${suffix}-${i}"] .td:has(> .badge)`);
    expect(await status(3).getAttribute('title')).toBe('queued: waiting for a GPU worker');
    expect(await status(0).getAttribute('title')).toBeNull();
    await page.screenshot({ path: resolve(ARTIFACTS, 'runs-table-trained-on.png'), fullPage: true });

    await page.goto(`${base()}/projects/${project}?hide=trained`);
    await table.locator('[role="row"]').nth(runs.length).waitFor();
    expect(await table.locator('.tr.head').textContent()).not.toContain('Trained on');
  });
});
