/**
 * `sys/*` metrics of a job process (docs/architecture.md, "Workers anywhere"): what the machine spent on a run,
 * logged beside its training metrics at the same steps. Each sample covers the time since the one before, so a
 * chart shows the load of each stretch of training, not an average since the process started. The step's
 * throughput is `train/tokens_per_s` already, so it has no `sys/` copy.
 */

export class SysSampler {
  private cpu = process.cpuUsage();
  private at = process.hrtime.bigint();

  /**
   * The process's CPU time over the wall time since the last sample, in percent of one core (a process busy on
   * four cores reads 400), and its resident memory. One reading of each clock ends this interval and starts the
   * next, so no CPU time between two samples goes uncounted.
   */
  sample(): Record<string, number> {
    const cpu = process.cpuUsage();
    const at = process.hrtime.bigint();
    const usedUs = cpu.user - this.cpu.user + (cpu.system - this.cpu.system);
    const wallUs = Math.max(Number(at - this.at) / 1000, 1);
    this.cpu = cpu;
    this.at = at;
    return {
      'sys/cpu_percent': (100 * usedUs) / wallUs,
      'sys/rss_mb': process.memoryUsage.rss() / 2 ** 20,
    };
  }
}
