-- The runs list sorted by a summary metric reads run_summary_value in index order and stops at the page
-- (libs/db runs-list.ts, docs/architecture.md "The runs list") instead of computing the value of every run of
-- the project and sorting them. A trigger on run keeps the table, the last statement fills it.
-- No statement below holds a semicolon inside it: prisma migrate deploy splits a migration file at every one,
-- dollar quotes and comments included. Every statement can run again (a deploy that stopped half-way resumes).

-- A summary value as the list sorts it: a JSON number, as double precision reads it (the text cast the runs list's
-- statement uses), else null (no value). A number double precision cannot hold is no value and never fails a write:
-- from 2^1024 - 2^970 up it would round to infinity, at 2^-1075 and under (not zero) to zero. Only a hand-written
-- summary holds one: the app's JSON is JavaScript's doubles.
CREATE OR REPLACE FUNCTION "summary_number"(v jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN jsonb_typeof(v) IS DISTINCT FROM 'number' THEN NULL
              WHEN abs(v::numeric) >= 179769313486231580793728971405303415079934132710037826936173778980444968292764750946649017977587207096330286416692887910946555547851940402630657488671505820681908902000708383676273854845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342711559699508093042880177904174497792 THEN NULL
              WHEN abs(v::numeric) <= 2.4703282292062327208828439643411068618252990130716238221279284125033775363510437593264991818081799618989828234772285886546332835517796989819938739800539093906315035659515570226392290858392449105184435931802849936536152500319370457678249219365623669863658480757001585769269903706311928279558551332927834338409351978015531246597263579574622766465272827220056374006485499977096599470454020828166226237857393450736339007967761930577506740176324673600968951340535537458516661134223766678604162159680461914467291840300530057530849048765391711386591646239524912623653881879636239373280423891018672348497668235089863388587925628302755995657524455507255189313690836254779186948667994968324049705821028513185451396213837722826145437693412532098591327667236328125e-324 AND v::numeric <> 0 THEN NULL
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
-- changed (all of them when the run moved project) are written, keys no longer numeric deleted. Both summaries are
-- read whole, but only the keys that changed are written: MLflow's log-metric merges a few keys at a time.
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

-- The runs already there, after the triggers exist, the table filled afresh (a deploy that stopped half-way may have
-- left rows the triggers' later changes never saw). Run writes wait while it runs (SHARE blocks them, not reads): a
-- summary changed meanwhile would otherwise be read before its change and written after it, stale. One table lock
-- rather than a lock per run: a run lock held while waiting for another (a writer of several runs) could deadlock it.
DO U&'BEGIN
  LOCK TABLE "run" IN SHARE MODE\003B
  DELETE FROM "run_summary_value"\003B
  INSERT INTO "run_summary_value" ("run_id", "project_id", "key", "value")
  SELECT r.id, r.project_id, e.key, summary_number(e.value)
  FROM "run" r, jsonb_each(CASE WHEN jsonb_typeof(r.summary) = ''object'' THEN r.summary ELSE ''{}''::jsonb END) e
  WHERE r.summary IS DISTINCT FROM ''{}''::jsonb AND summary_number(e.value) IS NOT NULL\003B
END';

-- Statistics for the planner now, rather than at autovacuum's next pass: without them it may sort a project's
-- every entry instead of reading the index in order.
ANALYZE "run_summary_value";
