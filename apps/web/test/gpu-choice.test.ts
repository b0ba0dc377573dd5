/**
 * The dashboard's side of GPU jobs (docs/architecture.md, "GPU jobs"): the sweep launcher's two GPU boxes become the
 * spec's `resources` (only when one is ticked), which the sweep schema accepts and plans; the runs table's "Trained
 * on" reads the params a worker recorded, else the backend column of runs trained before.
 */
import { describe, expect, it } from 'vitest';
import { planSweep, sweepSpec } from '@aft/queue/spec';
import { HIDEABLE_COLUMNS, parseRunsView } from '../src/lib/runs-url';
import { specOf, type SweepFormState } from '../src/lib/sweep-form';
import { statusTitle, trainedOn, trainedOnText } from '../src/lib/trained-on';

const form = (gpuParents: boolean, gpuAlign: boolean): SweepFormState => ({
  name: 'gpu',
  project: 'p',
  preset: 'tiny',
  methods: ['aft'],
  constraints: ['none'],
  betas: '1',
  lrs: '3e-4',
  seeds: '1',
  ks: '8',
  temperatures: '0.8',
  steps: '10',
  vftSteps: '',
  questions: '30',
  maxConcurrent: '2',
  onDegradation: 'flag',
  search: 'grid',
  count: '10',
  vftOverrides: '',
  alignOverrides: '',
  gpuParents,
  gpuAlign,
});

describe('the sweep launcher’s GPU choice', () => {
  it.each([
    [true, false, { vft: { gpu: 1 } }, { vft: { gpu: 1 }, align: { gpu: 0 } }],
    [false, true, { align: { gpu: 1 } }, { vft: { gpu: 0 }, align: { gpu: 1 } }],
    [true, true, { vft: { gpu: 1 }, align: { gpu: 1 } }, { vft: { gpu: 1 }, align: { gpu: 1 } }],
  ])('parents %s, alignment %s: the spec asks for %j', (parents, align, resources, stages) => {
    const { spec, errors } = specOf(form(parents, align));
    expect(errors).toEqual({});
    expect(spec['resources']).toEqual(resources);
    expect(planSweep(sweepSpec.parse(spec)).resources).toEqual(stages);
  });

  it('leaves resources out of a CPU sweep’s spec', () => {
    const { spec } = specOf(form(false, false));
    expect(spec).not.toHaveProperty('resources');
    expect(planSweep(sweepSpec.parse(spec)).resources).toEqual({ vft: { gpu: 0 }, align: { gpu: 0 } });
  });
});

describe('the runs table’s "Trained on"', () => {
  const cell = (config: Record<string, unknown>, backend: string | null) => trainedOnText(trainedOn(config, backend));

  it('shows the backend, the adapter’s device and the host, the whole adapter in the title', () => {
    const adapter = 'mesa, software, llvmpipe-llvm-15, llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)';
    const config = { seed: 1, backend: 'webgpu', 'backend.adapter': adapter, 'worker.host': 'gpu-1' };
    expect(trainedOn(config, 'webgpu')).toEqual({ backend: 'webgpu', adapter, host: 'gpu-1' });
    expect(cell(config, 'webgpu')).toEqual({
      body: 'webgpu · llvmpipe / gpu-1',
      title: `webgpu · ${adapter} · on gpu-1`,
    });
    const h200 = { backend: 'webgpu', 'backend.adapter': 'nvidia, hopper, 0x2335, NVIDIA H200', 'worker.host': 'g' };
    expect(cell(h200, 'webgpu').body).toBe('webgpu · NVIDIA H200 / g');
    expect(cell({ backend: 'wasm', 'worker.host': 'cpu-3' }, 'wasm').body).toBe('wasm / cpu-3');
  });

  it('falls back to the backend column for runs trained before the record, and to a dash for none', () => {
    expect(trainedOn({ seed: 1 }, 'tensorflow')).toEqual({ backend: 'tensorflow', adapter: null, host: null });
    expect(cell({}, null)).toEqual({ body: '—' });
  });

  it('is a column a view may hide', () => {
    expect(HIDEABLE_COLUMNS).toContain('trained');
    expect(parseRunsView({ hide: 'trained' }).hide).toEqual(['trained']);
  });
});

describe('the runs table status title', () => {
  it('says a queued run that asked for a GPU waits for a GPU worker, and nothing else', () => {
    expect(statusTitle('queued', { resources: { gpu: 1 } })).toBe('queued: waiting for a GPU worker');
    expect(statusTitle('running', { resources: { gpu: 1 } })).toBeUndefined();
    expect(statusTitle('queued', { resources: { gpu: 0 } })).toBeUndefined();
    expect(statusTitle('queued', {})).toBeUndefined();
    expect(statusTitle('queued', null)).toBeUndefined();
  });
});
