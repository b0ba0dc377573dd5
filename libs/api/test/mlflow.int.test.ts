/**
 * The MLflow-compatible API, driven by the `mlflow` client package from the npm registry (written by others, not
 * by us) over real HTTP: an experiment, a run, params, a batch of metrics, tags, the history read back, a search
 * with a filter — and the run then shows in our own runs list and series query. MLflow's limits and error codes,
 * and request bodies shaped as in MLflow's REST API reference, round-trip.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import MLflow from 'mlflow';
import { createQueuedRuns } from '@aft/db';
import { countPoints, createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createMlflowHandler } from '../src';
import { createTeamWithKey, createTestHandler, serveFetch } from '../src/testing';
import { watchEventLoop } from './event-loop';

let t: TestDatabase;
let api: ReturnType<typeof createTestHandler>;
let server: Awaited<ReturnType<typeof serveFetch>>;
let key: string;
let logOnlyKey: string;
let otherKey: string;
/** The package's own typings mark every optional MLflow field required; call it as its README does. */
type Call = (args?: Record<string, unknown>) => Promise<unknown>;
type Client = Record<'Experiments' | 'Runs' | 'Metrics' | 'Artifacts', Record<string, Call>>;
const connect = (headers?: Record<string, string>) =>
  new MLflow({ endpoint: server.url, headers }) as unknown as Client;
let client: Client;
const dir = mkdtempSync(join(tmpdir(), 'aft-mlflow-'));

