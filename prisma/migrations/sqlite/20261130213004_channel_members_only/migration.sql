-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Channel" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "pattern" TEXT NOT NULL,
    "description" TEXT,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "anonymousClients" BOOLEAN NOT NULL DEFAULT true,
    "messaging" TEXT NOT NULL DEFAULT 'ANYONE',
    "presence" BOOLEAN NOT NULL DEFAULT false,
    "history" INTEGER NOT NULL DEFAULT 0,
    "membersOnly" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_Channel" ("active", "anonymousClients", "createdAt", "description", "history", "id", "messaging", "pattern", "presence", "updatedAt") SELECT "active", "anonymousClients", "createdAt", "description", "history", "id", "messaging", "pattern", "presence", "updatedAt" FROM "Channel";
DROP TABLE "Channel";
ALTER TABLE "new_Channel" RENAME TO "Channel";
CREATE UNIQUE INDEX "Channel_pattern_key" ON "Channel"("pattern");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
