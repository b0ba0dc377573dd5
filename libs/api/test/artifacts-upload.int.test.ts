/**
 * Uploads against a store that misbehaves and clients that push, over real HTTP on the MLflow routes: the team's
 * storage lock and a database connection are never held while bytes travel (a store that never answers holds
 * neither, and costs the client a bounded wait and a 503), the lock is waited for a bounded time (503), a team's
 * uploads in flight are capped (429 with Retry-After), uploads are charged to the key's rate, bad paths are 400s
 * naming `path` and store failures the client did not cause are 503s, never 500s; a download serves what the row
 * recorded, or nothing.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { isLockTimeout, lockTeamStorage, RunNotifier, saveStoredArtifact, withTransaction } from '@aft/db';
import { createTestDatabase, type TestDatabase } from '@aft/db/testing';
import { createRedis } from '@aft/queue';
import { FsStore, S3Store, s3Client, sha256Of } from '@aft/storage';
import { startS3rver, startSilentServer, type SilentServer, type TestS3 } from '@aft/storage/testing';
import { createMlflowHandler, RedisRateLimiter, type MlflowOptions } from '../src';
import { createTeamWithKey } from '../src/testing';

let t: TestDatabase;
let notifier: RunNotifier;
let silent: SilentServer;
let key: string;
let teamId: string;
const dir = mkdtempSync(join(tmpdir(), 'aft-artifacts-upload-'));
const redis = createRedis('redis://127.0.0.1:6379', 'worker');

beforeAll(async () => {
  t = await createTestDatabase();
  notifier = new RunNotifier(t.url);
  silent = await startSilentServer();
  const k = await createTeamWithKey(t.db, `up-${randomBytes(4).toString('hex')}`);
  key = k.key;
  teamId = k.team.id;
});
afterAll(async () => {
  await notifier?.close();
  await t?.drop();
  await silent?.close();
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

const handler = (o: Partial<MlflowOptions> = {}) =>
  createMlflowHandler({ db: t.db, notifier, auth: null, artifactDir: dir, ...o });

/** A store on the server that never answers: each request cut at 1.5 s, no second try. */
const silentStore = () =>
  new S3Store({
    client: s3Client(silent.env),
    bucket: 'silent',
    requestTimeoutMs: 1_500,
    retry: { attempts: 1, baseMs: 10, maxMs: 10, totalMs: 1_500 },
  });

async function call(h: ReturnType<typeof handler>, method: string, path: string, body?: BodyInit, k = key) {
  const headers: Record<string, string> = { authorization: `Bearer ${k}` };
  if (method === 'POST') headers['content-type'] = 'application/json';
  const res = await h(new Request(`http://test${path}`, { method, headers, body }));
  const bytes = Buffer.from(await res.arrayBuffer());
  let json: { error_code?: string; message?: string } & Record<string, unknown> = {};
  try {
    json = JSON.parse(bytes.toString('utf8')) as typeof json;
  } catch {
    // a download
  }
  return { status: res.status, json, bytes, headers: res.headers };
}

async function newRun(h = handler()) {
  const exp = await call(
    h,
    'POST',
    '/api/2.0/mlflow/experiments/create',
    JSON.stringify({ name: `e-${randomBytes(4).toString('hex')}` }),
  );
  const experimentId = exp.json['experiment_id'] as string;
  const run = await call(h, 'POST', '/api/2.0/mlflow/runs/create', JSON.stringify({ experiment_id: experimentId }));
  const runId = (run.json['run'] as { info: { run_id: string } }).info.run_id;
  return { runId, experimentId, art: `/api/2.0/mlflow-artifacts/artifacts/${experimentId}/${runId}/artifacts` };
}

const rowsOf = async (runId: string) =>
  (await t.db.prisma.artifact.findMany({ where: { runId } })).map((a) => a.uri.split('/artifacts/')[1]);
const blobsOf = (runId: string) => {
  const d = join(dir, 'mlflow', runId, '.blobs');
  return existsSync(d) ? readdirSync(d) : [];
};

