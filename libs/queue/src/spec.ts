/** The queue contracts without BullMQ: job and sweep schemas and the sweep planner, safe for a browser bundle. */
export * from './jobs';
export * from './sweep';
export { ALIGN_OVERRIDE_BOUNDS, MAX_OVERRIDES, VFT_OVERRIDE_BOUNDS } from './overrides';
