'use client';
/**
 * The compare page's paired comparison (docs/statistics.md): every arm against a control on the same questions and
 * seeds — mean Δ, the paired-bootstrap interval the verdict reads, wins, McNemar's b/c per seed — and a dot strip per
 * arm on one shared axis. The page computes it on the server (compare.paired); control and metric live in the URL
 * (`?control=…&paired=test/greedy`), so a choice is a navigation and a link shares it.
 */
import { usePathname, useRouter, useSearchParams } from 'next/navigation';
import { useTransition } from 'react';
import type { RouterOutputs } from '@aft/api';
import { PAIRED_RULES } from '@aft/contracts';

export type PairedData = RouterOutputs['compare']['paired'];
type Comparison = PairedData['comparisons'][number];

const RULE_LABEL: Record<string, string> = {
  greedy: 'greedy',
  rerank: 'best-of-k rerank',
  majority: 'majority vote',
};

/** `test/greedy` → "Task accuracy · greedy"; another evaluation split is named ("val: …"). */
export function metricLabel(split: string): string {
  const cut = split.lastIndexOf('/');
  const [evalSplit, rule] = [split.slice(0, cut), split.slice(cut + 1)];
  const what = rule === 'assess' ? 'Assessment accuracy · fixed pairs' : `Task accuracy · ${RULE_LABEL[rule] ?? rule}`;
  return evalSplit === 'test' ? what : `${evalSplit}: ${what}`;
}

/** A fraction as signed percentage points: 0.153 → "+15.3". */
const pp = (x: number) => `${x > 0 ? '+' : x < 0 ? '−' : ''}${Math.abs(x * 100).toFixed(1)}`;
const interval = (iv: readonly [number, number] | null) => (iv ? `[${pp(iv[0])}, ${pp(iv[1])}]` : '—');
/** An axis tick in pp, without a trailing ".0" (ticks fall on whole or half points). */
const tickLabel = (t: number) => (t === 0 ? '0' : pp(t).replace(/\.0$/, ''));
const pValue = (p: number) => (p >= 0.001 ? p.toFixed(3) : p.toExponential(0));

/** One axis for every strip: all dots, intervals, the noise band and 0, padded a little. */
function axisDomain(data: PairedData): [number, number] {
  const xs = [0];
  for (const c of data.comparisons) xs.push(...c.perSeed.map((s) => s.delta), ...c.bootstrap95);
  if (data.noise) xs.push(data.noise.lo, data.noise.hi);
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  const pad = Math.max((hi - lo) * 0.08, 0.005);
  return [lo - pad, hi + pad];
}

const W = 280;
const H = 26;

function ticks([lo, hi]: [number, number]): number[] {
  const span = (hi - lo) * 100;
  const step = [1, 2, 5, 10, 20, 25, 50].find((s) => span / s <= 6) ?? 100;
  const out: number[] = [];
  for (let t = Math.ceil((lo * 100) / step) * step; t <= hi * 100; t += step) out.push(t / 100);
  return out;
}

function Strip({ c, domain, noise }: { c: Comparison; domain: [number, number]; noise: PairedData['noise'] }) {
  const x = (v: number) => ((v - domain[0]) / (domain[1] - domain[0])) * W;
  const [lo, hi] = c.bootstrap95;
  return (
    <svg width={W} height={H} className="strip" data-testid="paired-strip" role="img" aria-label={`Δ per seed`}>
      {noise ? (
        <rect
          className="noise"
          x={x(noise.lo)}
          y={0}
          width={Math.max(x(noise.hi) - x(noise.lo), 1)}
          height={H}
          data-testid="paired-noise"
        />
      ) : null}
      <line className="zero" x1={x(0)} x2={x(0)} y1={0} y2={H} />
      <rect
        className={`ci ${c.verdict === 'within noise' ? 'noise-verdict' : c.verdict}`}
        x={x(lo)}
        y={H / 2 - 3}
        width={Math.max(x(hi) - x(lo), 2)}
        height={6}
        rx={3}
      >
        <title>{`95% bootstrap interval ${interval(c.bootstrap95)} pp`}</title>
      </rect>
      <line className="mean" x1={x(c.meanDelta)} x2={x(c.meanDelta)} y1={H / 2 - 7} y2={H / 2 + 7} />
      {c.perSeed.map((s) => (
        <circle key={s.seed} className="dot" cx={x(s.delta)} cy={H / 2} r={4} data-testid="paired-dot">
          <title>{`seed ${s.seed} (${s.runName}): Δ ${pp(s.delta)} pp, b ${s.b}, c ${s.c}, n ${s.n}, McNemar p ${pValue(s.p)}`}</title>
        </circle>
      ))}
    </svg>
  );
}

function Axis({ domain }: { domain: [number, number] }) {
  const x = (v: number) => ((v - domain[0]) / (domain[1] - domain[0])) * W;
  return (
    <svg width={W} height={16} className="strip-axis" aria-hidden>
      {ticks(domain).map((t) => (
        <text key={t} x={x(t)} y={12} textAnchor="middle">
          {tickLabel(t)}
        </text>
      ))}
    </svg>
  );
}

