/** The in-process cache of metric key ids stays bounded however many key names the server sees. */
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from './test-db';
import { KEY_CACHE_SIZE, keyCacheSize, resolveKeyIds } from '../src';

const t = useTestDatabase();

describe('resolveKeyIds', () => {
  it('keeps at most KEY_CACHE_SIZE names and still answers every name', async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    const hot = `hot-${tag}`;
    const hotId = (await resolveKeyIds(t.db.pool, [hot])).get(hot)!;
    const names = Array.from({ length: KEY_CACHE_SIZE + 500 }, (_, i) => `k${i}-${tag}`);
    for (let i = 0; i < names.length; i += 2_000) {
      const part = names.slice(i, i + 2_000);
      const ids = await resolveKeyIds(t.db.pool, [hot, ...part]);
      // exactly the names asked for, however much the cache holds
      expect(ids.size).toBe(part.length + 1);
      expect(ids.get(hot)).toBe(hotId);
    }
    expect(keyCacheSize(t.db.pool)).toBeLessThanOrEqual(KEY_CACHE_SIZE);
    // an evicted name is looked up again, with its stored id
    const first = await t.db.pool.query<{ id: number }>('SELECT id FROM metric_key WHERE name = $1', [names[0]]);
    expect((await resolveKeyIds(t.db.pool, [names[0]!])).get(names[0]!)).toBe(first.rows[0]!.id);
  });
});
