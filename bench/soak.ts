/**
 * Soak test: runs the real server as a child process under mixed traffic for a while and reports
 * whether it stays healthy and bounded: memory after GC, event-loop delay, active handles and
 * process listeners at the start and the end, plus what the clients saw.
 *
 *   npx tsx bench/soak.ts --seconds 60 [--clients 16] [--channels 4] [--seed 1]
 *
 * The server is `node --expose-gc --import tsx --import ./bench/soak-probe.ts src/main.ts` on a free
 * port of 127.0.0.1, with a temporary DATA_DIR (SQLite), an admin token, LOG_LEVEL=warn and presence
 * on. The preload (bench/soak-probe.ts) prints a `SOAK_PROBE {json}` line to stderr every 5 s, and
 * one after a full GC when sent SIGUSR2; nothing in `src/` is changed or exposed for this.
 *
 * Traffic: one trigger on `soak:*`; N clients (bounded concurrency: one operation in flight each)
 * connect over the WebSocket, subscribe to one or two of a few channels, then at random send
 * messages over the WebSocket and over HTTP, join and leave, re-subscribe elsewhere, read presence
 * and history, and every few seconds disconnect (cleanly or by dropping the TCP connection) and
 * reconnect. Each client checks that its own messages come back on its own subscriptions.
 *
 * At the end: every client disconnects, presence must be empty on every channel, /health must be
 * 200, and a summary table is printed. Exits 0 once the report is printed (1 if the server could
 * not be started).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type Client, createClient } from "graphql-ws";
import WebSocket from "ws";
import { freePort } from "../dev/net.js";
import { seededRandom } from "../dev/random.js";
import { processCpuSeconds, processRssBytes } from "./shared.js";

// ---------------------------------------------------------------------------------------------
// Settings

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index < 0) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} needs a positive number`);
  return value;
}

const SECONDS = argument("seconds", 60);
const CLIENTS = Math.round(argument("clients", 16));
const CHANNELS = Math.round(argument("channels", 4));
const SEED = Math.round(argument("seed", Date.now() % 1_000_000));
const ADMIN_TOKEN = "soak-admin-token-0123456789";
/** How often the probe in the server reports. */
const PROBE_INTERVAL_MS = 5000;
/** Upper bound on any single client operation. */
const OP_TIMEOUT_MS = 10_000;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CHANNEL_NAMES = Array.from({ length: CHANNELS }, (_, i) => `soak:${i}`);

// ---------------------------------------------------------------------------------------------
// Small helpers

// A seeded PRNG, so a run's choices can be repeated with --seed.
const random = seededRandom(SEED);
const between = (min: number, max: number) => min + Math.floor(random() * (max - min + 1));
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** Resolves with `promise`, or rejects with a TIMEOUT error after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`${what}: no answer within ${ms} ms`), { code: "TIMEOUT" })), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A reading of /proc, or null once the process is gone. */
function orNull(read: (pid: number) => number, pid: number): number | null {
  try {
    return read(pid);
  } catch {
    return null;
  }
}

