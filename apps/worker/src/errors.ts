/**
 * How a training job ends other than by finishing, shared by the worker's main process and its sandboxed
 * processors. Kept apart from train.ts, which loads TensorFlow: the main process only renews job locks and must
 * stay light.
 */

/** A failure that retrying cannot fix (a bad config, a non-finite loss): the job fails at once. */
export class PermanentError extends Error {
  override name = 'PermanentError';
}

/** The abort reason a worker gives its jobs when it shuts down: the run is left to resume elsewhere, not canceled. */
export const SHUTDOWN = 'worker-shutdown';

/** Thrown when a job stopped because its worker is shutting down; the processor hands the job back. */
export class ShutdownError extends Error {
  override name = 'ShutdownError';
}
