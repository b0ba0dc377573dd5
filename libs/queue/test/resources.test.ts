/**
 * What a launch asks of its worker (`resources`): a run's `{ gpu: 0 | 1 }` and a sweep's, for all its jobs or per stage
 * (VFT parents, alignment runs), with the bounds of `@aft/aft-core/spec`; anything else names its field.
 */
import { RESOURCE_BOUNDS, SWEEP_STAGES } from '@aft/aft-core/spec';
import { describe, expect, it } from 'vitest';
import { planSweep, releaseJobPayload, resourcesSpec, stageResourcesOf, sweepSpec, trainQueueName } from '../src';

const sweep = (resources: unknown) => ({ name: 's', project: 'p', resources });
const issues = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  (r.error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);

describe('a run’s resources', () => {
  it('is a GPU count within the spec’s bounds, none by default', () => {
    expect(resourcesSpec.parse({})).toEqual({ gpu: 0 });
    expect(resourcesSpec.parse({ gpu: RESOURCE_BOUNDS.gpu.max })).toEqual({ gpu: 1 });
  });

  it.each([
    [{ gpu: 2 }, 'gpu: gpu is at most 1'],
    [{ gpu: -1 }, 'gpu: gpu must be ≥ 0'],
    [{ gpu: 0.5 }, 'gpu: gpu must be an integer'],
    [{ gpu: '1' }, 'gpu: '],
    [{ gpus: 1 }, ''],
  ])('refuses %j, naming the field', (input, message) => {
    const r = resourcesSpec.safeParse(input);
    expect(r.success).toBe(false);
    expect(issues(r)[0]).toContain(message);
  });

  it('routes a job that asks for a GPU to the GPU queue, any other to the CPU queue', () => {
    expect(trainQueueName('q', { gpu: 1 })).toBe('q-gpu');
    expect(trainQueueName('q', { gpu: 0 })).toBe('q');
    expect(trainQueueName('q', undefined)).toBe('q');
  });

  it('keeps a release job queued before GPU jobs existed on the CPU queue', () => {
    const old = { sweepId: 's', parentRunId: 'p', lanes: 1, runs: [] };
    expect(releaseJobPayload.parse(old).resources).toEqual({ gpu: 0 });
  });
});

describe('a sweep’s resources', () => {
  it.each([
    [undefined, { vft: { gpu: 0 }, align: { gpu: 0 } }],
    [{ gpu: 1 }, { vft: { gpu: 1 }, align: { gpu: 1 } }],
    [{ vft: { gpu: 1 } }, { vft: { gpu: 1 }, align: { gpu: 0 } }],
    [
      { gpu: 1, align: { gpu: 0 } },
      { vft: { gpu: 1 }, align: { gpu: 0 } },
    ],
    [{ align: { gpu: 1 } }, { vft: { gpu: 0 }, align: { gpu: 1 } }],
  ])('%j puts the stages on %j', (resources, stages) => {
    const spec = sweepSpec.parse(sweep(resources));
    expect(stageResourcesOf(spec.resources)).toEqual(stages);
    expect(planSweep(spec).resources).toEqual(stages);
    expect(Object.keys(stages)).toEqual([...SWEEP_STAGES]);
  });

  it.each([
    [{ gpu: 2 }, 'resources.gpu: gpu is at most 1'],
    [{ vft: { gpu: 3 } }, 'resources.vft.gpu: gpu is at most 1'],
    [{ align: { gpu: -1 } }, 'resources.align.gpu: gpu must be ≥ 0'],
    [{ parents: { gpu: 1 } }, 'resources: '],
    [{ vft: { gpu: 1, cpu: 4 } }, 'resources.vft: '],
    ['gpu', 'resources: '],
  ])('refuses %j, naming the field', (resources, message) => {
    const r = sweepSpec.safeParse(sweep(resources));
    expect(r.success).toBe(false);
    expect(issues(r)[0]).toContain(message);
  });
});
