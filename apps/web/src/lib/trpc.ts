'use client';
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import type { AppRouter, WireSeries } from '@aft/api';
import { LIMITS, unpackSeries, type SeriesQuery } from '@aft/contracts';

/** The browser's tRPC client: queries batched over HTTP, subscriptions over SSE (native EventSource). */
export const trpc = createTRPCClient<AppRouter>({
  links: [
    splitLink({
      condition: (op) => op.type === 'subscription',
      true: httpSubscriptionLink({ url: '/api/trpc' }),
      // the server refuses a batch of more than LIMITS.batchCalls calls
      false: httpBatchLink({ url: '/api/trpc', maxURLLength: 4000, maxItems: LIMITS.batchCalls }),
    }),
  ],
});

/**
 * Series for the charts: metrics.seriesPacked (binary columns, nothing formatted or parsed per number; libs/contracts
 * packed-series.ts) unpacked into the columns metrics.series sends.
 */
export async function fetchSeries(input: SeriesQuery): Promise<WireSeries[]> {
  return (await trpc.metrics.seriesPacked.query(input)).map(unpackSeries);
}
