/**
 * `sendMessage` over a WebSocket takes a fast path when its document is a plain `sendMessage`
 * mutation (see src/ws/send-path.ts); with a directive at the root it takes Yoga's generic path.
 * Every case here runs over both, each on fresh connections, and the answers must be identical once
 * ids, dates and channel names are set aside: results, error messages, codes, paths and locations,
 * and what the metrics count.
 */
import type { Client } from "graphql-ws";
import { beforeAll, describe, expect, it } from "vitest";
import { CHANNEL_SUBSCRIPTION, EVENT_FIELDS, JOIN_CHANNEL } from "./helpers/channels.js";
import { connectWs, type ExecutionResult, httpGraphQL, wsGraphQL, wsSubscribe } from "./helpers/graphql.js";
import { scrape } from "./helpers/metrics.js";
import { acknowledgedSocket, type RawSocket, rawSocket } from "./helpers/raw-ws.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "./helpers/server.js";
import { clientToken } from "./helpers/tokens.js";

const JWT_SECRET = "send-path-secret-0123456789-abcdefghij";
const MAX_PAYLOAD_BYTES = 1_000;

/** A sendMessage document with `selection`: plain (the fast path) or with a directive at the root (the generic path). */
const sendDocument = (path: Path, selection: string, alias = "") =>
  `mutation ($channel: String!, $payload: JSON!, $options: JSON) { ${alias}sendMessage(channel: $channel, payload: $payload, options: $options)${path === "fast" ? "" : " @include(if: true)"} ${selection} }`;
const SELECTION = `{ delivered event { ${EVENT_FIELDS} } }`;
/** Selections the fast path renders itself, and some (fragments, directives) it leaves to the executor. */
const OTHER_SELECTIONS = [
  "{ delivered }",
  "{ __typename ok: delivered e: event { __typename when: createdAt who: client { __typename id } seq } }",
  "{ delivered event { ...on ChannelEvent { id payload } } }",
  "{ ...Sent } } fragment Sent on SendMessageResult { delivered event { channel }",
  "{ delivered event @include(if: false) { id } }",
  "{ delivered event { payload @skip(if: true) channel } }",
];
type Path = "fast" | "generic";
const documentFor = (path: Path) => sendDocument(path, SELECTION);

/** Over GRAPHQL_MAX_ALIASES (15): refused by GraphQL Armor however often it comes. */
const TOO_MANY_ALIASES = `mutation ($channel: String!) { sendMessage(channel: $channel, payload: 1) { delivered event { ${Array.from({ length: 16 }, (_, i) => `a${i}: id`).join(" ")} } } }`;

let server: TestServer;
let counter = 0;

beforeAll(async () => {
  server = await startServer({ JWT_SECRET, MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES), MAX_MESSAGES_PER_SECOND: "2" });
  const admin = { token: ADMIN_TOKEN };
  for (const input of [
    { pattern: "quiet:*", messaging: "NOBODY" },
    { pattern: "signed:*", messaging: "AUTHENTICATED" },
    { pattern: "club:*", membersOnly: true },
  ]) {
    const created = await httpGraphQL(
      server.httpUrl,
      `mutation ($input: CreateChannelInput!) { createChannel(input: $input) { id } }`,
      { input },
      admin,
    );
    expect(created.body.errors).toBeUndefined();
  }
});

/** A channel of its own for each case and path, under `prefix`. */
const freshChannel = (prefix: string) => `${prefix}${++counter}`;

/** Sets aside what differs between two runs of the same case: ids, dates, sequence numbers and the channel's name. */
function normalize(value: unknown, channel: string): unknown {
  if (typeof value === "string") return /^\d{4}-\d\d-\d\dT[\d:.]+Z$/.test(value) ? "<date>" : value.replaceAll(channel, "<channel>");
  if (Array.isArray(value)) return value.map((item) => normalize(item, channel));
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [
        key,
        ["id", "createdAt", "seq"].includes(key) && item !== null && typeof item !== "object" ? `<${key}>` : normalize(item, channel),
      ]),
    );
  }
  return value;
}

/** What one case answers on one path, normalized. */
type Case = (path: Path) => Promise<unknown>;

/** Sends over `client` on `path` and normalizes the result. */
async function send(client: Client, path: Path, channel: string, payload: unknown, options?: unknown): Promise<unknown> {
  const result = await wsGraphQL(client, documentFor(path), { channel, payload, options });
  return normalize(result, channel);
}

