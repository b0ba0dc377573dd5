-- Per-project alert rules and the delivery log of their firings (docs/architecture.md, "Alerts").
-- A rule's secret is the HMAC key the server signs deliveries with, so it is stored as is (shown once at creation).
-- A firing is unique per (rule, kind, subject): a run fires each rule once, a sweep once, each test send once.
CREATE TABLE "alert_rule" (
    "id" TEXT NOT NULL,
    "project_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "metric_key" TEXT,
    "op" TEXT,
    "threshold" DOUBLE PRECISION,
    "url" TEXT NOT NULL,
    "secret" TEXT NOT NULL,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "created_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "alert_rule_pkey" PRIMARY KEY ("id")
);
CREATE TABLE "alert_delivery" (
    "id" TEXT NOT NULL,
    "rule_id" TEXT NOT NULL,
    "project_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "run_id" TEXT,
    "payload" JSONB NOT NULL DEFAULT '{}',
    "token_hash" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_status" INTEGER,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_attempt_at" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),
    CONSTRAINT "alert_delivery_pkey" PRIMARY KEY ("id")
);
CREATE INDEX "alert_rule_project_id_kind_idx" ON "alert_rule"("project_id", "kind");
CREATE UNIQUE INDEX "alert_delivery_rule_id_kind_subject_key" ON "alert_delivery"("rule_id", "kind", "subject");
CREATE INDEX "alert_delivery_project_id_created_at_idx" ON "alert_delivery"("project_id", "created_at" DESC);
ALTER TABLE "alert_rule" ADD CONSTRAINT "alert_rule_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "project"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "alert_delivery" ADD CONSTRAINT "alert_delivery_rule_id_fkey" FOREIGN KEY ("rule_id") REFERENCES "alert_rule"("id") ON DELETE CASCADE ON UPDATE CASCADE;
