/**
 * The run page's charts in Debian's Chromium against the built app: sections by key prefix in reading order, dist
 * and sys collapsed by default, the filter and the open sections kept in the URL across a reload, and the onset
 * marker's label drawn inside the plot wherever the onset falls.
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, callApi, launch, signedInPage } from './browser';

let browser: Browser;
let page: Page;
const base = () => inject('baseUrl');
const project = `e2e-run-page-${randomUUID().slice(0, 8)}`;
const LONG_KEY = `custom/${'a_very_long_metric_name_'.repeat(5)}end`;

const call = callApi;

/** A finished run that logged keys under every prefix the page knows and two it does not, degraded at `onset`. */
async function loggedRun(name: string, onset: number): Promise<string> {
  const run = await call<{ id: string }>('runs.create', { project, name, method: 'aft', constraint: 'none' });
  const points: { key: string; step: number; value: number }[] = [];
  for (let s = 1; s <= 60; s++) {
    points.push({ key: 'train/loss', step: s, value: 2 / s });
    points.push({ key: 'train/lr', step: s, value: 0.003 });
    points.push({ key: 'sys/cpu', step: s, value: 40 + (s % 7) });
    points.push({ key: 'boundary/belowFraction', step: s, value: s / 60 });
    points.push({ key: LONG_KEY, step: s, value: s });
    points.push({ key: 'epoch', step: s, value: Math.floor(s / 20) });
    if (s % 10 === 0) {
      points.push({ key: 'val/task_accuracy', step: s, value: 0.3 + s / 200 });
      points.push({ key: 'val/ref_perplexity', step: s, value: 1.1 });
      points.push({ key: 'test/task_accuracy', step: s, value: 0.3 + s / 210 });
      for (const q of ['positive_p50', 'negative_p50', 'positive_p10', 'negative_p90'])
        points.push({ key: `dist/${q}`, step: s, value: q.startsWith('positive') ? 0.1 : -1 });
    }
    points.push({ key: 'custom/foo', step: s, value: Math.sin(s) });
  }
  await call('metrics.log', { runId: run.id, points });
  await call('events.log', { runId: run.id, kind: 'degradation-detected', step: onset, details: {} });
  await call('runs.setStatus', { id: run.id, status: 'succeeded' });
  return run.id;
}

const sectionIds = () =>
  page.locator('[data-testid="metric-section"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-section')));
const chartKeys = () =>
  page.locator('[data-testid="metric-chart"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-key')));
const section = (id: string) => page.locator(`[data-testid="metric-section"][data-section="${id}"]`);
const expanded = (id: string) => section(id).locator('h3 button').getAttribute('aria-expanded');
const param = (k: string) => new URL(page.url()).searchParams.get(k);

type Rect = { x: number; y: number; w: number; h: number };

/**
 * Where the onset label is, two ways, in CSS pixels relative to the chart's canvas: the box the plugin reports
 * (`data-marker-box`), and the ink actually on the canvas — every marker-red pixel off the dashed line's column —
 * against the plot area uPlot lays its overlay on (.u-over), so a label drawn somewhere the plugin did not mean is
 * caught too.
 */
async function markerGeometry(key: string) {
  const chart = page.locator(`[data-testid="metric-chart"][data-key="${key}"]`);
  await expect.poll(() => chart.getAttribute('data-marker-box'), { timeout: 20_000 }).toContain('"labels":[{');
  const drawn = JSON.parse((await chart.getAttribute('data-marker-box'))!) as { labels: Rect[]; plot: Rect };
  const seen = await chart.evaluate((el) => {
    const canvas = el.querySelector('canvas')!;
    const c = canvas.getBoundingClientRect();
    const o = el.querySelector('.u-over')!.getBoundingClientRect();
    const scale = canvas.width / c.width;
    const img = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
    const red = (i: number) => img.data[i]! > 180 && img.data[i + 1]! < 140 && img.data[i + 2]! < 140;
    const cols = new Array<number>(canvas.width).fill(0);
    for (let y = 0; y < canvas.height; y++)
      for (let x = 0; x < canvas.width; x++) if (red(4 * (y * canvas.width + x))) cols[x]!++;
    const line = cols.indexOf(Math.max(...cols));
    let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
    for (let y = 0; y < canvas.height; y++)
      for (let x = 0; x < canvas.width; x++)
        if (Math.abs(x - line) > 3 && red(4 * (y * canvas.width + x))) {
          [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x + 1), Math.max(y1, y + 1)];
        }
    return {
      ink: { x: x0 / scale, y: y0 / scale, w: (x1 - x0) / scale, h: (y1 - y0) / scale },
      plot: { x: o.left - c.left, y: o.top - c.top, w: o.width, h: o.height },
      line: line / scale,
    };
  });
  return { label: drawn.labels[0]!, ...seen };
}

const contains = (outer: Rect, inner: Rect, slack = 0) =>
  inner.x >= outer.x - slack &&
  inner.y >= outer.y - slack &&
  inner.x + inner.w <= outer.x + outer.w + slack &&
  inner.y + inner.h <= outer.y + outer.h + slack;

function expectInside({ label, ink, plot }: Awaited<ReturnType<typeof markerGeometry>>) {
  expect(ink.w).toBeGreaterThan(40); // the whole "onset · step N", not a sliver
  expect({ ink, inPlot: contains(plot, ink) }).toEqual({ ink, inPlot: true });
  expect({ label, inPlot: contains(plot, label) }).toEqual({ label, inPlot: true });
  expect({ ink, label, reported: contains(label, ink, 1) }).toEqual({ ink, label, reported: true });
}

