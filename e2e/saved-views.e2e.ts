/**
 * Saved views in the browser: on a project's runs table, group the rows and choose a column, save that as a view,
 * open the project plain, and open the view from the Views menu — the URL, the grouping and the columns come back.
 * The view's own link (`/views/<id>`) does the same, an unknown one is a 404 page, and the compare page saves and
 * opens its views too.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { createDb, type Db } from '@aft/db';
import { ARTIFACTS, launch, signedInPage } from './browser';

let browser: Browser;
let page: Page;
let db: Db;
let projectId = '';
const base = () => inject('baseUrl');
const suffix = randomBytes(4).toString('hex');
const viewName = `grouped accuracy ${suffix}`;
let viewId = '';
/** The runs table's query when the view was saved. */
let savedSearch = '';

beforeAll(async () => {
  browser = await launch();
  page = await signedInPage(browser);
  db = createDb({ connectionString: inject('databaseUrl'), max: 2 });
  const team = await db.prisma.team.findUniqueOrThrow({ where: { slug: 'local' } });
  projectId = (await db.prisma.project.create({ data: { teamId: team.id, name: `e2e-views-${suffix}` } })).id;
  const methods = ['aft', 'aft', 'dpo', 'dpo'];
  for (const [i, method] of methods.entries()) {
    await db.prisma.run.create({
      data: {
        projectId,
        name: `${method}-seed-${i}-${suffix}`,
        method,
        constraint: 'boundary',
        status: 'succeeded',
        summary: { 'test/task_accuracy': 0.4 + i / 20, 'test/score_gap': 0.1 * i },
      },
    });
  }
});
afterAll(async () => {
  await browser?.close();
  await db?.prisma.$disconnect();
  await db?.pool.end();
});

const headers = () => page.locator('[data-testid="runs-table"] [role="columnheader"]').allTextContents();
const groupBox = () => page.locator('label:has-text("Group by") input[type="checkbox"]');

/** The table as the view shows it: grouped by method × constraint, with only the task accuracy metric column. */
async function expectTheView() {
  await page.waitForSelector('[data-testid="runs-table"] [data-group]');
  expect(await groupBox().isChecked()).toBe(true);
  const h = await headers();
  expect(h.some((t) => t.includes('test/task_accuracy'))).toBe(true);
  expect(h.some((t) => t.includes('test/score_gap'))).toBe(false);
  await page.waitForSelector(`[data-testid="saved-views"][data-ready] >> text=View: ${viewName}`);
}

describe('saved views', () => {
  it('saves the grouping and columns of the runs table, and opens them again from the Views menu', async () => {
    await page.goto(`${base()}/projects/${projectId}`);
    await page.waitForSelector('[data-testid="saved-views"][data-ready]');
    await page.waitForSelector('[data-testid="runs-table"]');
    expect((await headers()).some((t) => t.includes('test/score_gap'))).toBe(true);

    // a controlled checkbox: it shows checked once the URL says so
    await groupBox().click();
    await page.waitForURL(/[?&]group=1/);
    await page.click('button:has-text("Columns (")');
    await page.locator('[data-testid="column-chooser"] label:has-text("test/score_gap") input').click();
    await page.waitForURL(/cols=test%2Ftask_accuracy/);
    savedSearch = new URL(page.url()).search;

    await page.click('[data-testid="views-button"]');
    await page.fill('[data-testid="save-view-name"]', viewName);
    await page.click('[data-testid="save-view"]');
    // saved: the menu lists it, marked as the view on screen
    await page.waitForSelector(`[data-testid="view-item"].current >> text=${viewName}`);
    expect(await page.locator('[data-testid="views-button"]').textContent()).toContain(`View: ${viewName}`);

    // a second view of the same name is refused, naming the field
    await page.fill('[data-testid="save-view-name"]', viewName);
    await page.click('[data-testid="save-view"]');
    expect(await page.locator('[data-testid="views-error"]').textContent()).toMatch(/name: .*already has/);

    await page.locator('[data-testid="view-item"]', { hasText: viewName }).locator('text=Copy link').click();
    const link = (await page.locator('[data-testid="view-link"]').textContent())!;
    viewId = /\/views\/(v[0-9a-f]+)/.exec(link)![1]!;

    await page.goto(`${base()}/projects/${projectId}`);
    await page.waitForSelector('[data-testid="saved-views"][data-ready]');
    expect(await groupBox().isChecked()).toBe(false);
    expect(await page.locator('[data-testid="runs-table"] [data-group]').count()).toBe(0);

    await page.click('[data-testid="views-button"]');
    await page.click(`[data-testid="view-item"] a:has-text("${viewName}")`);
    await page.waitForURL((u) => u.search === savedSearch);
    expect(new URL(page.url()).pathname).toBe(`/projects/${projectId}`);
    await expectTheView();
  });

  it('opens the same view from its link, and answers an unknown view with a 404 page', async () => {
    expect(viewId).toMatch(/^v[0-9a-f]+$/);
    // the server answers the link itself with a redirect (the browser's context carries the session)
    const direct = await page.request.get(`${base()}/views/${viewId}`, { maxRedirects: 0 });
    expect(direct.status()).toBe(307);
    expect(direct.headers()['location']).toBe(`/projects/${projectId}${savedSearch}`);
    await page.goto(`${base()}/projects/${projectId}`);
    const res = await page.goto(`${base()}/views/${viewId}`);
    expect(res!.status()).toBe(200);
    expect(new URL(page.url()).pathname).toBe(`/projects/${projectId}`);
    expect(new URL(page.url()).searchParams.get('group')).toBe('1');
    expect(new URL(page.url()).searchParams.get('cols')).toBe('test/task_accuracy');
    await expectTheView();
    await page.click('[data-testid="views-button"]');
    await page.waitForSelector('[data-testid="views-panel"]');
    await page.screenshot({ path: resolve(ARTIFACTS, 'saved-views.png') });

    const missing = await page.goto(`${base()}/views/v${'0'.repeat(24)}`);
    expect(missing!.status()).toBe(404);
    expect(await page.textContent('body')).toContain('Not found');
  });

  it('saves a view of the compare page and opens it from its link', async () => {
    await page.goto(`${base()}/compare?project=${projectId}`);
    await page.waitForSelector('[data-testid="saved-views"][data-ready]');
    await page.click('[data-testid="views-button"]');
    await page.fill('[data-testid="save-view-name"]', `compare ${suffix}`);
    await page.click('[data-testid="save-view"]');
    await page.waitForSelector(`[data-testid="view-item"].current >> text=compare ${suffix}`);
    // the runs table's views are not the compare page's
    expect(await page.locator('[data-testid="view-item"]', { hasText: viewName }).count()).toBe(0);
    await page
      .locator('[data-testid="view-item"]', { hasText: `compare ${suffix}` })
      .locator('text=Copy link')
      .click();
    const id = /\/views\/(v[0-9a-f]+)/.exec((await page.locator('[data-testid="view-link"]').textContent())!)![1]!;
    await page.goto(`${base()}/projects/${projectId}`);
    await page.goto(`${base()}/views/${id}`);
    expect(new URL(page.url()).pathname).toBe('/compare');
    expect(new URL(page.url()).searchParams.get('project')).toBe(projectId);
  });
});
