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
  /**
   * Longest a statement may run, in ms, before Postgres cancels it (SQLSTATE 57014, see isStatementTimeout);
   * unset or 0 = no limit. The web sets one so a costly request cannot hold a connection for long; batch tools
   * (import, seed, bench) leave it off.
   */
  statementTimeoutMs?: number;
}

/** One pg pool shared by Prisma (through the driver adapter) and the raw queries. */
export function createDb({ connectionString, max = 10, statementTimeoutMs }: DbOptions): Db {
  const pool = new pg.Pool({
    connectionString,
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    // startup parameters: every connection of the pool gets them, including Prisma's.
    // No JIT: compiling a plan took 35 ms of a 5 ms runs-list page (Postgres compiles any plan estimated past
    // jit_above_cost, and an index path's never-started branch is estimated high), and no query here runs long
    // enough to win it back. docs/architecture.md, "The runs list".
    options: '-c jit=off',
    ...(statementTimeoutMs ? { statement_timeout: statementTimeoutMs } : {}),
  });
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

/**
 * Whether `e` (a pg error, or a Prisma error wrapping one) is Postgres cancelling a statement that ran past
 * `statement_timeout`. Handlers answer it with 503 instead of a 500 carrying the database's message.
 */
export function isStatementTimeout(e: unknown): boolean {
  for (let c = e, depth = 0; c && typeof c === 'object' && depth < 6; depth++) {
    const o = c as { code?: unknown; message?: unknown; cause?: unknown; meta?: { driverAdapterError?: unknown } };
    if (o.code === '57014') return true;
    if (typeof o.message === 'string' && o.message.includes('canceling statement due to statement timeout'))
      return true;
    c = o.cause ?? o.meta?.driverAdapterError;
  }
  return false;
}
