'use client';
import { useRouter } from 'next/navigation';
import { useMemo, useState } from 'react';
import { ALIGN_METHODS, CONSTRAINTS, METHOD_LABELS } from '@aft/aft-core/spec';
import { MAX_SWEEP_RUNS, planSweep, sweepSpec } from '@aft/queue/spec';
import { isRecord } from '../lib/json';
import { trpc } from '../lib/trpc';

/** What the form edits: lists are typed as text ("0.5, 1, 2") and parsed on every keystroke. */
export interface SweepFormState {
  name: string;
  project: string;
  preset: 'tiny' | 'small';
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
}

const BASE: SweepFormState = {
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

type Errors = Record<string, string>;
/** The fields edited as free text (lists too). */
type TextField = { [K in keyof SweepFormState]: string extends SweepFormState[K] ? K : never }[keyof SweepFormState];

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
  const axis = <T,>(v: T[] | undefined) => (v && v.length ? v : undefined);
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
  });
  return { spec, errors };
}

/** The sweep launcher: a form over the sweep spec, validated as you type, with the number of runs it will create. */
export function SweepForm({ projects, initialProject }: { projects: string[]; initialProject?: string }) {
  const router = useRouter();
  const [state, setState] = useState<SweepFormState>({ ...BASE, project: initialProject ?? BASE.project });
  const [submitting, setSubmitting] = useState(false);
  const [serverError, setServerError] = useState<string | null>(null);
  const set = <K extends keyof SweepFormState>(k: K, v: SweepFormState[K]) => setState((s) => ({ ...s, [k]: v }));

  const { valid, errors, plan } = useMemo(() => {
    const { spec, errors } = specOf(state);
    const parsed = sweepSpec.safeParse(spec);
    if (!parsed.success) {
      for (const i of parsed.error.issues) {
        const path = i.path.filter((p) => typeof p === 'string').join('.') || 'spec';
        errors[path] ??= i.message;
      }
    }
    // what launches is the spec as checked, so the run count shown is the one created
    const valid = parsed.success && !Object.keys(errors).length ? parsed.data : null;
    return { valid, errors, plan: valid ? planSweep(valid) : null };
  }, [state]);

  const err = (...paths: string[]) => {
    const hit = Object.entries(errors).find(([k]) => paths.some((p) => k === p || k.startsWith(`${p}.`)));
    return hit ? (
      <div className="field-error" role="alert">
        {hit[1]}
      </div>
    ) : null;
  };
  const toggle = (k: 'methods' | 'constraints', v: string) =>
    set(k, state[k].includes(v) ? state[k].filter((x) => x !== v) : [...state[k], v]);

  const launch = async () => {
    if (!valid) return;
    setSubmitting(true);
    setServerError(null);
    try {
      const res = await trpc.sweeps.launch.mutate(valid);
      router.push(`/sweeps/${res.sweepId}`);
    } catch (e) {
      setServerError((e as Error).message);
      setSubmitting(false);
    }
  };

  const text = (k: TextField, label: string, path: string, hint?: string) => (
    <label className="field">
      <span>{label}</span>
      <input
        value={state[k]}
        onChange={(e) => set(k, e.target.value)}
        aria-label={label}
        aria-invalid={Boolean(err(path))}
        placeholder={hint}
      />
      {err(path)}
    </label>
  );

  return (
    <form
      className="sweep-form"
      onSubmit={(e) => {
        e.preventDefault();
        if (plan) void launch();
      }}
    >
      <div className="presets">
        <span className="muted">Start from:</span>
        {SWEEP_PRESETS.map((p) => (
          <button
            type="button"
            key={p.id}
            title={p.hint}
            data-preset={p.id}
            onClick={() => setState({ ...BASE, project: state.project, ...p.state })}
          >
            {p.label}
          </button>
        ))}
      </div>
      <div className="form-grid panel">
        {text('name', 'Name', 'name')}
        <label className="field">
          <span>Project</span>
          <input
            list="projects"
            value={state.project}
            onChange={(e) => set('project', e.target.value)}
            aria-label="Project"
          />
          <datalist id="projects">
            {projects.map((p) => (
              <option key={p} value={p} />
            ))}
          </datalist>
          {err('project')}
        </label>
        <label className="field">
          <span>Model preset</span>
          <select
            value={state.preset}
            onChange={(e) => set('preset', e.target.value as 'tiny' | 'small')}
            aria-label="Model preset"
          >
            <option value="tiny">tiny (2 layers, d=64)</option>
            <option value="small">small (4 layers, d=192)</option>
          </select>
        </label>
        <fieldset className="field wide">
          <legend>Methods</legend>
          {ALIGN_METHODS.map((m) => (
            <label key={m} className="check">
              <input type="checkbox" checked={state.methods.includes(m)} onChange={() => toggle('methods', m)} />{' '}
              {METHOD_LABELS[m]}
            </label>
          ))}
          {err('axes.method')}
        </fieldset>
        <fieldset className="field wide">
          <legend>Constraints</legend>
          {CONSTRAINTS.map((c) => (
            <label key={c} className="check">
              <input
                type="checkbox"
                checked={state.constraints.includes(c)}
                onChange={() => toggle('constraints', c)}
              />{' '}
              {c}
            </label>
          ))}
          {err('axes.constraint')}
        </fieldset>
        {text('betas', 'β (boundary)', 'axes.beta', '0.5, 1, 2')}
        {text('lrs', 'Learning rates', 'axes.lr', '3e-4')}
        {text('seeds', 'Seeds', 'axes.seed', '1, 2, 3')}
        {text('ks', 'k (samples per question)', 'axes.k', '8')}
        {text('temperatures', 'Sampling temperature', 'axes.temperature', '0.8')}
        {text('steps', 'Alignment steps', 'base.steps')}
        {text('vftSteps', 'VFT steps (blank: the preset’s)', 'base.vftSteps')}
        {text('questions', 'Questions sampled', 'base.questions')}
        {text('maxConcurrent', 'Runs at once (max)', 'maxConcurrent')}
        <label className="field">
          <span>When a run degrades</span>
          <select
            value={state.onDegradation}
            onChange={(e) => set('onDegradation', e.target.value as 'flag' | 'stop')}
            aria-label="When a run degrades"
          >
            <option value="flag">flag it (event only)</option>
            <option value="stop">stop it</option>
          </select>
        </label>
        <label className="field">
          <span>Search</span>
          <select
            value={state.search}
            onChange={(e) => set('search', e.target.value as 'grid' | 'random')}
            aria-label="Search"
          >
            <option value="grid">grid (every combination)</option>
            <option value="random">random (distinct draws)</option>
          </select>
        </label>
        {state.search === 'random' ? text('count', 'Random draws', 'search.count') : null}
        <label className="field wide">
          <span>VFT overrides (JSON)</span>
          <input
            value={state.vftOverrides}
            onChange={(e) => set('vftOverrides', e.target.value)}
            aria-label="VFT overrides"
            placeholder='{"optim.lr": 0.006}'
          />
          {err('base.vftOverrides')}
        </label>
        <label className="field wide">
          <span>Alignment overrides (JSON)</span>
          <input
            value={state.alignOverrides}
            onChange={(e) => set('alignOverrides', e.target.value)}
            aria-label="Alignment overrides"
          />
          {err('base.alignOverrides')}
        </label>
      </div>
      {['axes', 'spec', 'search', 'base'].map((k) =>
        errors[k] ? (
          <div key={k} className="error" role="alert">
            {k === 'spec' ? '' : `${k}: `}
            {errors[k]}
          </div>
        ) : null,
      )}
      {serverError ? (
        <div className="error" role="alert">
          {serverError}
        </div>
      ) : null}
      <div className="launch-bar">
        <span data-testid="run-count">
          {plan
            ? `${plan.runs.length} alignment run${plan.runs.length === 1 ? '' : 's'} from ${plan.parents.length} VFT parent${plan.parents.length === 1 ? '' : 's'} (max ${MAX_SWEEP_RUNS})`
            : 'fix the fields marked above'}
        </span>
        <button type="submit" className="primary" disabled={!plan || submitting}>
          {submitting ? 'Launching…' : plan ? `Launch ${plan.runs.length + plan.parents.length} runs` : 'Launch'}
        </button>
      </div>
    </form>
  );
}
