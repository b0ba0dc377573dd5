/** Gold answers of shipped questions by id (`@aft/aft-core/gold`), as the server grades logged samples with them. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAqua, loadGsm8k } from '../src/data/datasets';
import { goldAnswer } from '../src/data/gold';

describe('goldAnswer', () => {
  it("gives every shipped question's answer under the id datasets.ts gives it", () => {
    for (const p of [...loadGsm8k('test'), ...loadGsm8k('train'), ...loadAqua('dev'), ...loadAqua('test')])
      expect(goldAnswer(p.id), p.id).toBe(p.answer);
    expect(goldAnswer('gsm8k-test-0')).toBe('18');
    expect(goldAnswer('aqua-dev-0')).toBe('A');
  });

  it('gives null for ids that name no shipped question', () => {
    for (const id of ['gsm8k-test-1319', 'aqua-dev-254', 'gsm8k-test-01', 'gsm8k-test--1', 'gsm8k-test-1.0', 'q17'])
      expect(goldAnswer(id), id).toBeNull();
    expect(goldAnswer(`gsm8k-test-${'9'.repeat(190)}`)).toBeNull();
    expect(goldAnswer('arith-test-3')).toBeNull();
  });

  it('says where it looked when the data folder lacks the file', () => {
    const empty = mkdtempSync(join(tmpdir(), 'aft-no-data-'));
    expect(() => goldAnswer('gsm8k-test-0', empty)).toThrow(/gsm8k\/test\.jsonl not found/);
  });
});
