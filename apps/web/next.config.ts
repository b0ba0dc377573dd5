import type { NextConfig } from 'next';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

const config: NextConfig = {
  // The workspace libs export TypeScript source.
  transpilePackages: ['@aft/api', '@aft/db', '@aft/contracts'],
  serverExternalPackages: ['pg', 'bullmq', 'ioredis', '@prisma/adapter-pg'],
  turbopack: { root },
  outputFileTracingRoot: root,
  typedRoutes: false,
  poweredByHeader: false,
  reactStrictMode: true,
};

export default config;