beforeAll(async () => {
  t = await createTestDatabase();
  api = createTestHandler(t.db, t.url);
  const mlflow = createMlflowHandler({ db: t.db, notifier: api.notifier, auth: null, artifactDir: dir });
  server = await serveFetch(mlflow);
  key = (await createTeamWithKey(t.db, 'researchers')).key;
  logOnlyKey = (await createTeamWithKey(t.db, 'researchers', ['log', 'read'])).key;
  otherKey = (await createTeamWithKey(t.db, 'others')).key;
  client = connect({ Authorization: `Bearer ${key}` });
  // the package prints every request body; keep the test output readable
  vi.spyOn(console, 'log').mockImplementation(() => undefined);
});
afterAll(async () => {
  vi.restoreAllMocks();
  await server?.close();
  await api?.notifier.close();
  await t?.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** What the client threw: its message is the JSON of {status, data}. */
async function failure(
  p: Promise<unknown>,
): Promise<{ status: number; data: { error_code: string; message: string } }> {
  try {
    await p;
  } catch (e) {
    return JSON.parse((e as Error).message.replace(/^Error: /, '')) as {
      status: number;
      data: { error_code: string; message: string };
    };
  }
  throw new Error('expected the request to fail');
}

async function raw(method: string, path: string, body?: unknown, k: string | null = key) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      ...(k ? { authorization: `Bearer ${k}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  return {
    status: res.status,
    json: (await res.json().catch(() => null)) as Record<string, unknown> & { error_code?: string; message?: string },
  };
}

describe('the mlflow npm client', () => {
  let experimentId: string;
  let runId: string;
  const start = 1_764_000_000_000;

  it('creates an experiment and a run, logs params, metrics and tags, reads the history back and searches', async () => {
    const { experiment_id } = (await client.Experiments.create!({ name: 'trl-gsm8k' })) as { experiment_id: string };
    experimentId = experiment_id;
    const got = (await client.Experiments.get!({ experiment_id })) as {
      experiment: { name: string; lifecycle_stage: string };
    };
    expect(got.experiment).toMatchObject({ name: 'trl-gsm8k', lifecycle_stage: 'active' });
    const listed = (await client.Experiments.list!()) as { experiments: { name: string }[] };
    expect(listed.experiments.map((e) => e.name)).toContain('trl-gsm8k');

    const created = (await client.Runs.create!({
      experiment_id,
      start_time: start,
      tags: [
        { key: 'mlflow.runName', value: 'dpo-7b-beta0.1' },
        { key: 'aft.method', value: 'dpo' },
        { key: 'mlflow.source.name', value: 'train_dpo.py' },
      ],
    })) as {
      run: { info: { run_id: string; run_name: string; status: string; experiment_id: string; start_time: number } };
    };
    runId = created.run.info.run_id;
    expect(created.run.info).toMatchObject({
      run_name: 'dpo-7b-beta0.1',
      status: 'RUNNING',
      experiment_id,
      start_time: start,
    });

    await client.Runs.logParameter!({ run_id: runId, key: 'learning_rate', value: '5e-07' });
    await client.Runs.logParameter!({ run_id: runId, key: 'beta', value: '0.1' });
    const metrics = Array.from({ length: 40 }, (_, s) => [
      { key: 'train/loss', value: 2 * Math.exp(-s / 10), timestamp: start + s * 1000, step: s },
      { key: 'eval/accuracy', value: 0.3 + s / 100, timestamp: start + s * 1000, step: s },
    ]).flat();
    await client.Runs.logBatch!({
      run_id: runId,
      metrics,
      params: [{ key: 'per_device_train_batch_size', value: '4' }],
      tags: [{ key: 'aft.constraint', value: 'none' }],
    });
    await client.Runs.setTag!({ run_id: runId, key: 'stage', value: 'dpo' });
    await client.Runs.logMetric!({
      run_id: runId,
      key: 'train/loss',
      value: 0.05,
      timestamp: start + 99_000,
      step: 99,
    });

    const history = (await client.Metrics.getHistory!({ run_id: runId, metric_key: 'train/loss' })) as {
      metrics: { value: number; step: number; timestamp: number }[];
    };
    expect(history.metrics).toHaveLength(41);
    expect(history.metrics.slice(0, 3)).toEqual(metrics.filter((m) => m.key === 'train/loss').slice(0, 3));
    expect(history.metrics[40]).toEqual({ key: 'train/loss', value: 0.05, timestamp: start + 99_000, step: 99 });

    const run = (await client.Runs.get!({ run_id: runId })) as {
      run: {
        data: {
          params: { key: string; value: string }[];
          tags: { key: string; value: string }[];
          metrics: { key: string; value: number; step: number }[];
        };
      };
    };
    expect(run.run.data.params).toEqual(
      expect.arrayContaining([
        { key: 'learning_rate', value: '5e-07' },
        { key: 'beta', value: '0.1' },
        { key: 'per_device_train_batch_size', value: '4' },
      ]),
    );
    expect(run.run.data.tags).toEqual(
      expect.arrayContaining([
        { key: 'stage', value: 'dpo' },
        { key: 'aft.method', value: 'dpo' },
      ]),
    );
    expect(run.run.data.metrics).toEqual(
      expect.arrayContaining([expect.objectContaining({ key: 'eval/accuracy', value: 0.69, step: 39 })]),
    );

    const search = (filter: string) =>
      client.Runs.search!({
        experiment_ids: [experiment_id],
        filter,
        run_view_type: 'ACTIVE_ONLY',
        max_results: 100,
      }) as Promise<{ runs?: { info: { run_id: string } }[] }>;
    const hit = await search(
      "metrics.`eval/accuracy` > 0.6 and params.learning_rate = '5e-07' and tags.`aft.method` = 'dpo' and attributes.status = 'RUNNING'",
    );
    expect(hit.runs?.map((r) => r.info.run_id)).toEqual([runId]);
    expect((await search('metrics.`eval/accuracy` > 0.9')).runs ?? []).toEqual([]);
    expect((await search("tags.mlflow.runName LIKE 'dpo-%'")).runs?.map((r) => r.info.run_id)).toEqual([runId]);

    const ended = (await client.Runs.update!({ run_id: runId, status: 'FINISHED', end_time: start + 120_000 })) as {
      run_info: { status: string; end_time: number };
    };
    expect(ended.run_info).toMatchObject({ status: 'FINISHED', end_time: start + 120_000 });
  });

  it('puts the run in our runs list and its metrics in our series query', async () => {
    const list = await api.call('runs.list', { projectId: experimentId }, { key, method: 'GET' });
    const items = (
      list.json.result!.data as {
        items: {
          id: string;
          method: string;
          constraint: string;
          status: string;
          summary: Record<string, unknown>;
          config: Record<string, unknown>;
        }[];
      }
    ).items;
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ id: runId, method: 'dpo', constraint: 'none', status: 'succeeded' });
    expect(items[0]!.summary['eval/accuracy']).toBeCloseTo(0.69);
    const series = await api.call('metrics.series', { runIds: [runId], keys: ['train/loss'] }, { key, method: 'GET' });
    const s = (series.json.result!.data as { runId: string; key: string; steps: number[]; values: unknown[] }[])[0]!;
    expect(s.steps.slice(0, 3)).toEqual([0, 1, 2]);
    expect(s.steps.at(-1)).toBe(99);
    expect(s.values.at(-1)).toBe(0.05);
  });

  it('stores small artifacts: upload, list, download', async () => {
    const body = JSON.stringify({ lr: 5e-7, beta: 0.1 });
    const put = await fetch(
      `${server.url}/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/config/train.json`,
      {
        method: 'PUT',
        headers: { authorization: `Bearer ${key}` },
        body,
      },
    );
    expect(put.status).toBe(200);
    const top = (await client.Artifacts.list!({ run_id: runId })) as {
      root_uri: string;
      files: { path: string; is_dir: boolean }[];
    };
    expect(top.root_uri).toBe(`mlflow-artifacts:/${experimentId}/${runId}/artifacts`);
    expect(top.files).toEqual([{ path: 'config', is_dir: true }]);
    const inner = (await client.Artifacts.list!({ run_id: runId, path: 'config' })) as { files: unknown[] };
    expect(inner.files).toEqual([{ path: 'config/train.json', is_dir: false, file_size: body.length }]);
    const get = await fetch(
      `${server.url}/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/config/train.json`,
      { headers: { authorization: `Bearer ${key}` } },
    );
    expect(await get.text()).toBe(body);
    const escape = await raw(
      'PUT',
      `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/..%2F..%2Fescape.txt`,
      'x',
    );
    expect(escape.status).toBe(400);
  });
});

describe("MLflow's limits and errors", () => {
  let runId: string;
  beforeAll(async () => {
    const r = (await client.Runs.create!({ experiment_id: '0' })) as { run: { info: { run_id: string } } };
    runId = r.run.info.run_id;
  });
  const metrics = (n: number) =>
    Array.from({ length: n }, (_, i) => ({ key: 'loss', value: 1 / (i + 1), timestamp: 1, step: i }));
  const kv = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: String(i) }));

  it('refuses a metric key past the per-run cap of distinct keys with a 400 naming it, not a 500', async () => {
    const r = (await client.Runs.create!({ experiment_id: '0' })) as { run: { info: { run_id: string } } };
    const id = r.run.info.run_id;
    const keys = Array.from({ length: 1000 }, (_, i) => ({ key: `cap${i}`, value: 1, timestamp: 1, step: 0 }));
    expect((await raw('POST', '/api/2.0/mlflow/runs/log-batch', { run_id: id, metrics: keys })).status).toBe(200);
    const over = await raw('POST', '/api/2.0/mlflow/runs/log-metric', {
      run_id: id,
      key: 'one-more',
      value: 1,
      timestamp: 1,
    });
    expect(over.status).toBe(400);
    expect(over.json.error_code).toBe('INVALID_PARAMETER_VALUE');
    expect(over.json.message).toMatch(/1000/);
  });

  it.each([
    ['1001 metrics', { metrics: metrics(1001) }, /at most 1000 metrics\. Got 1001 metrics/],
    ['101 params', { params: kv(101) }, /at most 100 params\. Got 101 params/],
    ['101 tags', { tags: kv(101) }, /at most 100 tags\. Got 101 tags/],
    [
      '1001 entities in total',
      { metrics: metrics(1000), params: kv(1) },
      /at most 1000 metrics, params, and tags in total/,
    ],
  ])('refuses a log-batch with %s (400 INVALID_PARAMETER_VALUE) and writes nothing', async (_what, body, message) => {
    const e = await failure(client.Runs.logBatch!({ run_id: runId, metrics: [], params: [], tags: [], ...body }));
    expect(e.status).toBe(400);
    expect(e.data.error_code).toBe('INVALID_PARAMETER_VALUE');
    expect(e.data.message).toMatch(message);
    expect((await countPoints(t.db, runId)).n).toBe(0);
  });

  it('keeps params immutable: the same value again is fine, a different one is refused', async () => {
    await client.Runs.logParameter!({ run_id: runId, key: 'lr', value: '0.001' });
    await client.Runs.logParameter!({ run_id: runId, key: 'lr', value: '0.001' });
    const e = await failure(client.Runs.logParameter!({ run_id: runId, key: 'lr', value: '0.002' }));
    expect(e).toMatchObject({ status: 400, data: { error_code: 'INVALID_PARAMETER_VALUE' } });
    expect(e.data.message).toBe(
      `Changing param values is not allowed. Param with key='lr' was already logged with value='0.001' for run ID='${runId}'. Attempted logging new value '0.002'.`,
    );
    const inBatch = await failure(
      client.Runs.logBatch!({ run_id: runId, params: [{ key: 'lr', value: '0.003' }], metrics: metrics(5), tags: [] }),
    );
    expect(inBatch.data.error_code).toBe('INVALID_PARAMETER_VALUE');
    expect((await countPoints(t.db, runId)).n).toBe(0);
  });

  it('refuses a param on a run the platform is training (its worker reads the config), and takes it once it ended', async () => {
    const team = await t.db.prisma.team.findFirstOrThrow({ where: { slug: 'researchers' } });
    const cfg = { preset: 'tiny', seed: 1, overrides: {}, sampling: [] };
    const { ids } = await createQueuedRuns(t.db.pool, team.id, 'platform', [
      { ref: 'r', name: 'vft-1', method: 'vft', constraint: 'none', config: cfg, configHash: '', seed: 1, tags: [] },
    ]);
    const platformRun = ids.get('r')!;
    const e = await failure(client.Runs.logParameter!({ run_id: platformRun, key: 'steps', value: '5000' }));
    expect(e).toMatchObject({ status: 400, data: { error_code: 'INVALID_PARAMETER_VALUE' } });
    expect(e.data.message).toContain('being trained by the platform');
    const row = await t.db.pool.query('SELECT config FROM run WHERE id = $1', [platformRun]);
    expect(row.rows[0].config).toEqual(cfg);
    // ended (its token revoked by the statement that ended it): params are MLflow's again
    await client.Runs.update!({ run_id: platformRun, status: 'KILLED' });
    await client.Runs.logParameter!({ run_id: platformRun, key: 'note', value: 'ok' });
  });

  it('answers an unknown run, a missing token, a wrong scope and another team as MLflow does', async () => {
    const unknown = await failure(client.Runs.get!({ run_id: 'deadbeef' }));
    expect(unknown).toMatchObject({
      status: 404,
      data: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Run with id=deadbeef not found' },
    });
    const anon = await failure(connect().Runs.get!({ run_id: runId }));
    expect(anon.status).toBe(401);
    expect(anon.data.error_code).toBe('UNAUTHENTICATED');
    expect(anon.data.message).toMatch(/MLFLOW_TRACKING_TOKEN/);
    const revoked = await raw('GET', `/api/2.0/mlflow/runs/get?run_id=${runId}`, undefined, 'aft_not_a_key');
    expect(revoked).toMatchObject({ status: 401, json: { error_code: 'UNAUTHENTICATED' } });
    const scope = await raw('POST', '/api/2.0/mlflow/runs/delete', { run_id: runId }, logOnlyKey);
    expect(scope).toMatchObject({
      status: 403,
      json: { error_code: 'PERMISSION_DENIED', message: 'this API key lacks the `launch` scope' },
    });
    const stranger = await raw('GET', `/api/2.0/mlflow/runs/get?run_id=${runId}`, undefined, otherKey);
    expect(stranger).toMatchObject({
      status: 404,
      json: { error_code: 'RESOURCE_DOES_NOT_EXIST', message: `Run with id=${runId} not found` },
    });
    const dup = await failure(client.Experiments.create!({ name: 'trl-gsm8k' }));
    expect(dup).toMatchObject({
      status: 400,
      data: { error_code: 'RESOURCE_ALREADY_EXISTS', message: "Experiment 'trl-gsm8k' already exists." },
    });
    const noEndpoint = await raw('POST', '/api/2.0/mlflow/runs/frobnicate', {});
    expect(noEndpoint).toMatchObject({ status: 404, json: { error_code: 'ENDPOINT_NOT_FOUND' } });
    const badJson = await raw('POST', '/api/2.0/mlflow/runs/log-metric', '{"run_id":');
    expect(badJson).toMatchObject({ status: 400, json: { error_code: 'MALFORMED_REQUEST' } });
    const badFilter = await raw('POST', '/api/2.0/mlflow/runs/search', {
      experiment_ids: ['0'],
      filter: "metrics.loss < 1 OR params.lr = '1'",
    });
    expect(badFilter).toMatchObject({ status: 400, json: { error_code: 'INVALID_PARAMETER_VALUE' } });
    expect(badFilter.json.message).toMatch(/no OR/);
  });

  it('deletes a run (with the launch scope), audited', async () => {
    const r = (await client.Runs.create!({ experiment_id: '0' })) as { run: { info: { run_id: string } } };
    await client.Runs.delete!({ run_id: r.run.info.run_id });
    expect(await t.db.prisma.run.count({ where: { id: r.run.info.run_id } })).toBe(0);
    expect(await t.db.prisma.auditEvent.count({ where: { action: 'run.delete', target: r.run.info.run_id } })).toBe(1);
  });
});

describe("request bodies as in MLflow's REST API reference", () => {
  // Shaped after the examples of https://mlflow.org/docs/latest/rest-api.html and the tracking docs' curl calls.
  // {{experiment_id}} and {{run_id}} are filled in from the responses, as a user following the docs would.
  const name = `my-experiment-${randomBytes(3).toString('hex')}`;
  const DOCS: [string, string, unknown][] = [
    [
      'POST',
      '/api/2.0/mlflow/experiments/create',
      { name, tags: [{ key: 'mlflow.note.content', value: 'from the docs' }] },
    ],
    ['GET', `/api/2.0/mlflow/experiments/get-by-name?experiment_name=${name}`, undefined],
    [
      'POST',
      '/api/2.0/mlflow/runs/create',
      {
        experiment_id: '{{experiment_id}}',
        start_time: 1552550804000,
        tags: [{ key: 'mlflow.user', value: 'researcher' }],
      },
    ],
    [
      'POST',
      '/api/2.0/mlflow/runs/log-metric',
      { run_id: '{{run_id}}', key: 'mse', value: 2500.0, timestamp: 1552550804000, step: 0 },
    ],
    [
      'POST',
      '/api/2.0/mlflow/runs/log-parameter',
      { run_id: '{{run_id}}', key: 'model_class', value: 'LogisticRegression' },
    ],
    ['POST', '/api/2.0/mlflow/runs/set-tag', { run_id: '{{run_id}}', key: 'release.candidate', value: 'RC1' }],
    [
      'POST',
      '/api/2.0/mlflow/runs/log-batch',
      {
        run_id: '{{run_id}}',
        metrics: [
          { key: 'mae', value: 2.5, timestamp: 1552550804000 },
          { key: 'rmse', value: 2.7, timestamp: 1552550804000 },
        ],
        params: [{ key: 'alpha', value: '0.5' }],
        tags: [{ key: 'team', value: 'alignment' }],
      },
    ],
    ['GET', '/ajax-api/2.0/mlflow/metrics/get-history?run_id={{run_id}}&metric_key=mse', undefined],
    [
      'POST',
      '/api/2.0/mlflow/runs/search',
      { experiment_ids: ['{{experiment_id}}'], filter: "params.model_class = 'LogisticRegression'", max_results: 10 },
    ],
    ['POST', '/api/2.0/mlflow/experiments/search', { filter: `name = '${name}'`, max_results: 10 }],
    ['POST', '/api/2.0/mlflow/runs/update', { run_id: '{{run_id}}', status: 'FINISHED', end_time: 1552550900000 }],
  ];

  it('round-trip: every documented request succeeds and what it logged reads back', async () => {
    const vars: Record<string, string> = {};
    const fill = (s: string) => s.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => vars[k]!);
    for (const [method, path, body] of DOCS) {
      const r = await raw(method, fill(path), body === undefined ? undefined : JSON.parse(fill(JSON.stringify(body))));
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.json)}`).toBe(200);
      if (r.json['experiment_id']) vars['experiment_id'] = r.json['experiment_id'] as string;
      const run = r.json['run'] as { info: { run_id: string } } | undefined;
      if (run) vars['run_id'] = run.info.run_id;
      if (path.includes('get-history'))
        expect(r.json['metrics']).toEqual([{ key: 'mse', value: 2500, timestamp: 1552550804000, step: 0 }]);
      if (path.endsWith('runs/search'))
        expect((r.json['runs'] as { info: { run_id: string } }[]).map((x) => x.info.run_id)).toEqual([vars['run_id']]);
      if (path.endsWith('experiments/search'))
        expect((r.json['experiments'] as { name: string }[]).map((x) => x.name)).toEqual([name]);
    }
    const got = await raw('GET', `/api/2.0/mlflow/runs/get?run_id=${vars['run_id']}`);
    const data = got.json['run'] as {
      info: Record<string, unknown>;
      data: Record<string, { key: string; value: unknown }[]>;
    };
    expect(data.info).toMatchObject({
      status: 'FINISHED',
      start_time: 1552550804000,
      end_time: 1552550900000,
      user_id: 'researcher',
    });
    const byKey = (xs: { key: string; value: unknown }[]) => Object.fromEntries(xs.map((x) => [x.key, x.value]));
    expect(byKey(data.data['params']!)).toEqual({ model_class: 'LogisticRegression', alpha: '0.5' });
    expect(byKey(data.data['metrics']!)).toEqual({ mse: 2500, mae: 2.5, rmse: 2.7 });
    expect(byKey(data.data['tags']!)).toMatchObject({
      'release.candidate': 'RC1',
      team: 'alignment',
      'mlflow.user': 'researcher',
    });
  });

  it('reads NaN and Infinity as Python clients write them', async () => {
    const r = (await client.Runs.create!({ experiment_id: '0' })) as { run: { info: { run_id: string } } };
    const id = r.run.info.run_id;
    const res = await raw(
      'POST',
      '/api/2.0/mlflow/runs/log-batch',
      `{"run_id": "${id}", "metrics": [{"key": "loss", "value": NaN, "timestamp": 1, "step": 0}, {"key": "loss", "value": Infinity, "timestamp": 2, "step": 1}]}`,
    );
    expect(res.status).toBe(200);
    const h = await raw('GET', `/api/2.0/mlflow/metrics/get-history?run_id=${id}&metric_key=loss`);
    expect((h.json['metrics'] as { value: unknown }[]).map((m) => m.value)).toEqual(['NaN', 'Infinity']);
  });
});

