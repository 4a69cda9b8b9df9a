-- CreateTable
CREATE TABLE "Channel" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "pattern" TEXT NOT NULL,
    "description" TEXT,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "anonymousClients" BOOLEAN NOT NULL DEFAULT true,
    "messaging" TEXT NOT NULL DEFAULT 'ANYONE',
    "presence" BOOLEAN NOT NULL DEFAULT false,
    "history" INTEGER NOT NULL DEFAULT 0,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "HistoryEntry" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "channel" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "event" JSONB NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateIndex
CREATE UNIQUE INDEX "Channel_pattern_key" ON "Channel"("pattern");

-- CreateIndex
CREATE UNIQUE INDEX "HistoryEntry_channel_seq_key" ON "HistoryEntry"("channel", "seq");

