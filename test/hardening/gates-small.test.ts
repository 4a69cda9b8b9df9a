/**
 * Gates at the edges of the server, against real servers: malformed credentials are refused rather
 * than read as anonymous, CORS sends no credentials unless configured, the data folder and the
 * SQLite files are readable by their owner only, and whatever input a client sends, every error it
 * sees (over HTTP, SSE, or the WebSocket's generic and channel paths) is either a coded client error
 * or the masked `Unexpected error.`, with the server still serving.
 */
import { chmodSync, existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { type GraphQLError, GraphQLObjectType, GraphQLSchema } from "graphql";
import { JSONResolver } from "graphql-scalars";
import { createYoga } from "graphql-yoga";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { freePort } from "../../dev/net.js";
import { EnvError, parseEnv } from "../../src/env.js";
import { OutageLog } from "../../src/observability/outages.js";
import { createErrorMasker } from "../../src/schema/errors.js";
import { safeSerialization, serializableResult, stringifyResult } from "../../src/schema/results.js";
import { eventually } from "../helpers/eventually.js";
import { connectWs, httpGraphQL, wsGraphQL } from "../helpers/graphql.js";
import { assertProperty } from "../helpers/property.js";
import { ADMIN_TOKEN, freshDataDir, startServer, type TestServer } from "../helpers/server.js";
import { clientToken } from "../helpers/tokens.js";

const JWT_SECRET = "a-test-secret-that-is-long-enough-0123456789";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ JWT_SECRET, MAX_WS_MESSAGE_BYTES: String(4 * 1024 * 1024), MAX_HTTP_BODY_BYTES: String(4 * 1024 * 1024) });
});

