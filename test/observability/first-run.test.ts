import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../../src/db.js";
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

  it("logs a readable line per entry with LOG_FORMAT=pretty, secrets redacted as in JSON", async () => {
    const server = await spawnServer({ LOG_FORMAT: "pretty" });
    await expect.poll(() => server.output()).toContain("(demo chat)");
    const lines = server.output().split("\n");
    expect(lines.some((line) => line.trimStart().startsWith("{"))).toBe(false);
    expect(lines.find((line) => line.includes("listening on"))).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: listening on http:\/\//);
    // The admin token is sent as a header; nothing of it reaches the log in either format.
    await httpGraphQL(server.httpUrl, "{ triggers { id } }", {}, { token: ADMIN_TOKEN });
    expect(server.output()).not.toContain(ADMIN_TOKEN);
    expect(await server.stop()).toBe(0);
  });

  it("logs readable lines when stdout is a terminal, and JSON when it is not", async () => {
    // `script` runs the server with a terminal as its stdout, as a person starting it would.
    const child = spawn("script", ["-qfec", `${process.execPath} --import tsx src/main.ts`, "/dev/null"], {
      cwd: projectRoot,
      detached: true,
      env: { ...process.env, PORT: "0", HOST: "127.0.0.1", DATA_DIR: freshDataDir(), ADMIN_TOKEN, LOG_LEVEL: "info", LOG_FORMAT: "" },
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk;
    });
    const exited = new Promise((resolve) => child.once("exit", resolve));
    try {
      await expect.poll(() => output, { timeout: 30_000 }).toContain("(demo chat)");
      // Coloured for a terminal: the level comes with its escape codes.
      const esc = String.fromCharCode(27);
      expect(output).toContain(`${esc}[32mINFO${esc}[39m`);
      expect(output).toMatch(/INFO.*listening on http:\/\//);
      expect(output).not.toContain('{"level"');
    } finally {
      process.kill(-child.pid!, "SIGTERM");
      await exited;
    }
    const piped = await spawnServer({ LOG_FORMAT: "" });
    await expect.poll(() => piped.output()).toContain("(demo chat)");
    expect(piped.output()).toContain('"msg":"listening on http://');
    await piped.stop();
  });
});
