/**
 * Serves the built dashboard — what `next start` does — and first stamps each request with its client's address
 * (libs/api/src/client-ip.ts): the socket's peer, or, when the peer is one of AFT_TRUSTED_PROXIES, the address that
 * proxy forwarded. A Next.js route sees only headers, and X-Forwarded-For is one any client can write, so sign-in
 * throttling and the audit log must not read it without this. Run from the repository root, after
 * `npx next build apps/web`:
 *
 *   node apps/web/server.mjs -H 0.0.0.0 -p 3000      (--dev: `next dev` instead, no build needed)
 *
 * AFT_TRUSTED_PROXIES: comma-separated addresses or CIDR ranges of the reverse proxies in front (e.g. `10.0.0.5` or
 * `172.16.0.0/12`); unset, no proxy is trusted and X-Forwarded-For is ignored.
 */
import console from 'node:console';
import { createServer } from 'node:http';
import process from 'node:process';
import { fileURLToPath, URL } from 'node:url';
import { parseArgs } from 'node:util';
import { tsImport } from 'tsx/esm/api';

const { values } = parseArgs({
  options: {
    hostname: { type: 'string', short: 'H', default: '127.0.0.1' },
    port: { type: 'string', short: 'p', default: process.env.PORT || '3000' },
    // `next dev` with the same stamping (no build needed; compiles on request)
    dev: { type: 'boolean', default: false },
  },
});
const port = Number(values.port);
const hostname = values.hostname;
const dev = values.dev;
process.env.NODE_ENV ??= dev ? 'development' : 'production';

// the TypeScript source, loaded without registering a loader for the whole process (Next.js loads its own)
const { parseTrustedProxies, stampClientIp } = await tsImport('../../libs/api/src/client-ip.ts', import.meta.url);
let trusted;
try {
  trusted = parseTrustedProxies(process.env.AFT_TRUSTED_PROXIES);
} catch (e) {
  console.error(e.message);
  process.exit(1);
}

const { default: next } = await import('next');
const app = next({ dev, dir: fileURLToPath(new URL('.', import.meta.url)), hostname, port });
await app.prepare();
const handle = app.getRequestHandler();
const server = createServer((req, res) => {
  stampClientIp(req, trusted);
  handle(req, res).catch((e) => {
    console.error('[web]', e);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
server.listen(port, hostname, () => console.log(`▶ AFT Lab on http://${hostname}:${port}`));
// open live streams would hold a graceful close up indefinitely; in-flight writes are each one transaction
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
