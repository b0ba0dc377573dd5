import { describe, expect, it } from 'vitest';
import { Transport, TrackerError } from '../src';

describe('Transport', () => {
  it('refuses a procedure outside its table at once, without sending or retrying', async () => {
    let sent = 0;
    const t = new Transport({
      url: 'http://127.0.0.1:9',
      apiKey: 'k',
      retryForMs: 60_000,
      fetch: async () => {
        sent++;
        throw new Error('unreachable');
      },
    });
    const started = Date.now();
    const err = await t.call('sweeps.launch' as never, {} as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrackerError);
    expect(err).toMatchObject({ status: 400, code: 'UNKNOWN_PROCEDURE', retryable: false });
    expect(sent).toBe(0);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
