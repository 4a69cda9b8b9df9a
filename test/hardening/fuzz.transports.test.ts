/**
 * Hostile input through every door. Every argument of every client operation (sendMessage,
 * joinChannel, leaveChannel, history, presence and the `channel` subscription) gets deep, huge, odd
 * or duplicated-key JSON, over HTTP, SSE, the WebSocket fast path (a plain `channel` subscription)
 * and the WebSocket generic path (a root directive or a root fragment; queries and mutations too).
 * Requests and frames are written as raw JSON text, so duplicated keys reach the server as sent.
 *
 * After each case: the answer is a success or a clear error (`extensions.code`, never a masked
 * INTERNAL_SERVER_ERROR, never internals), the server process is still running, `GET /health`
 * answers 200, a bystander WebSocket on another channel receives a message sent after the case, and
 * an SSE listener on the case's channel (when the case asks for one) receives one too.
 *
 * The server runs as its own process, so a case that kills it is seen as such (and the next case
 * gets a new one). Known-bad cases live in fuzz-corpus.json and run one test each; the property
 * uses a fresh seed each run (helpers/property.ts) and `FUZZ_RUNS` runs (default 120).
 */
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { TestEvent } from "../helpers/channels.js";
import type { GraphQLResponse } from "../helpers/graphql.js";
import { assertProperty } from "../helpers/property.js";
import { ADMIN_TOKEN } from "../helpers/server.js";
import { alive, lastWords, watchedServer } from "../helpers/watched-server.js";

const MAX_PAYLOAD_BYTES = 65_536;
const MAX_HTTP_BODY_BYTES = 262_144;
const MAX_WS_MESSAGE_BYTES = 262_144;
/** How long one answer (or one delivery to a bystander) may take before the case counts as unanswered. */
const ANSWER_TIMEOUT_MS = 5_000;
const TARGET = "fuzz:target";
const BYSTANDER = "fuzz:bystander";

const SERVER_ENV = {
  MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD_BYTES),
  MAX_HTTP_BODY_BYTES: String(MAX_HTTP_BODY_BYTES),
  MAX_WS_MESSAGE_BYTES: String(MAX_WS_MESSAGE_BYTES),
  CHANNEL_PRESENCE: "true",
  CHANNEL_HISTORY: "10",
  MAX_MESSAGES_PER_SECOND: "1000",
  // Per-address limits for anonymous traffic: every case here comes from 127.0.0.1.
  MAX_ADDRESS_MESSAGES_PER_SECOND: "100000",
  MAX_ADDRESS_JOINS_PER_SECOND: "100000",
  MAX_JOINS_PER_SECOND: "100000",
  MAX_CONNECTIONS_PER_ADDRESS: "100000",
  MAX_ADDRESS_CONNECTIONS_PER_SECOND: "100000",
  LOG_LEVEL: "info",
};

// ---------------------------------------------------------------------------------------------
// Cases: which door, which operation, which argument, and the hostile value as a short recipe.

type Door = "http" | "sse" | "ws-fast" | "ws-generic" | "ws-fragment";
type Operation = "send" | "join" | "leave" | "history" | "presence" | "subscribe";

/** A hostile JSON value, as a recipe (so counterexamples and corpus entries stay short). */
type Recipe =
  | { kind: "deep"; shape: "array" | "object" | "mixed"; depth: number }
  | { kind: "text"; bytes: number }
  | { kind: "padded"; bytes: number }
  | { kind: "fill"; delta: number }
  | { kind: "longKey"; length: number }
  | { kind: "raw"; json: string };

/** One fuzz case; the corpus file holds these too. */
interface FuzzCase {
  name?: string;
  origin?: string;
  door: Door;
  operation: Operation;
  argument: string;
  value: Recipe;
  /** Repeats the argument's key in the variables, with a harmless value before or after the hostile one. */
  dup?: "before" | "after";
  /** Opens an SSE subscription on the target channel before the case, and checks it still receives after. */
  listener?: boolean;
  /** `success`, or the `extensions.code` the first error must carry. */
  expect?: string;
}

