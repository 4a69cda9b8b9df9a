import { readdirSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { expect, it } from "vitest";
import { migrate, openDatabase, projectRoot } from "../../src/db.js";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { describePostgres, POSTGRES_BASE_URL } from "../helpers/postgres.js";
import { ADMIN_TOKEN, freshPostgresUrl, startServer } from "../helpers/server.js";

const SERVER_INFO = `{ serverInfo { database } }`;

async function tablesIn(schema: string): Promise<string[]> {
  const client = new pg.Client(POSTGRES_BASE_URL);
  await client.connect();
  try {
    const { rows } = await client.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
      [schema],
    );
    return rows.map((row) => row.table_name);
  } finally {
    await client.end();
  }
}

describePostgres("PostgreSQL (DATABASE_URL=postgres://...)", () => {
  it("migrates a new schema, answers /health, sends a message, and is healthy again after a restart on the same schema", async () => {
    const DATABASE_URL = await freshPostgresUrl();
    const first = await startServer({ DATABASE_URL });
    const health = await fetch(first.httpUrl.replace("/graphql", "/health"));
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", database: "ok" });
    const info = await httpGraphQL(first.httpUrl, SERVER_INFO, {}, { token: ADMIN_TOKEN });
    expect(info.body.data?.serverInfo.database).toBe("postgresql");
    const sent = await httpGraphQL(first.httpUrl, SEND_MESSAGE, { channel: "pg", payload: { text: "hello" } });
    expect(sent.body.data?.sendMessage.delivered).toBe(true);
    await first.stop();

    const second = await startServer({ DATABASE_URL });
    expect((await fetch(second.httpUrl.replace("/graphql", "/health"))).status).toBe(200);
    const again = await httpGraphQL(second.httpUrl, SEND_MESSAGE, { channel: "pg", payload: 2 });
    expect(again.body.data?.sendMessage.delivered).toBe(true);
  });

  it("keeps everything in the schema named by ?schema=, and migrates it once when two instances start together", async () => {
    const url = await freshPostgresUrl();
    const schema = new URL(url).searchParams.get("schema")!;
    await Promise.all([migrate(url), migrate(url)]);
    expect(await tablesIn(schema)).toEqual([
      "Channel",
      "HistoryEntry",
      "Trigger",
      "TriggerAfterAttempt",
      "TriggerAfterRun",
      "TriggerRevision",
      "TriggerRun",
      "TriggerState",
      "_prisma_migrations",
    ]);

    const db = await openDatabase(url);
    try {
      expect(db.provider).toBe("postgresql");
      expect(await db.ping()).toBe(true);
      await db.prisma.channel.create({ data: { id: "c1", pattern: "room:*" } });
      expect(await db.prisma.channel.count()).toBe(1);
      const applied = await db.prisma.$queryRawUnsafe<{ migration_name: string }[]>(
        `SELECT migration_name FROM _prisma_migrations ORDER BY migration_name`,
      );
      const committed = readdirSync(join(projectRoot, "prisma/migrations/postgres"), { withFileTypes: true })
        .filter((entry) => entry.isDirectory())
        .map((entry) => entry.name)
        .sort();
      expect(applied.map((row) => row.migration_name)).toEqual(committed);
    } finally {
      await db.close();
    }
  });
});
