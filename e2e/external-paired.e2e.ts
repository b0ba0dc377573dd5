/**
 * What an external PyTorch trainer gets with nothing but the MLflow API: two runs (a VFT baseline and a DPO run,
 * told apart by the `aft.method` tag) log their generations on GSM8K test questions with `mlflow.log_table`, no
 * `correct` column; the server grades them against the shipped gold answers and the compare page pairs the two runs
 * question by question in Chromium.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launch, signedInPage } from './browser';

const QUESTIONS = 60;
let browser: Browser;
let page: Page;
const base = () => inject('baseUrl');
const headers = () => ({ 'content-type': 'application/json', authorization: `Bearer ${inject('apiKey')}` });

// the gold answers of the first GSM8K test questions, read the way a trainer would (the text after ####)
const gold = readFileSync(resolve(import.meta.dirname, '../data/gsm8k/test.jsonl'), 'utf8')
  .split('\n')
  .slice(0, QUESTIONS)
  .map((l) => (JSON.parse(l) as { answer: string }).answer.split('####')[1]!.trim().replace(/,/g, ''));

async function mlflow<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(`${base()}/api/2.0/mlflow/${path}`, {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify(body),
  });
  expect(res.status, `${path}: ${await res.clone().text()}`).toBe(200);
  return (await res.json()) as T;
}

/** An MLflow run whose generations answer question i right when `right(i)`, wrong (gold + 1) otherwise. */
async function externalRun(experimentId: string, method: string, right: (i: number) => boolean) {
  const { run } = await mlflow<{ run: { info: { run_id: string } } }>('runs/create', {
    experiment_id: experimentId,
    run_name: `${method}-external`,
    tags: [{ key: 'aft.method', value: method }],
  });
  const id = run.info.run_id;
  const data = gold.map((g, i) => [`gsm8k-test-${i}`, `Step by step.\n#### ${right(i) ? g : Number(g) + 1}`]);
  const put = await fetch(`${base()}/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${id}/artifacts/gen.json`, {
    method: 'PUT',
    headers: headers(),
    body: JSON.stringify({ columns: ['question_id', 'completion'], data }),
  });
  expect(put.status, await put.clone().text()).toBe(200);
  return id;
}

beforeAll(async () => {
  browser = await launch();
  page = await signedInPage(browser);
});
afterAll(async () => {
  await browser?.close();
});

it('grades two MLflow runs on GSM8K ids and pairs them on the compare page', async () => {
  const { experiment_id } = await mlflow<{ experiment_id: string }>('experiments/create', {
    name: `external-paired-${randomBytes(4).toString('hex')}`,
  });
  // the baseline answers the first half right; DPO every question but the first five
  const vft = await externalRun(experiment_id, 'vft', (i) => i < QUESTIONS / 2);
  const dpo = await externalRun(experiment_id, 'dpo', (i) => i >= 5);

  await page.goto(`${base()}/compare?runs=${vft},${dpo}`);
  const row = page.locator('[data-testid="paired-row"]');
  await row.first().waitFor();
  expect(await row.count()).toBe(1);
  const cells = await row.first().locator('td').allTextContents();
  // only DPO right on questions 30–59 (30), only the baseline right on 0–4 (5): Δ = 25/60
  expect(cells.join(' | ')).toContain('+41.7');
  expect(cells.join(' | ')).toContain('30/5');
  expect(await page.locator('[data-testid="paired-verdict"]').allTextContents()).toEqual(['better']);
  expect(await row.first().locator('[data-testid="paired-dot"]').count()).toBe(1);

  // the generations themselves (text in an outcome split) are readable on the run page, graded
  await page.goto(`${base()}/runs/${dpo}`);
  const browser = page.locator('[data-testid="samples-browser"]');
  await browser.waitFor();
  expect(await browser.locator('select[aria-label="sample set"] option').first().textContent()).toContain(
    `test/greedy · step 0 · ${QUESTIONS} questions`,
  );
  const first = browser.locator('[data-question="gsm8k-test-0"]');
  expect(await first.textContent()).toContain(`gold ${gold[0]}`);
  expect(await first.locator('.cot.bad').count()).toBe(1); // DPO's question 0 is one of its five wrong ones
});
