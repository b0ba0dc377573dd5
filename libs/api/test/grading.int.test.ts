/**
 * Server-side grading of logged samples (src/grading.ts), both ways in: tRPC `samples.log`, and an MLflow
 * `log_table` upload through the artifact proxy, sent as the Python client sends it (same URL, same JSON), read
 * back with `samples.list`. Samples of shipped questions (GSM8K test, AQUA-RAT dev) without `correct` come back
 * graded against the repository's gold answers; the rest as they were sent; a bad table stores nothing.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createMlflowHandler } from '../src';
import { createTeamWithKey, createTestHandler, serveFetch } from '../src/testing';

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let server: Awaited<ReturnType<typeof serveFetch>>;
let key: string;
const dir = mkdtempSync(join(tmpdir(), 'aft-grading-'));
const project = `grading-${randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  t = await createTestDatabase();
  api = createTestHandler(t.db, t.url);
  server = await serveFetch(createMlflowHandler({ db: t.db, notifier: api.notifier, auth: null, artifactDir: dir }));
  key = (await createTeamWithKey(t.db, 'graders')).key;
});
afterAll(async () => {
  await server?.close();
  await api?.notifier.close();
  await t?.drop();
  rmSync(dir, { recursive: true, force: true });
});

interface Sample {
  step: number;
  split: string;
  questionId: string;
  sampleIdx: number;
  completion: string;
  extractedAnswer: string | null;
  gold: string | null;
  correct: boolean | null;
  score: string | number | null;
}

async function newRun() {
  const r = await api.call('runs.create', { project }, { key });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return (r.json.result!.data as { id: string }).id;
}
async function samplesOf(runId: string): Promise<Sample[]> {
  const r = await api.call('samples.list', { runId, limit: 200 }, { key, method: 'GET' });
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  return (r.json.result!.data as { items: Sample[] }).items;
}
const byId = (xs: Sample[]) => Object.fromEntries(xs.map((s) => [`${s.questionId}#${s.sampleIdx}`, s]));
const row = (questionId: string, completion: string, more: Record<string, unknown> = {}) => ({
  step: 100,
  split: 'test/greedy',
  questionId,
  prompt: '',
  completion,
  ...more,
});

describe('samples.log', () => {
  it('grades samples of shipped questions and stores the rest as sent', async () => {
    const runId = await newRun();
    const rows = [
      // gsm8k-test-0's gold is 18, gsm8k-test-1's is 3, aqua-dev-0's is A (data/)
      row('gsm8k-test-0', 'She sells 16 - 3 - 4 = 9 eggs for $2 each.\n#### 18'),
      row('gsm8k-test-1', 'It takes 2 + 2 = 4 bolts. The answer is 4.'),
      row('aqua-dev-0', '900 km/h is 540 miles an hour, 9 a minute... The answer is (A)'),
      row('aqua-dev-0', 'Answer: c', { sampleIdx: 1 }),
      // says `correct` itself: kept, even where the grader would disagree
      row('gsm8k-test-0', '#### 18', { sampleIdx: 2, correct: false }),
      // questions the server does not have; a sample with no completion is wrong, not ungraded
      row('gsm8k-test-1319', '#### 18'),
      row('gsm8k-test-01', '#### 18'),
      row('q17', 'The answer is 72.', { gold: '72' }),
      row('gsm8k-test-2', ''),
    ];
    const r = await api.call('samples.log', { runId, rows }, { key });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const got = byId(await samplesOf(runId));
    expect(got['gsm8k-test-0#0']).toMatchObject({ correct: true, gold: '18', extractedAnswer: '18' });
    expect(got['gsm8k-test-1#0']).toMatchObject({ correct: false, gold: '3', extractedAnswer: '4' });
    expect(got['aqua-dev-0#0']).toMatchObject({ correct: true, gold: 'A', extractedAnswer: 'A' });
    expect(got['aqua-dev-0#1']).toMatchObject({ correct: false, gold: 'A', extractedAnswer: 'C' });
    expect(got['gsm8k-test-0#2']).toMatchObject({ correct: false, gold: null, extractedAnswer: null });
    expect(got['gsm8k-test-2#0']).toMatchObject({ correct: false, gold: '70000', extractedAnswer: null });
    for (const q of ['gsm8k-test-1319#0', 'gsm8k-test-01#0'])
      expect(got[q], q).toMatchObject({ correct: null, gold: null, extractedAnswer: null });
    expect(got['q17#0']).toMatchObject({ correct: null, gold: '72', extractedAnswer: null });
  });

  it('grades completions built to make a regex backtrack, quickly', async () => {
    const runId = await newRun();
    const n = 100_000; // the most a completion may hold (LIMITS.textField)
    const hostile = [
      `the answer is${' '.repeat(n - 13)}`,
      '\n'.repeat(n),
      `\nA${' '.repeat(n - 2)}`,
      `answer is${': '.repeat((n - 10) / 2)}`,
      '1,'.repeat(n / 2),
    ];
    const rows = hostile.map((c, i) => row(i % 2 ? 'aqua-dev-1' : 'gsm8k-test-1', c, { sampleIdx: i }));
    const t0 = performance.now();
    const r = await api.call('samples.log', { runId, rows }, { key });
    const ms = performance.now() - t0;
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    // the regex grader took 14–60 s on each of the first four; the scanner takes milliseconds
    expect(ms).toBeLessThan(5000);
    const got = await samplesOf(runId);
    expect(got).toHaveLength(hostile.length);
    for (const s of got) expect(s.correct, s.completion.slice(0, 20)).toBe(false);
  });
});

/** An MLflow run of the key's team, as `mlflow.start_run()` makes one. */
async function mlflowRun(): Promise<{ runId: string; experimentId: string }> {
  const r = await mlflow('POST', '/api/2.0/mlflow/runs/create', JSON.stringify({ experiment_id: '0' }));
  expect(r.status, JSON.stringify(r.json)).toBe(200);
  const info = (r.json as { run: { info: { run_id: string; experiment_id: string } } }).run.info;
  return { runId: info.run_id, experimentId: info.experiment_id };
}
async function mlflow(method: string, path: string, body?: string, type = 'application/json') {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { 'content-type': type } : {}) },
    body,
  });
  return { status: res.status, json: (await res.json().catch(() => null)) as Record<string, unknown> };
}
/** What `mlflow.log_table(df, artifact_file=file)` sends: a PUT of `df.to_json(orient="split", index=False)`. */
const putTable = (run: { runId: string; experimentId: string }, file: string, body: string) =>
  mlflow('PUT', `/api/2.0/mlflow-artifacts/artifacts/${run.experimentId}/${run.runId}/artifacts/${file}`, body);
