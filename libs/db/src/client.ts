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

/**
 * The connection string and startup `options` with JIT off, on every connection of the pool (Prisma's included).
 * Compiling a plan took 35 ms of a 5 ms runs-list page (Postgres compiles any plan estimated past jit_above_cost,
 * and the index path's never-started branch is estimated high), and no query here runs long enough to win it back
 * (docs/architecture.md, "The runs list"). Options the URL (`?options=`) or PGOPTIONS already give are kept: pg
 * would otherwise let the URL's replace ours, or ours hide PGOPTIONS.
 */
export function withoutJit(connectionString: string): { connectionString: string; options: string } {
  let url: URL | null = null;
  try {
    url = new URL(connectionString);
  } catch {
    // not a URL (a socket path): nothing of its own to keep
  }
  const own = url?.searchParams.get('options') ?? null;
  if (url && own !== null) url.searchParams.delete('options');
  const given = own ?? process.env['PGOPTIONS'] ?? '';
  return {
    connectionString: url && own !== null ? url.toString() : connectionString,
    options: `${given} -c jit=off`.trim(),
  };
}

/** One pg pool shared by Prisma (through the driver adapter) and the raw queries. */
export function createDb({ connectionString, max = 10, statementTimeoutMs }: DbOptions): Db {
  const pool = new pg.Pool({
    max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: 10_000,
    ...withoutJit(connectionString),
    // a startup parameter: every connection of the pool gets it, including Prisma's
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
