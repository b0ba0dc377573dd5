/**
 * `sys/*` metrics of a job process (docs/architecture.md, "Workers anywhere"): what the machine spent on a run,
 * logged beside its training metrics at the same steps. Each sample covers the time since the one before, so a
 * chart shows the load of each stretch of training, not an average since the process started.
 */
import { cpuUsage, memoryUsage } from 'node:process';

export class SysSampler {
  private cpu = cpuUsage();
  private at = performance.now();

  /**
   * The process's CPU time over the wall time since the last sample, in percent of one core (a process busy on
   * four cores reads 400), its resident memory, and the step's training throughput.
   */
  sample(tokensPerS: number): Record<string, number> {
    const now = performance.now();
    const used = cpuUsage(this.cpu);
    const wallUs = Math.max((now - this.at) * 1000, 1);
    this.cpu = cpuUsage();
    this.at = now;
    return {
      'sys/cpu_percent': (100 * (used.user + used.system)) / wallUs,
      'sys/rss_mb': memoryUsage.rss() / 2 ** 20,
      'sys/tokens_per_s': tokensPerS,
    };
  }
}
