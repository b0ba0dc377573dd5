/**
 * Where a webhook may point and what the delivery log keeps of a POST that failed. Every IPv6 range that is not on
 * the internet, or that carries a private IPv4 address inside it (NAT64, 6to4), is refused; what is stored of a
 * failure is its class and a short snippet of the answer without the webhook's path, never an address or a resolver
 * message; and a request Node refuses to send fails once, without the timer later touching a request that never was.
 */
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { answerSnippet, isPrivateAddress, postWebhook, webhookErrorClass, webhookUrlProblem } from '../src';

describe('isPrivateAddress', () => {
  it.each([
    ['64:ff9b::a00:1', 'NAT64 of 10.0.0.1'],
    ['64:ff9b::127.0.0.1', 'NAT64 of loopback'],
    ['64:ff9b::169.254.169.254', 'NAT64 of cloud metadata'],
    ['64:ff9b:1::808:808', 'local-use NAT64 (RFC 8215), whatever it embeds'],
    ['64:ff9b:1:abcd::1', 'local-use NAT64, deeper'],
    ['2002:a00:1::1', '6to4 of 10.0.0.1'],
    ['2002:7f00:1::', '6to4 of 127.0.0.1'],
    ['2002:c0a8:101::42', '6to4 of 192.168.1.1'],
    ['::7f00:1', 'IPv4-compatible 127.0.0.1'],
    ['::8.8.8.8', 'IPv4-compatible, even of a public address'],
    ['::ffff:0:a00:1', 'SIIT (IPv4-translated) 10.0.0.1'],
    ['::ffff:0:808:808', 'SIIT, even of a public address'],
    ['2001::1', 'Teredo'],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', 'Teredo, a real-looking one'],
    ['fec0::1', 'site-local'],
    ['feff::1', 'site-local, top of the range'],
    ['100::1', 'discard-only'],
    ['100::ffff:ffff:ffff:ffff', 'discard-only, top of the range'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fd00::1', 'unique local'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local with a zone'],
    ['ff02::1', 'multicast'],
    ['::ffff:127.0.0.1', 'IPv4-mapped loopback'],
    ['::ffff:a9fe:a9fe', 'IPv4-mapped cloud metadata, in hex'],
  ])('refuses %s (%s)', (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each([
    ['64:ff9b::808:808', 'NAT64 of 8.8.8.8: how IPv6-only networks reach IPv4 hosts'],
    ['64:ff9b::1.1.1.1', 'NAT64 of 1.1.1.1, dotted'],
    ['2002:808:808::1', '6to4 of 8.8.8.8'],
    ['2001:4860:4860::8888', 'Google DNS (2001:4860::/32 is not Teredo)'],
    ['2001:db9::1', 'next to the documentation range'],
    ['2606:4700::1111', 'Cloudflare'],
    ['::ffff:8.8.8.8', 'IPv4-mapped public'],
    ['101::1', 'next to the discard range'],
    ['100:0:0:1::1', 'past the discard /64'],
    ['8.8.8.8', 'IPv4 public'],
  ])('takes %s (%s)', (ip) => {
    expect(isPrivateAddress(ip)).toBe(false);
  });

  it('refuses these hosts in a rule URL too (the URL parser writes them in hex)', () => {
    for (const host of ['[64:ff9b::10.0.0.1]', '[2002:a00:1::1]', '[::127.0.0.1]', '[2001::1]', '[fec0::1]'])
      expect(webhookUrlProblem(`https://${host}/hook`, false), host).toMatch(/is a private or loopback address/);
    expect(webhookUrlProblem('https://[64:ff9b::8.8.8.8]/hook', false)).toBeNull();
  });
});

describe('what the delivery log keeps', () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = null;
  });
  /** A local receiver; `silent` accepts connections and never answers. */
  async function listen(silent = false): Promise<string> {
    server = createServer((_req, res) => {
      if (!silent) res.end('ok');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  }
  const post = (url: string, o: { timeoutMs?: number; allowPrivate?: boolean; headers?: Record<string, string> }) =>
    postWebhook(url, { body: '{}', headers: {}, timeoutMs: 2_000, allowPrivate: true, ...o });
  const classOf = (p: Promise<unknown>) =>
    p.then(
      () => 'resolved',
      (e: unknown) => webhookErrorClass(e),
    );

  it('a class of error, never the address or the resolver message', async () => {
    const url = await listen(true);
    expect(await classOf(post(url, { allowPrivate: false }))).toBe('refused: private address');
    expect(await classOf(post(url, { timeoutMs: 100 }))).toBe('timeout');
    expect(await classOf(post('http://no-such-host.invalid/hook', {}))).toBe('DNS lookup failed');
    await new Promise<void>((r) => server!.close(() => r()));
    server = null;
    expect(await classOf(post(url, {}))).toBe('connection refused');
    expect(await classOf(post('ftp://hooks.example.com/x', {}))).toBe('refused: not a webhook URL');
  });

  it("the answer's start: the webhook's path cut out, NUL and control characters gone, 100 characters", () => {
    const url = 'https://hooks.example.com/services/T000/B000/s3cr3tT0ken?key=qu3ryS3cret';
    const echoed = `Cannot POST /services/T000/B000/s3cr3tT0ken?key=qu3ryS3cret\0 (or s3cr3tT0ken, qu3ryS3cret)\r\n`;
    const s = answerSnippet(echoed, url);
    expect(s).not.toMatch(/s3cr3t|qu3ry|\0|\r|\n/);
    expect(s).toBe('Cannot POST … (or …, …)');
    expect(answerSnippet('x'.repeat(500), url)).toBe(`${'x'.repeat(100)}…`);
    // a cut through a surrogate pair leaves no half of it (Postgres cannot store one)
    expect(answerSnippet(`${'x'.repeat(99)}😀`, url)).toBe(`${'x'.repeat(99)}\uFFFD…`);
  });

  it('a request Node refuses to send fails once; its timer does not fire into a request that never was', async () => {
    const url = await listen();
    await expect(post(url, { timeoutMs: 50, headers: { 'x-bad': 'a\nb' } })).rejects.toThrow(/Invalid character/);
    // the timer was cleared: nothing is thrown from it (vitest fails the file on an uncaught error)
    await new Promise((r) => setTimeout(r, 150));
    expect(await post(url, {})).toEqual({ status: 200, snippet: 'ok' });
  });
});