describe("the Authorization header", () => {
  const WHO = `{ serverInfo { version } }`; // admin only: proves which identity a header gave

  async function asHeader(authorization: string) {
    return httpGraphQL(server.httpUrl, `{ __typename }`, {}, { headers: { authorization } });
  }

  it("refuses every malformed header with 401 UNAUTHENTICATED instead of treating it as anonymous", async () => {
    const jwt = await clientToken(JWT_SECRET, "alice");
    const token = fc.oneof(fc.constant(jwt), fc.constant(ADMIN_TOKEN), fc.stringMatching(/^[A-Za-z0-9._~+/-]{1,40}$/));
    const malformed = fc.oneof(
      token.map((t) => `Token ${t}`),
      token.map((t) => `Basic ${t}`),
      token, // no scheme
      fc.tuple(token, token).map(([a, b]) => `Bearer ${a}, Bearer ${b}`),
      fc.tuple(token, token).map(([a, b]) => `Bearer ${a},${b}`),
      fc.tuple(token, token).map(([a, b]) => `Bearer ${a} ${b}`),
      fc.constantFrom("Bearer", "Bearer ", "bearer", "", " "),
    );
    await assertProperty(
      fc.asyncProperty(malformed, async (authorization) => {
        const { status, body } = await asHeader(authorization);
        expect(status).toBe(401);
        expect(body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
        expect(body.data ?? null).toBeNull();
      }),
      { numRuns: 60 },
    );
  });

  it("keeps an absent header anonymous and reads well-formed bearer tokens, whatever the scheme's case", async () => {
    const anonymous = await httpGraphQL(server.httpUrl, WHO);
    expect(anonymous.status).toBe(200);
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED"); // admin-only field, no credentials
    for (const scheme of ["Bearer", "bearer", "BEARER"]) {
      const admin = await httpGraphQL(server.httpUrl, WHO, {}, { headers: { authorization: `${scheme} ${ADMIN_TOKEN}` } });
      expect(admin.body.data?.serverInfo.version).toEqual(expect.any(String));
    }
    const client = await httpGraphQL(
      server.httpUrl,
      `mutation { joinChannel(channel: "auth-ok") { event { client { id authenticated } } } }`,
      {},
      { token: await clientToken(JWT_SECRET, "bob") },
    );
    expect(client.body.data?.joinChannel.event.client).toEqual({ id: "bob", authenticated: true });
  });

  it("refuses a WebSocket whose authToken or adminToken is present but not a string (4403)", async () => {
    const jwt = await clientToken(JWT_SECRET, "carol");
    for (const authToken of [[jwt], { token: jwt }, 42, true, null]) {
      await expect(connectWs(server.wsUrl, { authToken }), JSON.stringify(authToken)).rejects.toMatchObject({ code: 4403 });
    }
    for (const adminToken of [[ADMIN_TOKEN], { token: ADMIN_TOKEN }, 1, null]) {
      await expect(connectWs(server.wsUrl, { adminToken }), JSON.stringify(adminToken)).rejects.toMatchObject({ code: 4403 });
    }
    const accepted = await connectWs(server.wsUrl, { authToken: jwt });
    const joined = await wsGraphQL(accepted, `mutation { joinChannel(channel: "auth-ws") { event { client { id } } } }`);
    expect(joined.data).toEqual({ joinChannel: { event: { client: { id: "carol" } } } });
  });
});

describe("CORS", () => {
  const ORIGIN = "https://app.example";

  /** A browser's preflight for a JSON POST with a bearer token, and the POST that follows it. */
  async function corsExchange(url: string, origin: string) {
    const preflight = await fetch(url, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type, authorization" },
    });
    const simple = await fetch(url, {
      method: "POST",
      headers: { origin, "content-type": "application/json" },
      body: JSON.stringify({ query: "{ __typename }" }),
    });
    return { preflight: preflight.headers, simple: simple.headers, preflightStatus: preflight.status, simpleStatus: simple.status };
  }

  it("by default allows any origin without credentials", async () => {
    const { preflight, simple, preflightStatus, simpleStatus } = await corsExchange(server.httpUrl, ORIGIN);
    expect(preflightStatus).toBe(204);
    expect(simpleStatus).toBe(200);
    for (const headers of [preflight, simple]) {
      expect(headers.get("access-control-allow-origin")).toBe(ORIGIN);
      expect(headers.get("access-control-allow-credentials")).toBeNull();
    }
    expect(preflight.get("access-control-allow-headers")?.toLowerCase()).toContain("authorization");
  });

  it("allows listed origins only, with credentials only when CORS_CREDENTIALS is true", async () => {
    const listed = "https://a.example,https://b.example";
    const withCredentials = await startServer({ CORS_ORIGINS: listed, CORS_CREDENTIALS: "true" });
    const without = await startServer({ CORS_ORIGINS: listed });
    for (const origin of ["https://a.example", "https://b.example"]) {
      const credentialed = await corsExchange(withCredentials.httpUrl, origin);
      const plain = await corsExchange(without.httpUrl, origin);
      for (const headers of [credentialed.preflight, credentialed.simple]) {
        expect(headers.get("access-control-allow-origin")).toBe(origin);
        expect(headers.get("access-control-allow-credentials")).toBe("true");
      }
      for (const headers of [plain.preflight, plain.simple]) {
        expect(headers.get("access-control-allow-origin")).toBe(origin);
        expect(headers.get("access-control-allow-credentials")).toBeNull();
      }
      // The answer depends on the Origin: shared caches must key on it.
      for (const headers of [credentialed.preflight, credentialed.simple, plain.preflight, plain.simple]) {
        expect(headers.get("vary")?.toLowerCase()).toMatch(/(^|, ?)origin(,|$)/);
      }
    }
    // An origin not listed, and the opaque origin of sandboxed pages, get no CORS headers at all.
    for (const origin of ["https://evil.example", "null"]) {
      const refused = await corsExchange(withCredentials.httpUrl, origin);
      for (const headers of [refused.preflight, refused.simple]) {
        expect(headers.get("access-control-allow-origin")).toBeNull();
        expect(headers.get("access-control-allow-credentials")).toBeNull();
        expect(headers.get("vary")?.toLowerCase()).toMatch(/(^|, ?)origin(,|$)/);
      }
    }
  });

  it("refuses to start with CORS_CREDENTIALS=true while every origin is allowed", () => {
    for (const CORS_ORIGINS of [undefined, "*", "https://a.example, *"]) {
      expect(() => parseEnv({ CORS_CREDENTIALS: "true", ...(CORS_ORIGINS ? { CORS_ORIGINS } : {}) })).toThrow(EnvError);
      expect(() => parseEnv({ CORS_CREDENTIALS: "true", ...(CORS_ORIGINS ? { CORS_ORIGINS } : {}) })).toThrow(/CORS_CREDENTIALS/);
    }
    expect(parseEnv({}).CORS_CREDENTIALS).toBe(false);
    expect(parseEnv({ CORS_CREDENTIALS: "true", CORS_ORIGINS: "https://a.example" }).CORS_CREDENTIALS).toBe(true);
  });
});

