/**
 * The `sys/*` sampler (apps/worker/src/sys.ts): each sample covers exactly the time since the one before, with one
 * reading of each clock per step, and carries no copy of the step's throughput.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SysSampler } from '../src/sys';

afterEach(() => vi.restoreAllMocks());

describe('SysSampler', () => {
  it('reads each clock once a step, so consecutive intervals meet and no CPU time is lost between them', () => {
    // CPU: 500 µs more at every reading; wall: 1 ms more at every reading
    let cpuReads = 0;
    let wallReads = 0;
    vi.spyOn(process, 'cpuUsage').mockImplementation(() => ({ user: 500 * ++cpuReads, system: 0 }));
    vi.spyOn(process.hrtime, 'bigint').mockImplementation(() => BigInt(1_000_000 * ++wallReads));
    const s = new SysSampler();
    const samples = [s.sample(), s.sample(), s.sample()];
    expect(cpuReads).toBe(4); // one at the start, one a step
    expect(wallReads).toBe(4);
    for (const x of samples) expect(x['sys/cpu_percent']).toBeCloseTo(50, 9);
  });

  it('logs CPU and memory only: the throughput is train/tokens_per_s', () => {
    const x = new SysSampler().sample();
    expect(Object.keys(x).sort()).toEqual(['sys/cpu_percent', 'sys/rss_mb']);
    expect(x['sys/rss_mb']).toBeGreaterThan(10);
  });
});
