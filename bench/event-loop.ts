/**
 * How long trigger runs hold the event loop at a time.
 *
 *   npx tsx bench/event-loop.ts [--at-once=1,4,20] [--cases=<text in a case's name>] [--no-server] [--json]
 *
 * 1. The engine alone, in this process: each case of test/triggers/heavy-corpus.json (valid stacks
 *    that do a lot of work in few steps) run once, while a 1 ms timer watches the event loop: the
 *    longest stretch between two of its turns, in wall time and in this thread's CPU time (Linux;
 *    the process's elsewhere), which a loaded machine does not stretch.
 * 2. A real server, in this process (as the tests run them; SQLite in a temporary folder), so that
 *    the same timer watches its event loop: the corpus's first case (a trigger building a string of
 *    800,000 characters) on a channel, and `--at-once` messages sent through it at once over HTTP;
 *    meanwhile /health and a bystander's message on another channel (sent over HTTP, awaited over a
 *    WebSocket), one after the other, until every heavy message is answered. Reports the longest
 *    stretch and the waits, in wall time and in this thread's CPU time.
 *
 * Prints numbers; asserts nothing about them.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "graphql-ws";
import jsonata from "jsonata";
import WebSocket from "ws";
import { parseEnv } from "../src/env.js";
import { createLogger } from "../src/logger.js";
import { createApp } from "../src/server.js";
import { compileStack } from "../src/triggers/compile/stack.js";
import { runStack, type TriggerInput } from "../src/triggers/run/engine.js";
import { ROOT } from "./options.js";

const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
/** The time limit the stacks run under: long enough for every case to finish, what is measured is each stretch. */
const TIMEOUT_MS = 30_000;

const args = new Map(
  process.argv.slice(2).map((arg) => {
    const [key, ...value] = arg.replace(/^--/, "").split("=");
    return [key!, value.length ? value.join("=") : "true"] as const;
  }),
);
const atOnce = (args.get("at-once") ?? "1,4,20").split(",").map(Number);
const only = args.get("cases");
const asJson = args.has("json");

interface Case {
  readonly name: string;
  readonly stack: unknown[];
  readonly payload: string;
}
const cases = (JSON.parse(readFileSync(join(ROOT, "test/triggers/heavy-corpus.json"), "utf8")) as { cases: Case[] }).cases;

/** This thread's CPU time in milliseconds. */
function cpuMs(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
  } catch {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  }
}

/** Watches this process's event loop: the longest stretch between two turns, in wall and CPU time. */
function watch(): () => { wallMs: number; cpuMs: number } {
  let wall = 0;
  let cpu = 0;
  let lastWall = performance.now();
  let lastCpu = cpuMs();
  const tick = () => {
    const now = performance.now();
    const used = cpuMs();
    wall = Math.max(wall, now - lastWall);
    cpu = Math.max(cpu, Math.min(now - lastWall, used - lastCpu));
    lastWall = performance.now();
    lastCpu = cpuMs();
  };
  const timer = setInterval(tick, 1);
  return () => {
    tick();
    clearInterval(timer);
    return { wallMs: wall, cpuMs: cpu };
  };
}

const round = (value: number) => Math.round(value * 10) / 10;

/** Part 1: each case on the engine alone. */
async function engineRows() {
  const rows = [];
  for (const heavy of cases) {
    if (only && !heavy.name.includes(only)) continue;
    const stack = compileStack(heavy.stack, { expressionTimeoutMs: TIMEOUT_MS });
    const input: TriggerInput = {
      action: "message",
      command: "message",
      channel: "bench",
      commandOptions: null,
      payload: await jsonata(heavy.payload).evaluate(undefined),
      client: { id: "bench", authenticated: false, extras: null },
    };
    await runStack(stack, input, { timeoutMs: TIMEOUT_MS }); // warm-up
    const stop = watch();
    const result = await runStack(stack, input, { timeoutMs: TIMEOUT_MS });
    const held = stop();
    rows.push({
      case: heavy.name,
      holdCpuMs: round(held.cpuMs),
      holdWallMs: round(held.wallMs),
      runMs: round(result.durationMs),
      outcome: result.outcome,
    });
  }
  return rows;
}

async function graphql(url: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<any> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return response.json();
}

/** The median and the longest of some waits, in wall time, and the longest in CPU time. */
function spread(waits: { wallMs: number; cpuMs: number }[]) {
  const wall = waits.map((wait) => wait.wallMs).sort((a, b) => a - b);
  return {
    p50: round(wall[Math.floor(wall.length / 2)] ?? 0),
    max: round(wall.at(-1) ?? 0),
    maxCpu: round(Math.max(0, ...waits.map((wait) => wait.cpuMs))),
    n: wall.length,
  };
}

