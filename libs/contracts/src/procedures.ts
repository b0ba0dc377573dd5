/**
 * The tRPC procedures the SDK (libs/tracker) calls, each with what it takes and what it returns: one table, so that
 * `transport.call('metrics.log', input)` is checked at compile time by a layer that may not import libs/api
 * (docs/architecture.md, "Layers"). Inputs are the zod schemas the router itself validates with, where those live
 * here; outputs are declared, as the fields a client reads. libs/api/test/procedures.test.ts checks every entry
 * against the router's own RouterInputs/RouterOutputs, so the two cannot drift apart silently.
 */
import type { z } from 'zod';
import type {
  artifactInput,
  eventInput,
  runCreateInput,
  runSetStatusInput,
  runSetSummaryInput,
  runStartInput,
  RunStatus,
  samplesLogInput,
} from './tracking';
import type { metricsLogInput } from './metrics-log';
import type { WireNumber } from './wire';

/** A run as runs.create and runs.get return it: what the SDK needs to track it and link to it. */
export interface TrackedRun {
  id: string;
  name: string;
  projectId: string;
  status: RunStatus;
  project: { id: string; name: string };
  /** The run's config as its launch stored it (JSON): a platform job's one source for what to train. */
  config: unknown;
}

/** metrics.series' input; its schema lives with the router (libs/api/src/router/metrics.ts). */
export interface SeriesQuery {
  runIds: string[];
  keys: string[];
  buckets?: number | undefined;
  minStep?: number | undefined;
  maxStep?: number | undefined;
  withTimes?: boolean | undefined;
}

/**
 * A series as metrics.series returns it (libs/db/src/series.ts): raw points, or buckets when there are too many;
 * of a bucketed series only its width is named here, its columns being for charts.
 */
export type MetricSeries = { runId: string; key: string; steps: number[] } & (
  { mode: 'raw'; values: WireNumber[]; times: number[] } | { mode: 'buckets'; width: number }
);

/** How a procedure is sent: tRPC takes a query as GET (input in the URL), a mutation as POST (input as the body). */
type Procedure<Method extends 'GET' | 'POST', Input, Output> = { method: Method; input: Input; output: Output };

export interface TrackingProcedures {
  'runs.create': Procedure<'POST', z.input<typeof runCreateInput>, TrackedRun>;
  'runs.start': Procedure<'POST', z.input<typeof runStartInput>, { started: boolean; status: string }>;
  'runs.get': Procedure<'GET', { id: string }, TrackedRun>;
  'runs.setStatus': Procedure<
    'POST',
    z.input<typeof runSetStatusInput>,
    { id: string; status: RunStatus; writeSeq: number }
  >;
  'runs.setSummary': Procedure<'POST', z.input<typeof runSetSummaryInput>, { id: string; writeSeq: number }>;
  'metrics.log': Procedure<
    'POST',
    z.input<typeof metricsLogInput>,
    { inserted: number; skipped: number; writeSeq: number }
  >;
  'metrics.series': Procedure<'GET', SeriesQuery, MetricSeries[]>;
  'samples.log': Procedure<'POST', z.input<typeof samplesLogInput>, { inserted: number; skipped: number }>;
  'artifacts.register': Procedure<'POST', z.input<typeof artifactInput>, { id: string }>;
  'events.log': Procedure<'POST', z.input<typeof eventInput>, { id: string }>;
}

export type TrackingProcedure = keyof TrackingProcedures;
export type TrackingInput<P extends TrackingProcedure> = TrackingProcedures[P]['input'];
export type TrackingOutput<P extends TrackingProcedure> = TrackingProcedures[P]['output'];

/** The table's methods at run time; typed by it, so an entry missing, extra or sent the wrong way does not compile. */
export const TRACKING_METHODS: { readonly [P in TrackingProcedure]: TrackingProcedures[P]['method'] } = {
  'runs.create': 'POST',
  'runs.start': 'POST',
  'runs.get': 'GET',
  'runs.setStatus': 'POST',
  'runs.setSummary': 'POST',
  'metrics.log': 'POST',
  'metrics.series': 'GET',
  'samples.log': 'POST',
  'artifacts.register': 'POST',
  'events.log': 'POST',
};
