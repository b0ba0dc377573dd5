/**
 * The Workers page in Chromium (docs/architecture.md, "Workers anywhere"): the app's worker listed alive; a run on
 * a worker of this test's own (a GPU pool on wasm, so the app's CPU-only worker never takes the job) shown in its
 * hands with a link; that worker killed with SIGKILL turns gone with the job stalled; a second worker takes the job
 * and the page shows it resumed there. All live, without a reload.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, callApi, launch, signedInPage } from './browser';

const ROOT = resolve(import.meta.dirname, '..');
let browser: Browser;
let page: Page;
const procs: ChildProcess[] = [];
const artifacts = mkdtempSync(join(tmpdir(), 'aft-e2e-fleet-'));

/** A worker on the app's queue with one GPU slot that trains on wasm (the queue is named by startApp). */
function startGpuWorker(): ChildProcess {
  const queue = `aft-runs-${new URL(inject('databaseUrl')).pathname.slice(1)}`;
  const proc = spawn(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      AFT_URL: inject('baseUrl'),
      AFT_QUEUE: queue,
      AFT_CONCURRENCY: '1',
      AFT_WORKER_GPUS: '1',
      AFT_GPU_BACKEND: 'wasm',
      AFT_ARTIFACT_DIR: artifacts,
      AFT_LOCK_MS: '10000',
      AFT_STALLED_MS: '1000',
      AFT_HEARTBEAT_MS: '1000',
    },
    stdio: 'ignore',
  });
  procs.push(proc);
  return proc;
}

const row = (pid: number | undefined) => page.locator(`[data-testid="worker-row"]:has(td.num:text-is("${pid}"))`);

beforeAll(async () => {
  browser = await launch();
  page = await signedInPage(browser);
});
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
  await Promise.all(
    procs.map((p) => (p.exitCode !== null || p.signalCode ? null : new Promise((r) => p.once('exit', r)))),
  );
  rmSync(artifacts, { recursive: true, force: true });
  await browser?.close();
});

describe('the Workers page', () => {
  it('shows workers live: a run in hand, a killed worker gone with its job stalled, then resumed elsewhere', async () => {
    const first = startGpuWorker();
    await page.goto(`${inject('baseUrl')}/workers`);
    await page.locator('a[href="/workers"]').first().waitFor();
    await row(first.pid).waitFor({ timeout: 60_000 });
    expect(await row(first.pid).getAttribute('data-status')).toBe('alive');
    expect(await page.locator('[data-testid="worker-row"]').count()).toBeGreaterThanOrEqual(2); // and the app's

    const { runId } = await callApi<{ runId: string }>('runs.launch', {
      kind: 'vft',
      project: 'e2e-fleet',
      name: 'fleet-e2e-run',
      resources: { gpu: 1 },
      config: {
        preset: 'tiny',
        seed: 7,
        steps: 400,
        sampling: [],
        overrides: { batchSize: 8, evalEvery: 200, evalQuestions: 4, checkpointEvery: 10, 'data.train': 1000 },
      },
    });
    const link = row(first.pid).locator(`a[href="/runs/${runId}"]`);
    await link.waitFor({ timeout: 60_000 });
    expect(await link.textContent()).toBe('fleet-e2e-run');
    expect(await row(first.pid).locator('[data-testid="worker-job"]').getAttribute('data-state')).toBe('running');
    await expect.poll(() => row(first.pid).textContent()).toMatch(/gpu: wasm/);
    await expect.poll(() => row(first.pid).textContent(), { timeout: 10_000 }).toMatch(/\ds ago/);
    await page.screenshot({ path: `${ARTIFACTS}/workers.png`, fullPage: true });

    // after a checkpoint, kill -9: gone, the job stalled
    await expect
      .poll(
        async () =>
          (await callApi<{ kind: string }[]>('artifacts.list', { runId }, 'GET')).some((a) => a.kind === 'checkpoint'),
        { timeout: 120_000, interval: 500 },
      )
      .toBe(true);
    first.kill('SIGKILL');
    await expect
      .poll(() => row(first.pid).getAttribute('data-status'), { timeout: 30_000, interval: 500 })
      .toBe('gone');
    await expect
      .poll(() => row(first.pid).locator('[data-testid="worker-job"]').getAttribute('data-state'), { timeout: 10_000 })
      .toBe('stalled');
    await page.locator('[data-testid="stalled-jobs"]').waitFor();
    await page.screenshot({ path: `${ARTIFACTS}/workers-stalled.png`, fullPage: true });

    const second = startGpuWorker();
    await expect
      .poll(() => row(second.pid).locator('[data-testid="worker-job"]').getAttribute('data-state'), {
        timeout: 60_000,
        interval: 500,
      })
      .toBe('running');
    await expect
      .poll(() => row(first.pid).locator('[data-testid="worker-job"]').textContent(), { timeout: 10_000 })
      .toMatch(new RegExp(`resumed on .+ \\(pid ${second.pid}\\)`));
    expect(await page.locator('[data-testid="stalled-jobs"]').count()).toBe(0);
    await page.screenshot({ path: `${ARTIFACTS}/workers-resumed.png`, fullPage: true });
    await callApi('runs.cancel', { id: runId });
  });
});
