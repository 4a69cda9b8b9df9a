/**
 * The edge, before any handshake completes: every refusal of a WebSocket upgrade survives a reset
 * of the connection, half-open requests count toward their address's cap and are cut off by the
 * header timeout, and document nesting is counted by the GraphQL lexer, so strings cannot hide it.
 * The server runs as its own process, so a connection that kills it is seen as such.
 */
import { describe, expect, it } from "vitest";
import { type Ending, rawExchange, statusOf, upgradeRequest } from "../helpers/raw-tcp.js";
import { acknowledgedSocket } from "../helpers/raw-ws.js";
import { alive, type WatchedServer, watchedServer } from "../helpers/watched-server.js";

const MAX_CONNECTIONS_PER_ADDRESS = 8;
const HEADERS_TIMEOUT_MS = 1000;

/** Per-address limits apply: each test aims them from a loopback address of its own (127.0.0.x). */
const EDGE_ENV = {
  CORS_ORIGINS: "http://allowed.test",
  MAX_CONNECTIONS_PER_ADDRESS: String(MAX_CONNECTIONS_PER_ADDRESS),
  MAX_ADDRESS_CONNECTIONS_PER_SECOND: "1000",
  HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
  LOG_LEVEL: "info",
};

/** One new WebSocket per address, then 429 for 10 s. */
const RATE_ENV = { ...EDGE_ENV, MAX_ADDRESS_CONNECTIONS_PER_SECOND: "0.1" };

const portOf = (url: string) => Number(new URL(url).port);

/** A refused upgrade request, answered and then ended by the client in every way. */
interface Refusal {
  readonly what: string;
  readonly localAddress: string;
  readonly request: string;
  readonly status: number;
}

async function refuseAndEnd(watched: WatchedServer, refusals: readonly Refusal[]): Promise<void> {
  const port = portOf(watched.server.httpUrl);
  for (const refusal of refusals) {
    for (const ending of ["rst", "fin", "hold"] satisfies Ending[]) {
      const { received } = await rawExchange({ port, localAddress: refusal.localAddress, parts: [Buffer.from(refusal.request)], ending });
      expect(statusOf(received), `${refusal.what}, then ${ending}`).toBe(refusal.status);
      expect(await watched.check(), `${refusal.what}, then ${ending}`).toEqual([]);
    }
    // Reset at once: the refusal is written to a connection the client has already reset.
    for (let i = 0; i < 5; i++) {
      await rawExchange({ port, localAddress: refusal.localAddress, parts: [Buffer.from(refusal.request)], ending: "rst", readMs: 0 });
      expect(await watched.check(), `${refusal.what}, then an immediate reset`).toEqual([]);
    }
  }
}

describe("refused upgrades, then a reset or an orderly close", () => {
  it("answer 404, 403 and 429 over the cap, and the process carries on whatever the client does next", async () => {
    const watched = await watchedServer(EDGE_ENV);
    // 127.0.0.4 holds its address's every connection, so its next upgrade is over the cap.
    await Promise.all(
      Array.from({ length: MAX_CONNECTIONS_PER_ADDRESS }, () =>
        acknowledgedSocket(watched.server.wsUrl, undefined, { localAddress: "127.0.0.4" }),
      ),
    );
    await refuseAndEnd(watched, [
      { what: "another path", localAddress: "127.0.0.2", request: upgradeRequest("/elsewhere"), status: 404 },
      {
        what: "an origin not allowed",
        localAddress: "127.0.0.2",
        request: upgradeRequest("/graphql", { Origin: "http://evil.test" }),
        status: 403,
      },
      { what: "over the cap", localAddress: "127.0.0.4", request: upgradeRequest("/graphql"), status: 429 },
    ]);
  });

  it("answer 429 over the rate, and the process carries on whatever the client does next", async () => {
    const watched = await watchedServer(RATE_ENV);
    // 127.0.0.3 spends its one new connection, so its next upgrade is over the rate.
    const port = portOf(watched.server.httpUrl);
    const first = await rawExchange({ port, localAddress: "127.0.0.3", parts: [Buffer.from(upgradeRequest("/graphql"))], ending: "rst" });
    expect(statusOf(first.received)).toBe(101);
    await refuseAndEnd(watched, [{ what: "over the rate", localAddress: "127.0.0.3", request: upgradeRequest("/graphql"), status: 429 }]);
  });
});

describe("half-open upgrade requests", () => {
  it("count toward the address's cap from their first byte, and are answered 408 and closed after HTTP_HEADERS_TIMEOUT_MS", async () => {
    const watched = await watchedServer(EDGE_ENV);
    const port = portOf(watched.server.httpUrl);
    const partial = Buffer.from(upgradeRequest("/graphql").slice(0, -2)); // headers never end
    const halfOpen = Array.from({ length: MAX_CONNECTIONS_PER_ADDRESS }, () =>
      rawExchange({ port, localAddress: "127.0.0.5", parts: [partial], ending: "hold", readMs: 0, lingerMs: 10 * HEADERS_TIMEOUT_MS }),
    );
    // Wait until the server holds them all: its next connection from that address is refused.
    let refused: number | null = null;
    for (let attempt = 0; attempt < 50 && refused !== 429; attempt++) {
      const { received } = await rawExchange({
        port,
        localAddress: "127.0.0.5",
        parts: [Buffer.from(upgradeRequest("/graphql"))],
        ending: "rst",
      });
      refused = statusOf(received);
    }
    expect(refused).toBe(429);
    for (const { received, closedByServer } of await Promise.all(halfOpen)) {
      expect(closedByServer).toBe(true);
      expect(statusOf(received)).toBe(408);
    }
    expect(await watched.check()).toEqual([]);
    // Their count is released: the address may connect again.
    const again = await acknowledgedSocket(watched.server.wsUrl, undefined, { localAddress: "127.0.0.6" });
    again.ws.close();
  });
});

describe("documents nested deeper than the limit", () => {
  /** Brackets that a scan of raw text takes for the inside of a string: an escaped backslash ends the string before them. */
  const hiddenNesting = (depth: number) => `query { history(channel: "\\\\", last: ${"[".repeat(depth)}"x"${"]".repeat(depth)}) { id } }`;

  it("are refused with BAD_USER_INPUT (400 over HTTP) before parsing, however strings are escaped, and nothing is logged as an error", async () => {
    const watched = await watchedServer(EDGE_ENV);
    for (const depth of [129, 2_400, 40_000]) {
      const response = await fetch(watched.server.httpUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: hiddenNesting(depth) }),
      });
      const body = (await response.json()) as { errors: { message: string; extensions: { code: string } }[] };
      expect(response.status, `depth ${depth}`).toBe(400);
      expect(body.errors[0]!.extensions.code).toBe("BAD_USER_INPUT");
      expect(body.errors[0]!.message).toMatch(/nests deeper than 128/);
    }
    // Within the limit the same shape reaches the validator, which answers as usual.
    const shallow = await fetch(watched.server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: hiddenNesting(3) }),
    });
    expect(((await shallow.json()) as { errors: unknown[] }).errors).toHaveLength(1);
    expect(await watched.check()).toEqual([]);
    const output = watched.server.output();
    expect(output).not.toMatch(/Maximum call stack/);
    expect(output).not.toMatch(/"level":50/);
    expect(alive(watched.server)).toBe(true);
  });
});
