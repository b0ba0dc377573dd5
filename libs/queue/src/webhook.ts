/**
 * Where alert webhooks may point, and the one POST that delivers one (docs/architecture.md, "Alerts"). A webhook URL
 * is anyone's to type, and the worker that posts it sits inside the platform's network: by default a URL whose host
 * is a private, loopback or link-local address (cloud metadata lives at 169.254.169.254) is refused — when the rule
 * is saved (the literal host) and again when the worker connects (every address the name resolves to, so a name
 * that later resolves inside is refused too). `AFT_ALERTS_ALLOW_PRIVATE=1` on the web and the worker allows them
 * (tests, an intranet receiver).
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';

/**
 * Whether this process allows webhooks to private addresses. Read here rather than in each app's env.ts because
 * the web (which checks URLs as rules are saved) and the worker (which connects) must agree on it.
 */
export function privateWebhooksAllowed(env: Record<string, string | undefined> = process.env): boolean {
  return env['AFT_ALERTS_ALLOW_PRIVATE'] === '1' || env['AFT_ALERTS_ALLOW_PRIVATE'] === 'true';
}

const PRIVATE = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, where cloud metadata services answer
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4], // multicast, then reserved
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [
  ['::', 96], // unspecified, loopback and IPv4-compatible (::a.b.c.d, deprecated: never a public address)
  ['::ffff:0:0:0', 96], // IPv4-translated (SIIT)
  ['64:ff9b:1::', 48], // local-use NAT64: translated by the operator's own gateway, inward too
  ['100::', 64], // discard-only
  ['2001::', 32], // Teredo: a tunnel whose server and client addresses are embedded
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated, still routed inside some networks)
  ['ff00::', 8], // multicast
] as const)
  PRIVATE.addSubnet(net, bits, 'ipv6');

