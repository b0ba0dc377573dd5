-- A training job's own credential (docs/architecture.md, "Run tokens"): made when its run is queued, scoped to that
-- run, stored as the SHA-256 of the token, expiring, and deleted when the run ends (libs/db/src/run-tokens.ts).
CREATE TABLE "run_token" (
    "hash" TEXT NOT NULL,
    "run_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "run_token_pkey" PRIMARY KEY ("hash")
);
CREATE INDEX "run_token_run_id_idx" ON "run_token"("run_id");
ALTER TABLE "run_token" ADD CONSTRAINT "run_token_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "run"("id") ON DELETE CASCADE ON UPDATE CASCADE;
