/**
 * Server-side grading in the built app (`next build`, as users run it): the bundled server finds the repository's
 * data/ and grades samples of shipped questions logged through tRPC and through an MLflow `log_table` upload.
 * (Under Turbopack a module has `import.meta.url` but no `import.meta.dirname`; reading the latter left every
 * sample ungraded here while the integration tests, which run the sources, passed.)
 */
import { expect, inject, it } from 'vitest';
import { callApi } from './browser';

const base = () => inject('baseUrl');

const call = callApi;

type Sample = { questionId: string; correct: boolean | null; gold: string | null; extractedAnswer: string | null };
const graded = async (runId: string) =>
  (await call<{ items: Sample[] }>('samples.list', { runId }, 'GET')).items.map((s) => [
    s.questionId,
    s.correct,
    s.gold,
    s.extractedAnswer,
  ]);

it('grades samples of GSM8K and AQUA-RAT questions logged with samples.log', async () => {
  const { id } = await call<{ id: string }>('runs.create', { project: 'grading-e2e' });
  const row = (questionId: string, completion: string) => ({
    step: 0,
    split: 'test/greedy',
    questionId,
    prompt: '',
    completion,
  });
  await call('samples.log', {
    runId: id,
    rows: [row('gsm8k-test-0', 'She makes $18 a day.\n#### 18'), row('aqua-dev-0', 'The answer is (B)')],
  });
  expect(await graded(id)).toEqual([
    ['aqua-dev-0', false, 'A', 'B'],
    ['gsm8k-test-0', true, '18', '18'],
  ]);
});

it('grades the generations of an MLflow log_table upload', async () => {
  const created = await fetch(`${base()}/api/2.0/mlflow/runs/create`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${inject('apiKey')}` },
    body: JSON.stringify({ experiment_id: '0' }),
  });
  const { run_id, experiment_id } = ((await created.json()) as { run: { info: Record<string, string> } }).run.info;
  const put = await fetch(
    `${base()}/api/2.0/mlflow-artifacts/artifacts/${experiment_id}/${run_id}/artifacts/gen.json`,
    {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${inject('apiKey')}` },
      body: '{"columns":["question_id","completion"],"data":[["gsm8k-test-1","2 + 1 = 3. The answer is 3."]]}',
    },
  );
  expect(put.status).toBe(200);
  expect(await graded(run_id!)).toEqual([['gsm8k-test-1', true, '3', '3']]);
});
