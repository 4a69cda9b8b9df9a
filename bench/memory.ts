/**
 * Memory per connection (not part of `npm run bench`): a fresh P server for each count, N clients
 * each holding one WebSocket with two subscriptions (`user:<i>` and `room:<floor(i/10)>`, as in the
 * rooms workload), spread over several load processes and loopback source addresses
 * (bench/load-memory.ts). Before and after connecting, the server's heap is collected through the
 * inspector (`HeapProfiler.collectGarbage`, twice) and its RSS (`/proc`) and `process.memoryUsage()`
 * read; the difference divided by N is what one connection holds. With `--snapshots`, a heap
 * snapshot before and after, diffed by constructor: what each connection keeps (taking the first
 * snapshot grows the RSS, so that run's RSS per connection is not reported).
 *
 *   npx tsx bench/memory.ts [--counts=2000,10000] [--tsx] [--snapshots] [--per-process=5000]
 *
 * `--tsx` runs the server from the sources under tsx (as `npm run bench` does) instead of the
 * compiled build, which this script builds first (`npm run build`). The server needs a file
 * descriptor per connection: a count above `ulimit -Hn` (minus some headroom) is refused.
 */
import { spawnSync } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import WebSocket from "ws";
import { freePort } from "../dev/net.js";
import { RESULTS, ROOT } from "./options.js";
import { LOAD_CORE, Processes, type RunningServer, stopProcess } from "./processes.js";
import { processRssBytes, settle, sleep } from "./shared.js";

interface Options {
  readonly counts: readonly number[];
  readonly compiled: boolean;
  readonly snapshots: boolean;
  /** Connections one load process opens at most. */
  readonly perProcess: number;
}

function parseArgs(argv: readonly string[]): Options {
  const value = (name: string) => argv.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3);
  const counts = (value("counts") ?? "2000,10000").split(",").map(Number);
  if (counts.some((count) => !Number.isInteger(count) || count <= 0)) throw new Error("--counts takes positive whole numbers");
  return {
    counts,
    compiled: !argv.includes("--tsx"),
    snapshots: argv.includes("--snapshots"),
    perProcess: Number(value("per-process") ?? 5000),
  };
}

/** A minimal Chrome DevTools Protocol session over the server's inspector WebSocket. */
class Inspector {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();
  private onChunk: ((chunk: string) => void) | null = null;

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => {
      const message = JSON.parse(String(data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        method?: string;
        params?: { chunk: string };
      };
      if (message.method === "HeapProfiler.addHeapSnapshotChunk") return this.onChunk?.(message.params!.chunk);
      const waiting = message.id === undefined ? undefined : this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id!);
      if (message.error) waiting.reject(new Error(message.error.message));
      else waiting.resolve(message.result);
    });
  }

  static async connect(port: number): Promise<Inspector> {
    const [target] = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    const socket = new WebSocket(target!.webSocketDebuggerUrl, { perMessageDeflate: false, maxPayload: 1024 ** 3 });
    await new Promise((resolve, reject) => socket.once("open", resolve).once("error", reject));
    return new Inspector(socket);
  }

  call<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (result: unknown) => void, reject }));
  }

  async collectGarbage(): Promise<void> {
    await this.call("HeapProfiler.collectGarbage");
    await this.call("HeapProfiler.collectGarbage");
  }

  async memoryUsage(): Promise<NodeJS.MemoryUsage> {
    const { result } = await this.call<{ result: { value: string } }>("Runtime.evaluate", {
      expression: "JSON.stringify(process.memoryUsage())",
    });
    return JSON.parse(result.value) as NodeJS.MemoryUsage;
  }

  /** Writes a heap snapshot to `file`. */
  async heapSnapshot(file: string): Promise<void> {
    const out = createWriteStream(file);
    this.onChunk = (chunk) => out.write(chunk);
    await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    this.onChunk = null;
    await new Promise((resolve) => out.end(resolve));
  }

  close(): void {
    this.socket.close();
  }
}

