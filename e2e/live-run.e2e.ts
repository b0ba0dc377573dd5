import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, launch, signedInPage } from './browser';

const ROOT = resolve(import.meta.dirname, '..');
let browser: Browser;
let page: Page;

beforeAll(async () => {
  browser = await launch();
  page = await signedInPage(browser);
});
afterAll(async () => {
  await browser?.close();
});

/** Starts the example training script; resolves with its run id once it has created the run. */
function startScript(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'tools/examples/log-run.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, AFT_URL: inject('baseUrl'), AFT_API_KEY: inject('apiKey') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const first = new Promise<{ id: string; url: string }>((res, rej) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', (l) => res(JSON.parse(l)));
    child.once('exit', (code) => rej(new Error(`script exited ${code}: ${err}`)));
  });
  return { child, first, exited };
}

const points = (key: string) =>
  page.locator(`[data-testid="metric-chart"][data-key="${key}"]`).getAttribute('data-points').then(Number);

describe('a run logged through the SDK', () => {
  it('shows on the run page and its chart gains points without a reload', async () => {
    const script = startScript(['--project', 'e2e-live', '--steps', '3000', '--delay-ms', '8', '--name', 'live-e2e']);
    const { id } = await script.first;
    await page.goto(`${inject('baseUrl')}/runs/${id}`);
    await expect.poll(() => page.locator('[data-testid="run-name"]').textContent()).toBe('live-e2e');
    await page.locator('[data-testid="metric-chart"][data-key="train/loss"]').waitFor({ timeout: 30_000 });
    const before = await points('train/loss');
    const navigations: string[] = [];
    page.on('framenavigated', (f) => navigations.push(f.url()));
    await expect.poll(() => points('train/loss'), { timeout: 30_000, interval: 500 }).toBeGreaterThan(before);
    expect(navigations).toEqual([]); // no reload
    expect(await page.locator('[data-testid="live-indicator"]').textContent()).toBe('live');
    await page.screenshot({ path: `${ARTIFACTS}/live-run.png`, fullPage: true });

    expect(await script.exited).toBe(0);
    // the finished run: status flips live, every point arrived
    await expect.poll(() => page.locator('.toolbar .badge').textContent(), { timeout: 20_000 }).toBe('succeeded');
    await expect.poll(() => points('train/loss'), { timeout: 20_000 }).toBe(3000);
    await page.locator('input[aria-label="smoothing"]').fill('0.8');
    await expect.poll(() => page.url()).toContain('smooth=0.8');
    await page.screenshot({ path: `${ARTIFACTS}/finished-run.png`, fullPage: true });
  });

  it('lists the project and the run in the runs table, sorted by a summary metric', async () => {
    await page.goto(inject('baseUrl'));
    const card = page.locator('[data-testid="project-card"]', { hasText: 'e2e-live' });
    await card.click();
    await page.locator('[data-testid="runs-table"]').waitFor();
    await page.getByRole('link', { name: /eval\/accuracy/ }).click();
    await expect.poll(() => page.url()).toContain('sort=summary.eval%2Faccuracy');
    await page.locator('[data-testid="runs-table"] [data-run]').first().waitFor();
    expect(await page.locator('[data-testid="runs-table"] [data-run]').count()).toBeGreaterThan(0);
    expect(await page.locator('[data-testid="runs-table"]').textContent()).toContain('live-e2e');
    await page.screenshot({ path: `${ARTIFACTS}/runs-table.png`, fullPage: true });
  });

  it('says clearly when a run does not exist', async () => {
    await page.goto(`${inject('baseUrl')}/runs/does-not-exist`);
    expect(await page.locator('div.error[role="alert"]').textContent()).toContain('Run does-not-exist does not exist');
    await page.goto(`${inject('baseUrl')}/projects/nope?sort=bogus;`);
    expect(await page.locator('div.error[role="alert"]').textContent()).toContain('does not exist');
  });
});
