-- CreateTable
CREATE TABLE "Trigger" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "description" TEXT,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "tags" JSONB NOT NULL,
    "actions" JSONB NOT NULL,
    "channel" TEXT NOT NULL,
    "order" INTEGER NOT NULL DEFAULT 0,
    "onError" TEXT NOT NULL DEFAULT 'REJECT',
    "stack" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Trigger_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "TriggerRun" (
    "id" TEXT NOT NULL,
    "triggerId" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "outcome" TEXT NOT NULL,
    "durationMs" DOUBLE PRECISION NOT NULL,
    "error" TEXT,
    "log" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "TriggerRun_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Channel" (
    "id" TEXT NOT NULL,
    "pattern" TEXT NOT NULL,
    "description" TEXT,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "anonymousClients" BOOLEAN NOT NULL DEFAULT true,
    "messaging" TEXT NOT NULL DEFAULT 'ANYONE',
    "presence" BOOLEAN NOT NULL DEFAULT false,
    "history" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Channel_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "HistoryEntry" (
    "id" TEXT NOT NULL,
    "channel" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "event" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "HistoryEntry_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Trigger_channel_idx" ON "Trigger"("channel");

-- CreateIndex
CREATE INDEX "TriggerRun_triggerId_createdAt_idx" ON "TriggerRun"("triggerId", "createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Channel_pattern_key" ON "Channel"("pattern");

-- CreateIndex
CREATE UNIQUE INDEX "HistoryEntry_channel_seq_key" ON "HistoryEntry"("channel", "seq");

-- AddForeignKey
ALTER TABLE "TriggerRun" ADD CONSTRAINT "TriggerRun_triggerId_fkey" FOREIGN KEY ("triggerId") REFERENCES "Trigger"("id") ON DELETE CASCADE ON UPDATE CASCADE;

