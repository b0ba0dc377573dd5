-- Saved views: a named URL query of a project's runs table or compare page, shared with the team
-- (libs/db/src/saved-views.ts). The API bounds the name and the query (libs/contracts/src/saved-views.ts), and
-- the checks here keep the table bounded whoever writes to it.
CREATE TYPE "SavedViewKind" AS ENUM ('runs', 'compare');

CREATE TABLE "saved_view" (
    "id" TEXT NOT NULL,
    "project_id" TEXT NOT NULL,
    "kind" "SavedViewKind" NOT NULL,
    "name" TEXT NOT NULL,
    "query" TEXT NOT NULL,
    "created_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "saved_view_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "saved_view_name_length" CHECK (char_length("name") BETWEEN 1 AND 100),
    CONSTRAINT "saved_view_query_length" CHECK (octet_length("query") <= 4096)
);

CREATE INDEX "saved_view_created_by_idx" ON "saved_view"("created_by");
CREATE UNIQUE INDEX "saved_view_project_id_kind_name_key" ON "saved_view"("project_id", "kind", "name");

ALTER TABLE "saved_view" ADD CONSTRAINT "saved_view_project_id_fkey" FOREIGN KEY ("project_id") REFERENCES "project"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "saved_view" ADD CONSTRAINT "saved_view_created_by_fkey" FOREIGN KEY ("created_by") REFERENCES "app_user"("id") ON DELETE SET NULL ON UPDATE CASCADE;
