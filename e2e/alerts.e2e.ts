/**
 * Alerts in the browser, end to end: an owner opens a project's settings from its page, creates a degradation rule
 * pointing at a receiver on 127.0.0.1, and copies its secret; a trainer records a degradation through the API; the
 * app's worker claims the delivery over HTTP and POSTs it, signed; the delivery log on the page shows it with 200.
 * "Send test" goes the same way.
 */
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { startReceiver, until, verifySignature } from '../libs/api/test/alert-receiver';
import { ARTIFACTS, launch, signedInPage } from './browser';

let browser: Browser;
let page: Page;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let run: { id: string; projectId: string; name: string };
const base = () => inject('baseUrl');

async function trpc(path: string, input: unknown) {
  const res = await fetch(`${base()}/api/trpc/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': inject('apiKey') },
    body: JSON.stringify(input),
  });
  expect(res.status, `${path}: ${await res.clone().text()}`).toBe(200);
  return ((await res.json()) as { result: { data: unknown } }).result.data;
}

beforeAll(async () => {
  receiver = await startReceiver();
  browser = await launch();
  page = await signedInPage(browser);
  run = (await trpc('runs.create', { project: 'e2e-alerts', name: 'watched-run', config: {} })) as typeof run;
});
afterAll(async () => {
  await browser?.close();
  await receiver?.close();
});

describe('alert rules on the project settings page', () => {
  it('creates a rule, delivers a degradation to the webhook, and shows the delivery with status 200', async () => {
    await page.goto(`${base()}/projects/${run.projectId}`);
    await page.click('[data-testid="project-settings"]');
    await page.waitForURL(`${base()}/projects/${run.projectId}/settings`);
    await page.waitForSelector('[data-testid="alert-rules"][data-ready]');
    await page.fill('input[name="name"]', 'degradations to the lab channel');
    await page.selectOption('select[name="kind"]', 'degradation-detected');
    await page.fill('input[name="url"]', `${receiver.url}/slack`);
    await page.click('text=Create rule');
    const secret = (await page.locator('[data-testid="alert-secret"] .secret').textContent())!.trim();
    expect(secret).toMatch(/^aftwh_/);
    await expect.poll(() => page.locator('[data-testid="alert-rule"]').count()).toBe(1);
    expect(await page.locator('[data-testid="alert-rule"]').textContent()).toContain('a run degrades');

    await trpc('events.log', {
      runId: run.id,
      kind: 'degradation-detected',
      step: 42,
      details: { evidence: 'task accuracy fell from 0.40 to 0.12', policy: 'stop' },
    });
    await until(() => receiver.at('/slack').length === 1, 60_000, 'the webhook POST');
    const [post] = receiver.at('/slack');
    expect(verifySignature(secret, post!)).toBe(true);
    const body = JSON.parse(post!.body);
    expect(body.text).toContain('degraded at step 42');
    expect(body.aft).toMatchObject({
      kind: 'degradation-detected',
      run: { id: run.id, name: 'watched-run' },
      step: 42,
    });
    expect(body.aft.run.url).toBe(`${base()}/runs/${run.id}`);

    // the page reads the log again on its own
    const row = page.locator('[data-testid="alert-delivery"]', { hasText: 'watched-run' });
    await expect
      .poll(() => row.locator('[data-testid="delivery-status"]').textContent(), { timeout: 20_000 })
      .toBe('200');
    expect(await row.getAttribute('data-delivery-id')).toBe(post!.headers['x-aft-delivery']);
    expect(await row.textContent()).toContain('delivered');

    // "Send test" posts through the same rule, and is logged too
    await page.click('text=Send test');
    await until(() => receiver.at('/slack').length === 2, 60_000, 'the test POST');
    expect(JSON.parse(receiver.at('/slack')[1]!.body).aft.kind).toBe('test');
    const test = page.locator('[data-testid="alert-delivery"]', { hasText: 'test send' });
    await expect
      .poll(() => test.locator('[data-testid="delivery-status"]').textContent(), { timeout: 20_000 })
      .toBe('200');
    await page.screenshot({ path: resolve(ARTIFACTS, 'alert-log.png'), fullPage: true });
  });
});
