/**
 * The reproduce report (docs/statistics.md): per method, mean ± std over seeds of the test measurements, and the
 * paired table that decides — each arm against each control on the same test questions per seed (Δ, both 95 %
 * intervals, McNemar, wins). The constrained AFT variant is chosen on validation accuracy only, so the test split
 * is read once, for the verdict.
 */
import type { QuestionOutcome } from '../eval';
import { pairedComparison, verdict, type CorrectnessRow, type PairedReport } from '../stats';

export interface RunOutcome {
  name: string;
  seed: number;
  taskAccuracy: number;
  /** Best-of-k by the model's own score, and majority vote, on the sampled test questions; null without sampling. */
  rerankAccuracy?: number | null;
  majorityAccuracy?: number | null;
  assessmentAccuracy: number | null;
  /** Assessment accuracy on the seed's fixed candidate set: the same pairs for every method. */
  fixedAssessmentAccuracy?: number | null;
  scoreGap: number | null;
  refPerplexity: number;
  malformedRate: number;
  degraded: boolean;
  onsetStep: number | null;
  /** Fraction of training steps with a negative under its boundary, on the method's own scale. */
  boundActive?: number | null;
  /** Accuracy at the last validation evaluation: what a choice between variants may look at. */
  valAccuracy?: number | null;
  /** The test evaluation's per-question outcomes: what the paired table pairs. */
  perQuestion?: readonly QuestionOutcome[];
}

interface MeanStd {
  mean: number;
  std: number;
}

export interface TableRow {
  name: string;
  seeds: number;
  taskAccuracy: MeanStd;
  rerankAccuracy: MeanStd | null;
  majorityAccuracy: MeanStd | null;
  assessmentAccuracy: MeanStd | null;
  fixedAssessmentAccuracy: MeanStd | null;
  scoreGap: MeanStd | null;
  refPerplexity: MeanStd;
  malformedRate: MeanStd;
  boundActive: MeanStd | null;
  degraded: string;
}

const stats = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean: m, std: sd, n: xs.length };
};

/** Mean ± std over seeds per run name, in the grid's order. */
export function summarise(outcomes: readonly RunOutcome[], order: readonly string[]): TableRow[] {
  return order
    .map((name) => outcomes.filter((o) => o.name === name))
    .filter((rs) => rs.length > 0)
    .map((rs) => {
      const nums = (f: (o: RunOutcome) => number | null | undefined) =>
        rs.map(f).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
      const opt = (xs: number[]) => (xs.length ? stats(xs) : null);
      const deg = rs.filter((r) => r.degraded);
      const onsets = deg.map((r) => r.onsetStep).filter((s): s is number => s !== null);
      return {
        name: rs[0]!.name,
        seeds: rs.length,
        taskAccuracy: stats(nums((o) => o.taskAccuracy)),
        rerankAccuracy: opt(nums((o) => o.rerankAccuracy)),
        majorityAccuracy: opt(nums((o) => o.majorityAccuracy)),
        assessmentAccuracy: opt(nums((o) => o.assessmentAccuracy)),
        fixedAssessmentAccuracy: opt(nums((o) => o.fixedAssessmentAccuracy)),
        scoreGap: opt(nums((o) => o.scoreGap)),
        refPerplexity: stats(rs.map((o) => o.refPerplexity)),
        malformedRate: stats(nums((o) => o.malformedRate)),
        boundActive: opt(nums((o) => o.boundActive)),
        degraded: deg.length
          ? `${deg.length}/${rs.length} (step ${onsets.length ? Math.round(stats(onsets).mean) : '?'})`
          : `0/${rs.length}`,
      };
    });
}

const pm = (v: MeanStd | null, scale = 1, digits = 1) =>
  v ? `${(v.mean * scale).toFixed(digits)} ± ${(v.std * scale).toFixed(digits)}` : '—';

export function toMarkdown(rows: readonly TableRow[]): string {
  const head =
    '| method | seeds | greedy acc. % | rerank acc. % | majority acc. % | assessment acc. % (own / fixed set) | pos−neg gap | ref. perplexity | malformed % | bound active % of steps | degraded |';
  const sep = '|---|---|---|---|---|---|---|---|---|---|---|';
  const lines = rows.map(
    (r) =>
      `| ${r.name} | ${r.seeds} | ${pm(r.taskAccuracy, 100)} | ${pm(r.rerankAccuracy, 100)} | ${pm(r.majorityAccuracy, 100)} | ${pm(r.assessmentAccuracy, 100)} / ${pm(r.fixedAssessmentAccuracy, 100)} | ${pm(r.scoreGap, 1, 3)} | ${pm(r.refPerplexity, 1, 3)} | ${pm(r.malformedRate, 100)} | ${pm(r.boundActive, 100, 0)} | ${r.degraded} |`,
  );
  return [head, sep, ...lines].join('\n');
}