describe('the storage lock and the store', () => {
  it("a store that never answers holds neither the team's lock nor a connection: the upload is a bounded 503", async () => {
    const h = handler({ artifactDir: silentStore() });
    const { runId, art } = await newRun(h);
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const seen = silent.accepted();
      const t0 = performance.now();
      const put = call(h, 'PUT', `${art}/model.bin`, randomBytes(1000));
      await silent.waitFor(seen + 1); // the bytes are on their way to the store
      // the team's lock is free meanwhile: another upload's transaction takes it at once
      await withTransaction(t.db.pool, (c) => lockTeamStorage(c, teamId, { timeoutMs: 500 }));
      const res = await put;
      const ms = performance.now() - t0;
      expect(res.status).toBe(503);
      expect(res.json.error_code).toBe('TEMPORARILY_UNAVAILABLE');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(ms).toBeLessThan(4_000);
      expect(await rowsOf(runId)).toEqual([]);
    } finally {
      logged.mockRestore();
    }
  });

  it("waits a bounded time for the team's lock (503 with Retry-After), and leaves no bytes behind", async () => {
    const h = handler({ artifactUploads: { lockTimeoutMs: 300 } });
    const { runId, art } = await newRun(h);
    const put = await withTransaction(t.db.pool, async (c) => {
      await lockTeamStorage(c, teamId); // another upload of the team, slow to commit
      const p = call(h, 'PUT', `${art}/late.txt`, 'late');
      const stuck = new Promise<null>((r) => setTimeout(() => r(null), 3_000));
      return { first: await Promise.race([p, stuck]), p }; // the lock goes with this transaction
    });
    expect(put.first, 'still waiting for the lock after 3 s').not.toBeNull();
    const r = await put.p;
    expect(r.status).toBe(503);
    expect(r.json.message).toMatch(/storage lock/);
    expect(r.headers.get('retry-after')).toBe('1');
    expect(await rowsOf(runId)).toEqual([]);
    expect(blobsOf(runId)).toEqual([]);
    expect(isLockTimeout({ code: '55P03' })).toBe(true);
  });

  it("caps a team's uploads in flight: one more is a 429 with Retry-After; the cap frees as they end", async () => {
    const h = handler({ artifactDir: silentStore(), artifactUploads: { perTeam: 2 } });
    const { art } = await newRun(h);
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const seen = silent.accepted();
      const first = [call(h, 'PUT', `${art}/a.bin`, 'a'), call(h, 'PUT', `${art}/b.bin`, 'b')];
      await silent.waitFor(seen + 2);
      const third = await call(h, 'PUT', `${art}/c.bin`, 'c');
      expect(third.status).toBe(429);
      expect(third.json.error_code).toBe('REQUEST_LIMIT_EXCEEDED');
      expect(third.headers.get('retry-after')).toBe('1');
      expect(silent.accepted()).toBe(seen + 2); // refused before its bytes went anywhere
      expect((await Promise.all(first)).map((r) => r.status)).toEqual([503, 503]);
      const again = call(h, 'PUT', `${art}/c.bin`, 'c');
      await silent.waitFor(seen + 3); // admitted: it reaches the store
      expect((await again).status).toBe(503);
    } finally {
      logged.mockRestore();
    }
  });

  it("charges uploads to the key's ingestion rate (429 REQUEST_LIMIT_EXCEEDED), before the body is read", async () => {
    // two units in a ten-minute window
    const limiter = new RedisRateLimiter(redis, 1 / 300, `aft:rate-art-${randomBytes(4).toString('hex')}`, 600_000);
    const h = handler({ rateLimiter: limiter });
    const { art } = await newRun(); // run creation is charged too: not through this key's limiter
    expect((await call(h, 'PUT', `${art}/1.txt`, '1')).status).toBe(200);
    expect((await call(h, 'PUT', `${art}/2.txt`, '2')).status).toBe(200);
    const over = await call(h, 'PUT', `${art}/3.txt`, '3');
    expect(over.status).toBe(429);
    expect(over.json.error_code).toBe('REQUEST_LIMIT_EXCEEDED');
    expect(over.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('a file and a folder of one path uploaded at once: one wins, the other is a 409', async () => {
    const h = handler();
    const { runId, art } = await newRun(h);
    for (let i = 0; i < 8; i++) {
      const r = await Promise.all([call(h, 'PUT', `${art}/p${i}`, 'file'), call(h, 'PUT', `${art}/p${i}/x`, 'in')]);
      expect(r.map((x) => x.status).sort()).toEqual([200, 409]);
    }
    expect(await rowsOf(runId)).toHaveLength(8);
    expect(blobsOf(runId)).toHaveLength(8); // the losers' bytes removed
  });

  it('an overwrite records new bytes and removes the old; a refused upload leaves none', async () => {
    const h = handler();
    const { runId, art } = await newRun(h);
    expect((await call(h, 'PUT', `${art}/c.json`, 'one')).status).toBe(200);
    expect((await call(h, 'PUT', `${art}/c.json`, 'two')).status).toBe(200);
    expect((await call(h, 'GET', `${art}/c.json`)).bytes.toString()).toBe('two');
    expect(blobsOf(runId)).toEqual([
      expect.stringMatching(new RegExp(`^${sha256Of(Buffer.from('two'))}-[0-9a-f]{16}$`)),
    ]);
    expect((await call(h, 'PUT', `${art}/c.json/under`, 'x')).status).toBe(409);
    expect(blobsOf(runId)).toHaveLength(1);
  });
});

describe('paths and store failures', () => {
  it("a path the store cannot hold is a 400 naming 'path': a name past 255 bytes, 1024 in all, control or bidi characters", async () => {
    const h = handler();
    const { runId, art } = await newRun(h);
    const cases: [string, RegExp][] = [
      [`${'n'.repeat(256)}.txt`, /a name in it is longer than 255 bytes/],
      [Array.from({ length: 5 }, () => 'd'.repeat(250)).join('/'), /longer than 1024 bytes/],
      ['a%01b.txt', /control character/],
      ['a%0Ab.txt', /control character/],
      ['a%7Fb.txt', /control character/],
      ['evil%E2%80%AEtxt.exe', /bidirectional-text control/],
      ['x%E2%81%A6y', /bidirectional-text control/],
    ];
    for (const [p, why] of cases) {
      for (const [method, url] of [
        ['PUT', `${art}/${p}`],
        ['GET', `${art}/${p}`],
        ['GET', `/get-artifact?run_id=${runId}&path=${p}`],
        ['GET', `/api/2.0/mlflow/artifacts/list?run_id=${runId}&path=${p}`],
      ] as const) {
        const r = await call(h, method, url, method === 'PUT' ? 'x' : undefined);
        expect(r.status, `${method} ${url.slice(0, 120)}`).toBe(400);
        expect(r.json.error_code).toBe('INVALID_PARAMETER_VALUE');
        // the listing's schema stops a path past 1000 characters first, naming it its own way
        if (r.json.message?.startsWith('Invalid request: path:')) continue;
        expect(r.json.message, url.slice(0, 120)).toMatch(/\(parameter 'path'\)/);
        expect(r.json.message, url.slice(0, 120)).toMatch(why);
      }
    }
    expect((await call(h, 'PUT', `${art}/${'n'.repeat(255)}`, 'x')).status).toBe(200);
    expect(await rowsOf(runId)).toEqual(['n'.repeat(255)]);
  });

  it('store failures the client did not cause are 503s, never 500s (a missing bucket, a root that is a file)', async () => {
    const s3: TestS3 = await startS3rver();
    const file = join(dir, `not-a-folder-${randomBytes(3).toString('hex')}`);
    writeFileSync(file, 'x');
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const noBucket = new S3Store({
        client: s3Client(s3.env),
        bucket: 'no-such-bucket',
        retry: { attempts: 1, baseMs: 1, maxMs: 1 },
      });
      for (const artifactDir of [noBucket, file]) {
        const h = handler({ artifactDir });
        const { art } = await newRun(h);
        const r = await call(h, 'PUT', `${art}/x.txt`, 'x');
        expect(r.status, String(artifactDir)).toBe(503);
        expect(r.json.error_code).toBe('TEMPORARILY_UNAVAILABLE');
      }
    } finally {
      logged.mockRestore();
      await s3.close();
    }
  });
});

