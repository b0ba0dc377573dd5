/**
 * MLflow artifacts kept in S3 (the artifact store on a real S3 protocol server, s3rver, started here): upload,
 * list and download over the MLflow routes, a file past one multipart part, bytes that fail their checksum never
 * served whole, the store down answered 503 with nothing recorded, a deleted run's objects removed, and a download
 * whose object came without Content-Length sent whole (no `content-length: 0`).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RunNotifier } from '@aft/db';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { S3Store, s3Client, sha256Of } from '@aft/storage';
import { startS3rver, type TestS3 } from '@aft/storage/testing';
import { createMlflowHandler } from '../src';
import { createTeamWithKey, serveFetch } from '../src/testing';

let t: TestDatabase;
let s3: TestS3;
let store: S3Store;
let notifier: RunNotifier;
let mlflow: ReturnType<typeof createMlflowHandler>;
let server: Awaited<ReturnType<typeof serveFetch>>;
let key: string;

beforeAll(async () => {
  t = await createTestDatabase();
  s3 = await startS3rver();
  store = await s3.store({ prefix: 'lab', partBytes: 5 * 1024 * 1024, retry: { attempts: 2, baseMs: 50, maxMs: 50 } });
  notifier = new RunNotifier(t.url);
  mlflow = createMlflowHandler({ db: t.db, notifier, auth: null, artifactDir: store });
  server = await serveFetch(mlflow);
  key = (await createTeamWithKey(t.db, `s3art-${randomBytes(4).toString('hex')}`)).key;
});
afterAll(async () => {
  await server?.close();
  await notifier?.close();
  await t?.drop();
  await s3?.close();
});

async function call(method: string, path: string, body?: BodyInit) {
  const headers: Record<string, string> = { authorization: `Bearer ${key}` };
  if (method === 'POST') headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, { method, headers, body });
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(bytes.toString('utf8')) as typeof json;
  } catch {
    // a download
  }
  return { status: res.status, json, bytes };
}

async function newRun() {
  const exp = await call(
    'POST',
    '/api/2.0/mlflow/experiments/create',
    JSON.stringify({ name: `e-${randomBytes(4).toString('hex')}` }),
  );
  const experimentId = exp.json['experiment_id'] as string;
  const run = await call('POST', '/api/2.0/mlflow/runs/create', JSON.stringify({ experiment_id: experimentId }));
  const runId = (run.json['run'] as { info: { run_id: string } }).info.run_id;
  return { runId, experimentId, art: `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts` };
}

describe('MLflow artifacts in S3', () => {
  it('upload, list and download, a file past one part included; the objects carry their sha256', async () => {
    const { runId, art } = await newRun();
    const config = Buffer.from(JSON.stringify({ lr: 5e-7 }));
    const weights = randomBytes(6 * 1024 * 1024 + 17);
    expect((await call('PUT', `${art}/config/train.json`, config)).status).toBe(200);
    expect((await call('PUT', `${art}/model/weights.bin`, weights)).status).toBe(200);

    const top = await call('GET', `/api/2.0/mlflow/artifacts/list?run_id=${runId}`);
    expect(top.json['files']).toEqual([
      { path: 'config', is_dir: true },
      { path: 'model', is_dir: true },
    ]);
    const inner = await call('GET', `/api/2.0/mlflow/artifacts/list?run_id=${runId}&path=model`);
    expect(inner.json['files']).toEqual([{ path: 'model/weights.bin', is_dir: false, file_size: weights.length }]);

    const got = await call('GET', `${art}/model/weights.bin`);
    expect(got.status).toBe(200);
    expect(sha256Of(got.bytes)).toBe(sha256Of(weights));
    const viaUi = await call('GET', `/get-artifact?run_id=${runId}&path=config/train.json`);
    expect(viaUi.bytes.toString()).toBe(config.toString());

    // each upload's bytes are an object of their own, named by their sha256, which the artifact row names
    const objects = (await store.list(`mlflow/${runId}/`)).map((o) => o.key);
    expect(objects.sort()).toEqual(
      [config, weights]
        .map(sha256Of)
        .sort() // in the order the keys sort in: by their sha256
        .map((h) => expect.stringMatching(new RegExp(`^mlflow/${runId}/\\.blobs/${h}-[0-9a-f]{16}$`))),
    );
    const blob = objects.find((k) => k.includes(sha256Of(weights)))!;
    expect((await store.stat(blob))?.sha256).toBe(sha256Of(weights));
    expect((await call('GET', `${art}/model/none.bin`)).status).toBe(404);
  });

  it('bytes changed in the bucket are never served whole: the download breaks off, naming the artifact in the log', async () => {
    const { runId, art } = await newRun();
    const body = randomBytes(200_000);
    expect((await call('PUT', `${art}/data.bin`, body)).status).toBe(200);
    const changed = Buffer.from(body);
    changed[100] = changed[100]! ^ 1;
    const [blob] = (await store.list(`mlflow/${runId}/`)).map((o) => o.key);
    writeFileSync(s3.objectFile(store.bucket, `lab/${blob}`), changed);
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const res = await mlflow(
        new Request(`http://test${art}/data.bin`, { headers: { authorization: `Bearer ${key}` } }),
      );
      await expect(res.arrayBuffer()).rejects.toThrow();
      expect(String(logged.mock.calls[0]?.[0])).toContain(`download of data.bin (${blob}) stopped`);
      expect(String(logged.mock.calls[0]?.[1])).toContain(`artifact '${blob}' failed its checksum`);
    } finally {
      logged.mockRestore();
    }
  });

  it('the store down: the upload is a 503 (MLflow clients retry it) and nothing is recorded', async () => {
    const { runId, art } = await newRun();
    await s3.stop();
    try {
      const put = await call('PUT', `${art}/late.txt`, 'x');
      expect(put.status).toBe(503);
      expect(put.json['error_code']).toBe('TEMPORARILY_UNAVAILABLE');
    } finally {
      await s3.start();
    }
    const list = await call('GET', `/api/2.0/mlflow/artifacts/list?run_id=${runId}`);
    expect(list.json['files'] ?? []).toEqual([]);
    expect(await store.list(`mlflow/${runId}/`)).toEqual([]);
  });

  it('a download whose object came without Content-Length is sent whole, with none (never content-length: 0)', async () => {
    const { art } = await newRun();
    const body = randomBytes(100_000);
    expect((await call('PUT', `${art}/no-length.bin`, body)).status).toBe(200);
    // the same bucket through a client whose GetObject answers carry no Content-Length, as some servers send them
    const client = s3Client(s3.env);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const r = await next(args);
        if (context.commandName === 'GetObjectCommand') delete (r.output as { ContentLength?: number }).ContentLength;
        return r;
      },
      { step: 'initialize' },
    );
    const lengthless = new S3Store({ client, bucket: store.bucket, prefix: 'lab' });
    const h = createMlflowHandler({ db: t.db, notifier, auth: null, artifactDir: lengthless });
    const srv = await serveFetch(h);
    try {
      const res = await fetch(`${srv.url}${art}/no-length.bin`, { headers: { authorization: `Bearer ${key}` } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-length')).toBeNull();
      expect(sha256Of(Buffer.from(await res.arrayBuffer()))).toBe(sha256Of(body));
    } finally {
      await srv.close();
      client.destroy();
    }
  });

  it("a deleted run's objects leave the bucket", async () => {
    const { runId, art } = await newRun();
    expect((await call('PUT', `${art}/a/b.txt`, 'b')).status).toBe(200);
    expect(await store.list(`mlflow/${runId}/`)).toHaveLength(1);
    expect((await call('POST', '/api/2.0/mlflow/runs/delete', JSON.stringify({ run_id: runId }))).status).toBe(200);
    expect(await store.list(`mlflow/${runId}/`)).toEqual([]);
  });
});
