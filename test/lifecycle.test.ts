import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseEnv } from "../src/env.js";
import { joinBySubscription, SEND_MESSAGE } from "./helpers/channels.js";
import { connectWs, httpGraphQL } from "./helpers/graphql.js";
import { spawnServer } from "./helpers/process.js";
import { ADMIN_TOKEN, freshDataDir, startServer } from "./helpers/server.js";

const SERVER_INFO = `{ serverInfo { version database pubsub startedAt } }`;

describe("health and restart", () => {
  it("migrates a new database, answers /health, and is healthy again after a restart on the same file", async () => {
    const dataDir = freshDataDir({ migrated: false });
    const first = await startServer({}, dataDir);
    expect(existsSync(join(dataDir, "realtime.db"))).toBe(true);
    const health = await fetch(first.httpUrl.replace("/graphql", "/health"));
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", database: "ok" });
    await first.stop();

    const second = await startServer({}, dataDir);
    expect((await fetch(second.httpUrl.replace("/graphql", "/health"))).status).toBe(200);
    const sent = await httpGraphQL(second.httpUrl, SEND_MESSAGE, { channel: "after-restart", payload: 1 });
    expect(sent.body.data?.sendMessage.delivered).toBe(true);
  });

  it("closes sockets and subscriptions when stopped", async () => {
    const server = await startServer();
    const client = await connectWs(server.wsUrl);
    const closed = new Promise<{ code: number }>((resolve) => client.on("closed", (event) => resolve(event as { code: number })));
    const { subscription } = await joinBySubscription(client, "closing");
    await server.stop();
    expect((await closed).code).toBe(1001);
    await subscription.ended;
  });
});

describe("management auth", () => {
  it("refuses a management operation without the admin token and allows it with the token", async () => {
    const server = await startServer();
    const anonymous = await httpGraphQL(server.httpUrl, SERVER_INFO);
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    expect(anonymous.body.data).toBeNull();

    const wrong = await httpGraphQL(server.httpUrl, SERVER_INFO, {}, { token: "not-the-admin-token" });
    expect(wrong.status).toBe(401);
    expect(wrong.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");

    const admin = await httpGraphQL(server.httpUrl, SERVER_INFO, {}, { token: ADMIN_TOKEN });
    expect(admin.body.errors).toBeUndefined();
    expect(admin.body.data?.serverInfo).toMatchObject({ database: "sqlite", pubsub: "memory" });

    const socketAdmin = await connectWs(server.wsUrl, { adminToken: ADMIN_TOKEN });
    const overSocket = await new Promise<any>((resolve, reject) =>
      socketAdmin.subscribe({ query: SERVER_INFO }, { next: resolve, error: reject, complete: () => {} }),
    );
    expect(overSocket.data.serverInfo.database).toBe("sqlite");

    await expect(connectWs(server.wsUrl, { adminToken: "wrong" })).rejects.toMatchObject({ code: 4403 });
  });

  it("generates an admin token on first start, stores it in the data folder and keeps it", async () => {
    const dataDir = freshDataDir();
    const first = await startServer({ ADMIN_TOKEN: "" }, dataDir);
    const token = readFileSync(join(dataDir, "admin-token"), "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect((await httpGraphQL(first.httpUrl, SERVER_INFO, {}, { token })).body.data?.serverInfo).toBeTruthy();
    await first.stop();
    const second = await startServer({ ADMIN_TOKEN: "" }, dataDir);
    expect((await httpGraphQL(second.httpUrl, SERVER_INFO, {}, { token })).body.data?.serverInfo).toBeTruthy();
  });
});

describe("configuration", () => {
  it("stops at start with a message naming a bad variable", () => {
    expect(() => parseEnv({ PORT: "eighty" })).toThrow(/PORT/);
    expect(() => parseEnv({ DATABASE_URL: "mysql://x" })).toThrow(/DATABASE_URL/);
    expect(() => parseEnv({ ADMIN_TOKEN: "short" })).toThrow(/ADMIN_TOKEN/);
    expect(parseEnv({}).PORT).toBe(4000);
  });

  it("runs as a process: starts with npm's start command, serves, and stops with it on SIGTERM to npm's process", async () => {
    // The README's `PORT=4001 npm start &` gives npm's process id; SIGTERM to it must stop the server too.
    const server = await spawnServer({}, undefined, "npm");
    expect((await fetch(server.healthUrl)).status).toBe(200);
    expect(await server.stop("SIGTERM")).toBe(0);
    expect(server.output()).toContain('"signal":"SIGTERM","msg":"shutting down"');
    await expect(fetch(server.healthUrl)).rejects.toThrow();
    expect(server.output()).not.toContain(ADMIN_TOKEN);
  });

  it("refuses to start with a bad variable, naming it, and exits non-zero", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      env: { ...process.env, PORT: "not-a-port" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/PORT/);
  });
});

describe("production switches", () => {
  it("turns off introspection and GraphiQL when told to", async () => {
    const server = await startServer({ INTROSPECTION: "false", GRAPHIQL: "false" });
    const introspection = await httpGraphQL(server.httpUrl, `{ __schema { types { name } } }`);
    expect(introspection.body.errors?.[0]?.message).toMatch(/introspection/i);
    const page = await fetch(server.httpUrl, { headers: { accept: "text/html" } });
    expect(await page.text()).not.toMatch(/graphiql/i);

    const open = await startServer();
    expect((await httpGraphQL(open.httpUrl, `{ __schema { queryType { name } } }`)).body.data).toEqual({
      __schema: { queryType: { name: "Query" } },
    });
    const graphiql = await fetch(open.httpUrl, { headers: { accept: "text/html" } });
    expect(await graphiql.text()).toMatch(/graphiql/i);
  });
});
