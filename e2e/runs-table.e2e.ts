/**
 * The runs table's columns line up: every header spans exactly the x-range of its cells in every drawn row — with
 * long names, tags and metric keys, grouped, with built-in columns hidden, scrolled sideways and down — no header's
 * text is cut without an ellipsis and a title, and the last column can be scrolled fully into view.
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
let small = '';
let big = '';
const base = () => inject('baseUrl');
const suffix = randomBytes(4).toString('hex');

const LONG_KEY = 'dataset_hard/test/task_accuracy';
const KEYS = [
  LONG_KEY,
  'test/task_accuracy',
  'test/assessment_accuracy',
  'test/score_gap',
  'test/ref_perplexity',
  'val/task_accuracy',
  'val/assessment_accuracy',
  'train/loss',
  'train/boundary_active_fraction',
];

beforeAll(async () => {
  browser = await launch();
  page = await signedInPage(browser);
  db = createDb({ connectionString: inject('databaseUrl'), max: 2 });
  const team = await db.prisma.team.findUniqueOrThrow({ where: { slug: 'local' } });
  small = (await db.prisma.project.create({ data: { teamId: team.id, name: `e2e-table-8-${suffix}` } })).id;
  big = (await db.prisma.project.create({ data: { teamId: team.id, name: `e2e-table-10k-${suffix}` } })).id;
  // 8 runs like the demo's, with names, tags and a metric key far wider than their columns
  const summary = (i: number) => Object.fromEntries(KEYS.map((k, j) => [k, 0.1 + ((i * 7 + j) % 11) / 13]));
  for (let i = 0; i < 8; i++) {
    await db.pool.query(
      `INSERT INTO run (id, project_id, name, method, "constraint", status, seed, summary, tags, created_at, started_at,
                        finished_at)
       VALUES ($1, $2, $3, $4, $5, 'succeeded', $6::int, $7, $8, now() - $6::int * interval '1 minute',
               now() - $6::int * interval '1 minute', now() - $6::int * interval '1 minute' + interval '95 seconds')`,
      [
        `e2e-table-${suffix}-${i}`,
        small,
        i % 2 ? `aft-boundary-b1-s${i}` : `vft-tiny-s${i}-a-very-long-run-name-that-is-wider-than-its-column-${i}`,
        ['vft', 'aft', 'dpo', 'rrhf'][i % 4],
        ['none', 'boundary', 'detach'][i % 3],
        i,
        JSON.stringify(summary(i)),
        i % 3 ? ['demo', `seed-${i}`] : ['demo', 'a-long-tag-that-does-not-fit-in-its-column', 'baseline', `s${i}`],
      ],
    );
  }
  await db.pool.query(
    `INSERT INTO run (id, project_id, name, method, "constraint", status, seed, summary, tags, created_at)
     SELECT 'e2e-table-big-' || $3 || '-' || i, $1, 'run-' || i, (ARRAY['vft','rft','aft','dpo','rrhf','pro'])[1 + i % 6],
            (ARRAY['none','detach','boundary'])[1 + (i / 6) % 3], 'succeeded', i % 5,
            jsonb_build_object('test/task_accuracy', 0.3 + (i % 97) / 500.0, $4::text, (i % 13) / 10.0),
            ARRAY['bench'], now() - (i || ' seconds')::interval
     FROM generate_series(1, $2) AS i`,
    [big, 10_000, suffix, LONG_KEY],
  );
});
afterAll(async () => {
  await db?.close();
  await browser?.close();
});

interface Box {
  left: number;
  right: number;
}
interface Layout {
  headers: (Box & { text: string; title: string | null; clipped: boolean; ellipsis: boolean })[];
  rows: { id: string; cells: Box[] }[];
  /** The nearest ancestor of the header that scrolls sideways, and where the last header is inside it. */
  scroller: { left: number; right: number; scrollLeft: number; maxScrollLeft: number };
  lastHeaderInScroller: Box;
}

