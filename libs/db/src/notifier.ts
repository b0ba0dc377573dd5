import pg from 'pg';
import { RUN_CHANNEL } from './touch';

/**
 * Fans Postgres NOTIFY messages on the run channel out to waiters in this process: one LISTEN connection
 * per process, however many live subscriptions there are. If the connection drops, waiters fall back to their
 * timeout (the subscription then polls) until it reconnects.
 */
export class RunNotifier {
  private client: pg.Client | null = null;
  private connecting: Promise<void> | null = null;
  private readonly waiters = new Map<string, Set<() => void>>();
  private closed = false;

  constructor(private readonly connectionString: string) {}

  /** Resolves when the run is written to, after `timeoutMs`, or when `signal` aborts — whichever comes first. */
  async wait(runId: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    void this.ensure();
    await new Promise<void>((resolve) => {
      const set = this.waiters.get(runId) ?? new Set();
      this.waiters.set(runId, set);
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        set.delete(done);
        if (set.size === 0) this.waiters.delete(runId);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      set.add(done);
    });
  }

  private ensure(): Promise<void> {
    if (this.client || this.closed) return Promise.resolve();
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.connectionString });
      client.on('notification', (msg) => {
        for (const fn of [...(this.waiters.get(msg.payload ?? '') ?? [])]) fn();
      });
      client.on('error', () => {
        this.client = null;
        client.end().catch(() => undefined);
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${RUN_CHANNEL}`);
        this.client = client;
      } catch {
        await client.end().catch(() => undefined);
      } finally {
        this.connecting = null;
      }
    })();
    return this.connecting;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.connecting;
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }
}
