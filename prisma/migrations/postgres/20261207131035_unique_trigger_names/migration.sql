-- Trigger names become unique (config files match triggers by name). Triggers that share a name are
-- renamed first, deterministically: in each group of triggers with one name, the oldest by
-- ("createdAt", "id") keeps it; the others, oldest first and group by group (names in byte order),
-- get the first free name "<name> (n)", n = 2, 3, ..., with <name> cut short where the result would
-- pass 200 characters. A name is free when no trigger has it, counting the names given before.
-- The same rule as the SQLite migration; byte order ("C" collation) makes both agree.
CREATE INDEX "Trigger_name_rename" ON "Trigger"("name");

DO $$
DECLARE
  duplicate RECORD;
  base TEXT := NULL;
  n INTEGER;
  candidate TEXT;
BEGIN
  FOR duplicate IN
    SELECT t."id", t."name" FROM "Trigger" t
    WHERE EXISTS (
      SELECT 1 FROM "Trigger" o
      WHERE o."name" = t."name"
        AND (o."createdAt" < t."createdAt" OR (o."createdAt" = t."createdAt" AND o."id" COLLATE "C" < t."id" COLLATE "C"))
    )
    ORDER BY t."name" COLLATE "C", t."createdAt", t."id" COLLATE "C"
  LOOP
    -- The first free n only grows within a group: go on from the last one given.
    IF base IS DISTINCT FROM duplicate."name" THEN
      base := duplicate."name";
      n := 1;
    END IF;
    LOOP
      n := n + 1;
      candidate := left(base, 200 - length(' (' || n || ')')) || ' (' || n || ')';
      EXIT WHEN NOT EXISTS (SELECT 1 FROM "Trigger" WHERE "name" = candidate);
    END LOOP;
    UPDATE "Trigger" SET "name" = candidate WHERE "id" = duplicate."id";
  END LOOP;
END $$;

DROP INDEX "Trigger_name_rename";

-- CreateIndex
CREATE UNIQUE INDEX "Trigger_name_key" ON "Trigger"("name");
