-- CreateTable
CREATE TABLE "Trigger" (
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
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "TriggerRun" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "triggerId" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "durationMs" REAL NOT NULL,
    "error" TEXT,
    "log" JSONB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "TriggerRun_triggerId_fkey" FOREIGN KEY ("triggerId") REFERENCES "Trigger" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "Trigger_channel_idx" ON "Trigger"("channel");

-- CreateIndex
CREATE INDEX "TriggerRun_triggerId_createdAt_idx" ON "TriggerRun"("triggerId", "createdAt");

