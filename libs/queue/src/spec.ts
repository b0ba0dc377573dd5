/**
 * The queue contracts without BullMQ: job and sweep schemas and the sweep planner, safe for a browser bundle. Their
 * vocabulary (methods, constraints, presets, defaults, bounds) is `@aft/aft-core/spec`'s, imported from there.
 */
export * from './jobs';
export * from './sweep';
export { ALIGN_OVERRIDE_BOUNDS, MAX_OVERRIDES, VFT_OVERRIDE_BOUNDS } from './overrides';
