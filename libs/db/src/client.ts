import pg from 'pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from './generated/prisma/client';

export type { PrismaClient } from './generated/prisma/client';
export { Prisma } from './generated/prisma/client';

export interface Db {
  /** Prisma for ordinary reads and writes. */
  prisma: PrismaClient;
  /** The same pool, for the hand-tuned SQL of this library (bulk insert, series, runs list). */
  pool: pg.Pool;
  close(): Promise<void>;
}

export interface DbOptions {
  connectionString: string;
  /** Pool size; the bulk insert and series queries run one statement per connection in parallel. */
  max?: number;
}

/** One pg pool shared by Prisma (through the driver adapter) and the raw queries. */
export function createDb({ connectionString, max = 10 }: DbOptions): Db {
  const pool = new pg.Pool({ connectionString, max, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  // An idle client that errors (database restarted) must not crash the process; the pool replaces it.
  pool.on('error', () => undefined);
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    prisma,
    pool,
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await pool.end().catch(() => undefined);
    },
  };
}
