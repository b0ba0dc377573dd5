-- CreateTable
CREATE TABLE "metric_chunk" (
    "run_num" BIGINT NOT NULL,
    "key_id" INTEGER NOT NULL,
    "first_step" INTEGER NOT NULL,
    "last_step" INTEGER NOT NULL,
    "count" INTEGER NOT NULL,
    "nan_count" INTEGER NOT NULL,
    "min" DOUBLE PRECISION,
    "max" DOUBLE PRECISION,
    "first_value" DOUBLE PRECISION NOT NULL,
    "last_value" DOUBLE PRECISION NOT NULL,
    "payload" BYTEA NOT NULL,

    CONSTRAINT "metric_chunk_pkey" PRIMARY KEY ("run_num","key_id","first_step")
);


-- Payloads are already compressed: keep Postgres from trying pglz on them again.
ALTER TABLE "metric_chunk" ALTER COLUMN "payload" SET STORAGE EXTERNAL;
