-- Per-chunk summaries replace the rollups of 64 to 512 steps (libs/db metric-summary.ts). Chunks stored before
-- this get theirs from the fold sweep (summarizeChunks), and until then reads decode their points.
ALTER TABLE "metric_chunk" ADD COLUMN "summary" BYTEA;

DELETE FROM "metric_rollup" WHERE "width" < 1024;
