'use client';
import { useEffect, useMemo, useState } from 'react';
import type { RouterOutputs } from '@aft/api';
import { isOutcomeSplit } from '@aft/contracts';
import { fmtNumber } from '../lib/format';
import { trpc } from '../lib/trpc';

type Split = RouterOutputs['samples']['splits'][number];
type Sample = RouterOutputs['samples']['list']['items'][number];

const PAGE = 200;

/** Lines of a COT marked by whether the reference COT has them (a line-level diff; COTs are a few lines). */
export function diffLines(completion: string, reference: string | undefined): { line: string; inReference: boolean }[] {
  const ref = new Set((reference ?? '').split('\n').map((l) => l.trim()));
  return completion.split('\n').map((line) => ({ line, inReference: reference === undefined || ref.has(line.trim()) }));
}

/** Every sampled COT per question with its score, label and rank, and where it departs from the reference. */
export function SamplesBrowser({ runId }: { runId: string }) {
  const [splits, setSplits] = useState<Split[] | null>(null);
  const [chosen, setChosen] = useState<string>('');
  const [rows, setRows] = useState<Sample[]>([]);
  const [refs, setRefs] = useState<Map<string, string>>(new Map());
  const [cursor, setCursor] = useState<number | null>(0);
  const [onlyMixed, setOnlyMixed] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    trpc.samples.splits
      .query({ runId })
      .then((s) => {
        // the worker's outcome rows (test/greedy …) carry no text: they are for pairing runs, not for reading; an
        // external run's generations logged there (MLflow log_table) do
        const browsable = s.filter((x) => x.split !== 'reference' && (!isOutcomeSplit(x.split) || x.withText > 0));
        setSplits(browsable);
        const sampleSet = browsable.find((x) => x.split.startsWith('samples-'));
        const first = sampleSet ?? browsable[0];
        if (first) setChosen(`${first.split}@${first.step}`);
      })
      .catch((e: Error) => setError(e.message));
  }, [runId]);

  const [split, stepText] = chosen.split('@');
  const step = Number(stepText);
  const load = async (from: number, replace: boolean) => {
    if (!split) return;
    try {
      const page = await trpc.samples.list.query({ runId, split, step, cursor: from, limit: PAGE });
      const items = page.items;
      setRows((r) => (replace ? items : [...r, ...items]));
      setCursor(page.nextCursor);
      const qs = [...new Set(items.map((s) => s.questionId))];
      const refRows = await Promise.all(
        qs
          .slice(0, 50)
          .map((q) =>
            trpc.samples.list.query({ runId, split: 'reference', questionId: q, limit: 1 }).then((p) => p.items[0]),
          ),
      );
      setRefs((m) => {
        const n = new Map(replace ? [] : m);
        refRows.forEach((r) => r && n.set(r.questionId, r.completion));
        return n;
      });
      setError(null);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  useEffect(() => {
    setRows([]);
    setCursor(0);
    void load(0, true);
    // eslint-disable-next-line react-hooks/exhaustive-deps -- load depends on the chosen split only
  }, [chosen]);

  const questions = useMemo(() => {
    const by = new Map<string, Sample[]>();
    for (const s of rows) by.set(s.questionId, [...(by.get(s.questionId) ?? []), s]);
    return [...by].filter(([, ss]) => !onlyMixed || (ss.some((s) => s.correct) && ss.some((s) => s.correct === false)));
  }, [rows, onlyMixed]);

  if (error) return <div className="error">Could not load samples: {error}</div>;
  if (!splits) return <div className="skeleton" style={{ height: 120 }} />;
  if (!splits.length) return <div className="muted">No samples logged.</div>;
  return (
    <div data-testid="samples-browser">
      <div className="toolbar">
        <label>
          Set{' '}
          <select value={chosen} onChange={(e) => setChosen(e.target.value)} aria-label="sample set">
            {splits.map((s) => (
              <option key={`${s.split}@${s.step}`} value={`${s.split}@${s.step}`}>
                {s.split} · step {s.step} · {s.questions} questions, {s.samples} samples
              </option>
            ))}
          </select>
        </label>
        <label>
          <input type="checkbox" checked={onlyMixed} onChange={(e) => setOnlyMixed(e.target.checked)} /> only questions
          with both right and wrong COTs
        </label>
      </div>
      <div className="samples-list">
        {questions.map(([q, ss]) => {
          const ref = refs.get(q);
          const sorted = [...ss].sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0) || a.sampleIdx - b.sampleIdx);
          return (
            <div key={q} className="panel question" data-question={q}>
              <div className="q">
                <b>{ss[0]!.prompt}</b>{' '}
                <span className="muted">
                  · gold {ss[0]!.gold ?? '—'} · {q}
                </span>
              </div>
              {ref !== undefined ? (
                <div className="cot reference">
                  <span className="label">reference</span>
                  <pre>{ref}</pre>
                </div>
              ) : null}
              {sorted.map((s) => (
                <div key={s.sampleIdx} className={`cot ${s.correct ? 'ok' : s.correct === false ? 'bad' : ''}`}>
                  <span className="label">
                    {s.rank !== null ? `rank ${s.rank}` : `#${s.sampleIdx}`} ·{' '}
                    {s.correct ? 'correct' : s.correct === false ? 'wrong' : '—'}
                    {s.score !== null ? ` · score ${fmtNumber(s.score)}` : ''}
                  </span>
                  <pre>
                    {diffLines(s.completion, ref).map((l, i) => (
                      <span key={i} className={l.inReference ? undefined : 'differs'}>
                        {l.line}
                        {'\n'}
                      </span>
                    ))}
                  </pre>
                </div>
              ))}
            </div>
          );
        })}
        {cursor !== null ? (
          <button type="button" onClick={() => void load(cursor, false)}>
            Load more
          </button>
        ) : null}
      </div>
    </div>
  );
}
