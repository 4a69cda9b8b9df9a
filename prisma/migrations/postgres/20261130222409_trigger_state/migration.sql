-- CreateTable
CREATE TABLE "TriggerState" (
    "triggerId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "value" TEXT NOT NULL,
    "expiresAt" BIGINT,
    "updatedAt" BIGINT NOT NULL,

    CONSTRAINT "TriggerState_pkey" PRIMARY KEY ("triggerId","key")
);

-- CreateIndex
CREATE INDEX "TriggerState_expiresAt_idx" ON "TriggerState"("expiresAt");

-- AddForeignKey
ALTER TABLE "TriggerState" ADD CONSTRAINT "TriggerState_triggerId_fkey" FOREIGN KEY ("triggerId") REFERENCES "Trigger"("id") ON DELETE CASCADE ON UPDATE CASCADE;
