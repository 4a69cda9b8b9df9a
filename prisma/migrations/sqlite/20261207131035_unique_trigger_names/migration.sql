-- Trigger names become unique (config files match triggers by name). Triggers that share a name are
-- renamed first, deterministically: in each group of triggers with one name, the oldest by
-- ("createdAt", "id") keeps it; the others, oldest first and group by group (names in byte order),
-- get the first free name "<name> (n)", n = 2, 3, ..., with <name> cut short where the result would
-- pass 200 characters. A name is free when no trigger has it, counting the names given before.
--
-- SQLite has no loops: "renamed" below goes through the triggers to rename one at a time, carrying
-- the names taken so far as a JSON array and the last n given in the group (the first free n only
-- grows within a group); "next" counts n up from there while its name is taken.
CREATE TEMP TABLE "TriggerRename" AS
WITH RECURSIVE
  "duplicate"("rank", "id", "name") AS (
    SELECT row_number() OVER (ORDER BY t."name", t."createdAt", t."id"), t."id", t."name"
    FROM "Trigger" t
    WHERE EXISTS (
      SELECT 1 FROM "Trigger" o
      WHERE o."name" = t."name" AND (o."createdAt" < t."createdAt" OR (o."createdAt" = t."createdAt" AND o."id" < t."id"))
    )
  ),
  -- "taken": the names taken before this row's; this row's own is <"base"> ("n").
  "renamed"("rank", "id", "base", "n", "taken") AS (
    SELECT 0, NULL, NULL, NULL, (SELECT json_group_array("name") FROM "Trigger")
    UNION ALL
    SELECT d."rank", d."id", d."name", (
        WITH RECURSIVE "next"("n") AS (
          SELECT CASE WHEN d."name" = r."base" THEN r."n" + 1 ELSE 2 END
          UNION ALL
          SELECT "next"."n" + 1 FROM "next"
          WHERE EXISTS (
            SELECT 1
            FROM json_each(CASE WHEN r."rank" = 0 THEN r."taken"
              ELSE json_insert(r."taken", '$[#]', substr(r."base", 1, 200 - length(' (' || r."n" || ')')) || ' (' || r."n" || ')') END)
            WHERE "value" = substr(d."name", 1, 200 - length(' (' || "next"."n" || ')')) || ' (' || "next"."n" || ')'
          )
        )
        SELECT max("n") FROM "next"
      ),
      CASE WHEN r."rank" = 0 THEN r."taken"
        ELSE json_insert(r."taken", '$[#]', substr(r."base", 1, 200 - length(' (' || r."n" || ')')) || ' (' || r."n" || ')') END
    FROM "renamed" r JOIN "duplicate" d ON d."rank" = r."rank" + 1
  )
SELECT "id", substr("base", 1, 200 - length(' (' || "n" || ')')) || ' (' || "n" || ')' AS "name" FROM "renamed" WHERE "rank" > 0;

UPDATE "Trigger" SET "name" = (SELECT "name" FROM "TriggerRename" WHERE "TriggerRename"."id" = "Trigger"."id")
WHERE "id" IN (SELECT "id" FROM "TriggerRename");

DROP TABLE "TriggerRename";

-- CreateIndex
CREATE UNIQUE INDEX "Trigger_name_key" ON "Trigger"("name");