interface OperationShape {
  readonly type: "query" | "mutation" | "subscription";
  readonly field: string;
  readonly args: Record<string, string>;
  readonly selection: string;
}

const OPERATIONS: Record<Operation, OperationShape> = {
  send: {
    type: "mutation",
    field: "sendMessage",
    args: { channel: "String!", payload: "JSON!", options: "JSON" },
    selection: "delivered event { id commandOptions }",
  },
  join: {
    type: "mutation",
    field: "joinChannel",
    args: { channel: "String!", options: "JSON" },
    selection: "joined event { id commandOptions }",
  },
  leave: { type: "mutation", field: "leaveChannel", args: { channel: "String!" }, selection: "" },
  history: { type: "query", field: "history", args: { channel: "String!", last: "Int" }, selection: "id payload" },
  presence: { type: "query", field: "presence", args: { channel: "String!" }, selection: "id extras" },
  subscribe: {
    type: "subscription",
    field: "channel",
    args: { name: "String!", options: "JSON" },
    selection: "id action payload commandOptions client { id }",
  },
};

/** Harmless values for the arguments a case leaves alone, as JSON text. */
const HARMLESS: Record<string, string> = {
  channel: JSON.stringify(TARGET),
  name: JSON.stringify(TARGET),
  payload: '{"n":1}',
  options: "null",
  last: "5",
};

/** The operations each door carries. */
const DOOR_OPERATIONS: Record<Door, readonly Operation[]> = {
  http: ["send", "join", "leave", "history", "presence"],
  sse: ["subscribe"],
  "ws-fast": ["subscribe"],
  "ws-generic": ["send", "join", "leave", "history", "presence", "subscribe"],
  "ws-fragment": ["send", "join", "leave", "history", "presence", "subscribe"],
};

const isWebSocket = (door: Door) => door.startsWith("ws-");

/** The GraphQL document for an operation over a door: plain, with a root directive, or through a root fragment. */
function documentFor(door: Door, operation: Operation): string {
  const shape = OPERATIONS[operation];
  const variables = Object.entries(shape.args)
    .map(([name, type]) => `$${name}: ${type}`)
    .join(", ");
  const call = `${shape.field}(${Object.keys(shape.args)
    .map((name) => `${name}: $${name}`)
    .join(", ")})`;
  const selection = shape.selection ? ` { ${shape.selection} }` : "";
  if (door === "ws-generic") return `${shape.type} (${variables}) { ${call} @include(if: true)${selection} }`;
  if (door === "ws-fragment") {
    const root = { query: "Query", mutation: "Mutation", subscription: "Subscription" }[shape.type];
    return `${shape.type} (${variables}) { ...Root } fragment Root on ${root} { ${call}${selection} }`;
  }
  return `${shape.type} (${variables}) { ${call}${selection} }`;
}

/** The JSON text of a recipe; for `fill`, `room` is how many bytes the value may take to hit its limit + delta. */
function jsonOf(recipe: Recipe, room = 0): string {
  switch (recipe.kind) {
    case "deep": {
      let open = "";
      let close = "";
      for (let level = 0; level < recipe.depth; level++) {
        const asArray = recipe.shape === "array" || (recipe.shape === "mixed" && level % 2 === 0);
        open += asArray ? "[" : '{"a":';
        close = (asArray ? "]" : "}") + close;
      }
      return `${open}1${close}`;
    }
    case "text":
      return `"${"x".repeat(Math.max(0, recipe.bytes - 2))}"`;
    case "padded":
      return `{"pad":"${"x".repeat(Math.max(0, recipe.bytes - 10))}"}`;
    case "fill":
      return `"${"x".repeat(Math.max(0, room - 2))}"`;
    case "longKey":
      return `{${JSON.stringify("k".repeat(recipe.length))}:1}`;
    case "raw":
      return recipe.json;
  }
}

