import type { NextConfig } from 'next';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

const config: NextConfig = {
  // The workspace libs export TypeScript source.
  transpilePackages: ['@aft/api', '@aft/db', '@aft/contracts', '@aft/queue'],
  serverExternalPackages: ['pg', 'bullmq', 'ioredis', '@prisma/adapter-pg'],
  turbopack: { root },
  outputFileTracingRoot: root,
  typedRoutes: false,
  poweredByHeader: false,
  // No gzip in the Node process: a 1.4 MB series response cost ~65 ms of the server's CPU to compress, more than
  // the query itself. Dashboards on a LAN do not need it; behind the internet, let the reverse proxy compress.
  compress: false,
  reactStrictMode: true,
};

export default config;