describe('malformed requests', () => {
  const ENDPOINTS = [
    'experiments/create',
    'experiments/get',
    'experiments/get-by-name',
    'experiments/search',
    'experiments/list',
    'runs/create',
    'runs/get',
    'runs/update',
    'runs/delete',
    'runs/search',
    'runs/log-metric',
    'runs/log-parameter',
    'runs/set-tag',
    'runs/delete-tag',
    'runs/log-batch',
    'metrics/get-history',
    'artifacts/list',
  ];
  // MLflow's reads are GET (their input in the query string); the searches and every write are POST
  const GETS = new Set([
    'experiments/get',
    'experiments/get-by-name',
    'experiments/list',
    'runs/get',
    'metrics/get-history',
    'artifacts/list',
  ]);
  const query = (b: unknown) =>
    new URLSearchParams(
      b && typeof b === 'object' && !Array.isArray(b)
        ? Object.entries(b).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)])
        : [],
    ).toString();
  it.each(ENDPOINTS)('%s never answers 5xx, and every refusal has an error_code and a message', async (endpoint) => {
    const loop = watchEventLoop(`mlflow fuzz ${endpoint}`);
    const r = (await client.Runs.create!({ experiment_id: '0' })) as { run: { info: { run_id: string } } };
    const runId = r.run.info.run_id;
    const body = fc.oneof(
      fc.jsonValue(),
      fc
        .dictionary(
          fc.constantFrom(
            'run_id',
            'experiment_id',
            'name',
            'key',
            'value',
            'metrics',
            'params',
            'tags',
            'filter',
            'max_results',
            'step',
            'timestamp',
            'status',
            'page_token',
            'metric_key',
            'path',
          ),
          fc.jsonValue(),
        )
        .map((d) => ('run_id' in d && typeof d['run_id'] !== 'string' ? d : { run_id: runId, ...d })),
    );
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const res = GETS.has(endpoint)
          ? await raw('GET', `/api/2.0/mlflow/${endpoint}?${query(b)}`)
          : await raw('POST', `/api/2.0/mlflow/${endpoint}`, JSON.stringify(b));
        expect(res.status, `${endpoint} ${JSON.stringify(b).slice(0, 200)} → ${JSON.stringify(res.json)}`).toBeLessThan(
          500,
        );
        if (res.status >= 400) {
          expect(res.json.error_code).toMatch(/^[A-Z_]+$/);
          expect(res.json.message).toMatch(/\S/);
        }
      }),
      { numRuns: 40, seed: 7 },
    );
    loop.stop();
  });
});

