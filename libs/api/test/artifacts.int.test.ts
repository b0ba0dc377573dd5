/**
 * Uploaded artifacts against hostile or careless input, over real HTTP on the MLflow routes: malformed % escapes
 * and file/folder clashes are 4xx naming the path, a team's storage quota is counted as bytes stream in and given
 * back when runs are deleted, a deleted run's files leave the disk (tRPC and MLflow deletes), and downloads
 * (artifacts, /get-artifact, /api/export) are attachments that browsers never sniff.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RunNotifier } from '@aft/db';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createApiHandler, createMlflowHandler } from '../src';
import { createExportHandler, createTeamWithKey, serveFetch } from '../src/testing';

const QUOTA = 1000;
let t: TestDatabase;
let notifier: RunNotifier;
let mlflow: ReturnType<typeof createMlflowHandler>;
let server: Awaited<ReturnType<typeof serveFetch>>;
let key: string;
let teamId: string;
const dir = mkdtempSync(join(tmpdir(), 'aft-artifacts-'));

beforeAll(async () => {
  t = await createTestDatabase();
  notifier = new RunNotifier(t.url);
  mlflow = createMlflowHandler({ db: t.db, notifier, auth: null, artifactDir: dir, teamStorageBytes: QUOTA });
  server = await serveFetch(mlflow);
  const k = await createTeamWithKey(t.db, `art-${randomBytes(4).toString('hex')}`);
  key = k.key;
  teamId = k.team.id;
});
afterAll(async () => {
  await server?.close();
  await notifier?.close();
  await t?.drop();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: BodyInit, k: string = key) {
  const headers: Record<string, string> = { authorization: `Bearer ${k}` };
  if (method === 'POST') headers['content-type'] = 'application/json';
  const res = await fetch(`${server.url}${path}`, { method, headers, body });
  const text = await res.text();
  let json: { error_code?: string; message?: string } & Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as typeof json;
  } catch {
    // a download
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** A new run of a new experiment: its id, experiment and artifact route prefix. */
async function newRun() {
  const exp = await call(
    'POST',
    '/api/2.0/mlflow/experiments/create',
    JSON.stringify({ name: `e-${randomBytes(4).toString('hex')}` }),
  );
  const experimentId = exp.json['experiment_id'] as string;
  const run = await call('POST', '/api/2.0/mlflow/runs/create', JSON.stringify({ experiment_id: experimentId }));
  if (!run.json['run']) throw new Error(`runs/create: ${exp.text} ${run.status} ${run.text}`);
  const runId = (run.json['run'] as { info: { run_id: string } }).info.run_id;
  return { runId, experimentId, art: `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts` };
}

const teamBytes = async () =>
  Number(
    (
      await t.db.pool.query<{ n: string }>(
        `SELECT COALESCE(sum(a.bytes), 0)::text AS n FROM artifact a JOIN run r ON r.id = a.run_id
         JOIN project p ON p.id = r.project_id WHERE p.team_id = $1`,
        [teamId],
      )
    ).rows[0]!.n,
  );

/** Deletes every run of the team through MLflow, so each test starts with the whole quota. */
async function freeQuota() {
  const runs = await t.db.pool.query<{ id: string }>(
    'SELECT r.id FROM run r JOIN project p ON p.id = r.project_id WHERE p.team_id = $1',
    [teamId],
  );
  for (const r of runs.rows) await call('POST', '/api/2.0/mlflow/runs/delete', JSON.stringify({ run_id: r.id }));
}

