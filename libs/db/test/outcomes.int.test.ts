import { describe, expect, it } from 'vitest';
import { useTestDatabase } from './test-db';
import { seedRun } from '../src/testing';
import { insertSamples, readRunOutcomes, SPLIT_SCAN_DEPTH, type StoredSample } from '../src';

const t = useTestDatabase();

const RULES = ['%/greedy', '%/rerank', '%/majority'];
const outcome = (step: number, split: string, questionId: string, correct: boolean | null): StoredSample => ({
  step,
  split,
  questionId,
  sampleIdx: 0,
  prompt: '',
  completion: '',
  correct,
});

describe('readRunOutcomes', () => {
  it("reads each run's outcomes of a split at its latest step, compactly, and which outcome splits it has", async () => {
    const { team, project, run: a } = await seedRun(t.db);
    const b = await t.db.prisma.run.create({
      data: { projectId: project.id, name: 'b', method: 'aft', constraint: 'boundary', seed: 3, config: { beta: 0.1 } },
    });
    await insertSamples(t.db.pool, a.id, team.id, [
      // an earlier evaluation: not the one read
      outcome(10, 'test/greedy', 'q1', false),
      outcome(10, 'test/greedy', 'q9', true),
      outcome(20, 'test/greedy', 'q1', true),
      outcome(20, 'test/greedy', 'q2', false),
      outcome(20, 'test/greedy', 'q3', null), // ungraded: ignored
      outcome(20, 'test/greedy', 'q4', true),
      { ...outcome(20, 'test/greedy', 'q4', false), sampleIdx: 1 }, // not an outcome row
      outcome(20, 'test/rerank', 'q1', false),
      outcome(5, 'val/majority', 'q1', true),
      // text samples of evaluations and training, in splits that hold no outcomes, at later steps too
      ...[5, 10, 15, 20, 25].flatMap((step) =>
        [0, 1, 2].map((i) => ({ ...outcome(step, 'val', `v${i}`, true), sampleIdx: i, prompt: 'p', completion: 'c' })),
      ),
    ]);
    const rows = await readRunOutcomes(t.db.pool, [a.id, b.id, 'no-such-run', a.id], 'test/greedy', RULES, 20_000);
    expect(rows).toHaveLength(2);
    const ra = rows.find((r) => r.runId === a.id)!;
    expect(ra).toMatchObject({
      name: 'run-1',
      method: 'external',
      constraint: 'none',
      parentRunId: null,
      seed: null,
      beta: null,
      splits: ['test/greedy', 'test/rerank', 'val/majority'],
      step: 20,
    });
    const got = Object.fromEntries(ra.questionIds.map((q, i) => [q, ra.correct[i]]));
    expect(got).toEqual({ q1: '1', q2: '0', q4: '1' });
    expect(ra.correct).toHaveLength(ra.questionIds.length);
    expect(rows.find((r) => r.runId === b.id)).toMatchObject({
      method: 'aft',
      constraint: 'boundary',
      seed: 3,
      beta: 0.1,
      splits: [],
      step: null,
      questionIds: [],
      correct: '',
    });
    const rerank = await readRunOutcomes(t.db.pool, [a.id], 'test/rerank', RULES, 20_000);
    expect(rerank[0]).toMatchObject({ step: 20, questionIds: ['q1'], correct: '0' });
  });

  it('finds the latest outcomes of a run that logged samples at thousands of steps', async () => {
    const { team, run } = await seedRun(t.db);
    const steps = SPLIT_SCAN_DEPTH + 500;
    const train = Array.from({ length: steps }, (_, i) => ({ ...outcome(i, 'train', 'q', true), prompt: 'p' }));
    for (let i = 0; i < train.length; i += 1000)
      await insertSamples(t.db.pool, run.id, team.id, train.slice(i, i + 1000));
    await insertSamples(
      t.db.pool,
      run.id,
      team.id,
      Array.from({ length: 2000 }, (_, i) => outcome(steps, 'test/greedy', `q${i}`, i % 3 === 0)),
    );
    const t0 = performance.now();
    const [r] = await readRunOutcomes(t.db.pool, [run.id], 'test/greedy', RULES, 20_000);
    const ms = performance.now() - t0;
    expect(r).toMatchObject({ step: steps, splits: ['test/greedy'] });
    expect(r!.questionIds).toHaveLength(2000);
    expect([...r!.correct].filter((c) => c === '1')).toHaveLength(667);
    expect(ms).toBeLessThan(2000);
  });
});
