// Prisma CLI configuration. The CLI cannot download its native schema engine here, so it runs the bundled
// Wasm engine through a driver adapter (no engine download: the project installs offline). The 7.x adapter is used only
// here: the 6.19.3 one breaks the Wasm engine. The application uses @prisma/adapter-pg 6.19.3.
import { defineConfig } from 'prisma/config';
import { PrismaPg } from 'adapter-pg-7';

// The schema's datasource reads DATABASE_URL; without it the CLI cannot read the schema and falls back to
// downloading a native engine. Default it here, before the CLI reads the schema.
process.env['DATABASE_URL'] ??= 'postgresql://postgres@127.0.0.1:5432/aft';
const url = process.env['DATABASE_URL'];

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  adapter: async () => new PrismaPg({ connectionString: url }),
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations', seed: 'tsx prisma/seed.ts' },
});
