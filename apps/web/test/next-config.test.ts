import { describe, expect, it } from 'vitest';
import { getPathMatch } from 'next/dist/shared/lib/router/utils/path-match';
import config from '../next.config';

describe('next.config headers', () => {
  it('forbids framing (CSP frame-ancestors and X-Frame-Options) and sniffing on every path', async () => {
    const rules = (await config.headers?.()) ?? [];
    const all = rules.find((r) => r.source === '/:path*');
    expect(all, 'a rule for every path').toBeDefined();
    const h = Object.fromEntries(all!.headers.map((x) => [x.key.toLowerCase(), x.value]));
    expect(h['content-security-policy']).toMatch(/(^|;)\s*frame-ancestors 'none'\s*(;|$)/);
    expect(h['x-frame-options']).toBe('DENY');
    expect(h['x-content-type-options']).toBe('nosniff');
    // the rule carries no condition that could leave some requests without it
    expect(all!.has ?? []).toEqual([]);
    expect(all!.missing ?? []).toEqual([]);
    // matched as Next matches it: the root, pages, API routes and static files alike
    const match = getPathMatch(all!.source);
    for (const p of ['/', '/sign-in', '/runs/r1', '/api/export', '/get-artifact', '/_next/static/chunks/a.js'])
      expect(match(p), p).not.toBe(false);
  });
});