/** The raw variables text of a case, given the JSON text of its hostile value. */
function variablesText(fuzz: FuzzCase, hostile: string): string {
  const entries: string[] = [];
  for (const name of Object.keys(OPERATIONS[fuzz.operation].args)) {
    if (name !== fuzz.argument) {
      entries.push(`${JSON.stringify(name)}:${HARMLESS[name]}`);
      continue;
    }
    const key = JSON.stringify(name);
    if (fuzz.dup === "before") entries.push(`${key}:${HARMLESS[name]}`);
    entries.push(`${key}:${hostile}`);
    if (fuzz.dup === "after") entries.push(`${key}:${HARMLESS[name]}`);
  }
  return `{${entries.join(",")}}`;
}

/** The exact text sent: an HTTP body, or a graphql-transport-ws `subscribe` frame. */
function wireText(fuzz: FuzzCase): string {
  const query = JSON.stringify(documentFor(fuzz.door, fuzz.operation));
  const wrap = (variables: string) =>
    isWebSocket(fuzz.door)
      ? `{"id":"fuzz","type":"subscribe","payload":{"query":${query},"variables":${variables}}}`
      : `{"query":${query},"variables":${variables}}`;
  if (fuzz.value.kind !== "fill") return wrap(variablesText(fuzz, jsonOf(fuzz.value)));
  const envelope = Buffer.byteLength(wrap(variablesText(fuzz, "")));
  return wrap(variablesText(fuzz, jsonOf(fuzz.value, transportLimit(fuzz.door) + fuzz.value.delta - envelope)));
}

/** The largest HTTP body or WebSocket message a door takes. */
const transportLimit = (door: Door) => (isWebSocket(door) ? MAX_WS_MESSAGE_BYTES : MAX_HTTP_BODY_BYTES);

/** True when the text sent is over the transport's own size limit (so the transport, not GraphQL, refuses it). */
const overTransportLimit = (fuzz: FuzzCase, text: string) => Buffer.byteLength(text) > transportLimit(fuzz.door);

/** A short description of a case for failure messages (values are recipes, not megabytes). */
const describeCase = (fuzz: FuzzCase) => JSON.stringify({ ...fuzz, name: undefined, origin: undefined });

// ---------------------------------------------------------------------------------------------
// The server under test (restarted when a case kills it), with a bystander on another channel.

/** Marks of the messages sent to the SSE listeners. */
let serial = 0;

/** Posts as the admin over HTTP; returns the parsed body. */
async function adminPost(url: string, query: string, variables: Record<string, unknown>): Promise<GraphQLResponse> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await response.json()) as GraphQLResponse;
}

const SEND = `mutation ($channel: String!, $payload: JSON!) { sendMessage(channel: $channel, payload: $payload) { delivered } }`;

const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);

// ---------------------------------------------------------------------------------------------
// Doors: each returns what came back, as an Answer.

/** What a door answered: GraphQL results, a WebSocket close, an HTTP answer that is not GraphQL, or a transport failure. */
type Answer =
  | { kind: "results"; results: GraphQLResponse[]; status?: number }
  | { kind: "closed"; code: number; reason: string }
  | { kind: "http"; status: number; text: string }
  | { kind: "failed"; error: string };

async function viaHttp(url: string, body: string): Promise<Answer> {
  try {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
    const text = await response.text();
    try {
      return { kind: "results", results: [JSON.parse(text) as GraphQLResponse], status: response.status };
    } catch {
      return { kind: "http", status: response.status, text: text.slice(0, 300) };
    }
  } catch (error) {
    return { kind: "failed", error: String((error as Error).cause ?? error) };
  }
}