const artifactsOf = async (run: { runId: string }) =>
  ((await mlflow('GET', `/api/2.0/mlflow/artifacts/list?run_id=${run.runId}`)).json.files ?? []) as {
    path: string;
  }[];

describe('mlflow.log_table', () => {
  const columns = ['question_id', 'prompt', 'completion', 'correct', 'score'];
  const first = [
    ['gsm8k-test-0', 'Janet\\u2019s ducks...', 'She makes 9 * 2 = $18.\\n#### 18', null, -0.5],
    ['gsm8k-test-0', 'Janet\\u2019s ducks...', 'She makes 9 * 3 = $27.\\n#### 27', null, NaN],
    ['aqua-dev-0', 'Three birds...', 'The answer is (A)', null, null],
    ['my-eval-7', 'What is 6 * 7?', '42', true, null],
  ];
  // pandas writes NaN as null, \/ for /, \uXXXX for non-ASCII; Python's json writes NaN bare: both are read
  const table = (rows: unknown[][]) =>
    `{"columns":${JSON.stringify(columns)},"data":[${rows
      .map((r) => `[${r.map((v) => (typeof v === 'string' ? `"${v}"` : String(v))).join(',')}]`)
      .join(',')}]}`;

  it('stores the generations of an uploaded table as graded samples, and the appended table once', async () => {
    const run = await mlflowRun();
    const put = await putTable(run, 'eval/generations.json', table(first));
    expect(put.status, JSON.stringify(put.json)).toBe(200);
    // what log_table does next: the tag that tells MLflow's UI the file is a table
    const tag = await mlflow(
      'POST',
      '/api/2.0/mlflow/runs/set-tag',
      JSON.stringify({
        run_id: run.runId,
        key: 'mlflow.loggedArtifacts',
        value: '[{"path": "eval/generations.json", "type": "table"}]',
      }),
    );
    expect(tag.status).toBe(200);
    const got = byId(await samplesOf(run.runId));
    expect(Object.keys(got).sort()).toEqual(['aqua-dev-0#0', 'gsm8k-test-0#0', 'gsm8k-test-0#1', 'my-eval-7#0']);
    expect(got['gsm8k-test-0#0']).toMatchObject({
      step: 0,
      split: 'test/greedy',
      completion: 'She makes 9 * 2 = $18.\n#### 18',
      correct: true,
      gold: '18',
      extractedAnswer: '18',
      score: -0.5,
    });
    expect(got['gsm8k-test-0#1']).toMatchObject({ correct: false, gold: '18', extractedAnswer: '27', score: 'NaN' });
    expect(got['aqua-dev-0#0']).toMatchObject({ correct: true, gold: 'A', extractedAnswer: 'A', score: null });
    expect(got['my-eval-7#0']).toMatchObject({ correct: true, gold: null });

    // log_table again to the same file: MLflow's client downloads it and uploads the old rows then the new
    const appended = [...first, ['gsm8k-test-1', 'A robe...', 'The answer is 3.', null, null]];
    expect((await putTable(run, 'eval/generations.json', table(appended))).status).toBe(200);
    const again = byId(await samplesOf(run.runId));
    expect(Object.keys(again)).toHaveLength(5);
    expect(again['gsm8k-test-1#0']).toMatchObject({ correct: true, gold: '3' });
    expect(await artifactsOf(run)).toEqual([expect.objectContaining({ path: 'eval', is_dir: true })]);
  });

  it('reads split, step and sample_idx columns where the table has them', async () => {
    const run = await mlflowRun();
    const body = JSON.stringify({
      columns: ['step', 'split', 'question_id', 'sample_idx', 'completion', 'model'],
      data: [
        [500, 'test/rerank', 'gsm8k-test-1', 3, '#### 3', 'llama'],
        [500, null, 'gsm8k-test-1', null, '#### 5', 'llama'],
      ],
    });
    expect((await putTable(run, 'rerank.json', body)).status).toBe(200);
    const got = await samplesOf(run.runId);
    expect(got.map((s) => [s.step, s.split, s.sampleIdx, s.correct])).toEqual([
      [500, 'test/greedy', 0, false],
      [500, 'test/rerank', 3, true],
    ]);
  });

  it('stores other JSON as a plain file, with no samples', async () => {
    const run = await mlflowRun();
    const config = JSON.stringify({ columns: ['question_id'], note: 'completion' });
    expect((await putTable(run, 'config.json', config)).status).toBe(200);
    expect((await putTable(run, 'table.txt', table(first))).status).toBe(200);
    expect(await samplesOf(run.runId)).toEqual([]);
    expect((await artifactsOf(run)).map((f) => f.path).sort()).toEqual(['config.json', 'table.txt']);
  });

  it.each([
    ['a row without a question', table([first[0]!, [null, '', 'x', null, null]]), /data\[1\], column question_id/],
    [
      'a row of the wrong length',
      table([first[0]!, ['gsm8k-test-1', 'x']]),
      /data\[1\] must be a list of 5 cells, one for each column/,
    ],
    [
      'a negative step',
      JSON.stringify({ columns: ['question_id', 'completion', 'step'], data: [['gsm8k-test-1', 'x', -1]] }),
      /data\[0\], column step: step must be >= 0/,
    ],
    [
      'text Postgres cannot store',
      JSON.stringify({ columns: ['question_id', 'completion'], data: [['gsm8k-test-1', 'x\u0000']] }),
      /data\[0\], column completion: must not contain a NUL/,
    ],
    [
      'a completion over the limit',
      JSON.stringify({ columns: ['question_id', 'completion'], data: [['gsm8k-test-1', 'x'.repeat(100_001)]] }),
      /data\[0\], column completion: .*100000/,
    ],
    [
      'too many rows',
      JSON.stringify({ columns: ['question_id', 'completion'], data: Array(20_001).fill(['q', '']) }),
      /20,001 rows; at most 20,000/,
    ],
    ['not JSON', `${table(first)}]`, /is not mlflow.log_table's JSON: the file is not valid JSON/],
    ['a column twice', JSON.stringify({ columns: ['question_id', 'completion', 'completion'], data: [] }), /twice/],
  ])('refuses a table with %s, naming it, and stores neither the file nor any sample', async (_what, body, message) => {
    const run = await mlflowRun();
    const put = await putTable(run, 'gen.json', body);
    expect(put.status).toBe(400);
    expect(put.json.error_code).toBe('INVALID_PARAMETER_VALUE');
    expect(put.json.message).toMatch(/^sample table 'gen.json': /);
    expect(put.json.message).toMatch(message);
    expect(await samplesOf(run.runId)).toEqual([]);
    expect(await artifactsOf(run)).toEqual([]);
    const runDir = join(dir, 'mlflow', run.runId);
    expect(existsSync(runDir) ? readdirSync(runDir) : []).toEqual([]);
  });
});
