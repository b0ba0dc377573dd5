-- The runs list sorted by a summary metric reads run_summary_value in index order and stops at the page
-- (libs/db runs-by-summary.ts, docs/architecture.md "The runs list") instead of computing the value of every run of
-- the project and sorting them. A trigger on run keeps the table, the last statement fills it.
-- No statement below holds a semicolon inside it: prisma migrate deploy splits a migration file at every one,
-- dollar quotes and comments included. Every statement can run again (a deploy that stopped half-way resumes).

-- A summary value as the list sorts it: a JSON number that double precision holds, else null (no value). Numbers
-- past its range (only a hand-written summary can hold one: the app's JSON is JavaScript's doubles) count as none.
CREATE OR REPLACE FUNCTION "summary_number"(v jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(v) IS DISTINCT FROM 'number' THEN NULL
              WHEN abs(v::numeric) > 1.7976931348623157e308 THEN NULL
              WHEN abs(v::numeric) < 4.9406564584124654e-324 AND v::numeric <> 0 THEN NULL
              ELSE v::float8 END
$$;

CREATE TABLE IF NOT EXISTS "run_summary_value" (
    "run_id" TEXT NOT NULL,
    "project_id" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "run_summary_value_pkey" PRIMARY KEY ("run_id", "key"),
    CONSTRAINT "run_summary_value_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "run"("id") ON DELETE CASCADE ON UPDATE CASCADE
);

CREATE INDEX IF NOT EXISTS "run_summary_value_project_id_key_value_run_id_idx" ON "run_summary_value"("project_id", "key", "value", "run_id");

-- The runs without the metric, by id, stopped at the page.
CREATE INDEX IF NOT EXISTS "run_project_id_id_idx" ON "run"("project_id", "id");

-- Brings a run's rows in line with its new summary, given the old one (none for a new run): numeric keys new or
-- changed (all of them when the run moved project) are written, keys no longer numeric deleted. The work is in the
-- keys that changed, not in every key of the summary: MLflow's log-metric merges a few keys at a time.
-- PL/pgSQL keeps the insert's plan between calls (a SQL function is planned again at every row: 0.6 ms an update
-- against 0.15). The delete, rare, is planned at each call (EXECUTE): a plan kept from when the table was small
-- reads all of it. The body is a U& string, quotes doubled, semicolons written \003B (see the top of this file).
CREATE OR REPLACE FUNCTION "run_summary_values"() RETURNS trigger LANGUAGE plpgsql AS U&'
DECLARE
  gone text[]\003B
BEGIN
  INSERT INTO run_summary_value (run_id, project_id, key, value)
  SELECT NEW.id, NEW.project_id, c.key, c.value FROM (
    SELECT e.key, summary_number(e.value) AS value
    FROM jsonb_each(CASE WHEN jsonb_typeof(NEW.summary) = ''object'' THEN NEW.summary ELSE ''{}''::jsonb END) e
    WHERE summary_number(e.value) IS NOT NULL
    EXCEPT ALL
    SELECT e.key, summary_number(e.value)
    FROM jsonb_each(CASE WHEN jsonb_typeof(OLD.summary) = ''object'' THEN OLD.summary ELSE ''{}''::jsonb END) e
    WHERE summary_number(e.value) IS NOT NULL AND OLD.project_id IS NOT DISTINCT FROM NEW.project_id
  ) c
  ON CONFLICT (run_id, key) DO UPDATE SET value = EXCLUDED.value, project_id = EXCLUDED.project_id\003B
  IF TG_OP = ''UPDATE'' THEN
    gone := ARRAY(
      SELECT e.key
      FROM jsonb_each(CASE WHEN jsonb_typeof(OLD.summary) = ''object'' THEN OLD.summary ELSE ''{}''::jsonb END) e
      WHERE summary_number(e.value) IS NOT NULL
      EXCEPT ALL
      SELECT e.key
      FROM jsonb_each(CASE WHEN jsonb_typeof(NEW.summary) = ''object'' THEN NEW.summary ELSE ''{}''::jsonb END) e
      WHERE summary_number(e.value) IS NOT NULL)\003B
    IF cardinality(gone) > 0 THEN
      EXECUTE ''DELETE FROM run_summary_value WHERE run_id = $1 AND key = ANY($2)'' USING NEW.id, gone\003B
    END IF\003B
  END IF\003B
  RETURN NULL\003B
END';

CREATE OR REPLACE TRIGGER "run_summary_values_insert" AFTER INSERT ON "run"
FOR EACH ROW WHEN (NEW.summary IS DISTINCT FROM '{}'::jsonb) EXECUTE FUNCTION "run_summary_values"();

CREATE OR REPLACE TRIGGER "run_summary_values_update" AFTER UPDATE OF "summary", "project_id" ON "run"
FOR EACH ROW WHEN (OLD.summary IS DISTINCT FROM NEW.summary OR OLD.project_id IS DISTINCT FROM NEW.project_id)
EXECUTE FUNCTION "run_summary_values"();

-- The runs already there, after the trigger exists. Each run is locked (FOR SHARE) and read as it is once locked:
-- a run whose summary another transaction changes meanwhile is read after that change (whose trigger then wrote the
-- same rows), never before it, so no stale value overwrites a newer one.
WITH r AS (SELECT id, project_id, summary FROM "run" WHERE summary IS DISTINCT FROM '{}'::jsonb FOR SHARE)
INSERT INTO "run_summary_value" ("run_id", "project_id", "key", "value")
SELECT r.id, r.project_id, e.key, summary_number(e.value)
FROM r, jsonb_each(CASE WHEN jsonb_typeof(r.summary) = 'object' THEN r.summary ELSE '{}'::jsonb END) e
WHERE summary_number(e.value) IS NOT NULL
ON CONFLICT ("run_id", "key") DO UPDATE SET value = EXCLUDED.value, project_id = EXCLUDED.project_id;

-- Statistics for the planner now, rather than at autovacuum's next pass: without them it may sort a project's
-- every entry instead of reading the index in order.
ANALYZE "run_summary_value";