describe('artifact paths', () => {
  it('a malformed % escape is a 400 naming the path, on upload, download, listing and /get-artifact', async () => {
    const { runId, art } = await newRun();
    const put = await call('PUT', `${art}/bad%E0%A4%A.txt`, 'x');
    expect(put.status).toBe(400);
    expect(put.json).toMatchObject({ error_code: 'INVALID_PARAMETER_VALUE' });
    expect(put.json.message).toMatch(/Invalid artifact path '.*bad%E0%A4%A\.txt': it holds a malformed % escape/);
    expect((await call('GET', `${art}/bad%E0%A4%A.txt`)).status).toBe(400);
    // a query parameter arrives decoded once; the artifact path is decoded again
    expect((await call('GET', `/get-artifact?run_uuid=${runId}&path=${encodeURIComponent('%E0%A4%A')}`)).status).toBe(
      400,
    );
    const list = await call(
      'GET',
      `/api/2.0/mlflow/artifacts/list?run_id=${runId}&path=${encodeURIComponent('%E0%A4%A')}`,
    );
    expect(list.status).toBeLessThan(500);
  });

  it('a file where a folder is, or a folder where a file is: 409 naming what is in the way; nothing changes', async () => {
    await freeQuota();
    const { art } = await newRun();
    expect((await call('PUT', `${art}/a.txt`, 'first')).status).toBe(200);
    const under = await call('PUT', `${art}/a.txt/b.txt`, 'second');
    expect(under.status).toBe(409);
    expect(under.json).toEqual({
      error_code: 'RESOURCE_ALREADY_EXISTS',
      message: "Cannot upload artifact 'a.txt/b.txt': 'a.txt' is a file, so it cannot be a folder",
    });
    expect((await call('PUT', `${art}/d/x.txt`, 'inside')).status).toBe(200);
    const over = await call('PUT', `${art}/d`, 'a file named like the folder');
    expect(over.status).toBe(409);
    expect(over.json.message).toBe("Cannot upload artifact 'd': 'd' is a folder of artifacts, so it cannot be a file");
    expect((await call('GET', `${art}/a.txt`)).text).toBe('first');
    expect((await call('GET', `${art}/d/x.txt`)).text).toBe('inside');
  });

  it('files on disk that no row names neither clash with an upload nor are served (rows decide)', async () => {
    await freeQuota();
    const { runId, art } = await newRun();
    mkdirSync(join(dir, 'mlflow', runId, 'ghost'), { recursive: true });
    writeFileSync(join(dir, 'mlflow', runId, 'ghost', 'f'), 'x');
    writeFileSync(join(dir, 'mlflow', runId, 'plain'), 'x');
    expect((await call('GET', `${art}/plain`)).status).toBe(404);
    expect((await call('PUT', `${art}/ghost`, 'x')).status).toBe(200);
    expect((await call('PUT', `${art}/plain/f.txt`, 'x')).status).toBe(200);
  });
});

