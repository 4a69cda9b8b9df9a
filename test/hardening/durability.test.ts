import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { spawnServer } from "../helpers/process.js";
import { freshDataDir } from "../helpers/server.js";

describe("durability", () => {
  // Two server processes start here (each loads TypeScript through tsx): allow for a busy machine.
  it("loses no acknowledged message when the process is killed mid-traffic, and restarts on an intact database", {
    timeout: 90_000,
  }, async () => {
    const dataDir = freshDataDir();
    const env = { DATA_DIR: dataDir, CHANNEL_HISTORY: "1000" };
    const first = await spawnServer(env);
    const acknowledged: number[] = [];
    let stop = false;
    const senders = Array.from({ length: 4 }, async (_, lane) => {
      for (let n = 0; !stop && n < 2000; n++) {
        const value = lane * 10_000 + n;
        const result = await httpGraphQL(first.httpUrl, SEND_MESSAGE, { channel: "ledger", payload: { value } }).catch(() => null);
        if (result?.body.data?.sendMessage?.delivered) acknowledged.push(value);
      }
    });
    // Kill it mid-traffic, once a fair number of messages have been acknowledged.
    await eventually("30 acknowledged messages", () => acknowledged.length >= 30);
    await first.stop("SIGKILL");
    stop = true;
    await Promise.all(senders);

    const db = new Database(join(dataDir, "realtime.db"));
    expect(db.pragma("integrity_check", { simple: true })).toBe("ok");
    db.close();

    const second = await spawnServer(env);
    const history = await httpGraphQL(second.httpUrl, `{ history(channel: "ledger", last: 1000) { seq payload } }`);
    const stored = history.body.data!.history as { seq: number; payload: { value: number } }[];
    const storedValues = new Set(stored.map((entry) => entry.payload.value));
    const lost = acknowledged.filter((value) => !storedValues.has(value));
    expect(lost).toEqual([]);
    const next = await httpGraphQL(second.httpUrl, `mutation { sendMessage(channel: "ledger", payload: "after") { event { seq } } }`);
    expect(next.body.data!.sendMessage.event.seq).toBe(stored.at(-1)!.seq + 1);
  });
});
