export function fmtSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(0)}s`;
  const m = Math.floor(s / 60);
  return m < 60
    ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`
    : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

export class UsageError extends Error {}

/** `--set key=value` pairs: numbers and booleans are parsed, everything else stays a string. */
export function parseSets(sets: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new UsageError(`--set takes key=value, got "${s}"`);
    const raw = s.slice(eq + 1);
    out[s.slice(0, eq)] =
      raw === 'true' ? true : raw === 'false' ? false : raw !== '' && !Number.isNaN(Number(raw)) ? Number(raw) : raw;
  }
  return out;
}

export function num(
  v: string | undefined,
  name: string,
  opts: { int?: boolean; min?: number; max?: number } = {},
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || (opts.int && !Number.isInteger(n)))
    throw new UsageError(`--${name} must be ${opts.int ? 'an integer' : 'a number'}, got "${v}"`);
  if (opts.min !== undefined && n < opts.min) throw new UsageError(`--${name} must be >= ${opts.min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) throw new UsageError(`--${name} must be <= ${opts.max}, got ${n}`);
  return n;
}

/** A command's one JSON summary on stdout. */
export const print = (o: unknown) => process.stdout.write(`${JSON.stringify(o, null, 2)}\n`);
