import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, inject, it } from "vitest";
import { openDatabase } from "../../src/db.js";

const dir = mkdtempSync(join(tmpdir(), "realtime-transactions-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it("a write acknowledged while a transaction is open on SQLite survives that transaction's rollback", async () => {
  const file = join(dir, "realtime.db");
  copyFileSync(inject("sqliteTemplate"), file);
  const db = await openDatabase(`file:${file}`);
  try {
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => (entered = resolve));
    // Another request's write (a history entry, a queued AFTER run), made once the transaction is open.
    const outside = inside.then(() => db.prisma.channel.create({ data: { id: "outside", pattern: "outside" } }));
    const failing = db.prisma.$transaction(
      async (tx) => {
        await tx.channel.create({ data: { id: "inside", pattern: "inside" } });
        entered();
        // Roll back only once the other write is acknowledged. Where it waits for the transaction to
        // end, as it must, this waits until the transaction times out, which rolls it back as well.
        await outside;
        throw new Error("rolled back on purpose");
      },
      { timeout: 1000 },
    );
    await expect(failing).rejects.toThrow();
    await outside;
    expect(await db.prisma.channel.findMany({ select: { id: true } })).toEqual([{ id: "outside" }]);
  } finally {
    await db.close();
  }
});
