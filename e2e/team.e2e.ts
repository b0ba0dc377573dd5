/**
 * Teams in the browser: an owner creates an invitation link; a newcomer opens it, is sent to sign up, comes back,
 * joins as a viewer, sees the team's projects and downloads an export; the owner sees them in the members list and
 * the audit log. Signing out ends the session.
 */
import { gunzipSync } from 'node:zlib';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launch, signedInPage } from './browser';

let browser: Browser;
let owner: Page;
let guest: Page;
const base = () => inject('baseUrl');

beforeAll(async () => {
  browser = await launch();
  owner = await signedInPage(browser);
  guest = await (
    await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true })
  ).newPage();
  // a project with one run in the owner's team, logged with the team's API key
  const res = await fetch(`${base()}/api/trpc/runs.create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': inject('apiKey') },
    body: JSON.stringify({ project: 'e2e-team', name: 'shared-run', config: { lr: 1e-4 } }),
  });
  expect(res.status).toBe(200);
});
afterAll(async () => {
  await browser?.close();
});

describe('invitations, roles and export', () => {
  it('brings a newcomer in through a link: sign-up, accept, and they see the team as a viewer', async () => {
    await owner.goto(`${base()}/team`);
    await owner.waitForSelector('[data-testid="team-admin"][data-ready]');
    await owner.selectOption('select[name="role"]', 'viewer');
    await owner.click('text=Create invitation link');
    const link = (await owner.locator('[data-testid="secret"] .secret').textContent())!.trim();
    expect(link).toMatch(/\/invite\/[\w-]{20,}$/);

    await guest.goto(link);
    expect(guest.url()).toContain('/sign-in?next=%2Finvite%2F');
    await guest.waitForSelector('.auth-box[data-ready]');
    await guest.click('text=Create an account');
    await guest.fill('input[name="name"]', 'Vera Viewer');
    await guest.fill('input[name="email"]', `vera-${Date.now()}@lab.test`);
    await guest.fill('input[name="password"]', 'short');
    await guest.click('button[type="submit"]');
    // the browser's own check refuses a short password before anything is sent
    expect(
      await guest.evaluate(
        () => (document.querySelector('input[name="password"]') as HTMLInputElement).validity.tooShort,
      ),
    ).toBe(true);
    await guest.fill('input[name="password"]', 'a long enough password');
    await guest.click('button[type="submit"]');
    await guest.waitForURL(/\/invite\//);
    expect(await guest.textContent('h1')).toBe('Join Demo team');
    await guest.click('[data-testid="accept-invitation"]:enabled');
    await guest.waitForURL(`${base()}/`);
    await expect
      .poll(() => guest.locator('[data-testid="team-switch"] option:checked').textContent())
      .toBe('Demo team (viewer)');
    expect(await guest.locator('[data-testid="project-card"]', { hasText: 'e2e-team' }).count()).toBe(1);
  });

  it('lets the viewer download the project as an archive, and shows the owner who joined', async () => {
    await guest.locator('[data-testid="project-card"]', { hasText: 'e2e-team' }).click();
    await guest.waitForSelector('[data-testid="export-project"]');
    expect(await guest.locator('text=Launch a sweep').count()).toBe(0); // viewers do not launch
    const [download] = await Promise.all([
      guest.waitForEvent('download'),
      guest.click('[data-testid="export-project"]'),
    ]);
    expect(download.suggestedFilename()).toBe('e2e-team.aft.tar.gz');
    const tar = gunzipSync(readFileSync((await download.path())!)).toString('latin1');
    expect(tar).toContain('aft-export/runs.jsonl');
    expect(tar).toContain('"name":"shared-run"');

    await owner.goto(`${base()}/team`);
    const members = await owner.textContent('[data-testid="members"]');
    expect(members).toContain('Vera Viewer');
    expect(await owner.textContent('[data-testid="audit"]')).toContain('member.join');
  });

  it('lets the owner delete a run, recorded in the audit log; the viewer has no delete button', async () => {
    const runs = await fetch(
      `${base()}/api/trpc/runs.list?input=${encodeURIComponent(JSON.stringify({ search: 'shared-run' }))}`,
      {
        headers: { 'x-api-key': inject('apiKey') },
      },
    );
    const run = (
      (await runs.json()) as { result: { data: { items: { id: string; name: string }[] } } }
    ).result.data.items.find((r) => r.name === 'shared-run')!;
    await fetch(`${base()}/api/trpc/runs.setStatus`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': inject('apiKey') },
      body: JSON.stringify({ id: run.id, status: 'succeeded' }),
    });
    await guest.goto(`${base()}/runs/${run.id}`);
    await guest.waitForSelector('[data-testid="run-name"]');
    expect(await guest.locator('[data-testid="delete-run"]').count()).toBe(0);

    await owner.goto(`${base()}/runs/${run.id}`);
    owner.once('dialog', (d) => void d.accept());
    await owner.click('[data-testid="delete-run"]:enabled');
    await owner.waitForURL(/\/projects\//);
    await owner.goto(`${base()}/team`);
    expect(await owner.textContent('[data-testid="audit"]')).toContain('run.delete');
    await owner.goto(`${base()}/runs/${run.id}`);
    await owner.waitForSelector(`text=Run ${run.id} does not exist`);
  });

  it('signs out', async () => {
    await guest.waitForSelector('.account[data-ready]');
    await guest.click('text=Sign out');
    await guest.waitForURL(/\/sign-in/);
    await guest.goto(`${base()}/team`);
    expect(guest.url()).toContain('/sign-in?next=%2Fteam');
  });
});
