'use client';
import Link from 'next/link';
import { useRouter } from 'next/navigation';
import { useMemo, useState } from 'react';
import { ALIGN_METHODS, CONSTRAINTS, METHOD_LABELS, type PresetName } from '@aft/aft-core/spec';
import { MAX_SWEEP_RUNS, planSweep, sweepSpec } from '@aft/queue/spec';
import { BASE, specOf, SWEEP_PRESETS, type SweepFormState, type TextField } from '../lib/sweep-form';
import { trpc } from '../lib/trpc';

export { specOf, SWEEP_PRESETS, type SweepFormState } from '../lib/sweep-form';

/** The sweep launcher: a form over the sweep spec, validated as you type, with the number of runs it will create. */
export function SweepForm({ projects, initialProject }: { projects: string[]; initialProject?: string }) {
  const router = useRouter();
  const [state, setState] = useState<SweepFormState>({ ...BASE, project: initialProject ?? BASE.project });
  const [submitting, setSubmitting] = useState(false);
  const [serverError, setServerError] = useState<string | null>(null);
  // a launch the server warned about (no GPU worker): the warning stays up, with a link on, instead of navigating
  const [launched, setLaunched] = useState<{ href: string; warning: string } | null>(null);
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
  const gpu = (k: 'gpuParents' | 'gpuAlign', label: string) => (
    <label className="check">
      <input type="checkbox" checked={state[k]} onChange={() => set(k, !state[k])} aria-label={label} /> {label}
    </label>
  );
  const toggle = (k: 'methods' | 'constraints', v: string) =>
    set(k, state[k].includes(v) ? state[k].filter((x) => x !== v) : [...state[k], v]);

  const launch = async () => {
    if (!valid) return;
    setSubmitting(true);
    setServerError(null);
    try {
      const res = await trpc.sweeps.launch.mutate(valid);
      if (res.warning) setLaunched({ href: `/sweeps/${res.sweepId}`, warning: res.warning });
      else router.push(`/sweeps/${res.sweepId}`);
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
            onClick={() =>
              // where it trains is the cluster's concern, not the experiment's: a preset keeps it
              setState({
                ...BASE,
                project: state.project,
                gpuParents: state.gpuParents,
                gpuAlign: state.gpuAlign,
                ...p.state,
              })
            }
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
            onChange={(e) => set('preset', e.target.value as PresetName)}
            aria-label="Model preset"
          >
            <option value="tiny">tiny (2 layers, d=64)</option>
            <option value="small">small (4 layers, d=192)</option>
            <option value="medium">medium (8 layers, d=512: for a GPU)</option>
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
        <fieldset className="field wide">
          <legend>GPU</legend>
          {gpu('gpuParents', 'VFT parents on a GPU')}
          {gpu('gpuAlign', 'Alignment runs on a GPU')}
          <span className="muted"> GPU jobs wait for a worker started with AFT_WORKER_GPUS.</span>
          {err('resources')}
        </fieldset>
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
      {launched ? (
        <div className="warnbox" role="status" data-testid="launch-warning">
          Launched; {launched.warning}. <Link href={launched.href}>Open the sweep</Link>
        </div>
      ) : null}
      <div className="launch-bar">
        <span data-testid="run-count">
          {plan
            ? `${plan.runs.length} alignment run${plan.runs.length === 1 ? '' : 's'} from ${plan.parents.length} VFT parent${plan.parents.length === 1 ? '' : 's'} (max ${MAX_SWEEP_RUNS})`
            : 'fix the fields marked above'}
        </span>
        <button type="submit" className="primary" disabled={!plan || submitting}>
          {launched
            ? 'Launched'
            : submitting
              ? 'Launching…'
              : plan
                ? `Launch ${plan.runs.length + plan.parents.length} runs`
                : 'Launch'}
        </button>
      </div>
    </form>
  );
}
