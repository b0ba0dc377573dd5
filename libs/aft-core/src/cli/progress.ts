/** A progress bar with ETA on stderr (a line per ~5% when stderr is not a terminal). Results go to stdout. */
import { fmtSeconds } from './util';

export class Progress {
  private readonly t0 = Date.now();
  private lastPct = -1;
  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  update(done: number, note = ''): void {
    const frac = this.total ? Math.min(1, done / this.total) : 1;
    const elapsed = (Date.now() - this.t0) / 1000;
    const eta = frac > 0 ? (elapsed / frac) * (1 - frac) : NaN;
    const width = 24;
    const fill = Math.round(frac * width);
    const line = `${this.label} ▕${'█'.repeat(fill)}${'░'.repeat(width - fill)}▏ ${done}/${this.total} ${(frac * 100).toFixed(0)}%  ${fmtSeconds(elapsed)} elapsed, ETA ${Number.isFinite(eta) ? fmtSeconds(eta) : '?'}${note ? `  ${note}` : ''}`;
    if (this.stream.isTTY) this.stream.write(`\r\x1b[2K${line}`);
    else {
      const pct = Math.floor(frac * 20);
      if (pct !== this.lastPct) {
        this.lastPct = pct;
        this.stream.write(`${line}\n`);
      }
    }
  }

  done(note = ''): void {
    this.update(this.total, note);
    if (this.stream.isTTY) this.stream.write('\n');
  }
}