describe('team storage quota', () => {
  it('refuses an upload past the quota with 413 naming it, and counts an overwrite as a replacement', async () => {
    await freeQuota();
    const { art } = await newRun();
    expect((await call('PUT', `${art}/one.bin`, Buffer.alloc(600))).status).toBe(200);
    const over = await call('PUT', `${art}/two.bin`, Buffer.alloc(600));
    expect(over.status).toBe(413);
    expect(over.json.error_code).toBe('RESOURCE_EXHAUSTED');
    expect(over.json.message).toMatch(/artifact storage quota of 1000 bytes \(AFT_TEAM_STORAGE_BYTES\); 600 bytes/);
    expect((await call('PUT', `${art}/one.bin`, Buffer.alloc(900))).status).toBe(200);
    expect(await teamBytes()).toBe(900);
    const { art: art2 } = await newRun();
    expect((await call('PUT', `${art2}/three.bin`, Buffer.alloc(200))).status).toBe(413);
    expect(await teamBytes()).toBe(900);
  });

  it('counts a chunked body as it streams and stops reading it at the quota', async () => {
    await freeQuota();
    const { art } = await newRun();
    let pulled = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (++pulled > 50) c.close();
        else c.enqueue(new Uint8Array(500));
      },
    });
    const res = await mlflow(
      new Request(`http://test${art}/stream.bin`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${key}` },
        body,
        duplex: 'half',
      } as RequestInit),
    );
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error_code: string }).error_code).toBe('RESOURCE_EXHAUSTED');
    expect(pulled).toBeLessThan(6);
  });

  it("tRPC's artifacts.register cannot claim an upload (and rewrite its size to nothing)", async () => {
    await freeQuota();
    const { runId, art } = await newRun();
    expect((await call('PUT', `${art}/big.bin`, Buffer.alloc(900))).status).toBe(200);
    const { rows } = await t.db.pool.query<{ uri: string }>('SELECT uri FROM artifact WHERE run_id = $1', [runId]);
    const trpc = createApiHandler({ db: t.db, notifier, auth: null });
    const res = await trpc(
      new Request('http://test/api/trpc/artifacts.register', {
        method: 'POST',
        headers: { 'x-api-key': key, 'content-type': 'application/json' },
        body: JSON.stringify({ runId, kind: 'other', name: 'x', uri: rows[0]!.uri }),
      }),
    );
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /^uri: mlflow-artifacts: URIs/,
    );
    expect(await teamBytes()).toBe(900);
  });

  it('deleting a run gives its bytes back', async () => {
    await freeQuota();
    const { runId, art } = await newRun();
    expect((await call('PUT', `${art}/big.bin`, Buffer.alloc(900))).status).toBe(200);
    const { art: art2 } = await newRun();
    expect((await call('PUT', `${art2}/next.bin`, Buffer.alloc(900))).status).toBe(413);
    expect((await call('POST', '/api/2.0/mlflow/runs/delete', JSON.stringify({ run_id: runId }))).status).toBe(200);
    expect(await teamBytes()).toBe(0);
    expect((await call('PUT', `${art2}/next.bin`, Buffer.alloc(900))).status).toBe(200);
  });
});

describe("a deleted run's files", () => {
  it('are removed from the artifact directory by MLflow runs/delete', async () => {
    await freeQuota();
    const { runId, art } = await newRun();
    expect((await call('PUT', `${art}/plots/loss.png`, 'png')).status).toBe(200);
    // the bytes are a blob of the run's folder, which its row names
    expect(readdirSync(join(dir, 'mlflow', runId, '.blobs'))).toHaveLength(1);
    expect((await call('POST', '/api/2.0/mlflow/runs/delete', JSON.stringify({ run_id: runId }))).status).toBe(200);
    expect(existsSync(join(dir, 'mlflow', runId))).toBe(false);
  });

  it('are removed by tRPC runs.delete; a removal that fails is logged and the delete still succeeds', async () => {
    await freeQuota();
    const trpc = async (artifactDir: string, id: string) => {
      const api = createApiHandler({ db: t.db, notifier, auth: null, artifactDir });
      const body = JSON.stringify({ id });
      const res = await api(
        new Request('http://test/api/trpc/runs.delete', {
          method: 'POST',
          headers: { 'x-api-key': key, 'content-type': 'application/json', 'content-length': String(body.length) },
          body,
        }),
      );
      return res.status;
    };
    const { runId, art } = await newRun();
    expect((await call('PUT', `${art}/config.json`, '{}')).status).toBe(200);
    expect(await trpc(dir, runId)).toBe(200);
    expect(existsSync(join(dir, 'mlflow', runId))).toBe(false);
    expect(readdirSync(join(dir, 'mlflow'))).not.toContain(runId);

    // an artifact directory whose `mlflow` is a file: removing under it fails
    const broken = mkdtempSync(join(tmpdir(), 'aft-artifacts-broken-'));
    writeFileSync(join(broken, 'mlflow'), 'not a folder');
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const second = await newRun();
      expect(await trpc(broken, second.runId)).toBe(200);
      expect(logged).toHaveBeenCalledWith(
        expect.stringContaining(`could not remove the files of deleted run ${second.runId}`),
        expect.anything(),
      );
      expect(await t.db.prisma.run.count({ where: { id: second.runId } })).toBe(0);
    } finally {
      logged.mockRestore();
      rmSync(broken, { recursive: true, force: true });
    }
  });
});

describe('downloads', () => {
  it('artifacts and /get-artifact are attachments with nosniff, whatever the file holds', async () => {
    await freeQuota();
    const { runId, art } = await newRun();
    expect((await call('PUT', `${art}/report/x"y%C3%A9.html`, '<script>alert(1)</script>')).status).toBe(200);
    for (const path of [`${art}/report/x"y%C3%A9.html`, `/get-artifact?run_uuid=${runId}&path=report/x"y%C3%A9.html`]) {
      const r = await call('GET', path);
      expect(r.status).toBe(200);
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('content-type')).toBe('application/octet-stream');
      expect(r.headers.get('content-disposition')).toBe(
        `attachment; filename="x_y_.html"; filename*=UTF-8''x%22y%C3%A9.html`,
      );
    }
  });

  it('/api/export is an attachment with nosniff', async () => {
    const { experimentId } = await newRun();
    const exportHandler = createExportHandler({ db: t.db, notifier, auth: null });
    const res = await exportHandler(
      new Request(`http://test/api/export?project=${experimentId}`, { headers: { 'x-api-key': key } }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-disposition')).toMatch(/^attachment; filename="e-[0-9a-f]+\.aft\.tar\.gz"/);
    await res.body?.cancel();
  });
});
