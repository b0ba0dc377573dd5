/**
 * Request bodies as MLflow's clients write them, read in time linear in their length and bounded in their shape.
 *
 * Python's json module writes NaN, Infinity and -Infinity bare (`{"value": NaN}`), which JSON.parse refuses and
 * MLflow's server reads: they are rewritten as strings ("NaN", …), which the metric schema turns back into numbers.
 * The text is walked once, tracking whether it is inside a string (a regex with a lookbehind over whitespace took
 * seconds on a body of spaces, holding the event loop). The same walk counts the body's structure, because
 * JSON.parse itself holds the event loop for about a second on 8 MB of `{},{},…`: a body with more structure than
 * any MLflow request has is refused before it is parsed.
 */

export interface PythonJsonLimits {
  /** Bare NaN/Infinity values (a batch logs at most this many metrics). */
  nonFinite: number;
  /** Commas, colons and brackets outside strings: a bound on how many values JSON.parse would build. */
  structure: number;
  /** Nesting of objects and arrays. */
  depth: number;
  /** Only check the limits (for a caller that parses the body itself): resolves to undefined. */
  checkOnly?: boolean;
}

/** A body that is not JSON (as Python writes it), or is over one of the limits; its message says which. */
export class PythonJsonError extends Error {}

const QUOTED = { NaN: '"NaN"', Infinity: '"Infinity"', '-Infinity': '"-Infinity"' } as const;
/** What the walk skips natively: anything but a quote, a bracket, a comma, a colon or the first letter of a token. */
const PLAIN = /[^"NI,:{}[\]]+/y;
const SPACE = /[ \t\n\r]*/y;
/** Inside a string: what needs no look (anything but its end or an escape), and a run of backslashes. */
const STRING_PLAIN = /[^"\\]+/y;
const BACKSLASHES = /\\+/y;
/** Characters walked between two yields to the event loop (a few milliseconds of work). */
const SLICE = 1 << 18;

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * `text` parsed as JSON, bare NaN / Infinity / -Infinity where a value stands read as the strings "NaN", … .
 * Throws PythonJsonError when it is not JSON or is over `limits`. Outside strings valid JSON has an N or I only in
 * those tokens, so at any other one the walk stops and JSON.parse says what is wrong. The walk looks at each
 * character a bounded number of times, mostly in native scans, stops at the structure limit, and yields to the
 * event loop every SLICE characters, so no request holds it for long; the rewrites are at most `limits.nonFinite`.
 */
export async function parsePythonJson(text: string, limits: PythonJsonLimits): Promise<unknown> {
  let out = '';
  let from = 0; // start of the text not yet copied to `out`
  let tokens = 0;
  let structure = 0;
  let depth = 0;
  let stop = -1; // the last structural character or closing quote the walk stopped at
  let inString = false;
  let yieldAt = SLICE;
  let i = 0;
  while (i < text.length) {
    if (i >= yieldAt) {
      await tick();
      yieldAt = i + SLICE;
    }
    if (inString) {
      STRING_PLAIN.lastIndex = i;
      if (STRING_PLAIN.test(text)) i = STRING_PLAIN.lastIndex;
      if (i >= text.length) break; // unterminated: JSON.parse will say so
      if (text[i] === '"') {
        inString = false;
        stop = i++;
        continue;
      }
      // a run of backslashes: pairs stand for themselves, an odd one out escapes the next character (maybe a quote)
      BACKSLASHES.lastIndex = i;
      BACKSLASHES.test(text);
      const run = BACKSLASHES.lastIndex - i;
      i += run + (run % 2);
      continue;
    }
    PLAIN.lastIndex = i;
    if (PLAIN.test(text)) i = PLAIN.lastIndex;
    if (i >= text.length) break;
    const c = text[i]!;
    if (c === '"') {
      inString = true;
      i++;
      continue;
    }
    if (c !== 'N' && c !== 'I') {
      if (++structure > limits.structure) {
        throw new PythonJsonError(
          `request body holds more than ${limits.structure.toLocaleString('en-US')} values; no valid request has that many`,
        );
      }
      if (c === '{' || c === '[') {
        if (++depth > limits.depth) throw new PythonJsonError(`request body nests deeper than ${limits.depth} levels`);
      } else if (c === '}' || c === ']') depth--;
      stop = i++;
      continue;
    }
    const token = text.startsWith('NaN', i)
      ? 'NaN'
      : text.startsWith('Infinity', i)
        ? text[i - 1] === '-'
          ? '-Infinity'
          : 'Infinity'
        : null;
    const start = token === '-Infinity' ? i - 1 : i;
    // a value stands after `:`, `,` or `[` and whitespace only; anywhere else this is not JSON (JSON.parse says where)
    SPACE.lastIndex = stop + 1;
    SPACE.test(text);
    const p = text[stop];
    if (!token || SPACE.lastIndex !== start || (p !== ':' && p !== ',' && p !== '[')) break;
    if (++tokens > limits.nonFinite) {
      throw new PythonJsonError(
        `request body holds more than ${limits.nonFinite} bare NaN/Infinity values; a batch logs at most ${limits.nonFinite} metrics`,
      );
    }
    out += text.slice(from, start) + QUOTED[token];
    from = start + token.length;
    i = from;
  }
  if (limits.checkOnly) return undefined;
  try {
    return JSON.parse(from ? out + text.slice(from) : text);
  } catch {
    throw new PythonJsonError('request body is not valid JSON');
  }
}