/** Parses server-sent events from a response body; resolves at the first result, at `complete`, or at the end. */
async function viaSse(url: string, body: string, signal: AbortSignal): Promise<Answer> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream" },
      body,
      signal,
    });
  } catch (error) {
    return { kind: "failed", error: String((error as Error).cause ?? error) };
  }
  if (!response.headers.get("content-type")?.includes("text/event-stream")) {
    const text = await response.text();
    try {
      return { kind: "results", results: [JSON.parse(text) as GraphQLResponse], status: response.status };
    } catch {
      return { kind: "http", status: response.status, text: text.slice(0, 300) };
    }
  }
  const results: GraphQLResponse[] = [];
  const events = sseEvents(response.body!);
  try {
    for await (const event of events) {
      if (event.type === "complete") return { kind: "results", results, status: response.status };
      if (event.data) {
        results.push(JSON.parse(event.data) as GraphQLResponse);
        return { kind: "results", results, status: response.status };
      }
    }
    return results.length > 0
      ? { kind: "results", results }
      : { kind: "failed", error: "the event stream ended without a result or complete" };
  } catch (error) {
    return { kind: "failed", error: `the event stream broke: ${String((error as Error).cause ?? error)}` };
  }
}

/** The events of a text/event-stream body. */
async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<{ type?: string; data: string }> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
      const lines = buffered.slice(0, end).split("\n");
      buffered = buffered.slice(end + 2);
      const type = lines
        .find((line) => line.startsWith("event:"))
        ?.slice(6)
        .trim();
      const data = lines
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (type || data) yield { type, data };
    }
  }
}

/** Opens a raw graphql-transport-ws socket and waits for `connection_ack`. */
async function openSocket(
  url: string,
): Promise<{ socket: WebSocket; frames: AsyncGenerator<Record<string, any> | { closed: number; reason: string }> }> {
  const socket = new WebSocket(url, "graphql-transport-ws");
  const queue: (Record<string, any> | { closed: number; reason: string })[] = [];
  let wake: (() => void) | null = null;
  socket.on("message", (data) => {
    queue.push(JSON.parse(String(data)) as Record<string, any>);
    wake?.();
  });
  socket.on("close", (code, reason) => {
    queue.push({ closed: code, reason: String(reason) });
    wake?.();
  });
  socket.on("error", () => {}); // the close that follows reports it
  async function* frames() {
    for (;;) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = null;
      const frame = queue.shift()!;
      yield frame;
      if ("closed" in frame) return;
    }
  }
  const reader = frames();
  await within(new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject)), ANSWER_TIMEOUT_MS, "WebSocket open");
  socket.send(JSON.stringify({ type: "connection_init" }));
  const ack = await within(reader.next(), ANSWER_TIMEOUT_MS, "connection_ack");
  if ((ack.value as { type?: string } | undefined)?.type !== "connection_ack")
    throw new Error(`no connection_ack: ${JSON.stringify(ack.value)}`);
  return { socket, frames: reader };
}