/** The eight 16-bit groups of a valid IPv6 address (a trailing dotted IPv4 part and a zone allowed). */
function ipv6Groups(ip: string): number[] {
  let s = ip.replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    s = `${s.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, null];
  const part = (x: string | null | undefined) => (x ? x.split(':').map((g) => parseInt(g, 16)) : []);
  const h = part(head);
  const t = part(tail);
  return tail === null ? h : [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
}

const dotted = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;

/**
 * The IPv4 address a public IPv6 prefix carries, which is where the packets end up: NAT64's well-known prefix
 * (64:ff9b::/96, the last 32 bits; DNS64 answers with it on IPv6-only networks) and 6to4 (2002::/16, bits 16–47).
 */
function embeddedIpv4(g: number[]): string | null {
  if (g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0)) return dotted(g[6]!, g[7]!);
  if (g[0] === 0x2002) return dotted(g[1]!, g[2]!);
  return null;
}

/** Whether `ip` (an address, not a name) is private, loopback, link-local or otherwise not on the internet. */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  if (family === 4) return PRIVATE.check(ip, 'ipv4');
  // BlockList matches an IPv4-mapped IPv6 address (::ffff:127.0.0.1) against the IPv4 ranges too
  if (PRIVATE.check(ip, 'ipv6')) return true;
  const inner = embeddedIpv4(ipv6Groups(ip));
  return inner !== null && PRIVATE.check(inner, 'ipv4');
}

export const WEBHOOK_URL_MAX = 2000;

/** Why `raw` cannot be a webhook URL, or null when it can. */
export function webhookUrlProblem(raw: string, allowPrivate = privateWebhooksAllowed()): string | null {
  if (raw.length > WEBHOOK_URL_MAX) return `a webhook URL is at most ${WEBHOOK_URL_MAX} characters`;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'not a URL: a webhook URL looks like https://hooks.example.com/…';
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return 'a webhook URL starts with https:// or http://';
  if (u.username || u.password) return 'a webhook URL must not carry a user name or password';
  const host = u.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (!host) return 'a webhook URL names a host';
  if (!allowPrivate && (isPrivateAddress(host) || host === 'localhost' || host.endsWith('.localhost'))) {
    return `the host ${host} is a private or loopback address; webhooks go to public addresses (a server started with AFT_ALERTS_ALLOW_PRIVATE=1 allows it)`;
  }
  return null;
}

/**
 * A webhook the policy refuses: retrying cannot help. `reason` is what the delivery log keeps (every team member
 * reads it); the message, with the host and the address it resolved to, is for the worker's own log.
 */
export class WebhookRefusedError extends Error {
  constructor(
    readonly reason: 'refused: private address' | 'refused: not a webhook URL',
    detail: string,
  ) {
    super(detail);
  }
}

/** The receiver did not answer within the exchange's time. */
export class WebhookTimeoutError extends Error {}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** dns.lookup that refuses a name resolving to any private address (checked on the addresses actually used). */
function publicLookup(hostname: string, options: LookupOptions, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const inside = addresses.find((a) => isPrivateAddress(a.address));
    if (inside) {
      const detail = `${hostname} resolves to the private address ${inside.address}`;
      return callback(new WebhookRefusedError('refused: private address', detail), []);
    }
    if (options.all) return callback(null, addresses);
    callback(null, addresses[0]!.address, addresses[0]!.family);
  });
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NONAME', 'ENODATA', 'ESERVFAIL']);

/**
 * What the delivery log keeps of a POST that got no answer: a class, never the details (an internal address, the
 * resolver's or the TLS library's message), which the worker logs instead.
 */
export function webhookErrorClass(e: unknown): string {
  if (e instanceof WebhookRefusedError) return e.reason;
  if (e instanceof WebhookTimeoutError) return 'timeout';
  const { code = '', syscall = '' } = (e ?? {}) as NodeJS.ErrnoException;
  if (syscall === 'getaddrinfo' || DNS_CODES.has(code)) return 'DNS lookup failed';
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'connection reset';
  if (code === 'ETIMEDOUT' || code === 'ENETUNREACH' || code === 'EHOSTUNREACH') return 'host unreachable';
  if (/^ERR_TLS|CERT|SSL|^EPROTO$/.test(code)) return 'TLS error';
  return 'network error';
}

/** Characters of the receiver's answer the delivery log keeps. */
const SNIPPET_CHARS = 100;

/**
 * The start of a receiver's answer as the delivery log keeps it: the webhook's own path and query (often its
 * secret: receivers echo it in "Cannot POST /…" pages) replaced by `…`, control characters and NUL (which Postgres
 * cannot store) turned into spaces, malformed UTF-16 repaired, and cut to 100 characters.
 */
export function answerSnippet(answer: string, webhookUrl: string): string {
  let s = answer;
  try {
    const u = new URL(webhookUrl);
    const parts = [
      u.href,
      `${u.pathname}${u.search}`,
      u.pathname,
      ...u.pathname.split('/'),
      ...u.searchParams.values(),
    ];
    for (const p of parts.filter((x) => x.length >= 6).sort((a, b) => b.length - a.length)) s = s.split(p).join('…');
  } catch {
    // not a URL: nothing of it to hide
  }
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  s = s.replace(/[\u0000-\u001f\u007f\s]+/g, ' ').trim();
  if (s.length > SNIPPET_CHARS) s = `${s.slice(0, SNIPPET_CHARS)}…`;
  return s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
}

export interface WebhookPost {
  headers: Record<string, string>;
  body: string;
  /** The whole exchange: connect, send, the answer's status and first bytes. */
  timeoutMs: number;
  allowPrivate: boolean;
  /** Bytes of the answer's body kept (for the delivery log); the rest is never read. */
  maxResponseBytes?: number;
}

/**
 * POSTs `body` to `target`: no redirect is followed (a 3xx is the answer), at most `maxResponseBytes` of the answer
 * are read, and the whole exchange is cut off after `timeoutMs`. Resolves with the status and the start of the
 * answer; rejects on a network error, the timeout (WebhookTimeoutError), or a refused address (WebhookRefusedError).
 */
export function postWebhook(target: string, o: WebhookPost): Promise<{ status: number; snippet: string }> {
  const problem = webhookUrlProblem(target, o.allowPrivate);
  if (problem) {
    const reason = /private|loopback/.test(problem) ? 'refused: private address' : 'refused: not a webhook URL';
    return Promise.reject(new WebhookRefusedError(reason, problem));
  }
  const u = new URL(target);
  const max = o.maxResponseBytes ?? 2048;
  const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    let req: ClientRequest | null = null;
    let res: IncomingMessage | null = null;
    const chunks: Buffer[] = [];
    let kept = 0;
    let settled = false;
    const finish = (e?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // an answer that came is the outcome, even when its body was cut short
      if (res?.statusCode) resolve({ status: res.statusCode, snippet: Buffer.concat(chunks).toString('utf8') });
      else reject(e ?? new Error('the receiver closed the connection without an answer'));
      req?.destroy();
    };
    const timer = setTimeout(
      () => finish(new WebhookTimeoutError(`no answer within ${Math.round(o.timeoutMs / 1000)} s`)),
      o.timeoutMs,
    );
    try {
      req = send(
        u,
        {
          method: 'POST',
          agent: false,
          headers: {
            ...o.headers,
            'content-type': 'application/json',
            'content-length': String(Buffer.byteLength(o.body)),
            'user-agent': 'aft-lab-alerts/1',
          },
          ...(o.allowPrivate ? {} : { lookup: publicLookup }),
        },
        (r) => {
          res = r;
          r.on('data', (c: Buffer) => {
            if (kept < max) chunks.push(c.subarray(0, max - kept));
            kept += c.length;
            if (kept >= max) finish();
          });
          r.on('end', () => finish());
          r.on('error', (e) => finish(e));
        },
      );
    } catch (e) {
      // a header Node refuses throws here, before there is a request to wait for
      return finish(e as Error);
    }
    req.on('error', (e) => finish(e));
    req.end(o.body);
  });
}
