/**
 * What AFTER triggers cost the publish path. A real server runs as its own process (SQLite in a
 * temporary folder, or PostgreSQL with `--database=postgres://...`); this process subscribes to a
 * channel over a WebSocket and sends messages one after the other over HTTP (`sendMessage`), with
 * 0, 1 and 3 AFTER triggers on the channel, on a channel without history and on one that keeps
 * history (where the runs are written in the history entry's transaction).
 *
 *   npx tsx bench/after-cost.ts [--n=1000] [--database=postgres://127.0.0.1:5432/test?schema=bench_after] [--json] [--profile=DIR]
 *
 * Reports, in microseconds, the median and 99th percentile of:
 * - delivery: from sending until the subscriber has the event;
 * - ack: from sending until the sender's answer (the runs are stored by then).
 * The AFTER stack is one log step, so the server's worker runs the stored runs alongside.
 * Prints numbers; asserts nothing about them. `--profile=DIR` writes the server's CPU profile (its
 * main thread, and any worker threads) to DIR.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import { ROOT } from "./options.js";

const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
const args = new Map(
  process.argv.slice(2).map((arg) => {
    const [key, ...value] = arg.replace(/^--/, "").split("="); // a URL's query holds "=" too
    return [key!, value.length ? value.join("=") : "true"] as const;
  }),
);
const runs = Number(args.get("n") ?? 1000);
const databaseUrl = args.get("database");
const asJson = args.has("json");
const profileDir = args.get("profile");

interface Row {
  readonly history: number;
  readonly afterTriggers: number;
  readonly deliveryP50: number;
  readonly deliveryP99: number;
  readonly ackP50: number;
  readonly ackP99: number;
  readonly storedRuns: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! * 1000;
}

async function graphql(url: string, query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: any; errors?: unknown };
  if (!body.data) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

const dataDir = mkdtempSync(join(tmpdir(), "bench-after-"));
const profileFlags = profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : [];
const child = spawn(process.execPath, [...profileFlags, "--import", "tsx", "src/main.ts"], {
  cwd: ROOT,
  env: {
    ...process.env,
    PORT: "0",
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    ADMIN_TOKEN,
    LOG_LEVEL: "info",
    SEED_DEMO_ROOM: "false",
    MAX_MESSAGES_PER_SECOND: "1000000",
    MAX_ADDRESS_MESSAGES_PER_SECOND: "1000000",
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
  },
  stdio: ["ignore", "pipe", "inherit"],
});
const httpUrl = await new Promise<string>((resolve, reject) => {
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    output += chunk;
    const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
    if (match) resolve(match[1]!);
  });
  child.once("exit", (code) => reject(new Error(`the server exited with ${code}: ${output}`)));
});
const client = createClient({ url: httpUrl.replace("http://", "ws://"), webSocketImpl: WebSocket, lazy: false });
const send = (channel: string, n: number) =>
  graphql(httpUrl, `mutation ($channel: String!, $payload: JSON!) { sendMessage(channel: $channel, payload: $payload) { delivered } }`, {
    channel,
    payload: { n, text: "a message of about a hundred bytes, as the load benchmark sends them" },
  });

const rows: Row[] = [];
try {
  // A first pass without AFTER triggers warms the server up (JIT, caches, connection pools) and is not reported.
  const passes = [{ history: 0, afterTriggers: 0, warmUp: true }];
  for (const history of [0, 100]) for (const afterTriggers of [0, 1, 3]) passes.push({ history, afterTriggers, warmUp: false });
  for (const { history, afterTriggers, warmUp } of passes) {
    const channel = `bench-${history}-${afterTriggers}-${randomUUID().slice(0, 8)}`;
    if (history > 0)
      await graphql(httpUrl, `mutation ($input: CreateChannelInput!) { createChannel(input: $input) { id } }`, {
        input: { pattern: channel, history },
      });
    const created: string[] = [];
    for (let i = 0; i < afterTriggers; i++) {
      const data = await graphql(httpUrl, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
        input: { name: `after ${i}`, channel, actions: ["MESSAGE"], timing: "AFTER", stack: [{ log: "payload.n" }] },
      });
      created.push(data.createTrigger.id);
    }
    const arrived = new Map<number, number>();
    let waiting: { n: number; resolve: () => void } | undefined;
    let ready!: () => void;
    const subscribed = new Promise<void>((resolve) => (ready = resolve));
    const unsubscribe = client.subscribe<{ channel: { payload: { n?: number } | null } }>(
      { query: `subscription ($name: String!) { channel(name: $name) { payload } }`, variables: { name: channel } },
      {
        next: (result) => {
          const n = result.data?.channel.payload?.n;
          if (n === undefined) return;
          if (n < 0) return ready();
          arrived.set(n, performance.now());
          if (waiting?.n === n) waiting.resolve();
        },
        error: (error) => console.error(error),
        complete: () => {},
      },
    );
    // The subscription is live once a probe arrives.
    const probe = setInterval(() => void send(channel, -1), 50);
    await subscribed;
    clearInterval(probe);

    const delivery = new Float64Array(runs);
    const ack = new Float64Array(runs);
    for (let n = 0; n < runs; n++) {
      const delivered = new Promise<void>((resolve) => (waiting = { n, resolve }));
      const started = performance.now();
      await send(channel, n);
      ack[n] = performance.now() - started;
      await delivered;
      delivery[n] = arrived.get(n)! - started;
    }
    unsubscribe();
    delivery.sort();
    ack.sort();
    let storedRuns = 0;
    for (const id of created) {
      const data = await graphql(httpUrl, `query ($id: ID!) { trigger(id: $id) { runs(last: 200) { id } } }`, { id });
      storedRuns += data.trigger.runs.length;
      await graphql(httpUrl, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id });
    }
    if (!warmUp)
      rows.push({
        history,
        afterTriggers,
        deliveryP50: percentile(delivery, 0.5),
        deliveryP99: percentile(delivery, 0.99),
        ackP50: percentile(ack, 0.5),
        ackP99: percentile(ack, 0.99),
        storedRuns,
      });
  }
} finally {
  await client.dispose();
  child.kill("SIGTERM");
  await new Promise((resolve) => child.once("exit", resolve));
  rmSync(dataDir, { recursive: true, force: true });
}

if (asJson) console.log(JSON.stringify({ runs, database: databaseUrl ? "postgresql" : "sqlite", rows }, null, 2));
else {
  console.log(`${runs} messages per row, one at a time over HTTP, database ${databaseUrl ? "postgresql" : "sqlite"}; microseconds`);
  console.log("history  AFTER  delivery p50  delivery p99  ack p50  ack p99  runs kept");
  for (const row of rows) {
    console.log(
      [row.history, row.afterTriggers, row.deliveryP50, row.deliveryP99, row.ackP50, row.ackP99, row.storedRuns]
        .map((value, i) => (i < 2 || i === 6 ? String(value) : value.toFixed(0)).padStart(i < 2 ? 7 : i === 6 ? 10 : 13))
        .join(" "),
    );
  }
}