describe("MLflow's methods and content types (no writes from a link or a form)", () => {
  let runId: string;
  beforeAll(async () => {
    const r = (await client.Runs.create!({ experiment_id: '0', tags: [{ key: 'keep', value: 'me' }] })) as {
      run: { info: { run_id: string } };
    };
    runId = r.run.info.run_id;
  });
  const tags = async () =>
    (await t.db.pool.query<{ kv_tags: Record<string, string> }>('SELECT kv_tags FROM run WHERE id = $1', [runId]))
      .rows[0]?.kv_tags;

  it.each(['/api/2.0/mlflow', '/ajax-api/2.0/mlflow'])(
    'refuses writes by GET on %s with 405 and MLflow’s error shape, and changes nothing',
    async (prefix) => {
      for (const path of [
        `runs/delete?run_id=${runId}`,
        `runs/update?run_id=${runId}&status=KILLED`,
        `runs/set-tag?run_id=${runId}&key=keep&value=changed`,
        `runs/log-metric?run_id=${runId}&key=loss&value=1&step=0`,
        'experiments/create?name=from-a-link',
      ]) {
        const res = await fetch(`${server.url}${prefix}/${path}`, { headers: { authorization: `Bearer ${key}` } });
        expect(res.status, path).toBe(405);
        expect(res.headers.get('allow')).toBe('POST');
        const body = (await res.json()) as { error_code: string; message: string };
        expect(body.error_code).toMatch(/^[A-Z_]+$/);
        expect(body.message).toMatch(/use POST/);
      }
      const run = await raw('GET', `${prefix}/runs/get?run_id=${runId}`);
      expect(run.status).toBe(200);
      expect((run.json['run'] as { info: { status: string } }).info.status).toBe('RUNNING');
      expect(await tags()).toMatchObject({ keep: 'me' });
      expect(await t.db.prisma.project.count({ where: { name: 'from-a-link' } })).toBe(0);
    },
  );

  it('refuses other methods on reads and writes with 405 naming the allowed ones', async () => {
    for (const [method, path, allow] of [
      ['POST', `runs/get`, 'GET'],
      ['PUT', 'runs/set-tag', 'POST'],
      ['PATCH', 'runs/update', 'POST'],
      ['DELETE', 'runs/delete', 'POST'],
      ['DELETE', 'runs/search', 'GET, POST'],
    ] as const) {
      const r = await raw(method, `/api/2.0/mlflow/${path}`, { run_id: runId });
      expect(r.status, `${method} ${path}`).toBe(405);
      expect(r.json.message).toContain(allow.replace(', ', ' or '));
    }
    // the searches are POST in MLflow's REST API, and GET too
    expect((await raw('GET', '/api/2.0/mlflow/runs/search?experiment_ids=0')).status).toBe(200);
    expect((await raw('POST', '/api/2.0/mlflow/experiments/search', {})).status).toBe(200);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', null])(
    'refuses a POST whose Content-Type is %s (415, naming Content-Type) and writes nothing',
    async (type) => {
      const res = await fetch(`${server.url}/api/2.0/mlflow/runs/set-tag`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, ...(type ? { 'content-type': type } : {}) },
        body: JSON.stringify({ run_id: runId, key: 'keep', value: 'changed' }),
      });
      expect(res.status).toBe(415);
      const body = (await res.json()) as { error_code: string; message: string };
      expect(body.error_code).toBe('INVALID_PARAMETER_VALUE');
      expect(body.message).toMatch(/Content-Type must be application\/json/);
      expect(await tags()).toMatchObject({ keep: 'me' });
    },
  );

  it('reads a POST from its JSON body only, not the query string (as MLflow does)', async () => {
    const r = await raw('POST', `/api/2.0/mlflow/runs/set-tag?key=keep&value=changed`, { run_id: runId });
    expect(r.status).toBe(400);
    expect(r.json.message).toMatch(/tag key is required/);
    expect(await tags()).toMatchObject({ keep: 'me' });
    const charset = await fetch(`${server.url}/api/2.0/mlflow/runs/set-tag`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json; charset=utf-8' },
      body: JSON.stringify({ run_id: runId, key: 'other', value: 'x' }),
    });
    expect(charset.status).toBe(200);
  });
});