/**
 * Of `candidates` (run names), the one with the highest mean validation accuracy over seeds; null when none has a
 * validation accuracy. Ties go to the earlier candidate.
 */
export function chooseOnValidation(outcomes: readonly RunOutcome[], candidates: readonly string[]): string | null {
  let best: { name: string; acc: number } | null = null;
  for (const name of candidates) {
    const accs = outcomes
      .filter((o) => o.name === name && typeof o.valAccuracy === 'number')
      .map((o) => o.valAccuracy!);
    if (!accs.length) continue;
    const acc = stats(accs).mean;
    if (!best || acc > best.acc) best = { name, acc };
  }
  return best?.name ?? null;
}

/** The rows `pairedComparison` reads: every run's test outcomes under `rule`, its name as the arm. */
export function correctnessRows(outcomes: readonly RunOutcome[], rule: 'greedy' | 'rerank' = 'greedy') {
  const rows: CorrectnessRow[] = [];
  for (const o of outcomes)
    for (const q of o.perQuestion ?? []) {
      const correct = rule === 'greedy' ? q.correct : q.rerank;
      if (correct !== undefined) rows.push({ seed: o.seed, arm: o.name, questionId: q.id, correct });
    }
  return rows;
}

/** Each control against every other arm, paired on test questions (controls missing from the outcomes are skipped). */
export function pairedTables(
  outcomes: readonly RunOutcome[],
  controls: readonly string[],
  rule: 'greedy' | 'rerank' = 'greedy',
): PairedReport[] {
  const rows = correctnessRows(outcomes, rule);
  const arms = new Set(rows.map((r) => r.arm));
  return controls.filter((c) => arms.has(c)).map((c) => pairedComparison(rows, c, { seed: 1 }));
}

export interface ParentPoint {
  step: number;
  taskAccuracy: number;
}

export interface ParentOutcome {
  seed: number;
  /** The VFT parent's accuracy at each of its evaluations (validation, the last one test). */
  curve: ParentPoint[];
  stillRising: boolean;
}

/**
 * A parent still rising: the mean of its last three validation evaluations is more than two points above the mean
 * of the three before (one evaluation's change on 100 questions is noise). Alignment from it would measure catching
 * up as much as alignment (docs/statistics.md, "The reproduce protocol").
 */
export function stillRising(curve: readonly ParentPoint[]): boolean {
  const val = curve.slice(0, -1).map((c) => c.taskAccuracy); // the last point is the test evaluation
  if (val.length < 6) return false;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return mean(val.slice(-3)) - mean(val.slice(-6, -3)) > 0.02;
}

export function parentsMarkdown(parents: readonly ParentOutcome[]): string {
  const lines = [...parents]
    .sort((a, b) => a.seed - b.seed)
    .map((p) => {
      const curve = p.curve.map((c) => `${c.step}: ${(c.taskAccuracy * 100).toFixed(1)}`).join(', ');
      return `- seed ${p.seed}: ${curve}${p.stillRising ? ' — **still rising** on validation' : ''}`;
    });
  return ['VFT parents, accuracy % by step (the last point is the test split):', ...lines].join('\n');
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}`;
const interval = (i: [number, number] | null) => (i ? `[${pct(i[0])}, ${pct(i[1])}]` : '—');

/** A paired table as Markdown: one row per arm, in `order`; Δ in accuracy points. */
export function pairedMarkdown(report: PairedReport, order: readonly string[], chosen: string | null): string {
  const head = `| arm vs ${report.control} | Δ per seed (b/c, p) | mean Δ | t 95 % | bootstrap 95 % | wins | verdict |`;
  const sep = '|---|---|---|---|---|---|---|';
  const lines = order
    .filter((arm) => report.arms[arm])
    .map((arm) => {
      const a = report.arms[arm]!;
      const seeds = a.perSeed.map((s) => `${pct(s.delta)} (${s.b}/${s.c}, ${s.p.toPrecision(2)})`).join('; ');
      const name = arm === chosen ? `${arm} (chosen on val.)` : arm;
      return `| ${name} | ${seeds} | ${pct(a.meanDelta)} | ${interval(a.t95)} | ${interval(a.bootstrap95)} | ${a.wins}/${a.seeds} | ${verdict(a)} |`;
    });
  return [head, sep, ...lines].join('\n');
}
