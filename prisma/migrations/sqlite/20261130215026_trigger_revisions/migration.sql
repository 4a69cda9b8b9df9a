-- CreateTable
CREATE TABLE "TriggerRevision" (
    "triggerId" TEXT NOT NULL,
    "revision" INTEGER NOT NULL,
    "config" JSONB NOT NULL,
    "note" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,

    PRIMARY KEY ("triggerId", "revision"),
    CONSTRAINT "TriggerRevision_triggerId_fkey" FOREIGN KEY ("triggerId") REFERENCES "Trigger" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Trigger" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "tags" JSONB NOT NULL,
    "actions" JSONB NOT NULL,
    "channel" TEXT NOT NULL,
    "order" INTEGER NOT NULL DEFAULT 0,
    "onError" TEXT NOT NULL DEFAULT 'REJECT',
    "stack" JSONB NOT NULL,
    "revision" INTEGER NOT NULL DEFAULT 1,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_Trigger" ("actions", "active", "channel", "createdAt", "description", "id", "name", "onError", "order", "stack", "tags", "updatedAt") SELECT "actions", "active", "channel", "createdAt", "description", "id", "name", "onError", "order", "stack", "tags", "updatedAt" FROM "Trigger";
DROP TABLE "Trigger";
ALTER TABLE "new_Trigger" RENAME TO "Trigger";
CREATE INDEX "Trigger_channel_idx" ON "Trigger"("channel");
CREATE TABLE "new_TriggerRun" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "triggerId" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "durationMs" REAL NOT NULL,
    "error" TEXT,
    "log" JSONB NOT NULL,
    "clientId" TEXT,
    "revision" INTEGER,
    "input" JSONB,
    "output" JSONB,
    "truncated" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "TriggerRun_triggerId_fkey" FOREIGN KEY ("triggerId") REFERENCES "Trigger" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO "new_TriggerRun" ("action", "channel", "createdAt", "durationMs", "error", "id", "log", "outcome", "triggerId") SELECT "action", "channel", "createdAt", "durationMs", "error", "id", "log", "outcome", "triggerId" FROM "TriggerRun";
DROP TABLE "TriggerRun";
ALTER TABLE "new_TriggerRun" RENAME TO "TriggerRun";
CREATE INDEX "TriggerRun_triggerId_createdAt_idx" ON "TriggerRun"("triggerId", "createdAt");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- Existing triggers start with revision 1 holding their current settings.
INSERT INTO "TriggerRevision" ("triggerId", "revision", "config", "note", "createdAt")
SELECT "id", 1, json_object(
    'name', "name", 'description', "description",
    'active', CASE WHEN "active" THEN json('true') ELSE json('false') END,
    'tags', json("tags"), 'actions', json("actions"), 'channel', "channel",
    'order', "order", 'onError', "onError", 'stack', json("stack")
  ), 'before revisions were kept', "updatedAt"
FROM "Trigger";
