/**
 * Where a run trained, as the runs table shows it ("Trained on": backend · device / host). The worker records it as
 * the run's params when it takes the run up (docs/architecture.md, "GPU jobs"). Pure; tested.
 */

export interface TrainedOn {
  backend: string;
  adapter: string | null;
  host: string | null;
}

/** From the run's params (its config), else the backend its trainer reported; null when it has not trained. */
export function trainedOn(config: unknown, backend: string | null): TrainedOn | null {
  const c = (config && typeof config === 'object' ? config : {}) as Record<string, unknown>;
  const text = (k: string) => (typeof c[k] === 'string' && c[k] ? (c[k] as string) : null);
  const name = text('backend') ?? backend;
  return name ? { backend: name, adapter: text('backend.adapter'), host: text('worker.host') } : null;
}

/** An adapter's line (vendor, architecture, device, description) cut to its device: `NVIDIA H200`, `llvmpipe`. */
const deviceOf = (adapter: string) => (adapter.split(',').at(-1) ?? adapter).split(/[:(]/)[0]!.trim() || adapter;

/** The cell's text, short enough for its column, and its title with the whole adapter line. */
export function trainedOnText(t: TrainedOn | null): { body: string; title?: string } {
  if (!t) return { body: '—' };
  const device = t.adapter ? ` · ${deviceOf(t.adapter)}` : '';
  return {
    body: `${t.backend}${device}${t.host ? ` / ${t.host}` : ''}`,
    title: [t.backend, t.adapter, t.host ? `on ${t.host}` : null].filter(Boolean).join(' · '),
  };
}

/**
 * The status cell's title: a queued run that asked for a GPU waits for a worker started with AFT_WORKER_GPUS, which
 * no other status says (it counts toward the team's active-run cap meanwhile).
 */
export function statusTitle(status: string, config: unknown): string | undefined {
  if (status !== 'queued' || !config || typeof config !== 'object') return undefined;
  const r = (config as Record<string, unknown>)['resources'];
  const gpu = r && typeof r === 'object' ? (r as Record<string, unknown>)['gpu'] : undefined;
  return typeof gpu === 'number' && gpu > 0 ? 'queued: waiting for a GPU worker' : undefined;
}