describe("file permissions", () => {
  const modeOf = (path: string) => statSync(path).mode & 0o777;

  it("creates the data folder 0700 and the database, its WAL files and a generated admin token 0600", async () => {
    const dataDir = join(freshDataDir({ migrated: false }), "data");
    await startServer({ ADMIN_TOKEN: "", DATABASE_URL: "" }, dataDir);
    expect(modeOf(dataDir)).toBe(0o700);
    const files = ["realtime.db", "realtime.db-wal", "realtime.db-shm", "admin-token"].map((name) => join(dataDir, name));
    for (const file of files) {
      expect(existsSync(file), file).toBe(true);
      expect(modeOf(file), file).toBe(0o600);
    }
  });

  it("tightens an existing data folder, database and admin token file at start", async () => {
    const dataDir = freshDataDir();
    writeFileSync(join(dataDir, "admin-token"), "a-stored-admin-token-0123456789\n", { mode: 0o644 });
    chmodSync(join(dataDir, "admin-token"), 0o644);
    chmodSync(join(dataDir, "realtime.db"), 0o644);
    chmodSync(dataDir, 0o755);
    const restarted = await startServer({ ADMIN_TOKEN: "", DATABASE_URL: "" }, dataDir);
    expect(modeOf(dataDir)).toBe(0o700);
    for (const name of ["realtime.db", "realtime.db-wal", "realtime.db-shm", "admin-token"])
      expect(modeOf(join(dataDir, name)), name).toBe(0o600);
    const admin = await httpGraphQL(restarted.httpUrl, `{ serverInfo { version } }`, {}, { token: "a-stored-admin-token-0123456789" });
    expect(admin.body.data?.serverInfo.version).toEqual(expect.any(String));
  });

  it("creates the folder of a SQLite DATABASE_URL outside DATA_DIR 0700 and the file 0600", async () => {
    const folder = join(freshDataDir({ migrated: false }), "elsewhere");
    await startServer({ DATABASE_URL: `file:${join(folder, "other.db")}` });
    expect(modeOf(folder)).toBe(0o700);
    expect(modeOf(join(folder, "other.db"))).toBe(0o600);
  });
});

