/**
 * Raw TCP against every door, before and around any handshake: HTTP GET and POST, SSE (POST and
 * GET), the static pages, GraphiQL, /metrics, a WebSocket upgrade that is accepted (then frames)
 * and each refusal (another path, an origin not allowed, over the address's cap, over its rate).
 * Each case cuts its request at some byte, may add garbage, may write it byte by byte with pauses or
 * several times in one write, and ends with a reset (at once or after reading), an orderly close, or
 * by holding the connection open. After every case the server process is alive, `GET /health`
 * answers 200 and a bystander's message still arrives; a complete request is answered.
 *
 * The server runs as its own process. A fresh seed each time (`PROPERTY_SEED` replays one, see
 * helpers/property.ts), `EDGE_FUZZ_RUNS` cases (default 120; there is no time limit).
 */
import fc from "fast-check";
import { describe, it } from "vitest";
import { CHANNEL_SUBSCRIPTION } from "../helpers/channels.js";
import { assertProperty } from "../helpers/property.js";
import { type Ending, getRequest, maskedTextFrame, postRequest, rawExchange, statusOf, upgradeRequest } from "../helpers/raw-tcp.js";
import { acknowledgedSocket, type RawSocket } from "../helpers/raw-ws.js";
import { type WatchedServer, watchedServer } from "../helpers/watched-server.js";

const MAX_CONNECTIONS_PER_ADDRESS = 8;
const CONNECTIONS_PER_SECOND = 10;
const CHANNEL = "fuzz:edge";

const SERVER_ENV = {
  CORS_ORIGINS: "http://allowed.test",
  MAX_CONNECTIONS_PER_ADDRESS: String(MAX_CONNECTIONS_PER_ADDRESS),
  MAX_ADDRESS_CONNECTIONS_PER_SECOND: String(CONNECTIONS_PER_SECOND),
  MAX_ADDRESS_MESSAGES_PER_SECOND: "100000",
  MAX_ADDRESS_JOINS_PER_SECOND: "100000",
  HTTP_HEADERS_TIMEOUT_MS: "1000",
  HTTP_REQUEST_TIMEOUT_MS: "2000",
  CHANNEL_HISTORY: "10",
  LOG_LEVEL: "info",
};

/** Loopback addresses with a role: one holds its cap, one has spent its rate; the others get one each. */
const OVER_CAP = "127.0.0.4";
const OVER_RATE = "127.0.0.3";

const SEND_BODY = JSON.stringify({
  query: "mutation ($c: String!, $p: JSON!) { sendMessage(channel: $c, payload: $p) { delivered } }",
  variables: { c: CHANNEL, p: { n: 1 } },
});
const QUERY_BODY = JSON.stringify({ query: `query { history(channel: "${CHANNEL}", last: 5) { id } }` });
const SUBSCRIBE_BODY = JSON.stringify({ query: CHANNEL_SUBSCRIPTION, variables: { name: CHANNEL } });
const SSE_GET = `/graphql?query=${encodeURIComponent(`subscription { channel(name: "${CHANNEL}") { id } }`)}`;

/**
 * A door: the bytes of a complete request, where it comes from, and what it is answered with when
 * complete (the rate refills while a busy machine gets to the request, so past the rate may be either).
 */
interface Door {
  readonly bytes: Buffer;
  readonly from: "fresh" | typeof OVER_CAP | typeof OVER_RATE;
  readonly status: number | readonly number[];
}

const text = (request: string) => Buffer.from(request);

const DOORS: Readonly<Record<string, Door>> = {
  health: { bytes: text(getRequest("/health")), from: "fresh", status: 200 },
  landing: { bytes: text(getRequest("/")), from: "fresh", status: 200 },
  graphiql: { bytes: text(getRequest("/graphql", { Accept: "text/html", "Accept-Encoding": "gzip" })), from: "fresh", status: 200 },
  demo: { bytes: text(getRequest("/demo")), from: "fresh", status: 200 },
  admin: { bytes: text(getRequest("/admin")), from: "fresh", status: 200 },
  metrics: { bytes: text(getRequest("/metrics")), from: "fresh", status: 200 },
  query: { bytes: text(postRequest("/graphql", QUERY_BODY)), from: "fresh", status: 200 },
  send: { bytes: text(postRequest("/graphql", SEND_BODY)), from: "fresh", status: 200 },
  ssePost: { bytes: text(postRequest("/graphql", SUBSCRIBE_BODY, { Accept: "text/event-stream" })), from: "fresh", status: 200 },
  sseGet: { bytes: text(getRequest(SSE_GET, { Accept: "text/event-stream" })), from: "fresh", status: 200 },
  wsAccepted: {
    bytes: Buffer.concat([
      text(upgradeRequest("/graphql")),
      maskedTextFrame(JSON.stringify({ type: "connection_init" })),
      maskedTextFrame(
        JSON.stringify({ id: "1", type: "subscribe", payload: { query: CHANNEL_SUBSCRIPTION, variables: { name: CHANNEL } } }),
      ),
    ]),
    from: "fresh",
    status: 101,
  },
  wsOtherPath: { bytes: text(upgradeRequest("/elsewhere")), from: "fresh", status: 404 },
  wsOrigin: { bytes: text(upgradeRequest("/graphql", { Origin: "http://evil.test" })), from: "fresh", status: 403 },
  wsOverCap: { bytes: text(upgradeRequest("/graphql")), from: OVER_CAP, status: 429 },
  wsOverRate: { bytes: text(upgradeRequest("/graphql")), from: OVER_RATE, status: [429, 101] },
};

