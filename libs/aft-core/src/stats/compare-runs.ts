/**
 * Paired comparison of runs as a tracker holds them — each run an arm, a seed and its outcomes — rather than as
 * correctness rows: what the dashboard's paired table computes. The statistics are paired.ts's.
 */
import {
  compareSeeds,
  noiseBand,
  outcomeIndex,
  pairCounts,
  type ArmComparison,
  type PairedCounts,
  type PairedOptions,
  type RunOutcomes,
  type SeedComparison,
} from './paired';

export interface OutcomeRun extends RunOutcomes {
  id: string;
  arm: string;
  seed: number;
}

export interface RunSeedComparison extends SeedComparison {
  /** The arm's run of this seed and the control's run it was paired with. */
  runId: string;
  controlRunId: string;
}

export interface RunsComparison {
  control: string;
  /** The control is one run (say, an external baseline): every seed of every arm was paired with it. */
  singleControl: boolean;
  /** Δ between the control's own runs (noiseBand); null with fewer than two. */
  noise: { lo: number; hi: number; pairs: number } | null;
  arms: Record<string, Omit<ArmComparison, 'perSeed'> & { perSeed: RunSeedComparison[] }>;
  /** Arms with no seed (or no question) in common with the control. */
  unpaired: string[];
  /** Runs left out because an earlier run of their arm has the same seed (one run per arm and seed pairs). */
  skipped: { runId: string; arm: string; seed: number }[];
}

/** How many of the control's runs the noise band pairs (every two of them: 30 runs are 435 pairs). */
export const NOISE_BAND_RUNS = 30;

/** The first run of each seed, in the order given (a seed run twice counts once). */
function bySeed(runs: readonly OutcomeRun[]): Map<number, OutcomeRun> {
  const m = new Map<number, OutcomeRun>();
  for (const r of runs) if (!m.has(r.seed)) m.set(r.seed, r);
  return m;
}

/**
 * Every arm against `control`. A control with one run per seed pairs seed by seed; a control that is a single run
 * pairs with every seed. A seed of an arm that the control did not run, or with no question in common, is left
 * out; an arm left with no seed is `unpaired`.
 */
export function compareRuns(runs: readonly OutcomeRun[], control: string, opts: PairedOptions = {}): RunsComparison {
  const byArm = new Map<string, OutcomeRun[]>();
  for (const r of runs) byArm.set(r.arm, [...(byArm.get(r.arm) ?? []), r]);
  const ctlRuns = byArm.get(control);
  if (!ctlRuns) throw new RangeError(`control arm "${control}" has no runs`);
  const singleControl = ctlRuns.length === 1;
  const ctlBySeed = bySeed(ctlRuns);
  const indexes = new Map<string, Map<string, boolean>>();
  const indexOf = (r: OutcomeRun) => {
    let ix = indexes.get(r.id);
    if (!ix) indexes.set(r.id, (ix = outcomeIndex(r)));
    return ix;
  };
  const out: RunsComparison['arms'] = {};
  const unpaired: string[] = [];
  const skipped: RunsComparison['skipped'] = [];
  for (const [arm, armRuns] of byArm) {
    const first = bySeed(armRuns);
    for (const r of armRuns) if (first.get(r.seed) !== r) skipped.push({ runId: r.id, arm, seed: r.seed });
  }
  for (const [arm, armRuns] of byArm) {
    if (arm === control) continue;
    const paired: (PairedCounts & { runId: string; controlRunId: string })[] = [];
    for (const [seed, run] of [...bySeed(armRuns)].sort((a, b) => a[0] - b[0])) {
      const ctl = singleControl ? ctlRuns[0]! : ctlBySeed.get(seed);
      if (!ctl) continue;
      const counts = pairCounts(run, indexOf(ctl));
      if (counts.n) paired.push({ seed, ...counts, runId: run.id, controlRunId: ctl.id });
    }
    if (!paired.length) {
      unpaired.push(arm);
      continue;
    }
    const a = compareSeeds(paired, opts);
    out[arm] = {
      ...a,
      perSeed: a.perSeed.map((s, i) => ({ ...s, runId: paired[i]!.runId, controlRunId: paired[i]!.controlRunId })),
    };
  }
  const band = ctlRuns.length >= 2 ? noiseBand(ctlRuns.slice(0, NOISE_BAND_RUNS)) : null;
  return {
    control,
    singleControl,
    noise: band ? { lo: band.lo, hi: band.hi, pairs: band.deltas.length / 2 } : null,
    arms: out,
    unpaired,
    skipped,
  };
}
