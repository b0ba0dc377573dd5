import type { NextConfig } from 'next';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

/**
 * On every response. No page of ours may be framed by another site (clickjacking: a signed-in member tricked into
 * clicking "delete" through a transparent frame) — CSP frame-ancestors, and X-Frame-Options for older browsers —
 * and no response is sniffed into a type it was not sent as.
 */
export const SECURITY_HEADERS = [
  { key: 'Content-Security-Policy', value: "frame-ancestors 'none'" },
  { key: 'X-Frame-Options', value: 'DENY' },
  { key: 'X-Content-Type-Options', value: 'nosniff' },
];

const config: NextConfig = {
  // The workspace libs export TypeScript source (of @aft/aft-core, only the TensorFlow-free `@aft/aft-core/spec`).
  transpilePackages: ['@aft/api', '@aft/db', '@aft/contracts', '@aft/queue', '@aft/aft-core', '@aft/storage'],
  serverExternalPackages: ['pg', 'bullmq', 'ioredis', '@prisma/adapter-pg'],
  turbopack: { root },
  outputFileTracingRoot: root,
  typedRoutes: false,
  poweredByHeader: false,
  // No gzip in the Node process: a 1.4 MB series response cost ~65 ms of the server's CPU to compress, more than
  // the query itself. Dashboards on a LAN do not need it; behind the internet, let the reverse proxy compress.
  compress: false,
  reactStrictMode: true,
  async headers() {
    return [{ source: '/:path*', headers: SECURITY_HEADERS }];
  },
};

export default config;