describe("errors at every exit", () => {
  const MASKED = "Unexpected error.";

  /** JSON text of a value nested `depth` levels deep (built as text: JSON.stringify itself would overflow). */
  function deepJson(depth: number, shape: "object" | "array"): string {
    return shape === "object" ? `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}` : `${"[".repeat(depth)}1${"]".repeat(depth)}`;
  }

  /** What a client may see as an error: a coded client error, or the masked message with INTERNAL_SERVER_ERROR. */
  function expectSafe(errors: { message: string; extensions?: Record<string, unknown> }[], door: string): void {
    for (const error of errors) {
      expect(error.extensions?.code, `${door}: ${JSON.stringify(error)}`).toEqual(expect.any(String));
      if (error.extensions?.code === "INTERNAL_SERVER_ERROR") expect(error.message, door).toBe(MASKED);
      expect(error.message, door).not.toMatch(/call stack|RangeError|TypeError|at .*\.ts/);
    }
  }

  const sockets = new Set<WebSocket>();
  afterAll(() => {
    for (const ws of sockets) ws.terminate();
  });

  /**
   * Sends one operation over a raw graphql-transport-ws socket (the graphql-ws client cannot send
   * such variables: its own JSON.stringify overflows) and collects what comes back for it until it
   * completes or errors; then checks the same socket still answers.
   */
  async function overWebSocket(query: string, variablesJson: string) {
    const ws = new WebSocket(server.wsUrl, "graphql-transport-ws");
    sockets.add(ws);
    const messages: Record<string, any>[] = [];
    let closeCode: number | null = null;
    ws.on("message", (data) => void messages.push(JSON.parse(String(data)) as Record<string, any>));
    ws.on("close", (code) => void (closeCode = code));
    // Waits for `done`, or for the socket to close (which the caller sees in closeCode).
    const until = (what: string, done: () => boolean) =>
      eventually(what, () => ({ over: done() || closeCode !== null, messages }), {
        until: (seen) => seen.over,
        timeoutMs: 5000,
        intervalMs: 10,
      });
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    ws.send(JSON.stringify({ type: "connection_init" }));
    await until("connection_ack", () => messages.some((m) => m.type === "connection_ack"));
    ws.send(`{"id":"deep","type":"subscribe","payload":{"query":${JSON.stringify(query)},"variables":${variablesJson}}}`);
    const ended = (id: string) => () => messages.some((m) => m.id === id && (m.type === "complete" || m.type === "error"));
    await until(
      "the deep operation's errors or end",
      () => messages.some((m) => m.id === "deep" && (m.type === "error" || m.payload?.errors)) || ended("deep")(),
    );
    ws.send(JSON.stringify({ id: "after", type: "subscribe", payload: { query: "{ __typename }" } }));
    await until("the later operation's end", ended("after"));
    const errors = messages.flatMap((m) => (m.id !== "deep" ? [] : m.type === "error" ? m.payload : (m.payload?.errors ?? [])));
    const stillServing = messages.some((m) => m.id === "after" && m.type === "next" && m.payload?.data?.__typename === "Query");
    ws.close();
    return { errors, closeCode, stillServing };
  }

  /** POSTs an operation with the variables as raw JSON text; reads the first SSE event when `sse`. */
  async function overHttp(query: string, variablesJson: string, sse: boolean) {
    const response = await fetch(server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: sse ? "text/event-stream" : "application/json" },
      body: `{"query":${JSON.stringify(query)},"variables":${variablesJson}}`,
    });
    let text = "";
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    while (sse ? !/data: .+\n\n/.test(text) : true) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    await reader.cancel();
    const json = sse
      ? text
          .split("\n")
          .find((line) => line.startsWith("data: {"))!
          .slice(6)
      : text;
    return {
      status: response.status,
      errors: ((JSON.parse(json) as { errors?: [] }).errors ?? []) as { message: string; extensions?: Record<string, unknown> }[],
    };
  }

  const SELECTION = `{ id action commandOptions }`;
  const OPERATIONS = {
    "WebSocket generic path (root directive)": `subscription ($options: JSON) { channel(name: "deep", options: $options) @include(if: true) ${SELECTION} }`,
    "WebSocket generic path (root fragment)": `subscription ($options: JSON) { ... on Subscription { channel(name: "deep", options: $options) ${SELECTION} } }`,
    "WebSocket channel path": `subscription ($options: JSON) { channel(name: "deep", options: $options) ${SELECTION} }`,
    "WebSocket mutation": `mutation ($options: JSON) { joinChannel(channel: "deep", options: $options) { event ${SELECTION} } }`,
  };

  it("answers variables nested thousands deep with a coded or masked error on every WebSocket path, and the socket keeps serving", async () => {
    const cases = fc.record({
      door: fc.constantFrom(...(Object.keys(OPERATIONS) as (keyof typeof OPERATIONS)[])),
      depth: fc.integer({ min: 5_000, max: 40_000 }),
      shape: fc.constantFrom("object" as const, "array" as const),
    });
    await assertProperty(
      fc.asyncProperty(cases, async ({ door, depth, shape }) => {
        const { errors, closeCode, stillServing } = await overWebSocket(OPERATIONS[door], `{"options":${deepJson(depth, shape)}}`);
        expect(closeCode, door).toBeNull();
        expect(errors.length, door).toBeGreaterThan(0);
        expectSafe(errors, door);
        expect(stillServing, door).toBe(true);
      }),
      // Every door once at a depth that overflows, then random doors, depths and shapes.
      {
        numRuns: 16,
        examples: (Object.keys(OPERATIONS) as (keyof typeof OPERATIONS)[]).map(
          (door) =>
            [{ door, depth: 5_000, shape: "object" as "object" | "array" }] as [
              { door: keyof typeof OPERATIONS; depth: number; shape: "object" | "array" },
            ],
        ),
      },
    );
  });

  it("answers them with a coded or masked error over HTTP and SSE, and the server keeps serving", async () => {
    const options = `{"options":${deepJson(5_000, "object")}}`;
    const doors = [
      ["HTTP mutation", OPERATIONS["WebSocket mutation"], false],
      ["SSE subscription", OPERATIONS["WebSocket channel path"], true],
      ["SSE subscription (root directive)", OPERATIONS["WebSocket generic path (root directive)"], true],
    ] as const;
    for (const [door, query, sse] of doors) {
      const { status, errors } = await overHttp(query, options, sse);
      expect(status, door).toBe(200);
      expect(errors.length, door).toBeGreaterThan(0);
      expectSafe(errors, door);
    }
    expect((await fetch(server.httpUrl.replace("/graphql", "/health"))).status).toBe(200);
    expect((await httpGraphQL(server.httpUrl, `{ __typename }`)).body.data).toEqual({ __typename: "Query" });
  });
});

