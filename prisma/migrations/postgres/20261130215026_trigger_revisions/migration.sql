-- AlterTable
ALTER TABLE "Trigger" ADD COLUMN     "revision" INTEGER NOT NULL DEFAULT 1;

-- AlterTable
ALTER TABLE "TriggerRun" ADD COLUMN     "clientId" TEXT,
ADD COLUMN     "input" JSONB,
ADD COLUMN     "output" JSONB,
ADD COLUMN     "revision" INTEGER,
ADD COLUMN     "truncated" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable
CREATE TABLE "TriggerRevision" (
    "triggerId" TEXT NOT NULL,
    "revision" INTEGER NOT NULL,
    "config" JSONB NOT NULL,
    "note" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TriggerRevision_pkey" PRIMARY KEY ("triggerId","revision")
);

-- AddForeignKey
ALTER TABLE "TriggerRevision" ADD CONSTRAINT "TriggerRevision_triggerId_fkey" FOREIGN KEY ("triggerId") REFERENCES "Trigger"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Existing triggers start with revision 1 holding their current settings.
INSERT INTO "TriggerRevision" ("triggerId", "revision", "config", "note", "createdAt")
SELECT "id", 1, jsonb_build_object(
    'name', "name", 'description', "description", 'active', "active",
    'tags', "tags", 'actions', "actions", 'channel', "channel",
    'order', "order", 'onError', "onError", 'stack', "stack"
  ), 'before revisions were kept', "updatedAt"
FROM "Trigger";
