-- CreateTable
CREATE TABLE "TriggerState" (
    "triggerId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "expiresAt" BIGINT,
    "updatedAt" BIGINT NOT NULL,

    PRIMARY KEY ("triggerId", "key"),
    CONSTRAINT "TriggerState_triggerId_fkey" FOREIGN KEY ("triggerId") REFERENCES "Trigger" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE INDEX "TriggerState_expiresAt_idx" ON "TriggerState"("expiresAt");