function Empty({ data }: { data: PairedData }) {
  if (!data.splits.length) {
    return (
      <div className="empty" data-testid="paired-empty">
        None of these runs logged per-question outcomes, so no method can be compared with another on the same
        questions. A run logs them as one sample per test question in a split named for the decision rule, with sample
        index 0, empty prompt and completion, and <code>correct</code> set —{' '}
        <code>{`{ step, split: 'test/greedy', questionId: 'q17', prompt: '', completion: '', correct: true }`}</code>{' '}
        (also <code>test/rerank</code>, <code>test/majority</code>). Runs the platform trains log them at their test
        evaluation. See the README, section “Per-question outcomes” (<code>README.md#logging-samples</code>).
      </div>
    );
  }
  return (
    <div className="empty" data-testid="paired-empty">
      None of these runs has {metricLabel(data.split)} outcomes; pick another metric above (they have{' '}
      {data.splits.map(metricLabel).join(', ')}).
    </div>
  );
}

export function PairedView({ data, notice }: { data: PairedData; notice?: string | undefined }) {
  const router = useRouter();
  const pathname = usePathname();
  const params = useSearchParams();
  const [pending, start] = useTransition();
  const go = (key: 'control' | 'paired', value: string) => {
    const next = new URLSearchParams(params.toString());
    next.set(key, value);
    start(() => router.replace(`${pathname}?${next.toString()}`, { scroll: false }));
  };
  const metrics = [...new Set([data.split, ...data.splits, ...PAIRED_RULES.map((r) => `test/${r}`)])];
  const domain = axisDomain(data);
  const { control } = data;
  return (
    <div className="panel paired" data-testid="paired" aria-busy={pending}>
      <div className="toolbar">
        <label>
          Metric{' '}
          <select value={data.split} onChange={(e) => go('paired', e.target.value)} aria-label="paired metric">
            {metrics.map((m) => (
              <option key={m} value={m} disabled={m !== data.split && !data.splits.includes(m)}>
                {metricLabel(m)}
                {m !== data.split && !data.splits.includes(m) ? ' (not logged)' : ''}
              </option>
            ))}
          </select>
        </label>
        {control ? (
          <label>
            Control{' '}
            <select value={control.key} onChange={(e) => go('control', e.target.value)} aria-label="paired control">
              {data.arms.map((a) => (
                <option key={a.key} value={a.key}>
                  {a.label} ({a.runs} run{a.runs === 1 ? '' : 's'})
                </option>
              ))}
            </select>
          </label>
        ) : null}
        <span className="muted">
          {data.runsWithOutcomes} of {data.runs} runs have these outcomes
          {pending ? ' · updating…' : ''}
        </span>
      </div>
      {notice ? <div className="warnbox">{notice}</div> : null}
      {!control ? (
        <Empty data={data} />
      ) : !data.comparisons.length ? (
        <div className="empty" data-testid="paired-empty">
          Only {control.label} has {metricLabel(data.split)} outcomes that pair with it: nothing to compare it with.
        </div>
      ) : (
        <>
          <div className="muted paired-note">
            Δ = arm − {control.label}, in percentage points, on the questions both answered;{' '}
            {control.single
              ? 'the control is a single run: every seed is paired with it.'
              : 'paired seed by seed (the same parent, the same questions).'}{' '}
            {data.noise
              ? `Shaded: ${control.label}'s own seeds differ by ${pp(data.noise.lo)} to ${pp(data.noise.hi)} pp (${data.noise.pairs} pair${data.noise.pairs === 1 ? '' : 's'}).`
              : ''}
          </div>
          <table className="data paired-table" data-testid="paired-table">
            <thead>
              <tr>
                <th>Arm</th>
                <th className="num">Mean Δ (pp)</th>
                <th className="num">95% bootstrap</th>
                <th className="num">t-interval</th>
                <th className="num">Wins</th>
                <th className="num">McNemar b/c per seed</th>
                <th>Verdict</th>
                <th>Δ per seed · interval</th>
              </tr>
            </thead>
            <tbody>
              {data.comparisons.map((c) => (
                <tr key={c.key} data-arm={c.key} data-testid="paired-row">
                  <td>{c.label}</td>
                  <td className="num">{pp(c.meanDelta)}</td>
                  <td className="num">{interval(c.bootstrap95)}</td>
                  <td className="num muted">{interval(c.t95)}</td>
                  <td className="num">
                    {c.wins}/{c.seeds}
                  </td>
                  <td className="num" title={c.perSeed.map((s) => `seed ${s.seed}: p ${pValue(s.p)}`).join('\n')}>
                    {c.perSeed.map((s) => `${s.b}/${s.c}`).join(' · ')}
                  </td>
                  <td>
                    <span
                      className={`verdict ${c.verdict === 'within noise' ? 'noise' : c.verdict}`}
                      data-testid="paired-verdict"
                    >
                      {c.verdict}
                    </span>
                  </td>
                  <td>
                    <Strip c={c} domain={domain} noise={data.noise} />
                  </td>
                </tr>
              ))}
            </tbody>
            <tfoot>
              <tr>
                <td colSpan={7} className="muted">
                  {data.unpaired.length
                    ? `No seed in common with ${control.label}: ${data.unpaired.map((u) => u.label).join(', ')}. `
                    : ''}
                  {data.skipped.length
                    ? `One run per arm and seed pairs; left out: ${data.skipped
                        .slice(0, 5)
                        .map((s) => `${s.runName} (${s.label}, seed ${s.seed})`)
                        .join(', ')}${data.skipped.length > 5 ? ` and ${data.skipped.length - 5} more` : ''}.`
                    : ''}
                </td>
                <td>
                  <Axis domain={domain} />
                </td>
              </tr>
            </tfoot>
          </table>
        </>
      )}
    </div>
  );
}