describe('inputs that reached Postgres and failed there are 400 INVALID_PARAMETER_VALUE naming the field', () => {
  let runId: string;
  beforeAll(async () => {
    const r = (await client.Runs.create!({ experiment_id: '0' })) as { run: { info: { run_id: string } } };
    runId = r.run.info.run_id;
  });
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const refused = (r: { status: number; json: { error_code?: string; message?: string } }, field: string | RegExp) => {
    expect(r.status, JSON.stringify(r.json)).toBe(400);
    expect(r.json.error_code).toBe('INVALID_PARAMETER_VALUE');
    expect(r.json.message).toMatch(field);
  };

  it.each([b64('1e20'), b64('100000000000000000000'), b64('-1'), b64('1.5'), b64(' 7'), '1e20', '%%%', b64('\u0000')])(
    'refuses page_token %s on each endpoint that pages',
    async (token) => {
      refused(
        await raw('POST', '/api/2.0/mlflow/runs/search', { experiment_ids: ['0'], page_token: token }),
        /page_token/,
      );
      refused(await raw('POST', '/api/2.0/mlflow/experiments/search', { page_token: token }), /page_token/);
      refused(
        await raw(
          'GET',
          `/api/2.0/mlflow/metrics/get-history?run_id=${runId}&metric_key=loss&page_token=${encodeURIComponent(token)}`,
        ),
        /page_token/,
      );
    },
  );

  it.each([1e20, -1e20, -8e15, 8.64e15, '100000000000000000000'])(
    'refuses start_time, end_time and a metric timestamp of %s',
    async (time) => {
      refused(await raw('POST', '/api/2.0/mlflow/runs/create', { experiment_id: '0', start_time: time }), /start_time/);
      refused(await raw('POST', '/api/2.0/mlflow/runs/update', { run_id: runId, end_time: time }), /end_time/);
      refused(
        await raw('POST', '/api/2.0/mlflow/runs/log-metric', { run_id: runId, key: 'loss', value: 1, timestamp: time }),
        /timestamp/,
      );
    },
  );

  it('still takes times across the years Postgres and JS share', async () => {
    for (const time of [0, -62_135_596_800_000, 253_402_300_799_999]) {
      expect((await raw('POST', '/api/2.0/mlflow/runs/create', { experiment_id: '0', start_time: time })).status).toBe(
        200,
      );
    }
  });

  it.each([
    ['NUL', '\u0000'],
    ['a lone surrogate', '\ud800'],
  ])('refuses %s in names, keys, values and filters', async (what, bad) => {
    const message = what === 'NUL' ? /NUL/ : /surrogate/;
    const cases: [string, Record<string, unknown>, string][] = [
      ['runs/search', { experiment_ids: ['0'], filter: `tags.a = 'x${bad}'` }, 'filter'],
      ['runs/search', { experiment_ids: ['0'], filter: `params.\`k${bad}\` = 'x'` }, 'filter'],
      ['runs/search', { experiment_ids: [`0${bad}`] }, 'experiment_ids.0'],
      ['experiments/search', { filter: `name = 'x${bad}'` }, 'filter'],
      ['experiments/create', { name: `exp${bad}` }, 'name'],
      ['runs/create', { experiment_id: '0', run_name: `run${bad}` }, 'run_name'],
      ['runs/create', { experiment_id: '0', tags: [{ key: 'k', value: `v${bad}` }] }, 'tags.0.value'],
      ['runs/update', { run_id: runId, run_name: `run${bad}` }, 'run_name'],
      ['runs/set-tag', { run_id: runId, key: 'k', value: `v${bad}` }, 'value'],
      ['runs/set-tag', { run_id: runId, key: `k${bad}`, value: 'v' }, 'key'],
      ['runs/log-parameter', { run_id: runId, key: 'p', value: `v${bad}` }, 'value'],
      ['runs/log-batch', { run_id: runId, tags: [{ key: 't', value: `v${bad}` }] }, 'tags.0.value'],
      ['runs/log-batch', { run_id: runId, params: [{ key: 'p', value: `v${bad}` }] }, 'params.0.value'],
      ['runs/log-batch', { run_id: runId, metrics: [{ key: `m${bad}`, value: 1 }] }, 'metrics.0.key'],
      ['runs/delete-tag', { run_id: runId, key: `k${bad}` }, 'key'],
    ];
    for (const [endpoint, body, field] of cases) {
      const r = await raw('POST', `/api/2.0/mlflow/${endpoint}`, body);
      refused(r, new RegExp(field.replace(/\./g, '\\.')));
      expect(r.json.message, endpoint).toMatch(message);
    }
    // a lone surrogate cannot be put in a URL (its UTF-8 does not exist); NUL can
    if (what !== 'NUL') return;
    for (const path of [
      `experiments/get-by-name?experiment_name=x%00`,
      `runs/get?run_id=%00`,
      `metrics/get-history?run_id=${runId}&metric_key=m%00`,
    ]) {
      refused(await raw('GET', `/api/2.0/mlflow/${path}`), message);
    }
  });
});

