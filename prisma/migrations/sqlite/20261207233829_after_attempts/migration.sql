-- CreateTable
CREATE TABLE "TriggerAfterAttempt" (
    "runId" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "startedAt" DATETIME NOT NULL,
    "durationMs" REAL NOT NULL,
    "outcome" TEXT NOT NULL,
    "error" TEXT,
    "requests" JSONB NOT NULL,

    PRIMARY KEY ("runId", "number"),
    CONSTRAINT "TriggerAfterAttempt_runId_fkey" FOREIGN KEY ("runId") REFERENCES "TriggerAfterRun" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);
