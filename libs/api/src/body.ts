/**
 * Request bodies read with a byte limit. `Content-Length` is only a claim (a chunked body has none), so the bytes
 * are counted as they arrive and the stream is cancelled at the limit: a hostile body costs at most `max` bytes
 * of memory, however long it is.
 */

/** A body over its limit; handlers answer it with 413. */
export class BodyTooLargeError extends Error {
  constructor(
    readonly limit: number,
    readonly what: string = 'request body',
  ) {
    super(`${what} is over the limit of ${limit.toLocaleString('en-US')} bytes`);
  }
}

/** The whole body of `req` as bytes, or BodyTooLargeError as soon as more than `max` bytes have arrived. */
export async function readBody(req: Request, max: number, what = 'request body'): Promise<Uint8Array<ArrayBuffer>> {
  const body = req.body;
  if (!body) return new Uint8Array(0);
  const declared = Number(req.headers.get('content-length') ?? '');
  if (Number.isFinite(declared) && declared > max) {
    // refused on the claim alone; cancelling tells the server to stop receiving the rest
    await body.cancel().catch(() => undefined);
    throw new BodyTooLargeError(max, what);
  }
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel().catch(() => undefined);
      throw new BodyTooLargeError(max, what);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** The body as UTF-8 text, read as `readBody` reads it. */
export async function readBodyText(req: Request, max: number, what = 'request body'): Promise<string> {
  return new TextDecoder().decode(await readBody(req, max, what));
}

/**
 * `req` with its body read (within `max` bytes) and held in memory, for handlers that read the body themselves
 * (tRPC, better-auth) and so cannot be stopped part-way.
 */
export async function withBodyLimit(req: Request, max: number): Promise<Request> {
  if (!req.body) return req;
  const bytes = await readBody(req, max);
  const headers = new Headers(req.headers);
  headers.delete('transfer-encoding');
  headers.set('content-length', String(bytes.byteLength));
  return new Request(req.url, { method: req.method, headers, body: bytes, signal: req.signal });
}

/** `handler` behind a body limit: over `max` bytes it answers 413 naming the limit and never sees the request. */
export function bodyLimited(handler: (req: Request) => Promise<Response>, max: number) {
  return async (req: Request): Promise<Response> => {
    let limited: Request;
    try {
      limited = await withBodyLimit(req, max);
    } catch (e) {
      if (!(e instanceof BodyTooLargeError)) throw e;
      return new Response(JSON.stringify({ message: e.message, code: 'PAYLOAD_TOO_LARGE' }), {
        status: 413,
        headers: { 'content-type': 'application/json' },
      });
    }
    return handler(limited);
  };
}