/** Where every header and every drawn row's cells are on screen. */
function layout(): Promise<Layout> {
  return page.evaluate(() => {
    const table = document.querySelector('[data-testid="runs-table"]')!;
    const head = table.querySelector('.tr.head')!;
    const ths = [...head.querySelectorAll<HTMLElement>(':scope > .th')];
    const box = (el: Element) => {
      const r = el.getBoundingClientRect();
      return { left: r.left, right: r.right };
    };
    let sc = head.parentElement;
    while (sc && !['auto', 'scroll'].includes(getComputedStyle(sc).overflowX)) sc = sc.parentElement;
    const s = sc!.getBoundingClientRect();
    const last = ths.at(-1)!;
    return {
      headers: ths.map((th) => ({
        ...box(th),
        text: th.textContent ?? '',
        title: th.getAttribute('title') ?? th.querySelector('[title]')?.getAttribute('title') ?? null,
        clipped: th.scrollWidth > th.clientWidth,
        ellipsis: getComputedStyle(th).textOverflow === 'ellipsis',
      })),
      rows: [...table.querySelectorAll('.tr:not(.head)')].map((tr) => ({
        id: tr.getAttribute('data-run') ?? `group ${tr.getAttribute('data-group')}`,
        cells: [...tr.querySelectorAll(':scope > .td')].map(box),
      })),
      scroller: {
        left: s.left + sc!.clientLeft,
        right: s.left + sc!.clientLeft + sc!.clientWidth,
        scrollLeft: sc!.scrollLeft,
        maxScrollLeft: sc!.scrollWidth - sc!.clientWidth,
      },
      lastHeaderInScroller: { left: last.offsetLeft, right: last.offsetLeft + last.offsetWidth },
    };
  });
}

/** Every way a header and its cells disagree, or a header is cut; [] when the table is right. */
function misfits(l: Layout): string[] {
  const out: string[] = [];
  if (l.rows.length === 0) out.push('no rows drawn');
  for (const row of l.rows) {
    if (row.cells.length !== l.headers.length)
      out.push(`${row.id}: ${row.cells.length} cells, ${l.headers.length} headers`);
    l.headers.forEach((h, i) => {
      const c = row.cells[i];
      if (c && (Math.abs(c.left - h.left) > 1 || Math.abs(c.right - h.right) > 1)) {
        out.push(`${row.id} "${h.text}": header ${h.left}–${h.right}, cell ${c.left}–${c.right}`);
      }
    });
  }
  for (const h of l.headers) {
    if (h.clipped && !(h.title && h.ellipsis)) out.push(`header "${h.text}" is cut without an ellipsis and a title`);
  }
  return out;
}

const headerTexts = (l: Layout) => l.headers.map((h) => h.text.replace(/ [↑↓]$/, ''));

async function open(path: string) {
  await page.goto(`${base()}${path}`);
  await page.locator('[data-testid="runs-table"] [data-run]').first().waitFor();
  // hydrated: the virtualizer has measured the scroller and drawn what fits
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="runs-table"] [data-run]').length > 0);
}

/** Checks the table as it is drawn now, then scrolled fully to the right (the header must move with the body). */
async function expectAligned() {
  expect(misfits(await layout())).toEqual([]);
  await page.evaluate(() => {
    let sc = document.querySelector('[data-testid="runs-table"] .tr.head')!.parentElement;
    while (sc && !['auto', 'scroll'].includes(getComputedStyle(sc).overflowX)) sc = sc.parentElement;
    sc!.scrollLeft = sc!.scrollWidth;
  });
  await page.waitForTimeout(50);
  const l = await layout();
  expect(misfits(l)).toEqual([]);
  // the last column lies inside what the scroller can show, and shows fully once scrolled to the end
  expect(l.lastHeaderInScroller.right).toBeLessThanOrEqual(
    l.scroller.maxScrollLeft + (l.scroller.right - l.scroller.left) + 1,
  );
  const last = l.headers.at(-1)!;
  expect(last.right).toBeLessThanOrEqual(l.scroller.right + 1);
  expect(last.left).toBeGreaterThanOrEqual(l.scroller.left - 1);
  return l;
}

