/**
 * The SDK's procedure table (@aft/contracts, procedures.ts) held to the router. The SDK may not import libs/api
 * (docs/architecture.md, "Layers"), so this is where the two meet: every input the table lets the SDK send is one the
 * router takes, every output the table promises is one the router returns, and each procedure is sent the way tRPC
 * serves it. The type assertions fail the typecheck (`tsc -p libs/api/tsconfig.json`, in `npm run typecheck`).
 */
import { describe, expectTypeOf, it } from 'vitest';
import type {
  PackedSeries,
  UnpackedSeries,
  TrackingInput,
  TrackingOutput,
  TrackingProcedure,
  TrackingProcedures,
} from '@aft/contracts';
import type { AppRouter, RouterInputs, RouterOutputs } from '../src';

/** `T['runs']['get']` for the path 'runs.get'; never for a path the router does not have. */
type At<T, P extends string> = P extends `${infer Scope}.${infer Name}`
  ? Scope extends keyof T
    ? Name extends keyof T[Scope]
      ? T[Scope][Name]
      : never
    : never
  : never;

/** What the router serves a path as: 'query' (GET), 'mutation' (POST) or 'subscription'. */
type Kind<P extends string> = At<AppRouter['_def']['record'], P> extends { _def: { type: infer K } } ? K : never;
type KindOf<M> = M extends 'GET' ? 'query' : 'mutation';

/** Per procedure of the table: true, or which side no longer agrees. */
type Agreement = {
  [P in TrackingProcedure]: [TrackingInput<P>] extends [At<RouterInputs, P>]
    ? [At<RouterOutputs, P>] extends [TrackingOutput<P>]
      ? [Kind<P>] extends [KindOf<TrackingProcedures[P]['method']>]
        ? true
        : 'method: tRPC serves a query as GET and a mutation as POST'
      : 'output: the router does not return what the table promises'
    : 'input: the router does not take what the table lets the SDK send';
};

describe("the SDK's procedure table", () => {
  it('agrees with the router on every procedure: what the SDK sends, what it reads, and how it sends it', () => {
    expectTypeOf<Agreement>().toEqualTypeOf<{ [P in TrackingProcedure]: true }>();
  });

  it("takes exactly the router's inputs (runs.create: all but the dashboard's `status`)", () => {
    expectTypeOf<TrackingInput<'runs.create'>>().toEqualTypeOf<Omit<RouterInputs['runs']['create'], 'status'>>();
    expectTypeOf<TrackingInput<'runs.start'>>().toEqualTypeOf<RouterInputs['runs']['start']>();
    expectTypeOf<TrackingInput<'runs.get'>>().toEqualTypeOf<RouterInputs['runs']['get']>();
    expectTypeOf<TrackingInput<'runs.setStatus'>>().toEqualTypeOf<RouterInputs['runs']['setStatus']>();
    expectTypeOf<TrackingInput<'runs.setSummary'>>().toEqualTypeOf<RouterInputs['runs']['setSummary']>();
    expectTypeOf<TrackingInput<'metrics.log'>>().toEqualTypeOf<RouterInputs['metrics']['log']>();
    expectTypeOf<TrackingInput<'metrics.series'>>().toEqualTypeOf<RouterInputs['metrics']['series']>();
    expectTypeOf<TrackingInput<'samples.log'>>().toEqualTypeOf<RouterInputs['samples']['log']>();
    expectTypeOf<TrackingInput<'artifacts.register'>>().toEqualTypeOf<RouterInputs['artifacts']['register']>();
    expectTypeOf<TrackingInput<'events.log'>>().toEqualTypeOf<RouterInputs['events']['log']>();
  });

  it("reads metrics.seriesPacked as the router writes it (the dashboard's unpackSeries, @aft/contracts)", () => {
    expectTypeOf<PackedSeries[]>().toEqualTypeOf<RouterOutputs['metrics']['seriesPacked']>();
    // unpacked, a series has the columns metrics.series sends
    expectTypeOf<UnpackedSeries[]>().toEqualTypeOf<RouterOutputs['metrics']['series']>();
    expectTypeOf<RouterInputs['metrics']['seriesPacked']>().toEqualTypeOf<RouterInputs['metrics']['series']>();
  });
});
