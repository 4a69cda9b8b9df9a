import { describe, expect, it } from "vitest";
import { httpGraphQL } from "../helpers/graphql.js";
import { spawnServer } from "../helpers/process.js";
import { ADMIN_TOKEN, freshDataDir, startServer } from "../helpers/server.js";

const DEMO_ROOM_CONFIG = `{ channelConfig(name: "room:lobby") { pattern presence history } }`;

describe("first run", () => {
  it("logs the URLs of GraphiQL, the demo and the admin console, and where the generated admin token is", async () => {
    const dataDir = freshDataDir();
    const server = await spawnServer({ ADMIN_TOKEN: "", DATA_DIR: dataDir });
    const base = server.httpUrl.replace(/\/graphql$/, "");
    await expect.poll(() => server.output()).toContain(`${base}/admin`);
    const banner = server
      .output()
      .split("\n")
      .map((line) => (line.startsWith("{") ? JSON.parse(line) : {}))
      .find((entry) => entry.demo);
    expect(banner).toMatchObject({
      graphiql: server.httpUrl,
      demo: `${base}/demo`,
      admin: `${base}/admin`,
      adminTokenIn: `the file ${dataDir}/admin-token`,
    });
    expect(banner.msg).toContain(`${base}/demo`);
    expect(await server.stop()).toBe(0);
  });

  it("says the admin token comes from ADMIN_TOKEN when it is set, without printing it", async () => {
    const server = await spawnServer();
    await expect.poll(() => server.output()).toContain("/admin");
    expect(server.output()).toContain("the ADMIN_TOKEN environment variable");
    expect(server.output()).not.toContain(ADMIN_TOKEN);
    await server.stop();
  });

  it("gives the demo room presence and history on first start, leaves a changed configuration alone, and can be told not to", async () => {
    const dataDir = freshDataDir();
    const first = await startServer({}, dataDir);
    expect((await httpGraphQL(first.httpUrl, DEMO_ROOM_CONFIG, {}, { token: ADMIN_TOKEN })).body.data?.channelConfig).toEqual({
      pattern: "room:lobby",
      presence: true,
      history: 50,
    });
    await httpGraphQL(
      first.httpUrl,
      `mutation { updateChannel(pattern: "room:lobby", input: { history: 5 }) { history } }`,
      {},
      { token: ADMIN_TOKEN },
    );
    await first.stop();

    const again = await startServer({}, dataDir);
    expect((await httpGraphQL(again.httpUrl, DEMO_ROOM_CONFIG, {}, { token: ADMIN_TOKEN })).body.data?.channelConfig.history).toBe(5);

    const off = await startServer({ SEED_DEMO_ROOM: "false" });
    expect((await httpGraphQL(off.httpUrl, DEMO_ROOM_CONFIG, {}, { token: ADMIN_TOKEN })).body.data?.channelConfig).toBeNull();
  });
});
