-- AlterTable
ALTER TABLE "Trigger" ADD COLUMN     "timing" TEXT NOT NULL DEFAULT 'BEFORE';

-- CreateTable
CREATE TABLE "TriggerAfterRun" (
    "id" TEXT NOT NULL,
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
    "durationMs" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "error" TEXT,
    "log" JSONB NOT NULL,
    "output" JSONB,
    "truncated" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "TriggerAfterRun_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "TriggerAfterRun_status_nextAttemptAt_idx" ON "TriggerAfterRun"("status", "nextAttemptAt");

-- CreateIndex
CREATE INDEX "TriggerAfterRun_triggerId_createdAt_idx" ON "TriggerAfterRun"("triggerId", "createdAt");

-- AddForeignKey
ALTER TABLE "TriggerAfterRun" ADD CONSTRAINT "TriggerAfterRun_triggerId_fkey" FOREIGN KEY ("triggerId") REFERENCES "Trigger"("id") ON DELETE CASCADE ON UPDATE CASCADE;
