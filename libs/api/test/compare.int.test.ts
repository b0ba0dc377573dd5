/**
 * compare.paired over HTTP: runs and their outcome samples logged through the API as the worker logs them, the
 * paired table read back — Δ, McNemar's b/c, wins, verdicts, the control's noise band — and what it refuses.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import type { RouterOutputs } from '../src';
import { createTeamWithKey, createTestHandler } from '../src/testing';

type Paired = RouterOutputs['compare']['paired'];

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let key: string;
let otherKey: string;
let logOnlyKey: string;
const project = `paired-${randomBytes(4).toString('hex')}`;
const ids: Record<string, string> = {};

const Q = 200;
async function newRun(name: string, extra: Record<string, unknown>) {
  const r = await api.call('runs.create', { project, name, ...extra }, { key });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return (r.json.result!.data as { id: string }).id;
}
/** Logs a run's test/greedy outcomes at `step`: question q{i} right where `right(i)` (null: ungraded). */
async function logOutcomes(runId: string, right: (i: number) => boolean | null, step = 100) {
  const rows = Array.from({ length: Q }, (_, i) => ({
    step,
    split: 'test/greedy',
    questionId: `q${i}`,
    prompt: '',
    completion: '',
    correct: right(i),
  }));
  const r = await api.call('samples.log', { runId, rows }, { key });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
}
const paired = (input: unknown, k = key) => api.call('compare.paired', input, { key: k, method: 'GET' });
const data = (r: Awaited<ReturnType<typeof paired>>) => r.json.result!.data as Paired;

beforeAll(async () => {
  t = await createTestDatabase();
  api = createTestHandler(t.db, t.url);
  key = (await createTeamWithKey(t.db, 'alpha')).key;
  logOnlyKey = (await createTeamWithKey(t.db, 'alpha', ['log'])).key;
  otherKey = (await createTeamWithKey(t.db, 'beta')).key;
  for (const s of [1, 2, 3]) {
    const parent = (ids[`parent${s}`] = await newRun(`vft-${s}`, { method: 'vft', seed: s }));
    const from = { seed: s, parentRunId: parent };
    ids[`vft${s}`] = await newRun(`vft-cont-${s}`, { method: 'vft', ...from });
    ids[`aft${s}`] = await newRun(`aft-${s}`, { method: 'aft', constraint: 'detach', ...from });
    ids[`dpo${s}`] = await newRun(`dpo-${s}`, { method: 'dpo', ...from });
    // the control (continued VFT) is right on the first 100 + s questions
    await logOutcomes(ids[`vft${s}`]!, (i) => i < 100 + s);
    // the parent on the first 90: 10 + s questions only the control gets
    await logOutcomes(parent, (i) => i < 90);
    // AFT on 30 more: b = 30, c = 0 — except one ungraded question on seed 1, left out
    await logOutcomes(ids[`aft${s}`]!, (i) => (s === 1 && i === 199 ? null : i < 130 + s));
    // an earlier evaluation, all wrong: not the latest, not read
    await logOutcomes(ids[`aft${s}`]!, () => false, 50);
    // DPO shifted by one: b = 1 (q100+s), c = 1 (q0)
    await logOutcomes(ids[`dpo${s}`]!, (i) => i >= 1 && i < 101 + s);
  }
});
afterAll(async () => {
  await api?.notifier.close();
  await t?.drop();
});

const all = () => Object.values(ids);

