-- AlterTable
ALTER TABLE "run" ADD COLUMN     "kv_tags" JSONB NOT NULL DEFAULT '{}';