/** Memory of the server process at one point, after a full collection. */
interface MemoryPoint {
  readonly rss: number;
  readonly heapUsed: number;
  /** Heap the collector holds from the system, used or not. */
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

async function measure(inspector: Inspector, pid: number): Promise<MemoryPoint> {
  await settle(pid, 30_000);
  await inspector.collectGarbage();
  await sleep(1000);
  const usage = await inspector.memoryUsage();
  return {
    rss: processRssBytes(pid),
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
  };
}

/** Heap snapshot totals by node type and constructor (or closure) name: count and self size. */
function snapshotTotals(file: string): Map<string, { count: number; bytes: number }> {
  const snapshot = JSON.parse(readFileSync(file, "utf8")) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snapshot.snapshot.meta.node_fields;
  const types = snapshot.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ["type", "name", "self_size"].map((field) => fields.indexOf(field)) as [number, number, number];
  const totals = new Map<string, { count: number; bytes: number }>();
  for (let i = 0; i < snapshot.nodes.length; i += fields.length) {
    const type = types[snapshot.nodes[i + typeAt]!]!;
    // Strings, code and numbers are grouped by type; objects and closures by constructor or function name.
    const name =
      type === "object" || type === "closure" || type === "native" ? snapshot.strings[snapshot.nodes[i + nameAt]!]!.slice(0, 60) : "";
    const key = `${type} ${name}`.trim();
    const total = totals.get(key) ?? { count: 0, bytes: 0 };
    total.count += 1;
    total.bytes += snapshot.nodes[i + sizeAt]!;
    totals.set(key, total);
  }
  return totals;
}

/** The snapshot difference per connection, largest first: the lines covering 95% of the growth. */
function snapshotDiff(before: string, after: string, connections: number): string[] {
  const a = snapshotTotals(before);
  const b = snapshotTotals(after);
  const rows = [...b].map(([key, total]) => {
    const base = a.get(key) ?? { count: 0, bytes: 0 };
    return { key, count: (total.count - base.count) / connections, bytes: (total.bytes - base.bytes) / connections };
  });
  rows.sort((x, y) => y.bytes - x.bytes);
  const growth = rows.reduce((sum, row) => sum + Math.max(row.bytes, 0), 0);
  const lines = [`| per connection | objects | bytes |`, `| --- | ---: | ---: |`, `| all | | ${growth.toFixed(0)} |`];
  let covered = 0;
  for (const row of rows) {
    if (covered >= growth * 0.95 || row.bytes < 8) break;
    covered += row.bytes;
    lines.push(`| \`${row.key}\` | ${row.count.toFixed(2)} | ${row.bytes.toFixed(0)} |`);
  }
  return lines;
}

/** Opens `count` clients over load processes of at most `perProcess` each, each from its own loopback address. */
async function connectClients(processes: Processes, server: RunningServer, count: number, perProcess: number) {
  const loads = [];
  for (let first = 0, n = 0; first < count; first += perProcess, n++) {
    const share = Math.min(perProcess, count - first);
    const address = `127.0.0.${2 + n}`;
    const child = processes.spawnNode(
      LOAD_CORE,
      ["--import", "tsx", "bench/load-memory.ts", server.wsUrl, String(first), String(share), address],
      process.env,
      `load ${address}`,
    );
    const ready = new Promise<{ live: number; failed: number; failure: string }>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on("line", (line) => {
        const [word, live, failed, ...failure] = line.split(" ");
        if (word === "READY") resolve({ live: Number(live), failed: Number(failed), failure: failure.join(" ") });
      });
      child.once("exit", (code) => reject(new Error(`load process ${address} exited (${code})`)));
    });
    loads.push({ child, ready });
  }
  const results = await Promise.all(loads.map((load) => load.ready));
  return {
    children: loads.map((load) => load.child),
    live: results.reduce((sum, result) => sum + result.live, 0),
    failures: results.filter((result) => result.failed > 0).map((result) => `${result.failed} failed: ${result.failure}`),
  };
}

interface CountResult {
  readonly connections: number;
  readonly live: number;
  readonly setupSeconds: number;
  readonly before: MemoryPoint;
  readonly after: MemoryPoint;
  readonly perConnection: MemoryPoint;
  readonly snapshotDiff?: string[];
}

