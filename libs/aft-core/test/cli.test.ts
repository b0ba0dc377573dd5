import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCorrectnessLines } from '../src/stats';

const ROOT = resolve(import.meta.dirname, '../../..');
const aft = (args: string[], input?: string) =>
  spawnSync(join(ROOT, 'node_modules/.bin/aft'), args, { cwd: ROOT, input, encoding: 'utf8', timeout: 120_000 });
const dir = mkdtempSync(join(tmpdir(), 'aft-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TINY = ['--set', 'model.dModel=16', '--set', 'model.nHead=2', '--set', 'model.nLayer=1', '--set', 'batchSize=4'];
const DATA = ['--set', 'data.train=200', '--set', 'data.val=20', '--set', 'data.test=10', '--set', 'evalQuestions=5'];

describe('aft CLI', { timeout: 180_000 }, () => {
  it('grades JSON lines with the trainer’s grader and flags bad lines', () => {
    const r = aft(
      ['grade'],
      '{"completion":"so #### 1,200.","gold":"1200"}\n{"completion":"The answer is 7","gold":8}\nnope\n',
    );
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual([
      { extracted: '1200', correct: true },
      { extracted: '7', correct: false },
    ]);
    expect(r.stderr).toMatch(/line 3 is not JSON/);
    expect(r.status).toBe(2);
  });

  it('trains, samples and evaluates end to end, printing JSON on stdout', () => {
    const out = join(dir, 'vft');
    const v = aft(['vft', '--preset', 'tiny', '--steps', '3', '--seed', '5', '--out', out, ...TINY, ...DATA]);
    expect(v.status, v.stderr).toBe(0);
    const vft = JSON.parse(v.stdout);
    expect(vft).toMatchObject({ command: 'vft', backend: 'wasm', steps: 3, seed: 5 });
    // the backend's record (backendRecord) beside its name
    expect(vft).toMatchObject({ 'backend.provider': '@tensorflow/tfjs-backend-wasm', 'backend.kernels': 'simd-bmm' });
    expect(vft.final.questions).toBe(10);
    expect(vft.checkpointSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(v.stderr).toMatch(/vft tiny .*ETA/);

    const samplesPath = join(dir, 'samples.jsonl');
    const s = aft(['sample', '--checkpoint', vft.checkpoint, '--k', '3', '--questions', '4', '--out', samplesPath]);
    expect(s.status, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout)).toMatchObject({ command: 'sample', questions: 4, samples: 12 });
    const lines = readFileSync(samplesPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(4);
    expect(lines[0].candidates[0]).toHaveProperty('score');

    const perQuestion = join(dir, 'per-question.jsonl');
    const e = aft([
      'eval',
      '--checkpoint',
      vft.checkpoint,
      '--questions',
      '5',
      '--k',
      '2',
      '--assess',
      '3',
      '--per-question',
      perQuestion,
      '--arm',
      'vft',
    ]);
    expect(e.status, e.stderr).toBe(0);
    const evaluated = JSON.parse(e.stdout);
    expect(evaluated).toMatchObject({ command: 'eval', questions: 5, step: 3 });
    // every question's correctness, paired by seed and id, in the form `aft stats paired` reads
    const rows = parseCorrectnessLines(readFileSync(perQuestion, 'utf8').split('\n'));
    expect(rows).toHaveLength(5);
    expect(rows.every((r) => r.seed === 5 && r.arm === 'vft')).toBe(true);
    expect(rows.filter((r) => r.correct).length / 5).toBeCloseTo(evaluated.taskAccuracy, 12);
  });

  it('rejects bad arguments with a message and exit code 2', () => {
    const r = aft(['vft', '--preset', 'tiny', '--set', 'model.width=3']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown model key "width"/);
    const u = aft(['sample', '--checkpoint', dir, '--k', 'zero']);
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/--k must be an integer/);
    expect(aft(['frobnicate']).stderr).toMatch(/unknown command "frobnicate"/);
  });
});