/** The machine's 1-minute load average and core count: the soak shares the machine with its server. */
function machineLoad(): string {
  try {
    return `${readFileSync("/proc/loadavg", "utf8").split(" ")[0]} on ${availableParallelism()} cores`;
  } catch {
    return "?";
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const mib = (bytes: number | null | undefined) => (bytes == null ? "?" : (bytes / 1024 / 1024).toFixed(1));

// ---------------------------------------------------------------------------------------------
// The server process and its probe

interface ProbeSample {
  seq: number;
  at: string;
  uptimeS: number;
  reason: "interval" | "signal";
  gc: boolean;
  memory: NodeJS.MemoryUsage;
  eventLoopDelayMs: { min: number; mean: number; p50: number; p90: number; p99: number; max: number };
  gcPauses: { count: number; totalMs: number; maxMs: number; minor: number; major: number };
  listeners: Record<string, number>;
  activeResources: { total: number; byType: Record<string, number> };
  /** Added here: RSS read from /proc at the moment the line arrived. */
  procRss?: number | null;
}

interface ServerProcess {
  child: ChildProcessWithoutNullStreams;
  httpUrl: string;
  wsUrl: string;
  healthUrl: string;
  samples: ProbeSample[];
  /** Server log lines (warn and above, or not JSON), counted by level and message. */
  logCounts: Map<string, number>;
  output(): string;
  /** Sends SIGUSR2 and resolves with the probe's GC'd sample (bounded in time). */
  gcSample(): Promise<ProbeSample | null>;
  stop(): Promise<number | null>;
}

async function startServer(): Promise<ServerProcess> {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), "realtime-soak-"));
  const child = spawn(process.execPath, ["--expose-gc", "--import", "tsx", "--import", "./bench/soak-probe.ts", "src/main.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      ADMIN_TOKEN,
      LOG_LEVEL: "warn",
      CHANNEL_PRESENCE: "true",
      // Every soak client connects from 127.0.0.1; the per-address limits are for real hosts.
      MAX_ADDRESS_MESSAGES_PER_SECOND: "1000000",
      MAX_ADDRESS_JOINS_PER_SECOND: "1000000",
      MAX_CONNECTIONS_PER_ADDRESS: "1000000",
      MAX_ADDRESS_CONNECTIONS_PER_SECOND: "1000000",
      SOAK_PROBE_INTERVAL_MS: String(PROBE_INTERVAL_MS),
    },
  });
  let output = "";
  const samples: ProbeSample[] = [];
  const logCounts = new Map<string, number>();
  const sampleWaiters: ((sample: ProbeSample) => void)[] = [];
  let partial = "";
  const onLine = (line: string) => {
    if (line.startsWith("SOAK_PROBE ")) {
      const sample = JSON.parse(line.slice("SOAK_PROBE ".length)) as ProbeSample;
      sample.procRss = orNull(processRssBytes, child.pid!);
      samples.push(sample);
      if (sample.reason === "signal") for (const waiter of sampleWaiters.splice(0)) waiter(sample);
      return;
    }
    if (line.trim() === "") return;
    let key: string;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      key = `level ${entry.level ?? "?"}: ${String(entry.msg ?? "")
        .split("\n", 1)[0]!
        .slice(0, 100)}`;
    } catch {
      key = `text: ${line.slice(0, 100)}`;
    }
    logCounts.set(key, (logCounts.get(key) ?? 0) + 1);
  };
  const onData = (chunk: Buffer) => {
    const text = partial + chunk.toString();
    output = (output + chunk.toString()).slice(-200_000);
    const lines = text.split("\n");
    partial = lines.pop() ?? "";
    lines.forEach(onLine);
  };
  child.stdout.on("data", onData);
  child.stderr.on("data", onData);
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));

  const httpUrl = `http://127.0.0.1:${port}/graphql`;
  const healthUrl = `http://127.0.0.1:${port}/health`;
  const startedAt = Date.now();
  let exitCode: number | null | undefined;
  void exited.then((code) => (exitCode = code));
  for (let attempt = 0; attempt < 900; attempt++) {
    if (exitCode !== undefined) throw new Error(`the server exited with ${exitCode} before it was ready:\n${output}`);
    if (Date.now() - startedAt > 90_000) break;
    try {
      if ((await fetch(healthUrl)).status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  if ((await fetch(healthUrl).catch(() => null))?.status !== 200) {
    child.kill("SIGKILL");
    throw new Error(`the server was not healthy within 90 s:\n${output}`);
  }

  return {
    child,
    httpUrl,
    wsUrl: httpUrl.replace("http://", "ws://"),
    healthUrl,
    samples,
    logCounts,
    output: () => output,
    gcSample: () =>
      within(
        new Promise<ProbeSample>((done) => {
          sampleWaiters.push(done);
          child.kill("SIGUSR2");
        }),
        10_000,
        "probe sample",
      ).catch(() => null),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const code = await within(exited, 20_000, "server exit").catch(() => {
        child.kill("SIGKILL");
        return null;
      });
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// GraphQL

const EVENT = `id action channel payload client { id } seq`;
const SUBSCRIBE = `subscription ($name: String!) { channel(name: $name) { ${EVENT} } }`;
const SEND = `mutation ($channel: String!, $payload: JSON!) { sendMessage(channel: $channel, payload: $payload) { delivered event { id } } }`;
const JOIN = `mutation ($channel: String!) { joinChannel(channel: $channel) { joined } }`;
const LEAVE = `mutation ($channel: String!) { leaveChannel(channel: $channel) }`;
const PRESENCE = `query ($channel: String!) { presence(channel: $channel) { id } }`;
const HISTORY = `query ($channel: String!) { history(channel: $channel, last: 5) { id } }`;

interface Result {
  data?: Record<string, any> | null;
  errors?: readonly { message: string; extensions?: Record<string, unknown> }[];
}

async function httpRequest(url: string, query: string, variables: Record<string, unknown>, token?: string): Promise<Result> {
  const response = await within(
    fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    }),
    OP_TIMEOUT_MS,
    "HTTP request",
  );
  if (response.status >= 500) throw Object.assign(new Error(`HTTP ${response.status}`), { code: `HTTP_${response.status}` });
  return (await response.json()) as Result;
}

/** Runs a query or mutation over a graphql-ws client and resolves with its one result. */
function wsRequest(client: Client, query: string, variables: Record<string, unknown>): Promise<Result> {
  let cancel = () => {};
  const request = new Promise<Result>((done, fail) => {
    let result: Result | undefined;
    cancel = client.subscribe(
      { query, variables },
      {
        next: (value) => void (result = value as Result),
        error: (error) => fail(asError(error)),
        complete: () => (result ? done(result) : fail(Object.assign(new Error("completed without a result"), { code: "NO_RESULT" }))),
      },
    );
  });
  return within(request, OP_TIMEOUT_MS, "WebSocket request").finally(() => cancel());
}

/** Turns what graphql-ws reports (a CloseEvent, GraphQL errors, an Error) into an Error with a `code`. */
function asError(error: unknown): Error & { code: string } {
  if (Array.isArray(error)) {
    const code = String((error[0] as { extensions?: { code?: string } } | undefined)?.extensions?.code ?? "GRAPHQL_ERROR");
    return Object.assign(new Error(String((error[0] as { message?: string } | undefined)?.message)), { code });
  }
  if (error && typeof error === "object" && "code" in error && typeof (error as { code: unknown }).code === "number") {
    return Object.assign(new Error(`closed ${(error as { code: number }).code}`), {
      code: `WS_CLOSED_${(error as { code: number }).code}`,
    });
  }
  if (error instanceof Error) return Object.assign(error, { code: (error as { code?: string }).code ?? error.name });
  return Object.assign(new Error(String(error)), { code: "UNKNOWN" });
}

// ---------------------------------------------------------------------------------------------
// Client-side totals

const totals = {
  connects: 0,
  connectFailures: 0,
  reconnects: 0,
  cleanDisconnects: 0,
  abruptDisconnects: 0,
  unexpectedCloses: new Map<string, number>(),
  sentWs: 0,
  sentHttp: 0,
  accepted: 0,
  dropped: 0,
  eventsReceived: 0,
  messagesReceived: 0,
  ownTracked: 0,
  ownReceived: 0,
  ownAbandoned: 0,
  unstamped: 0,
  subscriptions: 0,
  resubscribes: 0,
  joinsLeaves: 0,
  presenceReads: 0,
  historyReads: 0,
  operations: 0,
  errors: new Map<string, number>(),
  latenciesMs: [] as number[],
};

function countError(code: string): void {
  totals.errors.set(code, (totals.errors.get(code) ?? 0) + 1);
}

function codeOf(result: Result): string | null {
  const first = result.errors?.[0];
  return first ? String(first.extensions?.code ?? "NO_CODE") : null;
}

// ---------------------------------------------------------------------------------------------
// One simulated client

interface ChannelSubscription {
  channel: string;
  ready: boolean;
  /** Own messages sent while subscribed, by nonce, with their send time. */
  pending: Map<string, number>;
  end(): void;
}

class SoakClient {
  private client: Client | null = null;
  private socket: WebSocket | null = null;
  /** Whether the current connection is being closed on purpose (each connection has its own flag). */
  private connection = { closing: false };
  private subscriptions: ChannelSubscription[] = [];
  private serial = 0;

  constructor(
    private readonly index: number,
    private readonly server: ServerProcess,
  ) {}

  /** Runs connect / act / disconnect cycles until the deadline. */
  async run(deadline: number): Promise<void> {
    let cycles = 0;
    while (Date.now() < deadline && cycles++ < 10_000) {
      if (cycles > 1) totals.reconnects++;
      try {
        await this.connect();
      } catch (error) {
        totals.connectFailures++;
        countError(asError(error).code);
        await sleep(200);
        continue;
      }
      const lifetimeEnd = Math.min(deadline, Date.now() + between(3_000, 15_000));
      for (let i = 0, count = between(1, 2); i < count; i++) this.subscribe(pick(CHANNEL_NAMES));
      let steps = 0;
      while (Date.now() < lifetimeEnd && this.client && steps++ < 100_000) {
        await this.act();
        await sleep(between(20, 120));
      }
      await this.disconnect(random() < 0.5 ? "clean" : "abrupt");
    }
  }

  private async connect(): Promise<void> {
    const self = this;
    const connection = { closing: false };
    this.connection = connection;
    // Keeps a handle on the socket, to drop the TCP connection without a close frame.
    class TrackedWebSocket extends WebSocket {
      constructor(address: string, protocols?: string | string[]) {
        super(address, protocols);
        self.socket = this;
      }
    }
    const client = createClient({
      url: this.server.wsUrl,
      webSocketImpl: TrackedWebSocket,
      retryAttempts: 0,
      lazy: false,
      onNonLazyError: () => {},
    });
    await within(
      new Promise<void>((done, fail) => {
        const offConnected = client.on("connected", () => {
          offConnected();
          offClosed();
          done();
        });
        const offClosed = client.on("closed", (event) => {
          offConnected();
          offClosed();
          fail(asError(event));
        });
      }),
      OP_TIMEOUT_MS,
      "connect",
    ).catch(async (error: unknown) => {
      await client.dispose();
      throw error;
    });
    client.on("closed", (event) => {
      if (connection.closing) return;
      const key = String((event as { code?: number }).code ?? "?");
      totals.unexpectedCloses.set(key, (totals.unexpectedCloses.get(key) ?? 0) + 1);
      this.dropSubscriptions();
      this.client = null;
    });
    this.client = client;
    totals.connects++;
  }

  private subscribe(channel: string): void {
    const client = this.client;
    if (!client || this.subscriptions.some((subscription) => subscription.channel === channel)) return;
    const subscription: ChannelSubscription = { channel, ready: false, pending: new Map(), end: () => {} };
    totals.subscriptions++;
    subscription.end = client.subscribe(
      { query: SUBSCRIBE, variables: { name: channel } },
      {
        next: (result) => {
          const event = (result as Result).data?.channel as { action: string; payload: any } | undefined;
          if (!event) {
            countError(codeOf(result as Result) ?? "SUBSCRIPTION_NO_DATA");
            return;
          }
          totals.eventsReceived++;
          if (!subscription.ready && event.action === "JOIN") subscription.ready = true;
          if (event.action !== "MESSAGE") return;
          totals.messagesReceived++;
          if (event.payload?.stamped !== true) totals.unstamped++;
          const sentAt = subscription.pending.get(event.payload?.nonce);
          if (sentAt !== undefined) {
            subscription.pending.delete(event.payload.nonce);
            totals.ownReceived++;
            totals.latenciesMs.push(performance.now() - sentAt);
          }
        },
        error: (error) => {
          if (!this.connection.closing && this.client === client) countError(`subscription:${asError(error).code}`);
          this.forget(subscription);
        },
        complete: () => this.forget(subscription),
      },
    );
    this.subscriptions.push(subscription);
  }

  private forget(subscription: ChannelSubscription): void {
    const index = this.subscriptions.indexOf(subscription);
    if (index >= 0) this.subscriptions.splice(index, 1);
    totals.ownAbandoned += subscription.pending.size;
    subscription.pending.clear();
  }

  private dropSubscriptions(): void {
    for (const subscription of [...this.subscriptions]) this.forget(subscription);
  }

  /** One random operation, with one request in flight at a time. */
  private async act(): Promise<void> {
    const client = this.client;
    if (!client) return;
    totals.operations++;
    const roll = random();
    const channel = pick(CHANNEL_NAMES);
    try {
      if (roll < 0.4) await this.send(client, channel, "ws");
      else if (roll < 0.65) await this.send(client, channel, "http");
      else if (roll < 0.75) {
        const joined = await wsRequest(client, JOIN, { channel });
        const left = await wsRequest(client, LEAVE, { channel });
        const code = codeOf(joined) ?? codeOf(left);
        if (code) countError(code);
        else totals.joinsLeaves++;
      } else if (roll < 0.85) {
        const current = this.subscriptions[0];
        if (current) {
          current.end();
          this.forget(current);
        }
        this.subscribe(channel);
        totals.resubscribes++;
      } else if (roll < 0.92) {
        const result = await wsRequest(client, PRESENCE, { channel });
        const code = codeOf(result);
        if (code) countError(code);
        else totals.presenceReads++;
      } else {
        const result = await httpRequest(this.server.httpUrl, HISTORY, { channel });
        const code = codeOf(result);
        if (code) countError(code);
        else totals.historyReads++;
      }
    } catch (error) {
      if (!this.connection.closing && this.client === client) countError(asError(error).code);
    }
  }

  private async send(client: Client, channel: string, via: "ws" | "http"): Promise<void> {
    const nonce = `${this.index}-${++this.serial}`;
    const payload = { text: "soak message", n: this.serial, nonce, via };
    const subscription = this.subscriptions.find((candidate) => candidate.channel === channel && candidate.ready);
    // Tracked before sending: the event can arrive before the mutation's own answer.
    subscription?.pending.set(nonce, performance.now());
    if (via === "ws") totals.sentWs++;
    else totals.sentHttp++;
    let result: Result;
    try {
      result =
        via === "ws"
          ? await wsRequest(client, SEND, { channel, payload })
          : await httpRequest(this.server.httpUrl, SEND, { channel, payload });
    } catch (error) {
      subscription?.pending.delete(nonce);
      throw error;
    }
    const code = codeOf(result);
    if (code) {
      subscription?.pending.delete(nonce);
      countError(code);
      return;
    }
    if (result.data?.sendMessage?.delivered) {
      totals.accepted++;
      if (subscription && this.subscriptions.includes(subscription)) totals.ownTracked++;
    } else {
      totals.dropped++;
      subscription?.pending.delete(nonce);
    }
  }

  /** Own messages still awaited on open subscriptions. */
  missing(): number {
    return this.subscriptions.reduce((sum, subscription) => sum + subscription.pending.size, 0);
  }

  async disconnect(how: "clean" | "abrupt"): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.connection.closing = true;
    this.client = null;
    if (how === "abrupt" && this.socket) {
      this.socket.terminate();
      totals.abruptDisconnects++;
    } else {
      totals.cleanDisconnects++;
    }
    this.dropSubscriptions();
    await within(client.dispose() ?? Promise.resolve(), 5_000, "dispose").catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function sampleRow(sample: ProbeSample | null | undefined): Record<string, string> {
  if (!sample) return {};
  return {
    "RSS (MiB, /proc)": mib(sample.procRss),
    "RSS (MiB, process)": mib(sample.memory.rss),
    "heap used (MiB)": mib(sample.memory.heapUsed),
    "heap total (MiB)": mib(sample.memory.heapTotal),
    "external (MiB)": mib(sample.memory.external),
    "array buffers (MiB)": mib(sample.memory.arrayBuffers),
    "active resources": String(sample.activeResources.total),
    ...Object.fromEntries(Object.entries(sample.activeResources.byType).map(([type, count]) => [`  ${type}`, String(count)])),
    ...Object.fromEntries(Object.entries(sample.listeners).map(([event, count]) => [`listeners ${event}`, String(count)])),
  };
}

function printTable(title: string, rows: [string, ...string[]][], header?: string[]): void {
  console.log(`\n${title}`);
  const all = header ? [header, ...rows] : rows;
  const widths = all[0]!.map((_, column) => Math.max(...all.map((row) => (row[column] ?? "").length)));
  for (const [index, row] of all.entries()) {
    console.log(
      `  ${row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : (cell ?? "").padStart(widths[column]!))).join("   ")}`,
    );
    if (header && index === 0) console.log(`  ${widths.map((width) => "-".repeat(width)).join("   ")}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  console.log(`soak: ${SECONDS} s, ${CLIENTS} clients, channels ${CHANNEL_NAMES.join(" ")}, seed ${SEED}`);
  const server = await startServer();
  const stopOnSignal = () => {
    void server.stop().then(() => process.exit(130));
  };
  process.once("SIGINT", stopOnSignal);
  process.once("SIGTERM", stopOnSignal);
  console.log(`server pid ${server.child.pid} at ${server.httpUrl}`);

  const trigger = await httpRequest(
    server.httpUrl,
    `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`,
    {
      input: {
        name: "soak stamp",
        channel: "soak:*",
        actions: ["MESSAGE"],
        stack: [
          { set: "payload.stamped", value: "true" },
          { if: "payload.n % 97 = 0", then: [{ log: "'every 97th message'" }] },
        ],
      },
    },
    ADMIN_TOKEN,
  );
  if (!trigger.data?.createTrigger) throw new Error(`could not create the trigger: ${JSON.stringify(trigger.errors)}`);

  // Warm up a little (JIT, first connections), then take the baseline after a full GC.
  await Promise.all(CHANNEL_NAMES.map((channel) => httpRequest(server.httpUrl, SEND, { channel, payload: { warmup: true } })));
  const start = await server.gcSample();
  console.log(
    `start: heap used ${mib(start?.memory.heapUsed)} MiB after GC, RSS ${mib(start?.procRss)} MiB, ${start?.activeResources.total} active resources`,
  );

  const loadBefore = machineLoad();
  const serverCpuBefore = orNull(processCpuSeconds, server.child.pid!);
  const ownCpuBefore = process.cpuUsage();
  const startedAt = Date.now();
  const deadline = startedAt + SECONDS * 1000;
  const clients = Array.from({ length: CLIENTS }, (_, index) => new SoakClient(index, server));
  const progress = setInterval(() => {
    const last = server.samples.at(-1);
    console.log(
      `  t+${Math.round((Date.now() - startedAt) / 1000)}s: sent ${totals.sentWs + totals.sentHttp}, received ${totals.messagesReceived}, ` +
        `reconnects ${totals.reconnects}, errors ${[...totals.errors.values()].reduce((a, b) => a + b, 0)}; ` +
        `server heap ${mib(last?.memory.heapUsed)} MiB, RSS ${mib(last?.procRss)} MiB, loop p99 ${last?.eventLoopDelayMs.p99} ms`,
    );
  }, 10_000);
  await Promise.all(clients.map((client) => client.run(deadline)));
  clearInterval(progress);
  const trafficSeconds = (Date.now() - startedAt) / 1000;
  const loadAfter = machineLoad();
  const serverCpu = (orNull(processCpuSeconds, server.child.pid!) ?? NaN) - (serverCpuBefore ?? NaN);
  const ownCpuUsage = process.cpuUsage(ownCpuBefore);
  const ownCpu = (ownCpuUsage.user + ownCpuUsage.system) / 1e6;

  // Let in-flight deliveries land, then count own messages still missing on open subscriptions.
  await sleep(1500);
  const missing = clients.reduce((sum, client) => sum + client.missing(), 0);
  await Promise.all(clients.map((client) => client.disconnect("clean")));
  await sleep(2000);

  // After everyone left: presence must be empty everywhere, and the server healthy.
  const leftovers: Record<string, number> = {};
  for (const channel of CHANNEL_NAMES) {
    const result = await httpRequest(server.httpUrl, PRESENCE, { channel }).catch(
      (error: unknown) => ({ errors: [{ message: String(error) }] }) as Result,
    );
    leftovers[channel] = result.data?.presence?.length ?? -1;
  }
  const health = await fetch(server.healthUrl)
    .then((response) => response.status)
    .catch(() => 0);
  const end = await server.gcSample();
  // Samples whose whole 5 s window lies within the traffic (the first one also covers start-up).
  const trafficEnd = startedAt + trafficSeconds * 1000;
  const intervalSamples = server.samples.filter((sample) => sample.reason === "interval");
  const phaseOf = (sample: ProbeSample) => {
    const at = Date.parse(sample.at);
    if (at - PROBE_INTERVAL_MS < startedAt - 250) return at < startedAt ? "start-up" : "start-up+traffic";
    return at <= trafficEnd + 250 ? "traffic" : "after";
  };
  const trafficSamples = intervalSamples.filter((sample) => phaseOf(sample) === "traffic");
  const exitCode = await server.stop();

  // ----- report
  const startRow = sampleRow(start);
  const endRow = sampleRow(end);
  const keys = [...new Set([...Object.keys(startRow), ...Object.keys(endRow)])];
  printTable(
    "server (probe in the server process; start and end after a full GC, no clients connected at the end)",
    keys.map((key) => [key, startRow[key] ?? "-", endRow[key] ?? "-"]),
    ["", "start", "end"],
  );

  printTable(
    "server over time (every 5 s; event-loop delay beyond the 10 ms sampling interval, since the previous line)",
    intervalSamples.map((sample) => [
      `${sample.uptimeS.toFixed(0)} s`,
      phaseOf(sample),
      mib(sample.procRss),
      mib(sample.memory.heapUsed),
      String(sample.eventLoopDelayMs.p50),
      String(sample.eventLoopDelayMs.p99),
      String(sample.eventLoopDelayMs.max),
      `${sample.gcPauses.major}/${sample.gcPauses.minor}`,
      `${sample.gcPauses.totalMs}/${sample.gcPauses.maxMs}`,
      String(sample.activeResources.total),
    ]),
    [
      "uptime",
      "phase",
      "RSS MiB",
      "heap MiB",
      "loop p50 ms",
      "loop p99 ms",
      "loop max ms",
      "GCs major/minor",
      "GC ms total/max",
      "resources",
    ],
  );

  const latencies = [...totals.latenciesMs].sort((a, b) => a - b);
  const worstP99 = Math.max(...trafficSamples.map((sample) => sample.eventLoopDelayMs.p99), 0);
  const worstMax = Math.max(...trafficSamples.map((sample) => sample.eventLoopDelayMs.max), 0);
  printTable("clients", [
    ["traffic duration", `${trafficSeconds.toFixed(1)} s`],
    ["clients (concurrent)", String(CLIENTS)],
    ["connections / failed", `${totals.connects} / ${totals.connectFailures}`],
    ["reconnects", String(totals.reconnects)],
    ["disconnects clean / dropped TCP", `${totals.cleanDisconnects} / ${totals.abruptDisconnects}`],
    ["unexpected closes by code", JSON.stringify(Object.fromEntries(totals.unexpectedCloses))],
    ["machine load average (1 min) at start / end of traffic", `${loadBefore} / ${loadAfter}`],
    [
      "CPU during traffic: server / this load generator",
      `${serverCpu.toFixed(1)} s / ${ownCpu.toFixed(1)} s (${((serverCpu / trafficSeconds) * 100).toFixed(0)}% / ${((ownCpu / trafficSeconds) * 100).toFixed(0)}% of a core)`,
    ],
    ["operations", `${totals.operations} (${(totals.operations / trafficSeconds).toFixed(0)}/s)`],
    [
      "messages sent ws / http",
      `${totals.sentWs} / ${totals.sentHttp} (${((totals.sentWs + totals.sentHttp) / trafficSeconds).toFixed(0)}/s)`,
    ],
    ["accepted (delivered: true) / dropped", `${totals.accepted} / ${totals.dropped}`],
    ["events received (all) / messages", `${totals.eventsReceived} / ${totals.messagesReceived}`],
    ["messages without the trigger's stamp", String(totals.unstamped)],
    ["own messages tracked / received / missing", `${totals.ownTracked} / ${totals.ownReceived} / ${missing}`],
    ["own messages abandoned (subscription ended first)", String(totals.ownAbandoned)],
    [
      "delivery latency p50 / p99 / max (own)",
      latencies.length
        ? `${percentile(latencies, 50).toFixed(1)} / ${percentile(latencies, 99).toFixed(1)} / ${latencies.at(-1)!.toFixed(1)} ms`
        : "-",
    ],
    ["subscriptions / re-subscribes", `${totals.subscriptions} / ${totals.resubscribes}`],
    ["join+leave pairs / presence reads / history reads", `${totals.joinsLeaves} / ${totals.presenceReads} / ${totals.historyReads}`],
    ["errors by code", totals.errors.size ? JSON.stringify(Object.fromEntries([...totals.errors].sort((a, b) => b[1] - a[1]))) : "none"],
  ]);

  const growth = start && end ? end.memory.heapUsed - start.memory.heapUsed : NaN;
  printTable("verdict", [
    ["heap used after GC, end - start", `${(growth / 1024 / 1024).toFixed(2)} MiB`],
    ["active resources, end - start", start && end ? String(end.activeResources.total - start.activeResources.total) : "?"],
    ["process listeners changed", start && end ? String(JSON.stringify(start.listeners) !== JSON.stringify(end.listeners)) : "?"],
    ["event-loop delay p99 / max under traffic (worst 5 s)", `${worstP99} / ${worstMax} ms`],
    ["presence left after everyone disconnected", JSON.stringify(leftovers)],
    ["/health after the run", String(health)],
    ["server exit code on SIGTERM", String(exitCode)],
  ]);

  if (server.logCounts.size > 0) {
    printTable(
      "server log lines at warn and above (count, level, first line)",
      [...server.logCounts]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 10)
        .map(([key, count]) => [String(count), key]),
    );
  } else {
    console.log("\nserver log: nothing at warn or above");
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  },
);
