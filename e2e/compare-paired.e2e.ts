/**
 * The compare page's paired comparison in Debian's Chromium against the built app: runs of four arms over three
 * seeds, each with 200 test/greedy outcomes logged through the API as the worker logs them; the table's verdicts, a
 * dot per seed, the control chosen from the URL and changed from the page.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { ARTIFACTS, callApi, launch, signedInPage } from './browser';

let browser: Browser;
let page: Page;
const base = () => inject('baseUrl');
const uniq = randomBytes(4).toString('hex');

const call = callApi;

type Created = { id: string; project: { id: string } };
const create = (project: string, input: Record<string, unknown>) => call<Created>('runs.create', { project, ...input });

/** 200 test/greedy outcomes at the final step: question q{i} right where `right(i)`. */
const outcomes = (runId: string, right: (i: number) => boolean) =>
  call('samples.log', {
    runId,
    rows: Array.from({ length: 200 }, (_, i) => ({
      step: 300,
      split: 'test/greedy',
      questionId: `q${i}`,
      prompt: '',
      completion: '',
      correct: right(i),
    })),
  });

let projectId = '';
let emptyProjectId = '';

beforeAll(async () => {
  browser = await launch();
  page = await signedInPage(browser);
  const project = `paired-e2e-${uniq}`;
  for (const s of [1, 2, 3]) {
    const parent = await create(project, { name: `vft-s${s}`, method: 'vft', seed: s });
    projectId = parent.project.id;
    const from = { seed: s, parentRunId: parent.id };
    const vft = await create(project, { name: `vft-cont-s${s}`, method: 'vft', ...from });
    const aft = await create(project, { name: `aft-detach-s${s}`, method: 'aft', constraint: 'detach', ...from });
    const dpo = await create(project, { name: `dpo-s${s}`, method: 'dpo', ...from });
    // continued VFT right on the first 100 + 3s; its parent on fewer; AFT on 30 more, losing 2 + s of the control's;
    // DPO loses 2 and gains 1 to 4: a difference no wider than the seeds' own
    await outcomes(vft.id, (i) => i < 100 + 3 * s);
    await outcomes(parent.id, (i) => i < 85 + s);
    await outcomes(aft.id, (i) => i >= 2 + s && i < 130 + 3 * s);
    await outcomes(dpo.id, (i) => i >= 2 && i < 100 + 3 * s + (s === 2 ? 4 : 1));
  }
  emptyProjectId = (await create(`paired-e2e-empty-${uniq}`, { name: 'no-outcomes', method: 'aft' })).project.id;
});
afterAll(async () => {
  await browser?.close();
});

const rows = () => page.locator('[data-testid="paired-row"]');
const column = (n: number) => rows().locator(`td:nth-child(${n})`).allTextContents();

describe('paired comparison on the compare page', () => {
  it('shows every arm against continued VFT: verdicts, wins, b/c and a dot per seed', async () => {
    await page.goto(`${base()}/compare?project=${projectId}`);
    await rows().first().waitFor();
    expect(await column(1)).toEqual(['VFT', 'AFT detach', 'DPO none']);
    expect(await page.locator('[data-testid="paired-verdict"]').allTextContents()).toEqual([
      'worse',
      'better',
      'within noise',
    ]);
    expect(await column(5)).toEqual(['0/3', '3/3', '1/3']);
    expect(await column(6)).toEqual(['0/17 · 0/19 · 0/21', '30/3 · 30/4 · 30/5', '1/2 · 4/2 · 1/2']);
    // mean Δ of AFT: (27 + 26 + 25) / 3 questions of 200
    expect((await column(2))[1]).toBe('+13.0');
    expect(await page.inputValue('select[aria-label="paired control"]')).toBe('vft|none|');
    for (let i = 0; i < 3; i++) expect(await rows().nth(i).locator('[data-testid="paired-dot"]').count()).toBe(3);
    // the control's own seeds: 3 and 6 questions apart, the band shaded on every strip
    expect(await page.locator('[data-testid="paired-noise"]').count()).toBe(3);
    expect(await page.textContent('.paired-note')).toContain('−3.0 to +3.0 pp (3 pairs)');
    await page.locator('[data-testid="paired"]').screenshot({ path: resolve(ARTIFACTS, 'compare-paired.png') });
  });

  it('changes the control from the page, into the URL', async () => {
    await page.selectOption('select[aria-label="paired control"]', 'aft|detach|');
    await page.waitForURL(/[?&]control=aft%7Cdetach%7C/);
    await expect.poll(() => column(1)).toEqual(['VFT', 'VFT (continued)', 'DPO none']);
    expect(await page.locator('[data-testid="paired-verdict"]').allTextContents()).toEqual(['worse', 'worse', 'worse']);
    // a shared link opens the same view; a control the runs lack falls back to the default, saying so
    await page.goto(`${base()}/compare?project=${projectId}&control=aft%7Cdetach%7C&paired=test/greedy`);
    expect(await column(1)).toEqual(['VFT', 'VFT (continued)', 'DPO none']);
    await page.goto(`${base()}/compare?project=${projectId}&control=rrhf%7Cnone%7C`);
    expect(await column(1)).toEqual(['VFT', 'AFT detach', 'DPO none']);
    expect(await page.textContent('[data-testid="paired"] .warnbox')).toContain('no run of arm "rrhf|none|"');
  });

  it('explains what to log when no run has outcomes', async () => {
    await page.goto(`${base()}/compare?project=${emptyProjectId}`);
    const empty = page.locator('[data-testid="paired-empty"]');
    await empty.waitFor();
    expect(await empty.textContent()).toContain('None of these runs logged per-question outcomes');
    expect(await empty.textContent()).toContain("split: 'test/greedy'");
  });
});