/** Sends one raw subscribe frame and collects the answer: the first `next` of a subscription, every `next` of a query, an `error`, or a close. */
async function viaWebSocket(url: string, frame: string, operation: Operation): Promise<Answer> {
  const { socket, frames } = await openSocket(url);
  try {
    socket.send(frame);
    const results: GraphQLResponse[] = [];
    for (;;) {
      const { value, done } = await within(frames.next(), ANSWER_TIMEOUT_MS, "an answer over the WebSocket");
      if (done || !value) return { kind: "failed", error: "the frame stream ended" };
      if ("closed" in value) return { kind: "closed", code: value.closed as number, reason: value.reason as string };
      if (value.type === "next") {
        results.push(value.payload as GraphQLResponse);
        if (operation === "subscribe") return { kind: "results", results };
      } else if (value.type === "error") {
        return { kind: "results", results: [{ errors: value.payload }] };
      } else if (value.type === "complete") {
        return { kind: "results", results };
      }
    }
  } catch (error) {
    return { kind: "failed", error: (error as Error).message };
  } finally {
    if (socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify({ id: "fuzz", type: "complete" }));
      socket.close(1000);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The verdict on one case.

/** Internals that must never reach a client: stack frames, file paths, JavaScript error classes. */
const INTERNALS = [
  /\n\s*at \S/,
  /(?:\/work\/|\/home\/|node_modules|file:\/\/|node:internal)/,
  /\b[\w-]+\.(?:ts|js|mjs|cjs):\d+/,
  /\b(?:TypeError|RangeError|ReferenceError|SyntaxError|SqliteError|PrismaClient\w*)\b/,
  /Maximum call stack size exceeded|Cannot read propert|is not a function|is not iterable/,
];

/** Problems with an answer: anything but a success or clear errors. Empty when the answer is fine. */
function problemsWith(fuzz: FuzzCase, answer: Answer, oversize: boolean): string[] {
  const problems: string[] = [];
  if (answer.kind === "failed") {
    if (!(oversize && !isWebSocket(fuzz.door))) problems.push(`no answer: ${answer.error}`); // an oversized body may be cut off after its 413
    return problems;
  }
  if (answer.kind === "closed") {
    if (!(oversize && answer.code === 1009)) problems.push(`the WebSocket was closed with ${answer.code} ${JSON.stringify(answer.reason)}`);
    return problems;
  }
  if (answer.kind === "http") {
    if (!(oversize && answer.status === 413)) problems.push(`HTTP ${answer.status} without a GraphQL body: ${answer.text}`);
    return problems;
  }
  if (answer.status !== undefined && answer.status >= 500) problems.push(`HTTP ${answer.status}`);
  if (oversize && !answer.results.some((result) => result.errors?.some((error) => error.extensions?.code === "PAYLOAD_TOO_LARGE"))) {
    problems.push(`an oversized request was not refused with PAYLOAD_TOO_LARGE: ${JSON.stringify(answer.results).slice(0, 300)}`);
  }
  const errors = answer.results.flatMap((result) => result.errors ?? []);
  for (const error of errors) {
    const code = error.extensions?.code;
    if (typeof code !== "string") problems.push(`an error without extensions.code: ${JSON.stringify(error).slice(0, 300)}`);
    else if (code === "INTERNAL_SERVER_ERROR")
      problems.push(`a masked internal error for client input: ${JSON.stringify(error).slice(0, 300)}`);
    for (const pattern of INTERNALS) {
      const found = pattern.exec(error.message ?? "");
      if (found) problems.push(`internals in an error message (${JSON.stringify(found[0])}): ${error.message.slice(0, 300)}`);
    }
  }
  if (fuzz.expect === "success" && errors.length > 0) problems.push(`expected success, got ${JSON.stringify(errors).slice(0, 300)}`);
  if (fuzz.expect && fuzz.expect !== "success" && errors[0]?.extensions?.code !== fuzz.expect) {
    problems.push(
      `expected ${fuzz.expect}, got ${errors.length ? JSON.stringify(errors[0]).slice(0, 300) : `success: ${JSON.stringify(answer.results).slice(0, 200)}`}`,
    );
  }
  return problems;
}

/** An SSE subscription to the target channel, live once its own JOIN has arrived. */
async function openListener(url: string, signal: AbortSignal): Promise<AsyncGenerator<{ type?: string; data: string }>> {
  const body = JSON.stringify({
    query: `subscription ($name: String!) { channel(name: $name) { id action payload client { id } } }`,
    variables: { name: TARGET },
  });
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "text/event-stream" },
    body,
    signal,
  });
  const events = sseEvents(response.body!);
  const first = await within(events.next(), ANSWER_TIMEOUT_MS, "the SSE listener's JOIN");
  if (first.done || !first.value.data.includes('"JOIN"')) throw new Error(`the SSE listener did not start: ${JSON.stringify(first.value)}`);
  return events;
}

