import type { Pool } from 'pg';
import { afterAll, beforeAll } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../src/testing';

/**
 * A new, migrated database for the calling test file: created before its tests, dropped after them. Use its `db`,
 * `url` and `name` inside tests (before then there is none).
 */
export function useTestDatabase(): TestDatabase {
  let inner: TestDatabase | undefined;
  beforeAll(async () => {
    inner = await createTestDatabase();
  });
  afterAll(async () => {
    await inner?.drop();
  });
  const get = () => {
    if (!inner) throw new Error('the test database is made in beforeAll: use it inside tests');
    return inner;
  };
  return {
    get name() {
      return get().name;
    },
    get url() {
      return get().url;
    },
    get db() {
      return get().db;
    },
    drop: () => get().drop(),
  };
}

/** Rows a key of a run has in the row-per-point tail (`metric_point`). */
export const tailRowCount = (pool: Pool, num: string, keyId: number) =>
  pool
    .query<{ n: number }>('SELECT count(*)::int AS n FROM metric_point WHERE run_num = $1 AND key_id = $2', [
      num,
      keyId,
    ])
    .then((r) => r.rows[0]!.n);
