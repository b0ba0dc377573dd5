/**
 * The researcher's dashboard in Debian's Chromium against the built app and a real worker: launch a sweep from the
 * form and watch it train, compare its methods, read a degraded run's case study.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, callApi, launch, signedInPage } from './browser';

let browser: Browser;
let page: Page;
const base = () => inject('baseUrl');

const call = callApi;

beforeAll(async () => {
  browser = await launch();
  page = await signedInPage(browser);
});
afterAll(async () => {
  await browser?.close();
});

describe('sweeps from the dashboard', () => {
  let sweepUrl = '';

  it('checks the form as you type, launches a sweep and shows its statuses changing without a reload', async () => {
    await page.goto(`${base()}/sweeps/new?project=e2e-sweeps`);
    await page.click('button[data-preset="smoke"]');
    await expect
      .poll(() => page.textContent('[data-testid="run-count"]'))
      .toBe('4 alignment runs from 1 VFT parent (max 256)');

    // inline validation: a bad β disables the launch and says why
    await page.fill('input[aria-label="β (boundary)"]', '1, x');
    await expect.poll(() => page.textContent('.field-error')).toContain('"x" is not a number');
    expect(await page.isDisabled('button[type="submit"]')).toBe(true);
    await page.fill('input[aria-label="β (boundary)"]', '1');
    await page.fill('input[aria-label="Name"]', 'e2e smoke sweep');
    await page.screenshot({ path: resolve(ARTIFACTS, 'sweep-form.png'), fullPage: true });

    await page.click('button[type="submit"]');
    await page.waitForURL(/\/sweeps\/(?!new)[^/?]+$/);
    sweepUrl = page.url();
    const rows = page.locator('[data-testid="status-grid"] tbody tr');
    await expect.poll(() => rows.count()).toBe(5);
    // the VFT parent first, then its alignment runs in the order planned
    expect(await rows.locator('td:first-child').allTextContents()).toEqual([
      'vft-tiny-s1parent',
      'aft-none-s1',
      'aft-boundary-b1-s1',
      'dpo-none-s1',
      'dpo-boundary-b1-s1',
    ]);

    // statuses change on the page itself (it polls the API): record every status seen until the sweep is done
    const seen = new Set<string>();
    await page.evaluate(() => ((window as unknown as { __loaded: boolean }).__loaded = true));
    const deadline = Date.now() + 240_000;
    for (;;) {
      const statuses = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-status') ?? ''));
      statuses.forEach((s) => seen.add(s));
      if (statuses.every((s) => ['succeeded', 'failed', 'canceled'].includes(s))) break;
      if (Date.now() > deadline) throw new Error(`the sweep did not finish: ${statuses.join(', ')}`);
      await page.waitForTimeout(500);
    }
    // never reloaded: the marker set before the wait is still there
    expect(await page.evaluate(() => (window as unknown as { __loaded?: boolean }).__loaded)).toBe(true);
    expect(seen.has('running')).toBe(true);
    const final = await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-status')));
    expect(final).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded']);
    await expect.poll(() => page.locator('[data-testid="heatmap"] td').count()).toBeGreaterThan(0);
    await page.screenshot({ path: resolve(ARTIFACTS, 'sweep-page.png'), fullPage: true });
  });

  it('compares the sweep: one results row per method × constraint, curves with a line per group, exports', async () => {
    expect(sweepUrl).not.toBe('');
    await page.goto(sweepUrl);
    await page.getByRole('link', { name: /Compare these runs/ }).click();
    await page.waitForURL(/\/compare\?sweep=/);
    await page.locator('[data-testid="results-table"] tbody tr').first().waitFor();
    const labels = await page.locator('[data-testid="results-table"] tbody tr td:first-child').allTextContents();
    expect(labels).toEqual(['VFT', 'AFT none', 'AFT boundary β=1', 'DPO none', 'DPO boundary β=1']);
    const acc = await page.locator('[data-testid="results-table"] tbody tr').nth(1).locator('td').nth(2).textContent();
    expect(acc).toMatch(/^\d+\.\d ± \d+\.\d$/);
    // the paired comparison from the outcomes each run logged at its test evaluation: every alignment arm against
    // the VFT parent (no continued VFT in the smoke sweep), one dot for its one seed, a verdict each
    const paired = page.locator('[data-testid="paired-row"]');
    await paired.first().waitFor();
    expect(await paired.locator('td:first-child').allTextContents()).toEqual([
      'AFT none',
      'AFT boundary β=1',
      'DPO none',
      'DPO boundary β=1',
    ]);
    expect(await paired.locator('[data-testid="paired-dot"]').count()).toBe(4);
    for (const v of await page.locator('[data-testid="paired-verdict"]').allTextContents())
      expect(['better', 'worse', 'within noise']).toContain(v);
    // the alignment runs' groups; the VFT parent (its own step scale) joins when asked
    await expect
      .poll(() => page.getAttribute('[data-testid="compare-plot"]', 'data-series'), { timeout: 20_000 })
      .toBe('4');
    await page.getByLabel(/VFT parents/).check();
    await expect
      .poll(() => page.getAttribute('[data-testid="compare-plot"]', 'data-series'), { timeout: 20_000 })
      .toBe('5');
    // the chart's choices are in the URL: a reload (or a saved view) draws the same chart
    await page.selectOption('select[aria-label="compare metric"]', 'train/loss');
    await page.selectOption('select[aria-label="compare band"]', 'std');
    const q = (k: string) => new URL(page.url()).searchParams.get(k);
    await expect.poll(() => [q('parents'), q('chart'), q('band')]).toEqual(['1', 'train/loss', 'std']);
    await page.reload();
    expect(await page.inputValue('select[aria-label="compare metric"]')).toBe('train/loss');
    expect(await page.inputValue('select[aria-label="compare band"]')).toBe('std');
    expect(await page.getByLabel(/VFT parents/).isChecked()).toBe(true);
    await expect
      .poll(() => page.getAttribute('[data-testid="compare-plot"]', 'data-series'), { timeout: 20_000 })
      .toBe('5');
    await page.getByRole('button', { name: 'Markdown' }).click();
    expect(await page.inputValue('[data-testid="export-md"]')).toContain('| AFT boundary β=1 |');
    await page.getByRole('button', { name: 'LaTeX' }).click();
    expect(await page.inputValue('[data-testid="export-latex"]')).toContain('AFT boundary $\\beta$=1 &');
    await page.screenshot({ path: resolve(ARTIFACTS, 'compare.png'), fullPage: true });
  });
});

describe('run page of the sweep parent', () => {
  it('browses every sampled COT per question against the reference, and plots against wall time', async () => {
    await page.goto(`${base()}/`);
    await page.locator('[data-testid="project-card"]', { hasText: 'e2e-sweeps' }).click();
    await page.locator('[data-testid="runs-table"] [data-run]').first().waitFor();
    await page.getByRole('link', { name: 'vft-tiny-s1' }).click();
    await page.waitForURL(/\/runs\//);
    const browser = page.locator('[data-testid="samples-browser"]');
    await browser.locator('.question').first().waitFor();
    expect(await browser.locator('select[aria-label="sample set"]').inputValue()).toMatch(/^samples-k8-t0\.8@60$/);
    const q = browser.locator('.question').first();
    expect(await q.locator('.cot.reference pre').textContent()).toMatch(/#### -?\d+/);
    const labels = await q.locator('.cot:not(.reference) .label').allTextContents();
    expect(labels.length).toBeGreaterThan(0);
    expect(labels[0]).toMatch(/^rank \d+ · (correct|wrong) · score -?\d/);
    await page.selectOption('select[aria-label="x-axis"]', 'tokens');
    await expect.poll(() => page.url()).toContain('x=tokens');
    await expect
      .poll(async () =>
        Number(await page.locator('[data-testid="metric-chart"][data-key="train/loss"]').getAttribute('data-points')),
      )
      .toBeGreaterThan(0);
    await page.selectOption('select[aria-label="x-axis"]', 'time');
    await expect.poll(() => page.url()).toContain('x=time');
    await expect
      .poll(async () =>
        Number(await page.locator('[data-testid="metric-chart"][data-key="train/loss"]').getAttribute('data-points')),
      )
      .toBeGreaterThan(0);
    await page.screenshot({ path: resolve(ARTIFACTS, 'run-samples.png'), fullPage: true });
  });
});

describe('case study of a degraded run', () => {
  it('marks the onset on every chart and shows the generations before and after it beside the parent’s', async () => {
    const parent = await call<{ id: string }>('runs.create', {
      project: 'e2e-case',
      name: 'vft-parent',
      method: 'vft',
    });
    const run = await call<{ id: string }>('runs.create', {
      project: 'e2e-case',
      name: 'aft-none-collapse',
      method: 'aft',
      constraint: 'none',
      parentRunId: parent.id,
      config: { method: 'aft', constraint: 'none', wNll: 0, lr: 0.003 },
    });
    const points = [];
    for (let s = 1; s <= 60; s++) {
      points.push({ key: 'train/loss', step: s, value: s < 30 ? 1 / s : 5 + s });
      if (s % 10 === 0) {
        points.push({ key: 'val/task_accuracy', step: s, value: s < 30 ? 0.4 : 0.02 });
        points.push({ key: 'val/ref_perplexity', step: s, value: s < 30 ? 1.15 : 40 });
        for (const [k, v] of [
          ['positive_p50', 0.1],
          ['negative_p50', s < 30 ? -0.5 : -3 - s / 10],
          ['positive_p10', 0],
          ['positive_p90', 0.3],
          ['negative_p10', -1 - s / 5],
          ['negative_p90', -0.2],
          ['boundary', -1],
        ] as const) {
          points.push({ key: `dist/${k}`, step: s, value: v });
        }
      }
    }
    await call('metrics.log', { runId: run.id, points });
    const ex = (id: string, output: string, correct: boolean) => ({
      id,
      question: `Q ${id}: Ann has 3 pens, gets 4. Total?`,
      output,
      correct,
    });
    await call('events.log', {
      runId: run.id,
      kind: 'degradation-detected',
      step: 30,
      details: {
        evidence: [
          { signal: 'pplRatio', value: 34.8, limit: 1.25, parent: 1 },
          // a paired test's evidence: the discordant counts against the parent, p and the α this look spent
          {
            signal: 'accuracyDrop',
            value: 0.4,
            limit: 0.05,
            parent: 0.45,
            worse: 40,
            better: 0,
            p: 1e-12,
            alphaSpent: 0.0025,
          },
        ],
        parent: [ex('a', '3+4=7\n#### 7', true), ex('b', '2*5=10\n#### 10', true)],
        before: [ex('a', '3+4=7\n#### 7', true), ex('b', '2*5=11\n#### 11', false)],
        after: [ex('a', '77777777777777', false), ex('b', '#### #### ####', false)],
        policy: 'flag',
      },
    });
    await call('runs.setStatus', { id: run.id, status: 'succeeded' });

    await page.goto(`${base()}/runs/${run.id}`);
    await page.getByRole('link', { name: 'open the case study' }).click();
    await page.waitForURL(/\/case-study$/);
    expect(await page.textContent('[data-testid="onset-step"]')).toBe('30');
    await expect.poll(() => page.locator('[data-testid="metric-chart"]').count()).toBe(3);
    const markers = await page
      .locator('[data-testid="metric-chart"]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-markers')));
    expect(markers).toEqual(['30', '30', '30']);
    const rows = page.locator('[data-testid="generations"] tbody tr');
    expect(await rows.count()).toBe(2);
    const first = await rows.nth(0).locator('pre').allTextContents();
    expect(first).toEqual(['3+4=7\n#### 7', '3+4=7\n#### 7', '77777777777777']);
    expect(await page.textContent('[data-testid="evidence"]')).toContain('reference perplexity');
    const drop = await page.locator('[data-testid="evidence"] tbody tr').nth(1).locator('td').allTextContents();
    expect(drop[0]).toBe('accuracy drop from the parent');
    expect(drop[4]).toBe('40 / 0');
    expect(drop[5]).toMatch(/^1(\.0+)?e-12 \(0\.0025\)$/);
    await expect.poll(() => page.locator('[data-testid="score-dist"] canvas').count()).toBeGreaterThan(0);
    await page.screenshot({ path: resolve(ARTIFACTS, 'case-study.png'), fullPage: true });
  });

  it('says clearly when a sweep, a case study or a comparison has nothing to show', async () => {
    await page.goto(`${base()}/sweeps/no-such-sweep`);
    expect(await page.textContent('[role="alert"]')).toContain('Sweep no-such-sweep does not exist');
    await page.goto(`${base()}/runs/no-such-run/case-study`);
    expect(await page.textContent('[role="alert"]')).toContain('Run no-such-run does not exist');
    await page.goto(`${base()}/compare?sweep=nope`);
    expect(await page.textContent('[role="alert"]')).toContain('sweep nope not found');
  });
});
