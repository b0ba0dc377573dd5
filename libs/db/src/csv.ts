/** CSV cells, safe to open in a spreadsheet. No imports: the dashboard's browser code uses it too (`@aft/db/csv`). */
const PLAIN_NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?Infinity$/;

/**
 * One CSV cell. Text a spreadsheet would run as a formula (starting with = + - @, tab or carriage return: a run
 * name or tag is anyone's input) gets a leading single quote, as OWASP advises; numbers, and text that is only a
 * number (a summary's "-Infinity", "-0.5"), are left as they are: they cannot hold a formula.
 */
export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'object' ? JSON.stringify(v) : String(v);
  if (typeof v !== 'number' && /^[=+\-@\t\r]/.test(s) && !PLAIN_NUMBER.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
