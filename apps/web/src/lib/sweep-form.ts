/**
 * The sweep launcher's state and what it launches (components/SweepForm.tsx draws it): the form's fields, its
 * starting points, and the spec a state makes. Pure, so tested without a browser.
 */
import { ALIGN_METHODS, CONSTRAINTS, type PresetName } from '@aft/aft-core/spec';
import { isRecord } from './json';

/** What the form edits: lists are typed as text ("0.5, 1, 2") and parsed on every keystroke. */
export interface SweepFormState {
  name: string;
  project: string;
  preset: PresetName;
  methods: string[];
  constraints: string[];
  betas: string;
  lrs: string;
  seeds: string;
  ks: string;
  temperatures: string;
  steps: string;
  vftSteps: string;
  questions: string;
  maxConcurrent: string;
  onDegradation: 'flag' | 'stop';
  search: 'grid' | 'random';
  count: string;
  vftOverrides: string;
  alignOverrides: string;
  /** Train the VFT parents, the alignment runs, on a GPU (`resources` of the spec). */
  gpuParents: boolean;
  gpuAlign: boolean;
}

export const BASE: SweepFormState = {
  name: '',
  project: 'arith',
  preset: 'tiny',
  methods: ['aft'],
  constraints: ['none', 'boundary'],
  betas: '1',
  lrs: '3e-4',
  seeds: '1',
  ks: '8',
  temperatures: '0.8',
  steps: '60',
  vftSteps: '',
  questions: '300',
  maxConcurrent: '2',
  onDegradation: 'flag',
  search: 'grid',
  count: '10',
  vftOverrides: '',
  alignOverrides: '{"evalEvery": 20, "evalQuestions": 60, "evalAssessQuestions": 30, "eval.assessQuestions": 60}',
  gpuParents: false,
  gpuAlign: false,
};

export const SWEEP_PRESETS: { id: string; label: string; hint: string; state: Partial<SweepFormState> }[] = [
  {
    id: 'paper',
    label: "The paper's comparison",
    hint: 'continued VFT, RFT, AFT, DPO, RRHF, PRO × no constraint / detached / boundary, 3 seeds',
    state: {
      name: 'paper comparison',
      methods: [...ALIGN_METHODS],
      constraints: [...CONSTRAINTS],
      betas: '1',
      seeds: '1, 2, 3',
      steps: '60',
      questions: '500',
    },
  },
  {
    id: 'beta',
    label: 'A β sweep',
    hint: 'AFT with the boundary constraint at five β, 3 seeds',
    state: {
      name: 'β sweep',
      methods: ['aft'],
      constraints: ['boundary'],
      betas: '0.25, 0.5, 1, 2, 4',
      seeds: '1, 2, 3',
    },
  },
  {
    id: 'smoke',
    label: 'Quick smoke test',
    hint: 'a short VFT parent and four short alignment runs (a minute or two)',
    state: {
      name: 'smoke',
      methods: ['aft', 'dpo'],
      constraints: ['none', 'boundary'],
      betas: '1',
      seeds: '1',
      steps: '12',
      vftSteps: '60',
      questions: '24',
      vftOverrides: '{"evalEvery": 30, "evalQuestions": 16, "data.test": 40}',
      alignOverrides:
        '{"evalEvery": 6, "evalQuestions": 16, "evalAssessQuestions": 8, "eval.assessQuestions": 8, "spec.groupsPerStep": 4}',
    },
  },
];

export type Errors = Record<string, string>;
/** The fields edited as free text (lists too). */
export type TextField = {
  [K in keyof SweepFormState]: string extends SweepFormState[K] ? K : never;
}[keyof SweepFormState];

/** The object without its undefined entries: what was left empty is left out, so the spec's defaults apply. */
const filled = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

function numbers(text: string, field: string, errors: Errors): number[] | undefined {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (!parts.length) return undefined;
  const bad = parts.find((p) => !Number.isFinite(Number(p)));
  if (bad !== undefined) {
    errors[field] = `"${bad}" is not a number; give numbers separated by commas`;
    return undefined;
  }
  return parts.map(Number);
}

function json(text: string, field: string, errors: Errors): Record<string, unknown> | undefined {
  if (!text.trim()) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (isRecord(v)) return v;
    errors[field] = 'give a JSON object, e.g. {"optim.lr": 0.001}';
  } catch (e) {
    errors[field] = `not JSON: ${(e as Error).message}`;
  }
  return undefined;
}

/**
 * Form state → a draft of the sweep spec, with the form's own parse errors keyed by spec path. The draft is what the
 * sweep spec's schema then checks (SweepForm): only what passes it is launched.
 */
export function specOf(s: SweepFormState): { spec: Record<string, unknown>; errors: Errors } {
  const errors: Errors = {};
  const one = (text: string, field: string) => {
    if (!text.trim()) return undefined;
    const n = Number(text);
    if (!Number.isFinite(n)) errors[field] = `"${text}" is not a number`;
    return n;
  };
  const axis = <T>(v: T[] | undefined) => (v && v.length ? v : undefined);
  const spec = filled({
    name: s.name,
    project: s.project,
    base: filled({
      preset: s.preset,
      steps: one(s.steps, 'base.steps'),
      vftSteps: one(s.vftSteps, 'base.vftSteps'),
      questions: one(s.questions, 'base.questions'),
      vftOverrides: json(s.vftOverrides, 'base.vftOverrides', errors),
      alignOverrides: json(s.alignOverrides, 'base.alignOverrides', errors),
    }),
    axes: filled({
      method: s.methods,
      constraint: s.constraints,
      beta: axis(numbers(s.betas, 'axes.beta', errors)),
      lr: axis(numbers(s.lrs, 'axes.lr', errors)),
      seed: axis(numbers(s.seeds, 'axes.seed', errors)),
      k: axis(numbers(s.ks, 'axes.k', errors)),
      temperature: axis(numbers(s.temperatures, 'axes.temperature', errors)),
    }),
    maxConcurrent: one(s.maxConcurrent, 'maxConcurrent'),
    onDegradation: s.onDegradation,
    search: s.search === 'grid' ? { kind: 'grid' } : { kind: 'random', count: one(s.count, 'search.count') ?? 0 },
    // only what asks for a GPU: a CPU sweep's spec stays as it was
    resources:
      s.gpuParents || s.gpuAlign
        ? filled({ vft: s.gpuParents ? { gpu: 1 } : undefined, align: s.gpuAlign ? { gpu: 1 } : undefined })
        : undefined,
  });
  return { spec, errors };
}
