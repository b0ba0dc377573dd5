/**
 * A training run's progress, as the worker writes it into the run's summary while the run trains and the dashboard
 * reads it back (the run page's bar, the sweep grid). The one channel for progress: docs/architecture.md, "The job
 * contract".
 */

export const PROGRESS_PREFIX = 'progress/';

/** The summary keys; `null` removes one (the worker clears eta and phase when a run ends). */
export const PROGRESS_KEYS = {
  step: 'progress/step',
  total: 'progress/total',
  etaSeconds: 'progress/eta_s',
  phase: 'progress/phase',
} as const;

export const PROGRESS_PHASES = ['train', 'sample', 'eval'] as const;
export type ProgressPhase = (typeof PROGRESS_PHASES)[number];

export interface RunProgress {
  step: number;
  total: number;
  etaSeconds: number | null;
  phase: ProgressPhase;
}

/** The summary entries that say `p`. */
export function progressSummary(p: RunProgress): Record<string, number | string | null> {
  return {
    [PROGRESS_KEYS.step]: p.step,
    [PROGRESS_KEYS.total]: p.total,
    [PROGRESS_KEYS.etaSeconds]: p.etaSeconds,
    [PROGRESS_KEYS.phase]: p.phase,
  };
}

/** A running run's progress read back from its summary; null when it is not running or has said none. */
export function progressOf(summary: Record<string, unknown>, status: string): RunProgress | null {
  const step = summary[PROGRESS_KEYS.step];
  const total = summary[PROGRESS_KEYS.total];
  if (status !== 'running' || typeof step !== 'number' || typeof total !== 'number') return null;
  const eta = summary[PROGRESS_KEYS.etaSeconds];
  const phase = summary[PROGRESS_KEYS.phase];
  return {
    step,
    total,
    etaSeconds: typeof eta === 'number' ? eta : null,
    phase: PROGRESS_PHASES.includes(phase as ProgressPhase) ? (phase as ProgressPhase) : 'train',
  };
}