describe('runs table columns', () => {
  it('lines headers up with cells for 8 runs with long names, tags and metric keys', async () => {
    await open(`/projects/${small}`);
    const l = await layout();
    expect(headerTexts(l).slice(1, 8)).toEqual([
      'Status',
      'Name',
      'Method',
      'Constraint',
      'Tags',
      'Created',
      'Runtime',
    ]);
    expect(headerTexts(l)).toContain(LONG_KEY);
    expect(l.rows).toHaveLength(8);
    await page.screenshot({ path: resolve(ARTIFACTS, 'runs-table.png'), fullPage: true });
    await expectAligned();
    // long names and tags are cut with an ellipsis and keep their full text in a title
    const longName = page.locator('[data-testid="runs-table"] [data-run$="-0"] .td', { hasText: 'vft-tiny-s0' });
    expect(await longName.getAttribute('title')).toBe(
      'vft-tiny-s0-a-very-long-run-name-that-is-wider-than-its-column-0',
    );
    expect(await longName.evaluate((td) => td.scrollWidth > td.clientWidth)).toBe(true);
    const tags = page.locator('[data-testid="runs-table"] [data-run$="-0"] .td', { hasText: 'baseline' });
    expect(await tags.getAttribute('title')).toContain('a-long-tag-that-does-not-fit-in-its-column');
  });

  it('lines up grouped rows too', async () => {
    await open(`/projects/${small}?group=1`);
    const l = await layout();
    expect(l.rows.some((r) => r.id.startsWith('group'))).toBe(true);
    await expectAligned();
  });

  it('hides built-in columns from the chooser, kept in the URL, and still lines up', async () => {
    await open(`/projects/${small}?hide=tags,runtime`);
    const shown = headerTexts(await layout());
    expect(shown).not.toContain('Tags');
    expect(shown).not.toContain('Runtime');
    await expectAligned();

    await page.click('button:has-text("Columns")');
    const chooser = page.locator('[data-testid="column-chooser"]');
    expect(await chooser.locator('label:has-text("Tags") input').isChecked()).toBe(false);
    // a controlled box: it changes once the URL (the view's state) does
    const hidden = (want: string) => (u: URL) => u.searchParams.get('hide')?.split(',').sort().join(',') === want;
    await chooser.locator('label:has-text("Constraint") input').click();
    await page.waitForURL(hidden('constraint,runtime,tags'));
    await expect.poll(async () => headerTexts(await layout())).not.toContain('Constraint');
    await expectAligned();
    // showing one again takes it out of the URL
    await chooser.locator('label:has-text("Tags") input').click();
    await page.waitForURL(hidden('constraint,runtime'));
    expect(await chooser.locator('label:has-text("Tags") input').isChecked()).toBe(true);
    await expect.poll(async () => headerTexts(await layout())).toContain('Tags');
    await expectAligned();
  });

  it('keeps old links with chosen metric columns working', async () => {
    await open(`/projects/${small}?cols=${encodeURIComponent(`${LONG_KEY},train/loss`)}&sort=name&dir=asc`);
    const l = await layout();
    expect(headerTexts(l).slice(-2)).toEqual([LONG_KEY, 'train/loss']);
    expect(headerTexts(l)).toContain('Tags');
    await expectAligned();
  });

  it('lines up 10,000 runs, scrolled down, grouped, and sorted by a long metric key', async () => {
    await open(`/projects/${big}`);
    await expectAligned();
    // scroll down past the first page: more rows load and are drawn in the same columns
    for (let i = 0; i < 3; i++) {
      await page.evaluate(() => {
        const body = [...document.querySelectorAll<HTMLElement>('[data-testid="runs-table"] *')].find(
          (el) => ['auto', 'scroll'].includes(getComputedStyle(el).overflowY) && el.scrollHeight > el.clientHeight,
        )!;
        body.scrollTop = body.scrollHeight;
      });
      await page.waitForTimeout(300);
    }
    await expect
      .poll(async () =>
        Number((await page.textContent('[data-testid="runs-count"]'))!.replace(/\D.*$/, '').replace(',', '')),
      )
      .toBeGreaterThan(200);
    await expectAligned();

    await open(`/projects/${big}?group=1&sort=${encodeURIComponent(`summary.${LONG_KEY}`)}&hide=constraint`);
    const l = await layout();
    expect(headerTexts(l)).not.toContain('Constraint');
    expect(l.rows.some((r) => r.id.startsWith('group'))).toBe(true);
    await page.screenshot({ path: resolve(ARTIFACTS, 'runs-table-grouped.png') });
    await expectAligned();
  });
});
