/**
 * JSON columns (a run's config and summary, an event's details) reach the web typed as any JSON value, or as unknown
 * where the API re-encodes them (non-finite numbers as strings). These narrow them by looking, never by a cast.
 */

/** A JSON object (not an array, not null). */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The object's entries by key; {} for anything that is not a JSON object. */
export const recordOf = (v: unknown): Record<string, unknown> => (isRecord(v) ? v : {});
