/**
 * Property tests with fast-check against a real server: whatever a client sends, it gets either a
 * success or a clear error (a message and `extensions.code`), never an HTTP 5xx, never a masked
 * INTERNAL_SERVER_ERROR, never a stack trace, file path or internal error class in the response,
 * and the server stays healthy.
 *
 * Runs are modest (40-200 per property), so the file finishes in about a minute on two busy cores.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { MAX_VARIABLES_DEPTH } from "../../src/http/plugins.js";
import { nestsDeeperThan } from "../../src/validation.js";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { assertProperty } from "../helpers/property.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { TRIGGER_FIELDS } from "../helpers/triggers.js";

/**
 * Every planned case runs (no time limit cuts a property short; the slowest takes about 11 s of its
 * 60 s test timeout on a loaded two-core machine). `PROPERTY_RUNS_SCALE=10` runs ten times as many
 * cases (with ten times the timeout) for a deeper search.
 */
const SCALE = Math.max(1, Number(process.env.PROPERTY_RUNS_SCALE ?? 1) || 1);
const runs = (numRuns: number) => ({ numRuns: Math.round(numRuns * SCALE) });
const RUN = runs(150);

let server: TestServer;
let healthUrl: string;
beforeAll(async () => {
  server = await startServer({ TRIGGER_TIMEOUT_MS: "250" });
  healthUrl = server.httpUrl.replace("/graphql", "/health");
});

/** A raw HTTP exchange: status and text, with the body parsed when it is JSON. */
interface Exchange {
  status: number;
  text: string;
  body: { data?: Record<string, any> | null; errors?: { message: string; extensions?: Record<string, any> }[] } | null;
}

