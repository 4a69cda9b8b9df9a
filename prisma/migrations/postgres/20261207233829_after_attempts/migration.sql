-- CreateTable
CREATE TABLE "TriggerAfterAttempt" (
    "runId" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "durationMs" DOUBLE PRECISION NOT NULL,
    "outcome" TEXT NOT NULL,
    "error" TEXT,
    "requests" JSONB NOT NULL,

    CONSTRAINT "TriggerAfterAttempt_pkey" PRIMARY KEY ("runId","number")
);

-- AddForeignKey
ALTER TABLE "TriggerAfterAttempt" ADD CONSTRAINT "TriggerAfterAttempt_runId_fkey" FOREIGN KEY ("runId") REFERENCES "TriggerAfterRun"("id") ON DELETE CASCADE ON UPDATE CASCADE;