const cases: Record<string, Case> = {
  "a delivered message, as the subscribers receive it": async (path) => {
    const channel = freshChannel("open:");
    const listener = await connectWs(server.wsUrl);
    const subscription = wsSubscribe<{ channel: unknown }>(listener, CHANNEL_SUBSCRIPTION, { name: channel });
    await subscription.next(); // its own JOIN: live
    const sender = await connectWs(server.wsUrl);
    const result = (await wsGraphQL<{ sendMessage: { event: unknown } }>(sender, documentFor(path), {
      channel,
      payload: { text: "hi", nested: [1, { deep: null }] },
      options: { kind: "greeting" },
    })) as ExecutionResult<{ sendMessage: { event: unknown } }>;
    const received = (await subscription.next()).data?.channel;
    expect(received).toEqual(result.data?.sendMessage.event);
    return normalize(result, channel);
  },
  "the per-client rate limit": async (path) => {
    const channel = freshChannel("open:");
    const sender = await connectWs(server.wsUrl);
    // The bucket holds 2 sends: the third within a second is refused.
    const results = [];
    for (let n = 0; n < 3; n++) results.push(await send(sender, path, channel, { n }));
    return results;
  },
  "other selections, with an alias at the root": async (path) => {
    const results = [];
    for (const selection of OTHER_SELECTIONS) {
      const channel = freshChannel("open:");
      const client = await connectWs(server.wsUrl); // a client of its own: the rate limit is 2 per second
      results.push(normalize(await wsGraphQL(client, sendDocument(path, selection, "sent: "), { channel, payload: [channel] }), channel));
    }
    return results;
  },
  "a bad channel name": async (path) => send(await connectWs(server.wsUrl), path, "not a channel name!", {}),
  "a payload over the size limit": async (path) =>
    send(await connectWs(server.wsUrl), path, freshChannel("open:"), { text: "x".repeat(MAX_PAYLOAD_BYTES) }),
  "a payload nesting too deep": async (path) => {
    let payload: unknown = 1;
    for (let level = 0; level < 80; level++) payload = [payload];
    return send(await connectWs(server.wsUrl), path, freshChannel("open:"), payload);
  },
  "options that are not an object": async (path) => send(await connectWs(server.wsUrl), path, freshChannel("open:"), {}, 5),
  "options.to that is not a client id": async (path) => send(await connectWs(server.wsUrl), path, freshChannel("open:"), {}, { to: 7 }),
  "a channel only the admin may send to": async (path) => send(await connectWs(server.wsUrl), path, freshChannel("quiet:"), {}),
  "a channel for authenticated senders, anonymous then with a token": async (path) => {
    const channel = freshChannel("signed:");
    const anonymous = await send(await connectWs(server.wsUrl), path, channel, {});
    const signed = await send(
      await connectWs(server.wsUrl, { authToken: await clientToken(JWT_SECRET, `user-${counter}`) }),
      path,
      channel,
      {},
    );
    return [anonymous, normalize(signed, `user-${counter}`)];
  },
  "a members-only channel, before and after joining": async (path) => {
    const channel = freshChannel("club:");
    const client = await connectWs(server.wsUrl);
    const before = await send(client, path, channel, {});
    expect((await wsGraphQL(client, JOIN_CHANNEL, { channel })).errors).toBeUndefined();
    return [before, await send(client, path, channel, { after: true })];
  },
  "variables of the wrong type, and a missing one": async (path) => {
    const client = await connectWs(server.wsUrl);
    const wrong = await wsGraphQL(client, documentFor(path), { channel: 5, payload: {} });
    const missing = await wsGraphQL(client, documentFor(path), { channel: "open:x" });
    return [wrong, missing];
  },
  "an operation name the document does not hold": async (path) => {
    const client = await connectWs(server.wsUrl);
    return new Promise((resolve) => {
      client.subscribe(
        { query: documentFor(path), variables: { channel: "open:x", payload: {} }, operationName: "Other" },
        { next: resolve, error: resolve, complete: () => {} },
      );
    });
  },
};