async function runCount(options: Options, count: number, snapshotDir: string): Promise<CountResult> {
  const processes = new Processes(0, count);
  if (processes.placement.fdLimit < count + 200) {
    processes.dispose();
    throw new Error(
      `${count} connections need about ${count + 200} file descriptors; the hard limit here is ${processes.placement.fdLimit} (ulimit -Hn)`,
    );
  }
  const inspectPort = await freePort();
  const server = await processes.startServer("P", { compiled: options.compiled, nodeArgs: [`--inspect=127.0.0.1:${inspectPort}`] });
  let children: ReturnType<Processes["spawnNode"]>[] = [];
  const inspector = await Inspector.connect(inspectPort);
  try {
    const before = await measure(inspector, server.pid);
    const beforeSnapshot = join(snapshotDir, `before-${count}.heapsnapshot`);
    if (options.snapshots) await inspector.heapSnapshot(beforeSnapshot);
    const started = performance.now();
    const connected = await connectClients(processes, server, count, options.perProcess);
    children = connected.children;
    const setupSeconds = (performance.now() - started) / 1000;
    if (connected.failures.length > 0) console.log(`  ${connected.failures.join("; ")}`);
    const after = await measure(inspector, server.pid);
    const perConnection = {
      rss: (after.rss - before.rss) / connected.live,
      heapUsed: (after.heapUsed - before.heapUsed) / connected.live,
      heapTotal: (after.heapTotal - before.heapTotal) / connected.live,
      external: (after.external - before.external) / connected.live,
      arrayBuffers: (after.arrayBuffers - before.arrayBuffers) / connected.live,
    };
    let diff: string[] | undefined;
    if (options.snapshots) {
      const afterSnapshot = join(snapshotDir, `after-${count}.heapsnapshot`);
      await inspector.heapSnapshot(afterSnapshot);
      diff = snapshotDiff(beforeSnapshot, afterSnapshot, connected.live);
    }
    return { connections: count, live: connected.live, setupSeconds, before, after, perConnection, snapshotDiff: diff };
  } finally {
    inspector.close();
    await server.stop();
    await Promise.all(children.map((child) => stopProcess(child, "SIGKILL")));
    processes.dispose();
  }
}

const kb = (bytes: number) => (bytes / 1024).toFixed(1);
const mb = (bytes: number) => (bytes / 1024 ** 2).toFixed(0);

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.compiled) {
    const build = spawnSync("npm", ["run", "-s", "build"], { cwd: ROOT, stdio: "inherit" });
    if (build.status !== 0) throw new Error("npm run build failed");
  }
  const snapshotDir = mkdtempSync(join(tmpdir(), "realtime-memory-"));
  const how = options.compiled ? "compiled build (node dist/src/main.js)" : "sources under tsx (node --import tsx src/main.ts)";
  const lines = [
    `# Memory per connection (two subscriptions each)`,
    ``,
    `${new Date().toISOString()}, server: ${how}, node ${process.version}. Per connection = (after − before) / live connections, each after two full collections.`,
    ``,
    `| connections | live | setup s | RSS before → after MiB | RSS per connection | heap used per connection | heap total per connection | external per connection |`,
    `| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ];
  const results: CountResult[] = [];
  for (const count of options.counts) {
    console.log(`${count} connections…`);
    const result = await runCount(options, count, snapshotDir);
    results.push(result);
    const { before, after, perConnection } = result;
    const row = `| ${count} | ${result.live} | ${result.setupSeconds.toFixed(1)} | ${mb(before.rss)} → ${mb(after.rss)} | ${options.snapshots ? "not comparable (snapshots)" : `${kb(perConnection.rss)} KB`} | ${kb(perConnection.heapUsed)} KB | ${kb(perConnection.heapTotal)} KB | ${kb(perConnection.external)} KB |`;
    console.log(row);
    lines.push(row);
  }
  for (const result of results) {
    if (!result.snapshotDiff) continue;
    lines.push(
      ``,
      `Heap snapshot after minus before, ${result.live} connections, self size by type and constructor:`,
      ``,
      ...result.snapshotDiff,
    );
  }
  const text = lines.join("\n");
  console.log(`\n${text}`);
  const file = join(RESULTS, `memory-${options.compiled ? "compiled" : "tsx"}.md`);
  writeFileSync(file, `${text}\n`);
  writeFileSync(file.replace(/\.md$/, ".json"), JSON.stringify({ options, results }, null, 2));
  console.log(`\nwritten: ${file}${options.snapshots ? `; heap snapshots in ${snapshotDir}` : ""}`);
}

await main();
