-- DropIndex
DROP INDEX "TriggerAfterRun_status_nextAttemptAt_idx";

-- CreateIndex
CREATE INDEX "TriggerAfterRun_status_triggerId_nextAttemptAt_idx" ON "TriggerAfterRun"("status", "triggerId", "nextAttemptAt");