describe('downloads serve what the row recorded', () => {
  it('a file on disk that no row names is not an artifact: not served, and no clash for an upload', async () => {
    const h = handler();
    const { runId, art } = await newRun(h);
    mkdirSync(join(dir, 'mlflow', runId, 'ghost'), { recursive: true });
    writeFileSync(join(dir, 'mlflow', runId, 'ghost', 'f'), 'put there by hand');
    writeFileSync(join(dir, 'mlflow', runId, 'plain'), 'put there by hand');
    expect((await call(h, 'GET', `${art}/ghost/f`)).status).toBe(404);
    expect((await call(h, 'GET', `${art}/plain`)).status).toBe(404);
    expect((await call(h, 'PUT', `${art}/ghost`, 'an upload')).status).toBe(200);
    expect((await call(h, 'GET', `${art}/ghost`)).bytes.toString()).toBe('an upload');
  });

  it('bytes under the key that differ from the row are refused, even when the store recorded them as its own', async () => {
    const h = handler();
    const { runId, art } = await newRun(h);
    expect((await call(h, 'PUT', `${art}/w.bin`, 'what the row recorded')).status).toBe(200);
    const [blob] = blobsOf(runId);
    await new FsStore(dir).put(`mlflow/${runId}/.blobs/${blob}`, Buffer.from('written to the key since'));
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const r = await call(h, 'GET', `${art}/w.bin`);
      expect(r.status).toBe(500);
      expect(r.json.message).toBe("artifact 'w.bin' failed its checksum; it was not served");
    } finally {
      logged.mockRestore();
    }
  });

  it('a file uploaded before blobs (its row names none) is served from its path, checked against its row', async () => {
    const h = handler();
    const { runId, experimentId, art } = await newRun(h);
    mkdirSync(join(dir, 'mlflow', runId, 'old'), { recursive: true });
    writeFileSync(join(dir, 'mlflow', runId, 'old', 'a.txt'), 'from before');
    writeFileSync(join(dir, 'mlflow', runId, 'old', 'b.txt'), 'changed since'); // 13 bytes, as recorded
    await withTransaction(t.db.pool, async (c) => {
      for (const [name, body] of [
        ['a.txt', 'from before'],
        ['b.txt', 'as recorded..'],
      ] as const)
        await saveStoredArtifact(c, runId, teamId, {
          name,
          uri: `mlflow-artifacts:/${experimentId}/${runId}/artifacts/old/${name}`,
          sha256: sha256Of(Buffer.from(body)),
          bytes: body.length,
          metadata: { source: 'mlflow', path: `old/${name}` },
        });
    });
    const a = await call(h, 'GET', `${art}/old/a.txt`);
    expect([a.status, a.bytes.toString()]).toEqual([200, 'from before']);
    const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const b = await h(new Request(`http://test${art}/old/b.txt`, { headers: { authorization: `Bearer ${key}` } }));
      await expect(b.arrayBuffer()).rejects.toThrow(); // same size, other bytes: cut off before its end
    } finally {
      logged.mockRestore();
    }
    // overwritten: the old file goes, the new bytes are a blob
    expect((await call(h, 'PUT', `${art}/old/a.txt`, 'new')).status).toBe(200);
    expect(existsSync(join(dir, 'mlflow', runId, 'old', 'a.txt'))).toBe(false);
    expect((await call(h, 'GET', `${art}/old/a.txt`)).bytes.toString()).toBe('new');
  });
});