describe('hostile bodies up to the size limits hold the event loop briefly', () => {
  const MAX = 8 * 1024 * 1024;
  let runId: string;
  let experimentId: string;
  beforeAll(async () => {
    const r = (await client.Runs.create!({ experiment_id: '0' })) as {
      run: { info: { run_id: string; experiment_id: string } };
    };
    runId = r.run.info.run_id;
    experimentId = r.run.info.experiment_id;
  });

  it('answers each within the bounds, with a 4xx or a 200, never a 5xx', async () => {
    const fill = (head: string, unit: string, tail: string) =>
      head + unit.repeat(Math.floor((MAX - 1024 - head.length - tail.length) / unit.length)) + tail;
    const id = JSON.stringify(runId);
    const filter = (f: string) => JSON.stringify({ experiment_ids: ['0'], filter: f });
    const bodies: [string, string, string][] = [
      ['8 MB of spaces before a NaN', 'runs/log-metric', fill(`{"run_id":${id},"key":"loss","value":`, ' ', 'NaN}')],
      ['8 MB of spaces in a batch', 'runs/log-batch', fill(`{"run_id":${id},"metrics":[`, ' ', ']}')],
      ['2 million bare NaN', 'runs/log-batch', fill(`{"run_id":${id},"metrics":[`, 'NaN,', 'NaN]}')],
      ['NaN-lookalikes outside strings', 'runs/log-batch', fill(`{"run_id":${id},"m":[`, 'NaNaN', ']}')],
      [
        'NaN, Infinity inside one string',
        'runs/set-tag',
        fill(`{"run_id":${id},"key":"k","value":"`, 'NaN,-Infinity ', '"}'),
      ],
      ['escaped quotes in a string', 'runs/set-tag', fill(`{"run_id":${id},"key":"k","value":"`, '\\"', '"}')],
      ['millions of empty objects', 'runs/log-batch', fill(`{"run_id":${id},"metrics":[`, '{},', '{}]}')],
      ['millions of empty strings', 'runs/log-batch', fill(`{"run_id":${id},"x":[`, '"",', '""], "y": NaN}')],
      ['deep nesting', 'runs/log-batch', fill(`{"run_id":${id},"x":`, '[', '')],
      ['a 10,000-character nested filter', 'runs/search', filter('('.repeat(9_990))],
      ['100 AND-ed metric clauses, the most', 'runs/search', filter(Array(100).fill('metrics.a > 1').join(' AND '))],
      ['555 AND-ed metric clauses', 'runs/search', filter(Array(555).fill('metrics.a > 1').join(' AND '))],
      ['a long backquoted key', 'runs/search', filter(`metrics.\`${'x'.repeat(9_980)}\` > 1`)],
      ['an unterminated backquote', 'runs/search', filter(`metrics.\`${'\\`'.repeat(4_990)}`)],
      ['spaces inside an IN list', 'runs/search', filter(`attributes.run_id IN ('a'${' '.repeat(9_950)}`)],
      [
        'order_by with spaces between key and direction',
        'runs/search',
        JSON.stringify({ experiment_ids: ['0'], order_by: Array(20).fill(`metrics.a${' '.repeat(280)}x DESC`) }),
      ],
      [
        'thousands of order_by entries',
        'runs/search',
        JSON.stringify({ experiment_ids: ['0'], order_by: Array(20_000).fill(`a${' '.repeat(290)}b`) }),
      ],
      ['an experiment filter of spaces', 'experiments/search', JSON.stringify({ filter: ' '.repeat(1_999) + 'x' })],
    ];
    const paths: [string, string][] = [
      [
        'an artifact path of slashes',
        `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts/a${'/'.repeat(14_000)}b`,
      ],
      [
        'an artifact listing of slashes',
        `/api/2.0/mlflow-artifacts/artifacts?path=${experimentId}/${runId}/artifacts/a${'/'.repeat(14_000)}b`,
      ],
      ['a get-artifact path of slashes', `/get-artifact?run_id=${runId}&path=a${'/'.repeat(14_000)}b`],
    ];
    const loop = watchEventLoop('mlflow hostile bodies', { p99: false });
    let worst = { what: '', ms: 0 };
    const timed = async (what: string, send: () => Promise<{ status: number; json: { error_code?: string } }>) => {
      const t0 = performance.now();
      const r = await send();
      const ms = performance.now() - t0;
      console.info(`[hostile bodies] ${what}: ${r.status} in ${ms.toFixed(0)} ms`);
      if (ms > worst.ms) worst = { what, ms };
      expect(r.status, `${what}: ${JSON.stringify(r.json).slice(0, 300)}`).toBeLessThan(500);
      if (r.status >= 400) expect(r.json.error_code, what).toMatch(/^[A-Z_]+$/);
    };
    for (const [what, endpoint, body] of bodies) {
      expect(body.length, what).toBeLessThanOrEqual(MAX);
      await timed(what, () => raw('POST', `/api/2.0/mlflow/${endpoint}`, body));
    }
    for (const [what, path] of paths) await timed(what, () => raw('GET', path));
    const { p99, max } = loop.stop();
    console.info(
      `[hostile bodies] worst answer: ${worst.what} in ${worst.ms.toFixed(0)} ms; event loop p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
    );
  }, 120_000);
});