describe('compare.paired', () => {
  it('pairs every arm with continued VFT seed by seed: Δ, b, c, wins and verdicts', async () => {
    const r = await paired({ runIds: all() });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const d = data(r);
    expect(d).toMatchObject({ split: 'test/greedy', splits: ['test/greedy'], runs: 12, runsWithOutcomes: 12 });
    expect(d.control).toEqual({ key: 'vft|none|', label: 'VFT (continued)', runs: 3, single: false });
    expect(d.arms.map((a) => a.label)).toEqual(['VFT', 'VFT (continued)', 'AFT detach', 'DPO none']);
    expect(d.comparisons.map((c) => [c.label, c.verdict, c.wins, c.seeds])).toEqual([
      ['VFT', 'worse', 0, 3],
      ['AFT detach', 'better', 3, 3],
      ['DPO none', 'within noise', 0, 3],
    ]);
    const aft = d.comparisons.find((c) => c.key === 'aft|detach|')!;
    expect(aft.perSeed.map((s) => [s.seed, s.n, s.b, s.c, s.runName])).toEqual([
      [1, 199, 30, 0, 'aft-1'],
      [2, 200, 30, 0, 'aft-2'],
      [3, 200, 30, 0, 'aft-3'],
    ]);
    expect(aft.perSeed[0]!.delta).toBeCloseTo(30 / 199, 12);
    expect(aft.perSeed[0]!.p).toBeLessThan(1e-8);
    expect(aft.meanDelta).toBeCloseTo((30 / 199 + 0.15 + 0.15) / 3, 12);
    expect(aft.bootstrap95[0]).toBeGreaterThan(0.1);
    expect(aft.t95).toHaveLength(2);
    const dpo = d.comparisons.find((c) => c.key === 'dpo|none|')!;
    expect(dpo.perSeed.map((s) => [s.b, s.c, s.delta, s.p])).toEqual([
      [1, 1, 0, 1],
      [1, 1, 0, 1],
      [1, 1, 0, 1],
    ]);
    expect(dpo.bootstrap95[0]).toBeLessThan(0);
    expect(dpo.bootstrap95[1]).toBeGreaterThan(0);
    const parent = d.comparisons.find((c) => c.key === 'vft-parent|none|')!;
    expect(parent.perSeed.map((s) => [s.b, s.c])).toEqual([
      [0, 11],
      [0, 12],
      [0, 13],
    ]);
    // the control's seeds are 1 or 2 questions of 200 apart, either way
    expect(d.noise).toEqual({ lo: -0.01, hi: 0.01, pairs: 3 });
    // the same request gives the same numbers (a seeded bootstrap, nothing cached)
    expect(data(await paired({ runIds: all() }))).toEqual(d);
  });

  it('takes another control; falls back to the VFT parents without continued VFT', async () => {
    const byAft = data(await paired({ runIds: all(), control: 'aft|detach|' }));
    expect(byAft.control?.label).toBe('AFT detach');
    const vft = byAft.comparisons.find((c) => c.key === 'vft|none|')!;
    expect(vft.perSeed.map((s) => [s.b, s.c])).toEqual([
      [0, 30],
      [0, 30],
      [0, 30],
    ]);
    expect(vft.verdict).toBe('worse');
    const noContinued = all().filter((id) => !Object.entries(ids).some(([k, v]) => v === id && k.startsWith('vft')));
    expect(data(await paired({ runIds: noContinued })).control?.key).toBe('vft-parent|none|');
  });

  it('pairs every seed with a control that is a single run', async () => {
    const baseline = await newRun('baseline', {});
    await logOutcomes(baseline, (i) => i < 100);
    const d = data(await paired({ runIds: [baseline, ids['aft1']!, ids['aft2']!], control: 'external|none|' }));
    expect(d.control).toMatchObject({ label: 'EXTERNAL none', single: true });
    expect(d.noise).toBeNull();
    expect(d.comparisons[0]!.perSeed.map((s) => [s.seed, s.b, s.c, s.controlRunId])).toEqual([
      [1, 31, 0, baseline],
      [2, 32, 0, baseline],
    ]);
  });

  it('says what exists when the runs have no outcomes of the split', async () => {
    const d = data(await paired({ runIds: all(), split: 'test/rerank' }));
    expect(d).toMatchObject({ splits: ['test/greedy'], runsWithOutcomes: 0, control: null, comparisons: [] });
  });

  it("hides another team's runs behind 404 and needs the read scope", async () => {
    const away = await paired({ runIds: [ids['aft1']!] }, otherKey);
    expect(away.status).toBe(404);
    expect(away.json.error?.message).toMatch(new RegExp(`run ${ids['aft1']} not found`));
    const missing = await paired({ runIds: [ids['aft1']!, 'no-such-run'] });
    expect(missing.status).toBe(404);
    const noRead = await paired({ runIds: [ids['aft1']!] }, logOnlyKey);
    expect(noRead.status).toBe(403);
    expect(noRead.json.error?.message).toMatch(/read/);
  });

  it('refuses bad input with a 400 naming the field', async () => {
    const badSplit = await paired({ runIds: all(), split: 'test/bogus' });
    expect(badSplit.status).toBe(400);
    expect(badSplit.json.error?.message).toMatch(/split: must be an outcome split/);
    for (const split of ['/greedy', 'x'.repeat(40) + '/greedy', 42]) {
      const r = await paired({ runIds: all(), split });
      expect(r.status).toBe(400);
      expect(r.json.error?.message).toMatch(/split:/);
    }
    const many = await paired({ runIds: Array.from({ length: 201 }, (_, i) => `r${i}`) });
    expect(many.status).toBe(400);
    expect(many.json.error?.message).toMatch(/runIds: at most 200 runs/);
    const none = await paired({ runIds: [] });
    expect(none.status).toBe(400);
    expect(none.json.error?.message).toMatch(/runIds/);
    const control = await paired({ runIds: all(), control: 'rrhf|none|' });
    expect(control.status).toBe(400);
    expect(control.json.error?.message).toMatch(/control: no run of arm "rrhf\|none\|" has test\/greedy outcomes/);
  });
  it('pairs one run per arm and seed, and names the runs it left out', async () => {
    const again = await newRun('aft-1-again', {
      method: 'aft',
      constraint: 'detach',
      seed: 1,
      parentRunId: ids['parent1'],
    });
    await logOutcomes(again, () => true);
    const d = data(await paired({ runIds: [...all(), again] }));
    expect(d.skipped).toEqual([{ runName: 'aft-1-again', label: 'AFT detach', seed: 1 }]);
    // the first run of seed 1 is the one paired: b = 30 as without the repeat
    expect(d.comparisons.find((c) => c.key === 'aft|detach|')!.perSeed[0]).toMatchObject({ seed: 1, b: 30, c: 0 });
  });

  it('refuses, before pairing, a run with more outcomes than it reads and runs that hold too many in all', async () => {
    // outcomes written straight into the table: 21 runs × 20,000 (one of them 20,001) would take long through the API
    const runs: string[] = [];
    for (let i = 0; i < 21; i++) runs.push(await newRun(`big-${i}`, { method: 'dpo', seed: 100 + i }));
    const fill = (run: string, n: number) =>
      t.db.pool.query(
        `INSERT INTO sample (run_id, step, split, question_id, sample_idx, prompt, completion, correct)
         SELECT $1, 1, 'test/greedy', 'q' || i, 0, '', '', i % 2 = 0 FROM generate_series(1, $2) AS i`,
        [run, n],
      );
    await fill(runs[0]!, 20_001);
    const one = await paired({ runIds: [runs[0]] });
    expect(one.status).toBe(400);
    expect(one.json.error!.message).toMatch(/runIds: run "big-0" holds more than 20,000 test\/greedy outcomes/);
    await t.db.pool.query(`DELETE FROM sample WHERE run_id = $1 AND question_id = 'q20001'`, [runs[0]]);
    for (const run of runs.slice(1)) await fill(run, 20_000);
    expect((await paired({ runIds: runs.slice(0, 20) })).status).toBe(200);
    const all21 = await paired({ runIds: runs });
    expect(all21.status).toBe(400);
    expect(all21.json.error!.message).toMatch(
      /runIds: these runs hold 420,000 test\/greedy outcomes; .* at most 400,000/,
    );
  }, 60_000);
});
