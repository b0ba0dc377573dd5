/**
 * What runs logged, read back for the run page: their metric keys, samples, events and artifacts. These read by
 * run id alone: the caller has checked the runs are the team's (`missingRuns`, runs-query.ts). The writes are in
 * run-writes.ts and metrics.ts.
 */
import type { Pool } from 'pg';
import type { Db } from './client';

/** The keys each run has logged (run_metric): count, step range and last value, by run then key. */
export function runMetricKeys(db: Db, runIds: readonly string[]) {
  return db.prisma.runMetric.findMany({
    where: { runId: { in: [...runIds] } },
    select: { runId: true, key: true, count: true, minStep: true, lastStep: true, lastValue: true },
    orderBy: [{ runId: 'asc' }, { key: 'asc' }],
  });
}

export interface SampleFilter {
  runId: string;
  step?: number | undefined;
  split?: string | undefined;
  questionId?: string | undefined;
  correct?: boolean | undefined;
}

/**
 * A page of a run's samples matching `filter`, ordered by step, question and sample index; `nextOffset` is where
 * the next page starts, null after the last.
 */
export async function listSamples(db: Db, filter: SampleFilter, page: { offset: number; limit: number }) {
  const rows = await db.prisma.sample.findMany({
    where: {
      runId: filter.runId,
      step: filter.step,
      split: filter.split,
      questionId: filter.questionId,
      correct: filter.correct,
    },
    orderBy: [{ step: 'asc' }, { questionId: 'asc' }, { sampleIdx: 'asc' }, { id: 'asc' }],
    skip: page.offset,
    take: page.limit + 1,
    select: {
      step: true,
      split: true,
      questionId: true,
      sampleIdx: true,
      prompt: true,
      completion: true,
      extractedAnswer: true,
      gold: true,
      correct: true,
      score: true,
      rank: true,
    },
  });
  const more = rows.length > page.limit;
  if (more) rows.pop();
  return { rows, nextOffset: more ? page.offset + page.limit : null };
}

/** What a run's samples hold: each (split, step) with its number of distinct questions and of samples. */
export async function sampleSplits(pool: Pool, runId: string) {
  // `withText`: samples with a completion — outcome rows have none, generations logged in an outcome split do
  const res = await pool.query<{ split: string; step: number; questions: number; samples: number; withText: number }>(
    `SELECT split, step, count(DISTINCT question_id)::int AS questions, count(*)::int AS samples,
            count(*) FILTER (WHERE completion <> '')::int AS "withText"
     FROM sample WHERE run_id = $1 GROUP BY split, step ORDER BY split, step`,
    [runId],
  );
  return res.rows;
}

/** A run's events (of one kind, if given) in the order they were logged; ids as strings (they are bigints). */
export async function listEvents(db: Db, runId: string, opts: { kind?: string | undefined; limit: number }) {
  const rows = await db.prisma.event.findMany({
    where: { runId, kind: opts.kind },
    orderBy: { id: 'asc' },
    take: opts.limit,
    select: { id: true, kind: true, step: true, details: true, createdAt: true },
  });
  return rows.map((r) => ({ ...r, id: r.id.toString() }));
}

/**
 * A run's artifacts in the order they were registered, with the kind as clients name it (`sample-set`; the
 * database enum says `sample_set`) and the size as a number.
 */
export async function listArtifacts(db: Db, runId: string) {
  const rows = await db.prisma.artifact.findMany({
    where: { runId },
    orderBy: [{ createdAt: 'asc' }],
    select: {
      id: true,
      kind: true,
      name: true,
      uri: true,
      sha256: true,
      bytes: true,
      step: true,
      metadata: true,
      createdAt: true,
    },
  });
  return rows.map((r) => ({
    ...r,
    kind: r.kind === 'sample_set' ? 'sample-set' : r.kind,
    bytes: r.bytes === null ? null : Number(r.bytes),
  }));
}