async function post(body: unknown, token?: string): Promise<Exchange> {
  const response = await fetch(server.httpUrl, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: Exchange["body"] = null;
  try {
    parsed = JSON.parse(text) as Exchange["body"];
  } catch {
    // not JSON: `parsed` stays null and the checks below look at the text
  }
  return { status: response.status, text, body: parsed };
}

/**
 * What in a response would be internals: stack frames, file paths, JavaScript error classes or
 * their typical messages. Returns the first thing found, or null. Only error parts are checked,
 * since data may echo what the client sent.
 */
function internalsIn(text: string): string | null {
  const withoutGraphQLSyntax = text
    .replace(/Syntax Error: /g, "")
    // Tolerated: an expression nested too deeply for JSONata's parser is refused (BAD_USER_INPUT,
    // with its path) as "expression does not compile: Maximum call stack size exceeded".
    .replace(/expression does not compile: Maximum call stack size exceeded/g, "expression does not compile: (too deeply nested)");
  const patterns: RegExp[] = [
    /\n\s*at \S/, // a stack frame on its own line
    /\bat (?:async )?[\w$.<>[\]]+ \((?:file:|node:|\/)/, // "at fn (/path..." inline
    /(?:\/work\/|\/home\/|\/usr\/lib\/|node_modules|file:\/\/|node:internal)/,
    /\b[\w-]+\.(?:ts|js|mjs|cjs):\d+/,
    /\b\w*Error: /, // "TypeError: ...", "Error: ..."
    /\b(?:TypeError|RangeError|ReferenceError|EvalError|InternalError|SqliteError|PrismaClient\w*)\b/,
    /Maximum call stack size exceeded|Cannot read propert|is not a function|is not iterable|undefined is not/,
  ];
  for (const pattern of patterns) {
    const match = pattern.exec(withoutGraphQLSyntax);
    if (match) return match[0];
  }
  return null;
}

/** The common contract: no 5xx, JSON, and any error is clear (message + code, not INTERNAL_SERVER_ERROR) and free of internals. */
function expectClearOutcome(exchange: Exchange, context: string): void {
  expect(exchange.status, `${context}: HTTP status (body ${exchange.text.slice(0, 300)})`).toBeLessThan(500);
  expect(exchange.body, `${context}: a JSON body (got ${exchange.text.slice(0, 300)})`).not.toBeNull();
  const errors = exchange.body!.errors ?? [];
  for (const error of errors) {
    expect(typeof error.message, `${context}: error message`).toBe("string");
    expect(error.message.length).toBeGreaterThan(0);
    expect(error.extensions?.code, `${context}: extensions.code of ${JSON.stringify(error)}`).toEqual(expect.any(String));
    expect(error.extensions?.code, `${context}: ${JSON.stringify(error)}`).not.toBe("INTERNAL_SERVER_ERROR");
  }
  expect(internalsIn(JSON.stringify(errors)), `${context}: internals in ${JSON.stringify(errors).slice(0, 500)}`).toBeNull();
}

/** JSON as it comes back over the wire: -0 becomes 0, and so on. */
const normalized = (value: unknown): unknown => JSON.parse(JSON.stringify(value)) as unknown;

async function expectHealthy(): Promise<void> {
  const response = await fetch(healthUrl);
  expect(response.status).toBe(200);
}

/** A string unit that includes lone surrogates (fc's own units never produce them). */
const anyUtf16Unit = fc.oneof(
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
  fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
);

/** A JSON value nested `depth` levels deep, built inside the property so counterexamples stay short. */
type Deep = { depth: number; shape: "array" | "object" | "mixed" };
const deepArbitrary = fc.record({
  depth: fc.integer({ min: 1, max: 2_000 }), // deeper values overflow JSON.stringify in this test process itself
  shape: fc.constantFrom<Deep["shape"]>("array", "object", "mixed"),
});
function buildDeep({ depth, shape }: Deep): unknown {
  let value: unknown = 1;
  for (let level = 0; level < depth; level++) {
    const asArray = shape === "array" || (shape === "mixed" && level % 2 === 0);
    value = asArray ? [value] : { a: value };
  }
  return value;
}

describe("(a) arbitrary JSON payloads sent with sendMessage over HTTP", () => {
  const TRIGGERED = "prop:payload:triggered";
  beforeAll(async () => {
    // A trigger that only touches commandOptions, so the payload still goes through the trigger engine.
    const { body } = await httpGraphQL(
      server.httpUrl,
      `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`,
      { input: { name: "mark", actions: ["MESSAGE"], channel: TRIGGERED, stack: [{ set: "commandOptions.seen", value: "true" }] } },
      { token: ADMIN_TOKEN },
    );
    expect(body.errors).toBeUndefined();
  });

  /** Sends a payload; returns the exchange after checking the contract. */
  async function sendAndCheck(channel: string, payload: unknown): Promise<void> {
    const exchange = await post({ query: SEND_MESSAGE, variables: { channel, payload } });
    expectClearOutcome(exchange, `payload ${JSON.stringify(payload)?.slice(0, 200)} on ${channel}`);
    const sent = exchange.body!.data?.sendMessage;
    if (exchange.body!.errors?.length) return;
    expect(sent?.delivered).toBe(true);
    expect(sent.event.payload).toEqual(normalized(payload));
    if (channel === TRIGGERED) expect(sent.event.commandOptions).toEqual({ seen: true });
  }

  const payloads = fc.oneof(
    fc.jsonValue({ maxDepth: 6 }),
    fc.jsonValue({ maxDepth: 4, stringUnit: "binary" }),
    fc.jsonValue({ maxDepth: 3, stringUnit: anyUtf16Unit }),
    // keys JavaScript treats specially
    fc.dictionary(
      fc.constantFrom("__proto__", "constructor", "prototype", "toString", "hasOwnProperty", "then", "length"),
      fc.jsonValue({ maxDepth: 2 }),
    ),
  );

  it("delivers the payload unchanged (modulo JSON) or refuses it clearly; never a 5xx or internals", {
    timeout: 60_000 * SCALE,
  }, async () => {
    await assertProperty(
      fc.asyncProperty(
        payloads.filter((payload) => payload !== null),
        fc.boolean(),
        async (payload, triggered) => {
          await sendAndCheck(triggered ? TRIGGERED : "prop:payload:plain", payload);
        },
      ),
      RUN,
    );
    await expectHealthy();
  });

  it("deeply nested payloads (arrays, objects, both) are delivered or refused clearly", { timeout: 60_000 * SCALE }, async () => {
    await assertProperty(
      fc.asyncProperty(deepArbitrary, fc.boolean(), async (deep, triggered) => {
        await sendAndCheck(triggered ? TRIGGERED : "prop:payload:plain", buildDeep(deep));
      }),
      runs(60),
    );
    await expectHealthy();
  });

  it("a null payload is refused with a message naming the payload and an extensions.code", async () => {
    const exchange = await post({ query: SEND_MESSAGE, variables: { channel: "prop:payload:plain", payload: null } });
    expect(exchange.status).toBeLessThan(500);
    const error = exchange.body?.errors?.[0];
    expect(error?.message).toMatch(/payload/);
    // A GraphQL variable error: today it has no extensions.code at all.
    expect(error?.extensions?.code, JSON.stringify(exchange.body)).toEqual(expect.any(String));
  });
});

describe("(b) arbitrary strings as channel names", () => {
  const VALID = /^[A-Za-z0-9_\-:./@]{1,255}$/;
  const HISTORY = `query ($channel: String!) { history(channel: $channel, last: 5) { id } }`;
  const JOIN = `mutation ($channel: String!) { joinChannel(channel: $channel) { joined event { channel } } }`;

  const names = fc.oneof(
    fc.string({ unit: "binary", maxLength: 300 }),
    fc.string({ unit: anyUtf16Unit, maxLength: 40 }),
    fc.stringMatching(/^[A-Za-z0-9_\-:./@]{1,255}$/),
    // valid names with one bad character spliced in, and lengths around the limit
    fc
      .tuple(
        fc.stringMatching(/^[A-Za-z0-9_\-:./@]{0,40}$/),
        fc.constantFrom(" ", "\n", "\t", "\0", "é", "🙂", "#", "*", "?", "%", "\\", '"', "\u200b", "\ud800"),
        fc.stringMatching(/^[A-Za-z0-9_\-:./@]{0,40}$/),
      )
      .map(([a, bad, b]) => a + bad + b),
    fc.integer({ min: 250, max: 260 }).map((length) => "n".repeat(length)),
  );

  it("valid names succeed, every other name gets BAD_USER_INPUT", { timeout: 60_000 * SCALE }, async () => {
    await assertProperty(
      fc.asyncProperty(names, fc.constantFrom("send", "join", "history"), async (name, operation) => {
        const valid = VALID.test(name);
        const exchange =
          operation === "send"
            ? await post({ query: SEND_MESSAGE, variables: { channel: name, payload: { n: 1 } } })
            : operation === "join"
              ? await post({ query: JOIN, variables: { channel: name } })
              : await post({ query: HISTORY, variables: { channel: name } });
        expectClearOutcome(exchange, `${operation} on channel ${JSON.stringify(name)}`);
        const errors = exchange.body!.errors ?? [];
        if (valid) {
          expect(errors, `valid name ${JSON.stringify(name)}`).toEqual([]);
          if (operation === "send") expect(exchange.body!.data!.sendMessage).toMatchObject({ delivered: true, event: { channel: name } });
          if (operation === "join") expect(exchange.body!.data!.joinChannel).toMatchObject({ joined: true, event: { channel: name } });
          if (operation === "history") expect(exchange.body!.data!.history).toEqual([]);
        } else {
          expect(errors[0]?.extensions?.code, `invalid name ${JSON.stringify(name)}`).toBe("BAD_USER_INPUT");
        }
      }),
      runs(200),
    );
    await expectHealthy();
  });
});

describe("(c) trigger stacks in createTrigger", () => {
  const CREATE = `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { ${TRIGGER_FIELDS} } }`;
  const DELETE = `mutation ($id: ID!) { deleteTrigger(id: $id) }`;
  let serial = 0;

  /**
   * Creates a trigger with the stack: it must be created (with the stack stored as given), or be
   * refused with BAD_USER_INPUT whose message starts with the offending path (`stack...`). A created
   * trigger then runs once on a message to its own channel, with a clear outcome, and is deleted.
   */
  async function createAndCheck(stack: unknown): Promise<void> {
    const channel = `fuzz:${++serial}`;
    const variables = { input: { name: "fuzz", actions: ["MESSAGE"], channel, stack } };
    const created = await post({ query: CREATE, variables }, ADMIN_TOKEN);
    const context = `stack ${JSON.stringify(stack)?.slice(0, 300)}`;
    expectClearOutcome(created, context);
    const error = created.body!.errors?.[0];
    if (error) {
      expect(error.extensions?.code, `${context}: ${JSON.stringify(error)}`).toBe("BAD_USER_INPUT");
      // Past MAX_VARIABLES_DEPTH the whole operation is refused before anything reads its variables.
      const expected = nestsDeeperThan(variables, MAX_VARIABLES_DEPTH) ? /^Variables nest deeper than/ : /^stack(?:[[.:]|$)/;
      expect(error.message, context).toMatch(expected);
      return;
    }
    const trigger = created.body!.data!.createTrigger;
    expect(trigger.stack, context).toEqual(normalized(stack));
    try {
      const sent = await post({ query: SEND_MESSAGE, variables: { channel, payload: { text: "Hello World", n: 3, list: [1, 2] } } });
      expectClearOutcome(sent, `${context}, then a message`);
    } finally {
      const deleted = await post({ query: DELETE, variables: { id: trigger.id } }, ADMIN_TOKEN);
      expect(deleted.body?.data?.deleteTrigger).toBe(true);
    }
  }

  it("arbitrary JSON as the stack: created, or BAD_USER_INPUT naming the path; never INTERNAL_SERVER_ERROR", {
    timeout: 60_000 * SCALE,
  }, async () => {
    const stacks = fc.oneof(fc.jsonValue({ maxDepth: 5 }), fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 5 }));
    await assertProperty(
      fc.asyncProperty(
        stacks.filter((stack) => stack !== null),
        async (stack) => createAndCheck(stack),
      ),
      RUN,
    );
    await expectHealthy();
  });

  it("deeply nested JSON as the stack is refused clearly", { timeout: 60_000 * SCALE }, async () => {
    await assertProperty(
      fc.asyncProperty(deepArbitrary, async (deep) => createAndCheck(buildDeep(deep))),
      runs(40),
    );
    await expectHealthy();
  });

  // Structurally plausible stacks: real step shapes with JSONata-ish expressions, to get past the
  // shape checks into expression compilation, regex safety, limits and running.
  const TOKENS = [
    "payload",
    "payload.text",
    "payload.n",
    "payload.list",
    "commandOptions",
    "client.id",
    "channel",
    "action",
    "$response.payload",
    "$uppercase(",
    "$lowercase(",
    "$length(",
    "$string(",
    "$number(",
    "$sum(",
    "$count(",
    "$join(",
    "$split(",
    "$map(",
    "$filter(",
    "$reduce(",
    "$sort(",
    "$keys(",
    "$lookup(",
    "$match(",
    "$replace(",
    "$contains(",
    "$substring(",
    "$now()",
    "$eval(",
    "$x",
    "$w",
    "function($w){",
    "}",
    "(",
    ")",
    "[",
    "]",
    "{",
    ":",
    ",",
    ";",
    ".",
    "..",
    "'a'",
    '"b"',
    "'Hello'",
    "1",
    "0",
    "-1",
    "0.5",
    "1e308",
    "true",
    "false",
    "null",
    "+",
    "-",
    "*",
    "/",
    "%",
    "&",
    "=",
    "!=",
    "<",
    ">",
    "<=",
    "and",
    "or",
    "in",
    "?",
    " ? 1 : 2",
    "~>",
    ":=",
    "^(",
    "#$i",
    "@$o",
    "|",
    "**",
    "$$",
    "`x`",
    "/a+/",
    "/(a+)+$/",
    "/(x|x)*y/",
    " ",
  ];
  const tokenSoup = fc.array(fc.constantFrom(...TOKENS), { minLength: 1, maxLength: 24 }).map((parts) => parts.join(""));
  const knownGood = fc.constantFrom(
    "payload",
    "payload.text",
    "$uppercase(payload.text)",
    "$length(payload.text) > 3",
    "'hi ' & client.id",
    "payload.n * 2",
    "$map(payload.list, function($v) { $v + 1 })",
    "$now()",
    "$response.payload",
    "$x",
    "$count(payload.list)",
    "payload.missing",
    "$match(payload.text, /l+/)",
    "$eval('1')",
    "$sum(payload.list) = 3",
    "($f := function($n) { $n <= 1 ? 1 : $n * $f($n - 1) }; $f(payload.n))",
    "($loop := function($n) { $loop($n + 1) }; $loop(0))",
    "[1..100000].($ * 2)",
    "$string(payload) ~> $length()",
  );
  const nested = fc
    .record({
      depth: fc.integer({ min: 100, max: 2047 }),
      open: fc.constantFrom("(", "[", "$string(", "{'a':"),
      inner: fc.constantFrom("1", "payload"),
    })
    .map(({ depth, open, inner }) => open.repeat(depth) + inner + (open === "{'a':" ? "}" : open === "[" ? "]" : ")").repeat(depth));
  const expression = fc.oneof(
    { weight: 4, arbitrary: knownGood },
    { weight: 4, arbitrary: tokenSoup },
    { weight: 1, arbitrary: nested },
    {
      weight: 1,
      arbitrary: fc.constantFrom<unknown>("", "   ", 1, null, true, ["payload"], { a: 1 }, "x".repeat(4097), `'${"y".repeat(4094)}'`),
    },
  );
  const identifier = fc.oneof(fc.constantFrom("x", "w", "v1", "_tmp"), fc.constantFrom("response", "eval", "1x", "", "a-b", "__proto__"));
  const setPath = fc.oneof(
    fc.constantFrom("payload.text", "payload.a.b", "commandOptions.seen", "payload.0", "payload"),
    fc.constantFrom(
      "client.id",
      "payload..a",
      "payload.__proto__.x",
      "commandOptions.constructor",
      "",
      "payload.a b",
      5 as unknown as string,
    ),
  );
  const rejectCode = fc.constantFrom<unknown>(undefined, "SHOUT", "MESSAGE_TOO_LONG", "bad code", "", 5, "A".repeat(70));
  const stepArbitrary = fc.letrec<{ step: Record<string, unknown>; steps: Record<string, unknown>[] }>((tie) => ({
    steps: fc.array(tie("step"), { maxLength: 4 }),
    step: fc
      .oneof(
        { depthSize: "small", withCrossShrink: true },
        fc.record({ var: identifier, value: expression }),
        fc.record({ set: setPath, value: expression }),
        fc.record({ return: expression }),
        fc.record({ if: expression, then: tie("steps"), else: tie("steps") }, { requiredKeys: ["if", "then"] }),
        fc.record({ drop: fc.constantFrom<unknown>(true, true, false, 1, "yes") }),
        fc.record({ reject: expression, code: rejectCode }, { requiredKeys: ["reject"] }),
        fc.record({ log: expression }),
      )
      .chain((step) =>
        // now and then a step with an extra field or a second kind
        fc
          .constantFrom<Record<string, unknown>>({}, {}, {}, {}, {}, {}, { extra: 1 }, { log: "'x'" })
          .map((extra) => ({ ...step, ...extra })),
      ),
  }));
  const plausibleStack = fc.oneof(
    { weight: 8, arbitrary: stepArbitrary.steps },
    // Many steps, to reach the step-count limit (100).
    {
      weight: 1,
      arbitrary: fc.integer({ min: 95, max: 110 }).map((count) => Array.from({ length: count }, (_, i) => ({ log: `'step ${i}'` }))),
    },
    // Deep if-nesting, to reach the depth limit (10).
    {
      weight: 1,
      arbitrary: fc.integer({ min: 8, max: 14 }).map((depth) => {
        let steps: unknown[] = [{ log: "'deep'" }];
        for (let level = 0; level < depth; level++) steps = [{ if: "true", then: steps }];
        return steps;
      }),
    },
  );

  it("structurally plausible stacks: created (and then run cleanly) or BAD_USER_INPUT naming the path", {
    timeout: 60_000 * SCALE,
  }, async () => {
    await assertProperty(
      fc.asyncProperty(plausibleStack, async (stack) => createAndCheck(stack)),
      RUN,
    );
    await expectHealthy();
  });

  it("a null stack is refused with BAD_USER_INPUT naming the stack", async () => {
    const exchange = await post(
      { query: CREATE, variables: { input: { name: "fuzz", actions: ["MESSAGE"], channel: "fuzz:null", stack: null } } },
      ADMIN_TOKEN,
    );
    expect(exchange.status).toBeLessThan(500);
    const error = exchange.body?.errors?.[0];
    // Today: {"message":"Expected non-nullable type \"JSON!\" not to be null."}: no field named, no code.
    expect(error?.message, JSON.stringify(exchange.body)).toMatch(/stack/);
    expect(error?.extensions?.code, JSON.stringify(exchange.body)).toBe("BAD_USER_INPUT");
  });
});

describe("(d) arbitrary GraphQL-ish documents", () => {
  const WORDS = [
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "=",
    "!",
    "$",
    "...",
    "@",
    "|",
    "&",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "Query",
    "Mutation",
    "__typename",
    "__schema",
    "__type",
    "types",
    "name",
    "fields",
    "serverInfo",
    "version",
    "sendMessage",
    "joinChannel",
    "leaveChannel",
    "history",
    "presence",
    "triggers",
    "channel",
    "payload",
    "options",
    "last",
    "delivered",
    "event",
    "id",
    "action",
    "client",
    "$x",
    "$c",
    "String!",
    "JSON",
    "Int",
    "@include(if: true)",
    "@skip(if: $x)",
    "@deprecated",
    '"room:1"',
    '"""block"""',
    "1",
    "-1",
    "1.5e3",
    "true",
    "null",
    "A",
    "#comment\n",
    "\n",
    ",",
    " ",
    "a:",
    "b:",
    "\u00e9",
    "\ud83d\ude42",
  ];
  const soup = fc.array(fc.constantFrom(...WORDS), { maxLength: 60 }).map((words) => words.join(" "));
  const braces = fc
    .array(fc.constantFrom("{", "}", "a", "__typename", "{ a", "x {", " "), { maxLength: 200 })
    .map((parts) => parts.join(""));
  /** Large documents, as recipes built inside the property so counterexamples stay short. */
  type Large = { kind: "aliases" | "directives" | "variables" | "fragments" | "fragment-cycle" | "arguments"; count: number };
  const large = fc.record({
    kind: fc.constantFrom<Large["kind"]>("aliases", "directives", "variables", "fragments", "fragment-cycle", "arguments"),
    count: fc.integer({ min: 1, max: 5000 }),
  });
  function buildLarge({ kind, count }: Large): string {
    const times = (make: (i: number) => string) => Array.from({ length: count }, (_, i) => make(i)).join(" ");
    switch (kind) {
      case "aliases":
        return `{ ${times((i) => `a${i}: __typename`)} }`;
      case "directives":
        return `{ __typename ${times(() => "@include(if: true)")} }`;
      case "variables":
        return `query (${times((i) => `$v${i}: Int`)}) { __typename }`;
      case "arguments":
        return `{ history(channel: "a", last: 1, ${times((i) => `x${i}: ${i}`)}) { id } }`;
      case "fragments":
      case "fragment-cycle": {
        const n = Math.min(count, 300);
        const next = (i: number) => (kind === "fragment-cycle" ? (i + 1) % n : Math.min(i + 1, n - 1));
        return `query { ...F0 } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { __typename ...F${next(i)} }`).join(" ")}`;
      }
    }
  }

  /** Deep nesting, as a recipe: selections (closed or not), list and object value literals. */
  type Nesting = { kind: "selection" | "unclosed-selection" | "list-literal" | "object-literal" | "braces"; depth: number };
  const nesting = fc.record({
    kind: fc.constantFrom<Nesting["kind"]>("selection", "unclosed-selection", "list-literal", "object-literal", "braces"),
    depth: fc.integer({ min: 1, max: 3000 }),
  });
  function buildNesting({ kind, depth }: Nesting): string {
    switch (kind) {
      case "selection":
        return `{ ${"a { ".repeat(depth)}b${" }".repeat(depth)} }`;
      case "unclosed-selection":
        return `{ ${"a { ".repeat(depth)}b`;
      case "list-literal":
        return `mutation { sendMessage(channel: "prop:doc", payload: ${"[".repeat(depth)}1${"]".repeat(depth)}) { delivered } }`;
      case "object-literal":
        return `mutation { sendMessage(channel: "prop:doc", payload: ${"{a: ".repeat(depth)}1${"}".repeat(depth)}) { delivered } }`;
      case "braces":
        return "{".repeat(depth) + "}".repeat(depth);
    }
  }

  const extras = fc.record({
    operationName: fc.option(fc.constantFrom("A", "", "Query", "x".repeat(300)), { nil: undefined }),
    variables: fc.option(fc.oneof(fc.dictionary(fc.constantFrom("x", "c", "v0"), fc.jsonValue({ maxDepth: 2 })), fc.constant({})), {
      nil: undefined,
    }),
  });

  /** Posts a document: it must succeed, or fail with messages (4xx or 200 with errors); no 5xx, no masked error, no internals. */
  async function checkDocument(query: string, operationName?: string, variables?: unknown): Promise<void> {
    const exchange = await post({
      query,
      ...(operationName === undefined ? {} : { operationName }),
      ...(variables === undefined ? {} : { variables }),
    });
    const context = `document ${JSON.stringify(query.slice(0, 200))} (${query.length} chars)`;
    expect(exchange.status, `${context}: ${exchange.text.slice(0, 300)}`).toBeLessThan(500);
    expect(exchange.body, `${context}: JSON body, got ${exchange.text.slice(0, 300)}`).not.toBeNull();
    const errors = exchange.body!.errors ?? [];
    if (errors.length === 0) {
      expect(exchange.status).toBe(200);
      expect(exchange.body!.data, context).toBeTruthy();
      return;
    }
    for (const error of errors) {
      expect(error.message, context).toEqual(expect.any(String));
      expect(error.message.length, context).toBeGreaterThan(0);
      expect(error.extensions?.code, `${context}: ${JSON.stringify(error)}`).not.toBe("INTERNAL_SERVER_ERROR");
    }
    expect(internalsIn(JSON.stringify(errors)), `${context}: ${JSON.stringify(errors).slice(0, 500)}`).toBeNull();
  }

  it("random text, token soup and stray braces: an answer with a message, or success; never a 5xx or internals", {
    timeout: 60_000 * SCALE,
  }, async () => {
    const documents = fc.oneof(fc.string({ unit: "binary", maxLength: 500 }), soup, braces);
    await assertProperty(
      fc.asyncProperty(documents, extras, async (query, { operationName, variables }) => checkDocument(query, operationName, variables)),
      runs(200),
    );
    await expectHealthy();
  });

  it("huge numbers of aliases, directives, variables, arguments and fragments (and fragment cycles)", {
    timeout: 60_000 * SCALE,
  }, async () => {
    await assertProperty(
      fc.asyncProperty(large, async (recipe) => checkDocument(buildLarge(recipe))),
      runs(100),
    );
    await expectHealthy();
  });

  it("deep nesting of selections, braces and value literals", { timeout: 60_000 * SCALE }, async () => {
    await assertProperty(
      fc.asyncProperty(nesting, async (recipe) => checkDocument(buildNesting(recipe))),
      runs(100),
    );
    await expectHealthy();
  });

  it("the server answers /health 200 after every run above", async () => {
    await expectHealthy();
    const { body } = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "prop:after", payload: { ok: true } });
    expect(body.data?.sendMessage.delivered).toBe(true);
  });
});
