/**
 * The client's address, for sign-in throttling, sessions and the audit log. A request handler (a Next.js route, a
 * fetch handler) sees only headers, and X-Forwarded-For is a header any client can write: Next.js fills it with the
 * socket's peer only when the client sent none. So the server that owns the socket (apps/web/server.mjs, or
 * serveFetch in tests) resolves the address — the peer, or, when the peer is a trusted proxy, what that proxy
 * forwarded — and stamps it on the request with a token only this process knows; handlers believe the address only
 * with that token. A request that reached the app some other way (`next dev`, a bare `next start`) has no address.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';

/** `<this process's token> <address>`, written by the socket's server over anything the client sent. */
export const CLIENT_IP_HEADER = 'x-aft-client-ip';

// On globalThis, not in a module variable: the web server's copy of this module and the copy bundled into the
// Next.js app are different module instances of the same process.
const TOKEN = Symbol.for('aft.client-ip.token');
type Global = typeof globalThis & { [TOKEN]?: string };

function processToken(create: boolean): string | null {
  const g = globalThis as Global;
  if (!g[TOKEN] && create) g[TOKEN] = randomBytes(24).toString('base64url');
  return g[TOKEN] ?? null;
}

/** Whether a server of this process stamps client addresses (false: served some other way; addresses unknown). */
export function clientIpStamping(): boolean {
  return processToken(false) !== null;
}

/** A valid address in one spelling: IPv4-mapped IPv6 (`::ffff:10.0.0.1`, how dual-stack sockets report) as IPv4. */
export function normalizeIp(raw: string): string | null {
  let ip = raw.trim();
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped) ip = mapped[1]!;
  const v = isIP(ip);
  return v === 4 ? ip : v === 6 ? ip.toLowerCase() : null;
}

/**
 * Parses AFT_TRUSTED_PROXIES: a comma-separated list of addresses and CIDR ranges (`10.0.0.5, 172.16.0.0/12,
 * fd00::/8`). An entry that is neither is an error rather than skipped: a typo must not quietly trust nobody.
 */
export function parseTrustedProxies(csv: string | undefined): BlockList {
  const list = new BlockList();
  for (const entry of (csv ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [addr = '', bits, extra] = entry.split('/');
    const ip = normalizeIp(addr);
    const family = ip && isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    const max = family === 'ipv6' ? 128 : 32;
    const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
    if (!ip || extra !== undefined || !(prefix >= 0 && prefix <= max)) {
      throw new Error(`AFT_TRUSTED_PROXIES: "${entry}" is not an IP address or a CIDR range (like 10.0.0.0/8)`);
    }
    list.addSubnet(ip, prefix, family);
  }
  return list;
}

function trusted(list: BlockList, ip: string): boolean {
  return list.check(ip, isIP(ip) === 6 ? 'ipv6' : 'ipv4');
}

/**
 * The client of a connection: its peer, unless the peer is a trusted proxy — then X-Forwarded-For is read from the
 * right (each proxy appends the address it got the request from), skipping trusted proxies, and the first address
 * that is not one is the client. Entries left of it were written by the client and are never read. With no trusted
 * proxies, X-Forwarded-For is not read at all.
 */
export function resolveClientIp(
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
  trustedProxies: BlockList,
): string | null {
  let ip = peer ? normalizeIp(peer) : null;
  if (!ip || !trusted(trustedProxies, ip)) return ip;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : (forwardedFor ?? '')).split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalizeIp(hops[i]!);
    // garbage where an address should be: stop at the last hop a trusted proxy vouched for
    if (!hop) return ip;
    ip = hop;
    if (!trusted(trustedProxies, hop)) return hop;
  }
  return ip;
}

/** The parts of a node:http request that stamping reads and writes. */
export interface SocketRequest {
  headers: Record<string, string | string[] | undefined>;
  socket: { remoteAddress?: string | undefined };
}

/** Stamps a request, before any handler sees it, with its client's address, replacing whatever the client sent. */
export function stampClientIp(req: SocketRequest, trustedProxies: BlockList): void {
  const token = processToken(true);
  const ip = resolveClientIp(req.socket.remoteAddress, req.headers['x-forwarded-for'], trustedProxies);
  if (ip) req.headers[CLIENT_IP_HEADER] = `${token} ${ip}`;
  else delete req.headers[CLIENT_IP_HEADER];
}

/** The address this process's server stamped on a request; null without a stamp or with a forged one. */
export function clientIp(headers: Headers): string | null {
  const token = processToken(false);
  const value = headers.get(CLIENT_IP_HEADER);
  if (!token || !value) return null;
  const space = value.indexOf(' ');
  const given = Buffer.from(space < 0 ? value : value.slice(0, space));
  const want = Buffer.from(token);
  if (given.length !== want.length || !timingSafeEqual(given, want)) return null;
  return normalizeIp(value.slice(space + 1));
}

/**
 * The unit that address-based limits count: an IPv4 address, or an IPv6 address's /64 — one subscriber usually
 * holds a whole /64, so counting single IPv6 addresses would let them rotate through 2^64 of them.
 */
export function addressBucket(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  const [head = '', tail] = ip.split('::');
  const groups = (s: string) => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return `${all
    .slice(0, 4)
    .map((g) => parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}
