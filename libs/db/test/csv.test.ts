import { describe, expect, it } from 'vitest';
import { csvCell } from '../src/csv';

describe('runs.csv cells (CSV / formula injection)', () => {
  it('text starting with = + - @, tab or carriage return gets a leading quote, so a spreadsheet shows it as text', () => {
    expect(csvCell('=HYPERLINK("http://evil","x")')).toBe(`"'=HYPERLINK(""http://evil"",""x"")"`);
    expect(csvCell('+cmd|calc!A0')).toBe("'+cmd|calc!A0");
    expect(csvCell('-2+3+cmd|calc!A0')).toBe("'-2+3+cmd|calc!A0");
    expect(csvCell('@SUM(1,2)')).toBe(`"'@SUM(1,2)"`);
    expect(csvCell('\t=1+1')).toBe("'\t=1+1");
    expect(csvCell('\r=1+1')).toBe(`"'\r=1+1"`);
  });

  it('numbers, and text that is only a number, stay as they are; other text is untouched', () => {
    expect(csvCell(-0.5)).toBe('-0.5');
    expect(csvCell('-0.5')).toBe('-0.5');
    expect(csvCell('-Infinity')).toBe('-Infinity');
    expect(csvCell('+1e-3')).toBe('+1e-3');
    expect(csvCell('run-1')).toBe('run-1');
    expect(csvCell('has, a comma')).toBe('"has, a comma"');
    expect(csvCell(null)).toBe('');
  });
});