/** One case, as fast-check generates and shrinks it. */
interface EdgeCase {
  door: keyof typeof DOORS;
  /** Where the request is cut (a fraction of its length), or null for the whole request. */
  cut: number | null;
  /** Bytes added after what is sent, or written instead of the request when `garbageOnly`. */
  garbage: number[];
  garbageOnly: boolean;
  /** How many times the request goes out in one write (a burst of pipelined requests). */
  copies: number;
  /** Written in this many parts, `pauseMs` apart (a slow writer); 1 is one write. */
  parts: number;
  pauseMs: number;
  ending: Ending;
  /** Time to read before the ending: 0 resets into the server's answer. */
  readMs: 0 | 20 | 100;
}

const cases: fc.Arbitrary<EdgeCase> = fc.record({
  door: fc.constantFrom(...Object.keys(DOORS)),
  cut: fc.option(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), { freq: 2 }),
  garbage: fc.oneof(
    { weight: 3, arbitrary: fc.constant<number[]>([]) },
    { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 64 }) },
  ),
  garbageOnly: fc.constantFrom(false, false, false, true),
  copies: fc.constantFrom(1, 1, 1, 2, 3),
  parts: fc.constantFrom(1, 1, 2, 5, 20),
  pauseMs: fc.constantFrom(0, 1, 10),
  ending: fc.constantFrom<Ending>("rst", "fin", "hold"),
  readMs: fc.constantFrom<EdgeCase["readMs"]>(0, 20, 100),
});

/** The bytes a case writes. */
function bytesOf(edge: EdgeCase): Buffer {
  const garbage = Buffer.from(edge.garbage);
  if (edge.garbageOnly) return garbage;
  const whole = DOORS[edge.door]!.bytes;
  const request = edge.cut === null ? whole : whole.subarray(0, Math.floor(edge.cut * whole.length));
  return Buffer.concat([...Array.from({ length: edge.copies }, () => request), garbage]);
}

/** Splits `bytes` into `count` parts of about the same size. */
function split(bytes: Buffer, count: number): Buffer[] {
  const size = Math.max(1, Math.ceil(bytes.length / count));
  const parts: Buffer[] = [];
  for (let from = 0; from < bytes.length; from += size) parts.push(bytes.subarray(from, from + size));
  return parts.length > 0 ? parts : [bytes];
}

/** True when the case sends one whole request and nothing else, and reads long enough to see an answer. */
const complete = (edge: EdgeCase) => edge.cut === null && !edge.garbageOnly && edge.garbage.length === 0 && edge.readMs === 100;

// ---------------------------------------------------------------------------------------------

/** The connections that keep {@link OVER_CAP} at its cap, per server process. */
const heldFor = new WeakMap<WatchedServer, RawSocket[]>();
let fresh = 0;

/** The server, with {@link OVER_CAP} at its cap (opened again after a restart). */
async function prepared(): Promise<WatchedServer> {
  const watched = await watchedServer(SERVER_ENV, "fuzz:edge-bystander");
  if (!heldFor.has(watched)) {
    const held = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS_PER_ADDRESS }, () =>
        acknowledgedSocket(watched.server.wsUrl, undefined, { localAddress: OVER_CAP }),
      ),
    );
    heldFor.set(watched, held);
  }
  return watched;
}

/** Spends {@link OVER_RATE}'s new connections, so its next upgrade is over the rate. */
async function spendRate(port: number): Promise<void> {
  await Promise.all(
    Array.from({ length: CONNECTIONS_PER_SECOND + 1 }, () =>
      rawExchange({ port, localAddress: OVER_RATE, parts: [text(upgradeRequest("/graphql"))], ending: "rst", readMs: 0 }),
    ),
  );
}

/** Runs one case; returns every problem found. */
async function runCase(edge: EdgeCase): Promise<string[]> {
  const watched = await prepared();
  const port = Number(new URL(watched.server.httpUrl).port);
  const door = DOORS[edge.door]!;
  if (door.from === OVER_RATE) await spendRate(port);
  // Every other case comes from an address of its own, so per-address limits never carry over.
  const localAddress = door.from === "fresh" ? `127.0.1.${(fresh++ % 250) + 1}` : door.from;
  const { received } = await rawExchange({
    port,
    localAddress,
    parts: split(bytesOf(edge), edge.parts),
    pauseMs: edge.pauseMs,
    ending: edge.ending,
    readMs: complete(edge) ? 5_000 : edge.readMs,
    readUntil: (bytes) => statusOf(bytes) !== null,
  });
  const problems: string[] = [];
  const status = statusOf(received);
  const expected = typeof door.status === "number" ? [door.status] : door.status;
  if (complete(edge) && (status === null || !expected.includes(status)))
    problems.push(`a complete request was answered ${status ?? "with nothing"}, not ${expected.join(" or ")}`);
  problems.push(...(await watched.check()));
  return problems;
}

const NUM_RUNS = Number(process.env.EDGE_FUZZ_RUNS ?? 120);

describe("raw TCP at every door", () => {
  it("cut, garbled, slow, pipelined and reset requests leave the server serving, /health answering and a bystander receiving", {
    timeout: 600_000,
  }, async () => {
    await assertProperty(
      fc.asyncProperty(cases, async (edge) => {
        const problems = await runCase(edge);
        if (problems.length > 0) throw new Error(`${JSON.stringify(edge)}\n- ${problems.join("\n- ")}`);
      }),
      { numRuns: NUM_RUNS, endOnFailure: true },
    );
  });
});