/**
 * The masking at the exit, in-process with the server's masker and a real Yoga: since inputs are
 * bounded where they enter (variables, claims, trigger output), no request reaches it end to end,
 * so these hold it to its contract directly.
 */
describe("masking where results leave", () => {
  const logged: Record<string, any>[] = [];
  const logger = pino({ level: "info", base: undefined }, { write: (line: string) => void logged.push(JSON.parse(line)) });
  const maskError = createErrorMasker(logger, false, { database: new OutageLog("database", logger), redis: null });
  /**
   * A value JSON.stringify refuses on every engine. (Deep nesting is not one: how deep it may go
   * depends on the engine's stack, and Node 24's JSON.stringify writes 100,000 levels.)
   */
  const unserializable = () => {
    const value: Record<string, unknown> = { a: 1 };
    value.self = value;
    return value;
  };

  it("tells a client SERVICE_UNAVAILABLE for the database driver's own connection errors, never a masked internal error", async () => {
    // A real node-postgres error: a connection to a port nothing listens on.
    const driver = new pg.Client({
      connectionString: `postgres://nobody@127.0.0.1:${await freePort()}/none`,
      connectionTimeoutMillis: 2000,
    });
    const refused: unknown = await driver.connect().then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(Error);
    logged.length = 0;
    const masked = maskError(refused, "Unexpected error.") as GraphQLError;
    expect(masked.extensions).toMatchObject({ code: "SERVICE_UNAVAILABLE" });
    expect(masked.message).toBe("The database is unreachable; try again shortly");
    expect(logged.filter((line) => line.level >= 50)).toEqual([]);
  });

  it("stringifyResult and serializableResult pass a serializable result through unchanged", () => {
    const result = { data: { x: [1, { y: "z" }] } };
    expect(stringifyResult(result, maskError)).toBe(JSON.stringify(result));
    expect(serializableResult(result, maskError)).toBe(result);
  });

  it("turn a result JSON.stringify cannot serialize into the masked error, logging the cause with its id", () => {
    const result = { data: { deep: unserializable() } };
    logged.length = 0;
    const text = JSON.parse(stringifyResult(result, maskError)) as { errors: { message: string; extensions: Record<string, unknown> }[] };
    expect(text).toEqual({
      data: null,
      errors: [{ message: "Unexpected error.", extensions: { code: "INTERNAL_SERVER_ERROR", errorId: expect.any(String) } }],
    });
    expect(logged).toContainEqual(
      expect.objectContaining({ errorId: text.errors[0]!.extensions.errorId, err: expect.objectContaining({ type: "TypeError" }) }),
    );
    const replaced = serializableResult(result, maskError);
    expect(replaced.data).toBeNull();
    expect(replaced.errors?.map((error) => [error.message, error.extensions.code])).toEqual([
      ["Unexpected error.", "INTERNAL_SERVER_ERROR"],
    ]);
  });

  it("makes Yoga answer a result it cannot serialize with the masked error, over JSON and SSE", async () => {
    const Query = new GraphQLObjectType({ name: "Query", fields: { deep: { type: JSONResolver, resolve: () => unserializable() } } });
    const Subscription = new GraphQLObjectType({
      name: "Subscription",
      fields: {
        deep: {
          type: JSONResolver,
          subscribe: async function* () {
            yield { deep: unserializable() };
            yield { deep: 1 };
          },
        },
      },
    });
    const yoga = createYoga({
      schema: new GraphQLSchema({ query: Query, subscription: Subscription }),
      plugins: [safeSerialization(maskError)],
      logging: false,
    });
    const json = await yoga.fetch("http://yoga/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: "{ deep }" }),
    });
    expect(await json.json()).toEqual({
      data: null,
      errors: [{ message: "Unexpected error.", extensions: { code: "INTERNAL_SERVER_ERROR", errorId: expect.any(String) } }],
    });
    const sse = await yoga.fetch("http://yoga/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body: JSON.stringify({ query: "subscription { deep }" }),
    });
    const events = (await sse.text())
      .split("\n")
      .filter((line) => line.startsWith("data: {"))
      .map((line) => JSON.parse(line.slice(6)));
    expect(events).toEqual([
      {
        data: null,
        errors: [{ message: "Unexpected error.", extensions: { code: "INTERNAL_SERVER_ERROR", errorId: expect.any(String) } }],
      },
      { data: { deep: 1 } }, // the stream goes on
    ]);
  });
});