describe("sendMessage over WebSocket, fast and generic paths", () => {
  for (const [name, run] of Object.entries(cases)) {
    it(`answers the same on both paths: ${name}`, async () => {
      // Twice on the fast path: the first use of a document text goes through Yoga's validation, later ones are recognised.
      const first = await run("fast");
      const again = await run("fast");
      const generic = await run("generic");
      expect(again).toEqual(first);
      expect(generic).toEqual(first);
    });
  }

  it("counts operations and refusals in the metrics as the generic path does", async () => {
    const counted = async (path: Path) => {
      const before = await scrape(server.httpUrl, ADMIN_TOKEN);
      const client = await connectWs(server.wsUrl);
      const channel = freshChannel("quiet:");
      await send(client, path, channel, {}); // FORBIDDEN
      await send(client, path, freshChannel("open:"), {}); // delivered
      const after = await scrape(server.httpUrl, ADMIN_TOKEN);
      const delta = (name: string, labels?: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
      return {
        ok: delta("realtime_graphql_operations_total", { type: "mutation", field: "sendMessage", result: "ok" }),
        error: delta("realtime_graphql_operations_total", { type: "mutation", field: "sendMessage", result: "error" }),
        permission: delta("realtime_auth_failures_total", { transport: "ws", reason: "permission" }),
      };
    };
    const fast = await counted("fast");
    expect(fast).toEqual({ ok: 1, error: 1, permission: 1 });
    expect(await counted("generic")).toEqual(fast);
  });

  it("never remembers a document GraphQL Armor refuses: it is refused every time", async () => {
    const client = await connectWs(server.wsUrl);
    const answers = [];
    for (let n = 0; n < 3; n++) {
      answers.push(
        await new Promise((resolve) => {
          client.subscribe(
            { query: TOO_MANY_ALIASES, variables: { channel: "open:armor" } },
            { next: resolve, error: resolve, complete: () => {} },
          );
        }),
      );
    }
    expect(JSON.stringify(answers[0])).toContain("Aliases limit");
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
  });
});

describe("sendMessage over WebSocket, the protocol around the fast path", () => {
  let protocolServer: TestServer;
  beforeAll(async () => {
    protocolServer = await startServer({ MAX_MESSAGES_PER_SECOND: "1000" });
  });
  /** Writes frames in one TCP write, so the server reads them in one go. */
  const writeTogether = (socket: RawSocket, frames: object[]) => {
    const tcp = (socket.ws as unknown as { _socket: { cork(): void; uncork(): void } })._socket;
    tcp.cork();
    for (const frame of frames) socket.send(JSON.stringify(frame));
    tcp.uncork();
  };
  const sendFrame = (path: Path, id: string, channel: string) => ({
    id,
    type: "subscribe",
    payload: { query: documentFor(path), variables: { channel, payload: { id } } },
  });
  /** A socket whose server already knows the fast document (sent once, answered). */
  async function socketFor(path: Path): Promise<RawSocket> {
    const socket = await acknowledgedSocket(protocolServer.wsUrl);
    socket.send(JSON.stringify(sendFrame(path, "learn", freshChannel("open:"))));
    expect((await socket.next()).type).toBe("next");
    expect((await socket.next()).type).toBe("complete");
    return socket;
  }
  /** The frames `socket` receives until every operation in `until` has completed, by operation id, in order. */
  async function framesUntil(socket: RawSocket, until: string[]): Promise<Record<string, unknown[]>> {
    const frames: Record<string, unknown[]> = {};
    const pending = new Set(until);
    while (pending.size > 0) {
      const frame = await socket.next();
      (frames[frame.id] ??= []).push({
        type: frame.type,
        errors: frame.payload?.errors?.map((error: { extensions?: unknown }) => error.extensions),
      });
      if (frame.type === "complete") pending.delete(frame.id);
    }
    return frames;
  }

  it("refuses a subscribe that reuses the id of a send under way with 4409, on both paths", async () => {
    for (const path of ["fast", "generic"] as const) {
      const socket = await socketFor(path);
      writeTogether(socket, [sendFrame(path, "same", freshChannel("open:")), sendFrame(path, "same", freshChannel("open:"))]);
      expect((await socket.closed).code, path).toBe(4409);
    }
  });

  it("sends nothing for a send the client completes first, and runs a later subscribe with the same id, on both paths", async () => {
    const seen: Record<string, unknown> = {};
    for (const path of ["fast", "generic"] as const) {
      const socket = await socketFor(path);
      writeTogether(socket, [sendFrame(path, "a", freshChannel("open:")), { id: "a", type: "complete" }]);
      writeTogether(socket, [
        sendFrame(path, "b", freshChannel("open:")),
        { id: "b", type: "complete" },
        sendFrame(path, "b", freshChannel("open:")),
      ]);
      // A send after all that: once it and b have completed, a's answer would have come.
      socket.send(JSON.stringify(sendFrame(path, "probe", freshChannel("open:"))));
      seen[path] = await framesUntil(socket, ["b", "probe"]);
    }
    const answered = [
      { type: "next", errors: undefined },
      { type: "complete", errors: undefined },
    ];
    expect(seen.fast).toEqual({ b: answered, probe: answered });
    expect(seen.generic).toEqual(seen.fast);
  });

  it("refuses a send that arrives with connection_init, before the acknowledgement, on both paths", async () => {
    for (const path of ["fast", "generic"] as const) {
      await socketFor(path); // the server knows the document
      const socket = rawSocket(protocolServer.wsUrl);
      await socket.opened;
      writeTogether(socket, [{ type: "connection_init" }, sendFrame(path, "early", freshChannel("open:"))]);
      expect((await socket.closed).code, path).toBe(4401);
    }
  });
});