/** Part 2: a real server, `n` heavy messages at once, /health and a bystander meanwhile. */
async function serverRows() {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-event-loop-"));
  const env = parseEnv({
    DATA_DIR: dataDir,
    ADMIN_TOKEN,
    LOG_LEVEL: "silent",
    SEED_DEMO_ROOM: "false",
    TRIGGER_TIMEOUT_MS: String(TIMEOUT_MS),
    MAX_MESSAGES_PER_SECOND: "1000000",
    MAX_ADDRESS_MESSAGES_PER_SECOND: "1000000",
  });
  const app = await createApp(env, createLogger("silent"));
  const { port } = await app.start(0, "127.0.0.1");
  const httpUrl = `http://127.0.0.1:${port}/graphql`;
  const ws = createClient({ url: `ws://127.0.0.1:${port}/graphql`, webSocketImpl: WebSocket, lazy: false });
  try {
    const healthUrl = httpUrl.replace("/graphql", "/health");
    const builder = cases[0]!;
    await graphql(
      httpUrl,
      `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`,
      { input: { name: "builder", channel: "builder", actions: ["MESSAGE"], stack: builder.stack } },
      ADMIN_TOKEN,
    );
    const send = (channel: string, payload: unknown) =>
      graphql(
        httpUrl,
        `mutation ($channel: String!, $payload: JSON!) { sendMessage(channel: $channel, payload: $payload) { delivered } }`,
        {
          channel,
          payload,
        },
      );
    let arrived: ((n: number) => void) | undefined;
    let ready!: () => void;
    const subscribed = new Promise<void>((resolve) => (ready = resolve));
    ws.subscribe<{ channel: { payload: { n?: number } | null } }>(
      { query: `subscription { channel(name: "bystander") { payload } }` },
      {
        next: (result) => {
          const n = result.data?.channel.payload?.n;
          if (n === undefined) return;
          if (n < 0) ready();
          else arrived?.(n);
        },
        error: (error) => console.error(error),
        complete: () => {},
      },
    );
    const probe = setInterval(() => void send("bystander", { n: -1 }), 50);
    await subscribed;
    clearInterval(probe);
    /** A bystander's message: from sending until it arrives over the WebSocket (wall and CPU ms). */
    const bystander = (n: number) =>
      timed(async () => {
        const received = new Promise<void>((resolve) => (arrived = (m) => m === n && resolve()));
        await Promise.all([send("bystander", { n }), received]);
      });
    const health = () => timed(async () => (await fetch(healthUrl)).text());
    await Promise.all([send("builder", {}), bystander(0), health()]); // warm-up

    const rows = [];
    for (const n of atOnce) {
      const started = performance.now();
      const stop = watch();
      let sending = true;
      const sends = Promise.all(Array.from({ length: n }, () => send("builder", {}))).finally(() => (sending = false));
      const healthMs: { wallMs: number; cpuMs: number }[] = [];
      const bystanderMs: { wallMs: number; cpuMs: number }[] = [];
      for (let i = 1; sending; i++) {
        bystanderMs.push(await bystander(i));
        healthMs.push(await health());
      }
      const answers = await sends;
      const held = stop();
      const delivered = answers.filter((answer) => answer.data?.sendMessage.delivered).length;
      rows.push({
        atOnce: n,
        delivered,
        allMs: round(performance.now() - started),
        holdCpuMs: round(held.cpuMs),
        holdWallMs: round(held.wallMs),
        health: spread(healthMs),
        bystander: spread(bystanderMs),
      });
    }
    return rows;
  } finally {
    await ws.dispose();
    await app.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Runs `work`; how long it took in wall time and in this thread's CPU time meanwhile (at most the wall time). */
async function timed(work: () => Promise<unknown>): Promise<{ wallMs: number; cpuMs: number }> {
  const wall = performance.now();
  const cpu = cpuMs();
  await work();
  const wallMs = performance.now() - wall;
  return { wallMs, cpuMs: Math.min(wallMs, cpuMs() - cpu) };
}

const engine = await engineRows();
const server = args.has("no-server") ? [] : await serverRows();

if (asJson) console.log(JSON.stringify({ engine, server }, null, 2));
else {
  console.log("The engine alone, each case once: longest stretch the event loop was held (CPU / wall ms), and the run's duration");
  for (const row of engine) {
    console.log(
      `${String(row.holdCpuMs).padStart(7)} ${String(row.holdWallMs).padStart(7)} ${String(row.runMs).padStart(8)}  ${row.outcome.padEnd(9)} ${row.case}`,
    );
  }
  if (server.length > 0) {
    console.log(`\nA server (in this process), "${cases[0]!.name}", messages sent at once (ms; CPU is this thread's):`);
    console.log(
      "at once  delivered  all answered  hold CPU  hold wall  /health p50  /health max  /health max CPU  bystander p50  bystander max  bystander max CPU  samples",
    );
    for (const row of server) {
      const values = [row.atOnce, row.delivered, row.allMs, row.holdCpuMs, row.holdWallMs];
      values.push(
        row.health.p50,
        row.health.max,
        row.health.maxCpu,
        row.bystander.p50,
        row.bystander.max,
        row.bystander.maxCpu,
        row.health.n,
      );
      console.log(values.map((value, i) => String(value).padStart([7, 10, 13, 9, 10, 12, 12, 16, 14, 14, 18, 8][i]!)).join(" "));
    }
  }
}
