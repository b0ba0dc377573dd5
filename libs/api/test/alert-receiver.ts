/** A webhook receiver on 127.0.0.1 for the alert tests: it records every POST and answers as each path is told. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * `fail(path, n)`: the next n POSTs to `path` get 500 before it answers 200. `answer(path, status, body)`: every
 * POST to `path` gets that (Node sends any status up to 999). Every POST is kept in `received`.
 */
export async function startReceiver() {
  const received: Received[] = [];
  const failures = new Map<string, number>();
  const answers = new Map<string, { status: number; body: string }>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      received.push({ path, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const left = failures.get(path) ?? 0;
      if (left > 0) failures.set(path, left - 1);
      const fixed = answers.get(path);
      res.writeHead(fixed?.status ?? (left > 0 ? 500 : 200), { 'content-type': 'text/plain' });
      res.end(fixed?.body ?? (left > 0 ? 'try again' : 'ok'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    received,
    at: (path: string) => received.filter((r) => r.path === path),
    fail: (path: string, n: number) => failures.set(path, n),
    answer: (path: string, status: number, body: string) => answers.set(path, { status, body }),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** What a receiver does to trust a POST: recompute the HMAC over `<timestamp>.<body>` and compare in constant time. */
export function verifySignature(secret: string, r: Received): boolean {
  const timestamp = String(r.headers['x-aft-timestamp'] ?? '');
  const given = Buffer.from(String(r.headers['x-aft-signature'] ?? ''));
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${r.body}`).digest('hex')}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Polls `fn` until it returns something truthy (or throws after `ms`). */
export async function until<T>(fn: () => Promise<T> | T, ms = 15_000, what = 'condition'): Promise<NonNullable<T>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
