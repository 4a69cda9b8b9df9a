-- CreateTable
CREATE TABLE "TriggerAfterRun" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "triggerId" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "clientId" TEXT,
    "revision" INTEGER,
    "event" JSONB NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextAttemptAt" BIGINT,
    "leaseOwner" TEXT,
    "leaseUntil" BIGINT,
    "durationMs" REAL NOT NULL DEFAULT 0,
    "error" TEXT,
    "log" JSONB NOT NULL,
    "output" JSONB,
    "truncated" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    CONSTRAINT "TriggerAfterRun_triggerId_fkey" FOREIGN KEY ("triggerId") REFERENCES "Trigger" ("id") ON DELETE CASCADE ON UPDATE CASCADE
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
    "timing" TEXT NOT NULL DEFAULT 'BEFORE',
    "stack" JSONB NOT NULL,
    "revision" INTEGER NOT NULL DEFAULT 1,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_Trigger" ("actions", "active", "channel", "createdAt", "description", "id", "name", "onError", "order", "revision", "stack", "tags", "updatedAt") SELECT "actions", "active", "channel", "createdAt", "description", "id", "name", "onError", "order", "revision", "stack", "tags", "updatedAt" FROM "Trigger";
DROP TABLE "Trigger";
ALTER TABLE "new_Trigger" RENAME TO "Trigger";
CREATE INDEX "Trigger_channel_idx" ON "Trigger"("channel");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

-- CreateIndex
CREATE INDEX "TriggerAfterRun_status_nextAttemptAt_idx" ON "TriggerAfterRun"("status", "nextAttemptAt");

-- CreateIndex
CREATE INDEX "TriggerAfterRun_triggerId_createdAt_idx" ON "TriggerAfterRun"("triggerId", "createdAt");
