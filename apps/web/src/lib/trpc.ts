'use client';
import { createTRPCClient, httpBatchLink, httpSubscriptionLink, splitLink } from '@trpc/client';
import type { AppRouter } from '@aft/api';
import { LIMITS } from '@aft/contracts';

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
