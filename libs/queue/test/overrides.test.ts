import { describe, expect, it } from 'vitest';
import { ALIGN_OVERRIDE_BOUNDS, VFT_OVERRIDE_BOUNDS } from '../src';
import { boundedOverrides } from '../src/overrides';

/** Every overridable key, in both tables, refuses what lies past its bounds — hostile values included — at its key. */
describe.each([
  ['alignment', ALIGN_OVERRIDE_BOUNDS],
  ['VFT', VFT_OVERRIDE_BOUNDS],
] as const)('%s overrides', (what, table) => {
  const schema = boundedOverrides(table, what);
  const refused = (key: string, value: unknown) => {
    const r = schema.safeParse({ [key]: value });
    return r.success ? null : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  };

  it.each(Object.entries(table))('%s: in bounds at its edges, refused past them and for hostile values', (key, b) => {
    expect(refused(key, b.max)).toBeNull();
    expect(refused(key, b.above ? b.min + (b.int ? 1 : 1e-9) : b.min)).toBeNull();
    for (const bad of [b.max + 1, b.above ? b.min : b.min - 1, 1e308, -1e308, Number.NaN, '1', null, [1], { x: 1 }]) {
      expect(refused(key, bad), `${key} = ${String(bad)}`).toMatch(new RegExp(`^${key.replace('.', '\\.')}: ${key}`));
    }
    if (b.int) expect(refused(key, b.min + 0.5)).toMatch(/must be an integer/);
  });

  it('refuses an unknown key and more than 50 keys', () => {
    expect(refused('model.__proto__', 1)).toMatch(/not a .* setting that can be overridden/);
    const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 1]));
    expect(schema.safeParse(many).success).toBe(false);
  });
});
