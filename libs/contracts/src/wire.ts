import { z } from 'zod';

/**
 * JSON has no NaN or ±Infinity, but a diverging run logs exactly those and they must never be dropped.
 * On the wire a metric value is a JSON number, or one of the strings "NaN", "Infinity", "-Infinity".
 */
export const NON_FINITE = ['NaN', 'Infinity', '-Infinity'] as const;
export type NonFinite = (typeof NON_FINITE)[number];
export type WireNumber = number | NonFinite;

export const wireNumber = z.union([z.number(), z.enum(NON_FINITE)], {
  error: 'expected a number or one of "NaN", "Infinity", "-Infinity"',
});

export function encodeNumber(v: number): WireNumber {
  if (Number.isFinite(v)) return v;
  if (Number.isNaN(v)) return 'NaN';
  return v > 0 ? 'Infinity' : '-Infinity';
}

export function decodeNumber(v: WireNumber): number {
  if (typeof v === 'number') return v;
  return v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : -Infinity;
}

/** Encodes the non-finite numbers of a JSON-like value (summaries, configs) so they survive JSON. */
export function encodeDeep(v: unknown): unknown {
  if (typeof v === 'number') return encodeNumber(v);
  if (Array.isArray(v)) return v.map(encodeDeep);
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, encodeDeep(x)]));
  }
  return v;
}