/** Waits for a message marked `mark` on an SSE listener; returns a problem, or null when it arrived (or the stream ended with a clear error). */
async function listenerProblem(events: AsyncGenerator<{ type?: string; data: string }>, mark: number): Promise<string | null> {
  try {
    for (;;) {
      const { value, done } = await within(events.next(), ANSWER_TIMEOUT_MS, "the SSE listener");
      if (done) return "the SSE listener's stream ended without a clear error";
      if (!value.data) continue;
      const result = JSON.parse(value.data) as GraphQLResponse<{ channel: TestEvent }>;
      const error = result.errors?.[0];
      if (error)
        return typeof error.extensions?.code === "string" && error.extensions.code !== "INTERNAL_SERVER_ERROR"
          ? null
          : `the SSE listener got ${JSON.stringify(error).slice(0, 300)}`;
      if (result.data?.channel.payload?.mark === mark) return null;
    }
  } catch (error) {
    return `the SSE listener did not receive a message sent after the case: ${(error as Error).message}`;
  }
}

/**
 * Runs one case and returns every problem found: with the answer, with the server process,
 * `/health`, the bystander and the SSE listener. Empty when all is well.
 */
async function runCase(fuzz: FuzzCase): Promise<string[]> {
  const watched = await watchedServer(SERVER_ENV, BYSTANDER);
  const { server } = watched;
  const mark = ++serial;
  const text = wireText(fuzz);
  const oversize = overTransportLimit(fuzz, text);
  const abort = new AbortController();
  const problems: string[] = [];
  try {
    const listener = fuzz.listener ? await openListener(server.httpUrl, abort.signal) : null;
    const answer =
      fuzz.door === "http"
        ? await viaHttp(server.httpUrl, text)
        : fuzz.door === "sse"
          ? await viaSse(server.httpUrl, text, abort.signal)
          : await viaWebSocket(server.wsUrl, text, fuzz.operation);
    problems.push(...problemsWith(fuzz, answer, oversize));
    const serverProblems = await watched.check();
    problems.push(...serverProblems);
    if (listener && alive(server)) {
      const sent = await adminPost(server.httpUrl, SEND, { channel: TARGET, payload: { mark } }).catch((error: Error) => error);
      if (sent instanceof Error || sent.errors) {
        problems.push(
          `the message after the case could not be sent: ${sent instanceof Error ? sent.message : JSON.stringify(sent.errors)}`,
        );
      } else {
        const problem = await listenerProblem(listener, mark);
        if (problem) problems.push(problem);
      }
    }
  } catch (error) {
    problems.push(`the case could not run: ${(error as Error).message}`);
  } finally {
    abort.abort();
  }
  if (!alive(server) && !problems.some((problem) => problem.startsWith("the server process exited")))
    problems.push(`the server process exited (${server.child.exitCode ?? server.child.signalCode}):\n${lastWords(server)}`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// The corpus: known-bad cases, one regression test each.

const corpus = (JSON.parse(readFileSync(new URL("./fuzz-corpus.json", import.meta.url), "utf8")) as { cases: FuzzCase[] }).cases;

describe("the corpus of known-bad inputs (fuzz-corpus.json)", () => {
  it.each(corpus.map((fuzz) => [fuzz.name ?? describeCase(fuzz), fuzz] as const))("%s", { timeout: 45_000 }, async (_name, fuzz) => {
    expect(await runCase(fuzz), describeCase(fuzz)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// The property: generated cases over every door, operation and argument.

/** A string unit that includes lone surrogates and control characters. */
const anyUtf16Unit = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
  fc.constantFrom("\ud800", "\udfff", "\u0000", "\u001f", "\u2028"),
);

/** Odd JSON texts: number edges, NaN-ish strings, lone surrogates, control characters, empty and prototype-ish values. */
const ODD_JSON = [
  "1e308",
  "-1e308",
  "1e309",
  "-0",
  "5e-324",
  "9007199254740993",
  "-1",
  "0",
  "2147483648",
  "1.5",
  '"NaN"',
  '"Infinity"',
  '"-0"',
  '"undefined"',
  '"null"',
  '""',
  '"\\ud800"',
  '"\\udfff\\ud800"',
  '"\\u0000\\u0001\\u001f\\u007f"',
  "{}",
  "[]",
  "null",
  "true",
  "[[],{}]",
  '{"\\ud800":1}',
  '{"":{"":{}}}',
  '{"__proto__":{"polluted":true}}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"history":"5"}',
  '{"history":5.5}',
  '{"history":1e308}',
  '{"to":{"$ne":null}}',
  '{"to":""}',
  '{"history":-0}',
];

/** Objects whose keys repeat, with the values to repeat them with. */
const duplicatedKeys = fc
  .tuple(
    fc.constantFrom("a", "history", "to", "__proto__", "constructor", ""),
    fc.array(fc.constantFrom("1", "-1", "null", '"x"', "{}", "[]", "1e308", '{"history":3}'), { minLength: 2, maxLength: 4 }),
  )
  .map(([key, values]): Recipe => ({ kind: "raw", json: `{${values.map((value) => `${JSON.stringify(key)}:${value}`).join(",")}}` }));

/** Hostile values, weighted towards the ones that have hurt: deep nesting and sizes around the limits. */
const recipes: fc.Arbitrary<Recipe> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("deep" as const),
      shape: fc.constantFrom("array" as const, "object" as const, "mixed" as const),
      depth: fc.constantFrom(2, 64, 65, 1_000, 5_000),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("text" as const),
      bytes: fc.constantFrom(MAX_PAYLOAD_BYTES - 1, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1, 200_000),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("padded" as const),
      bytes: fc.constantFrom(MAX_PAYLOAD_BYTES - 1, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES + 1, 200_000),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("fill" as const), delta: fc.constantFrom(-1, 0, 1) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("longKey" as const), length: fc.constantFrom(1_000, MAX_PAYLOAD_BYTES - 8, 100_000) }),
  },
  { weight: 2, arbitrary: fc.constantFrom(...ODD_JSON).map((json): Recipe => ({ kind: "raw", json })) },
  {
    weight: 2,
    arbitrary: fc
      .jsonValue({ maxDepth: 3, stringUnit: anyUtf16Unit })
      .map((value): Recipe => ({ kind: "raw", json: JSON.stringify(value) })),
  },
  { weight: 2, arbitrary: duplicatedKeys },
);

/** JSON arguments (payload, options) carry most hostile values; names and numbers get some. */
const argumentOf = (operation: Operation) =>
  fc.oneof(
    ...Object.entries(OPERATIONS[operation].args).map(([name, type]) => ({
      weight: type.startsWith("JSON") ? 3 : 1,
      arbitrary: fc.constant(name),
    })),
  );

const cases: fc.Arbitrary<FuzzCase> = fc
  .constantFrom(...(Object.keys(DOOR_OPERATIONS) as Door[]))
  .chain((door) => fc.tuple(fc.constant(door), fc.constantFrom(...DOOR_OPERATIONS[door])))
  .chain(([door, operation]) =>
    fc.record({
      door: fc.constant(door),
      operation: fc.constant(operation),
      argument: argumentOf(operation),
      value: recipes,
      dup: fc.constantFrom(undefined, "before" as const, "after" as const),
      listener: fc.boolean(),
    }),
  );

const NUM_RUNS = Number(process.env.FUZZ_RUNS ?? 120);

describe("generated hostile inputs over every door", () => {
  it("every case gets a success or a clear error; the server, /health, the bystander and the listener carry on", {
    timeout: 90_000,
  }, async () => {
    await assertProperty(
      fc.asyncProperty(cases, async (fuzz) => {
        const problems = await runCase(fuzz);
        if (problems.length > 0) throw new Error(`${describeCase(fuzz)}\n- ${problems.join("\n- ")}`);
      }),
      // Every run is a real request; the 120 runs take about 12 s on a loaded two-core machine.
      { numRuns: NUM_RUNS, endOnFailure: false },
    );
  });
});
