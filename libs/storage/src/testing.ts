// s3rver has no types: its declaration comes with this file into every project that compiles it
// eslint-disable-next-line @typescript-eslint/triple-slash-reference
/// <reference path="./s3rver.d.ts" />
/**
 * Test fixture: a real S3 protocol server (s3rver, over HTTP on loopback, its objects in a temporary directory)
 * that a test starts, stops mid-request and starts again on the same port and directory. Entered as
 * `@aft/storage/testing`, never from the main entry.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { s3Client, type StorageEnv } from './config';
import { S3Store, type S3StoreOptions } from './s3-store';

export interface TestS3 {
  /** What a process's environment would say to reach it (AWS_ENDPOINT_URL and S3RVER's fixed credentials). */
  env: StorageEnv;
  port: number;
  /** s3rver's own directory: `<bucket>/<key>._S3rver_object` holds each object's bytes. */
  directory: string;
  /** A new bucket, named for this test alone. */
  bucket(): Promise<string>;
  /** A store on a new bucket (or the one given). */
  store(o?: Partial<Omit<S3StoreOptions, 'client'>>): Promise<S3Store>;
  /** The file s3rver keeps an object's bytes in. */
  objectFile(bucket: string, key: string): string;
  /** Connections open to the server now. */
  connections(): Promise<number>;
  /** Drops every connection and stops listening, as a crashed server would. */
  stop(): Promise<void>;
  /** Listens again, on the same port and directory. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startS3rver(): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), 'aft-s3rver-'));
  let srv: S3rver | null = null;
  let port = 0;
  const start = async () => {
    const s = new S3rver({ port, address: '127.0.0.1', silent: true, directory });
    port = (await s.run()).port;
    srv = s;
  };
  await start();
  const env: StorageEnv = {
    AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
  };
  const client = s3Client(env);
  const bucket = async () => {
    const name = `t-${randomBytes(6).toString('hex')}`;
    await client.send(new CreateBucketCommand({ Bucket: name }));
    return name;
  };
  const stop = async () => {
    const s = srv;
    srv = null;
    if (!s) return;
    s.httpServer?.closeAllConnections();
    await s.close();
  };
  return {
    env,
    port,
    directory,
    bucket,
    store: async (o = {}) => new S3Store({ client, bucket: o.bucket ?? (await bucket()), ...o }),
    objectFile: (b, key) => {
      const parts = key.split('/');
      return join(directory, b, ...parts.slice(0, -1), `${parts.at(-1)}._S3rver_object`);
    },
    connections: () =>
      new Promise((res, rej) => srv?.httpServer?.getConnections((e, n) => (e ? rej(e) : res(n))) ?? res(0)),
    stop,
    start,
    async close() {
      await stop();
      client.destroy();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * A server that accepts connections and never answers: S3 as a stalled load balancer or a hung MinIO shows
 * itself to a client. `env` points a client at it.
 */
export interface SilentServer {
  env: StorageEnv;
  /** Connections accepted so far. */
  accepted(): number;
  /** Resolves once `n` connections have been accepted in all. */
  waitFor(n: number): Promise<void>;
  close(): Promise<void>;
}

export async function startSilentServer(): Promise<SilentServer> {
  const sockets = new Set<Socket>();
  let accepted = 0;
  const waiters: { n: number; done: () => void }[] = [];
  const srv = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.resume(); // read the request, answer nothing
    accepted++;
    for (const w of waiters.filter((x) => accepted >= x.n)) w.done();
  });
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
  const port = (srv.address() as { port: number }).port;
  return {
    env: {
      AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'SILENT',
      AWS_SECRET_ACCESS_KEY: 'SILENT',
    },
    accepted: () => accepted,
    waitFor: (n) => (accepted >= n ? Promise.resolve() : new Promise((done) => waiters.push({ n, done }))),
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((res) => srv.close(res));
    },
  };
}
