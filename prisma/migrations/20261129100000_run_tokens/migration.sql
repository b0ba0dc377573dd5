-- A training job's own credential (docs/architecture.md, "Run tokens"): made when its run is queued, scoped to that
-- run, stored as the SHA-256 of the token, expiring, and deleted when the run ends.
CREATE TABLE "run_token" (
    "hash" TEXT NOT NULL,
    "run_id" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    CONSTRAINT "run_token_pkey" PRIMARY KEY ("hash")
);
CREATE INDEX "run_token_run_id_idx" ON "run_token"("run_id");
ALTER TABLE "run_token" ADD CONSTRAINT "run_token_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "run"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Whatever ends a run (its worker, a cancel, the MLflow API, an import) revokes its tokens in the same transaction.
CREATE FUNCTION run_token_revoke() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM run_token WHERE run_id = NEW.id;
  RETURN NULL;
END $$;
CREATE TRIGGER run_token_revoke AFTER UPDATE OF status ON "run" FOR EACH ROW
  WHEN (NEW.status IN ('succeeded', 'failed', 'canceled') AND OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION run_token_revoke();