beforeAll(async () => {
  browser = await launch();
  page = await signedInPage(browser);
});
afterAll(async () => {
  await browser?.close();
});

describe('the run page’s charts', () => {
  let early = '';
  let late = '';
  beforeAll(async () => {
    // one after the other: two concurrent runs.create of a new project race on its upsert
    early = await loggedRun('early-onset', 2);
    late = await loggedRun('late-onset', 60);
  });

  it('groups the charts by prefix, the charts a person opens the page for first', async () => {
    await page.goto(`${base()}/runs/${early}`);
    await expect.poll(sectionIds).toEqual(['train', 'val', 'test', 'boundary', 'dist', 'sys', 'custom', 'other']);
    expect(await expanded('dist')).toBe('false');
    expect(await expanded('sys')).toBe('false');
    expect(await expanded('train')).toBe('true');
    expect(await section('dist').locator('h3').textContent()).toContain('4');
    expect(await section('dist').locator('.chart').count()).toBe(0);
    // every open section's charts drawn; the first is the training loss, accuracy before perplexity
    await expect.poll(() => chartKeys().then((k) => k.length), { timeout: 20_000 }).toBe(9);
    const keys = await chartKeys();
    expect(keys.slice(0, 5)).toEqual([
      'train/loss',
      'train/lr',
      'val/task_accuracy',
      'val/ref_perplexity',
      'test/task_accuracy',
    ]);
    expect(keys).not.toContain('dist/positive_p50');

    // a long key ends in an ellipsis inside its chart, the whole key in its title
    const title = page.locator(`[data-testid="metric-chart"][data-key="${LONG_KEY}"] .title .key`);
    expect(await title.getAttribute('title')).toBe(LONG_KEY);
    const fit = await title.evaluate((el) => {
      const chart = el.closest('.chart')!.getBoundingClientRect();
      const r = el.getBoundingClientRect();
      return { clipped: el.scrollWidth > el.clientWidth, inside: r.right <= chart.right && r.left >= chart.left };
    });
    expect(fit).toEqual({ clipped: true, inside: true });
    await page.screenshot({ path: resolve(ARTIFACTS, 'run-page.png'), fullPage: true });
  });

  it('draws the onset label inside the plot, right of an early onset and left of a late one', async () => {
    await page.goto(`${base()}/runs/${early}`);
    const earlyG = await markerGeometry('train/loss');
    expectInside(earlyG);
    expect(earlyG.ink.x).toBeGreaterThan(earlyG.line); // right of an onset near the left edge
    await page.goto(`${base()}/runs/${late}`);
    const lateG = await markerGeometry('train/loss');
    expectInside(lateG);
    // the late onset's line is at the plot's right edge: its label sits left of it
    expect(lateG.ink.x + lateG.ink.w).toBeLessThan(lateG.line);
    await page
      .locator('[data-testid="metric-chart"][data-key="train/loss"]')
      .screenshot({ path: resolve(ARTIFACTS, 'run-page-late-onset.png') });
  });

  it('keeps the open sections and the filter in the URL across a reload', async () => {
    await page.goto(`${base()}/runs/${early}?smooth=0.5`);
    await section('dist').locator('h3 button').click();
    await expect.poll(() => param('collapsed')).toBe('sys');
    await expect.poll(() => section('dist').locator('[data-testid="metric-chart"]').count()).toBe(4);
    await section('train').locator('h3 button').click();
    await expect.poll(() => param('collapsed')).toBe('sys,train');
    // the view parameters change the URL without asking the server to render the page again (Next may still
    // prefetch linked pages, such as the case study, at any moment: only a render of this page counts)
    const rsc: string[] = [];
    const onRequest = (r: { url: () => string; headers: () => Record<string, string> }) => {
      const own = new URL(r.url()).pathname === `/runs/${early}`;
      if (own && (r.headers()['rsc'] || r.url().includes('_rsc='))) rsc.push(r.url());
    };
    page.on('request', onRequest);
    await page.locator('input[aria-label="filter charts"]').pressSequentially('P50');
    await expect.poll(() => param('filter')).toBe('P50');
    page.off('request', onRequest);
    expect(rsc).toEqual([]);
    expect(param('smooth')).toBe('0.5'); // the existing view parameters stay
    await expect.poll(sectionIds).toEqual(['dist']);

    await page.reload();
    expect(await page.locator('input[aria-label="filter charts"]').inputValue()).toBe('P50');
    expect(await page.locator('input[aria-label="smoothing"]').inputValue()).toBe('0.5');
    await expect.poll(sectionIds).toEqual(['dist']);
    await expect.poll(chartKeys, { timeout: 20_000 }).toEqual(['dist/positive_p50', 'dist/negative_p50']);

    await page.locator('input[aria-label="filter charts"]').fill('');
    await expect.poll(() => param('filter')).toBeNull();
    expect(await expanded('train')).toBe('false');
    expect(await expanded('dist')).toBe('true');

    // a filter that matches nothing says so, and a glob narrows across sections
    await page.locator('input[aria-label="filter charts"]').fill('no-such-metric');
    await expect.poll(() => page.locator('[data-testid="no-matching-charts"]').isVisible()).toBe(true);
    await page.locator('input[aria-label="filter charts"]').fill('*task*acc');
    await expect.poll(sectionIds).toEqual(['val', 'test']);
    await page.reload();
    await expect.poll(sectionIds).toEqual(['val', 'test']);
    await expect.poll(chartKeys, { timeout: 20_000 }).toEqual(['val/task_accuracy', 'test/task_accuracy']);
    await page.screenshot({ path: resolve(ARTIFACTS, 'run-page-filtered.png'), fullPage: true });
  });
});
