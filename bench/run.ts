/**
 * `npm run bench`: the realtime delivery benchmark. Not part of `npm test`.
 *
 * For each system (R raw ws, Y plain Yoga, P this project, P+T this project with one 3-step
 * trigger), each scenario runs against a fresh server process pinned to core 1, driven by one load
 * generator process (bench/load.ts) pinned to core 0:
 *   - a rate ladder at 100 and at 1,000 subscribers on one channel (100-byte payloads),
 *   - 10,000 idle WebSocket connections (RSS per connection),
 * then, for P and P+T, server CPU per message with 1 subscriber at 1,000 messages/s, and the trigger
 * engine micro-benchmark. Writes bench/results/latest.{json,md} plus a dated copy.
 *
 * Options (after `npm run bench --`):
 *   --quick                 short steps, 100 subscribers only, 1,000 idle connections; writes quick.{json,md}
 *   --systems=R,Y,P,PT      which systems
 *   --subs=100,1000         subscriber counts
 *   --idle=10000            idle connections (0 skips the scenario)
 *   --step=3                seconds per ladder step
 *   --no-trigger-cost       skip the trigger micro-benchmark
 *   --wait-quiet=10         first wait (at most 10 minutes) until other work on the machine uses < 0.3 cores
 *   --nice=-10              scheduling priority of servers and load generator (default -10 where
 *                           permitted, so that other work on the machine disturbs the numbers less; 0 disables)
 *   --profile[=<rate>]      instead of the benchmark: profile P at 1,000 subscribers (`node --cpu-prof`)
 *                           for one step at <rate> deliveries/s (default: 80% of P's max in latest.json);
 *                           with --system=PT and/or --subs=N, another system or subscriber count
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem, release } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { IdleConfig, IdleResult, LadderConfig, LadderResult, StepResult } from "./load.js";
import { profileMarkdown, readProfile, summarizeProfile } from "./profile-summary.js";
import { machineBusySeconds, SYSTEM_NAMES, sleep, unrefSleep, type SystemId } from "./shared.js";
import { BENCH_STACK, type TriggerCostResult } from "./trigger-cost.js";
import { freePort } from "../test/helpers/net.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const RESULTS = join(ROOT, "bench", "results");
const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";
const CHANNEL = "bench";
const SERVER_CORE = "1";
const LOAD_CORE = "0";

// ---------------------------------------------------------------------------------------------
// Options

const argv = process.argv.slice(2);
const flag = (name: string) => argv.includes(`--${name}`);
const option = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const quick = flag("quick");
const systems = (option("systems") ?? "R,Y,P,PT").split(",").map((s) => (s === "P+T" ? "PT" : s)) as SystemId[];
for (const system of systems) if (!(system in SYSTEM_NAMES)) throw new Error(`unknown system ${system} (R, Y, P, PT)`);
const subscriberCounts = (option("subs") ?? (quick ? "100" : "100,1000")).split(",").map(Number);
const idleConnections = Number(option("idle") ?? (quick ? 1000 : 10_000));
const stepSeconds = Number(option("step") ?? (quick ? 2 : 3));
const drainSeconds = quick ? 1.5 : 2;
const warmupSeconds = quick ? 1 : 2;
const refineSteps = quick ? 1 : 2;
/** Offered deliveries/s: 2,000 × √2^k, the same for every system so that they share rates. */
const LADDER = Array.from({ length: 20 }, (_, k) => Math.round(2000 * Math.SQRT2 ** k));
const P99_LIMIT_MS = 100;
/** Bounds for one ladder scenario: setup (connect, subscribe), then the ladder. */
const SETUP_DEADLINE_S = quick ? 120 : 240;
const LADDER_DEADLINE_S = quick ? 90 : 150;
/** A step keeps up when everything arrived within this long after the end of its send schedule. */
const KEEP_UP_SLACK_MS = 500;
const IDLE_DEADLINE_S = 120;
const profileArg = argv.find((a) => a === "--profile" || a.startsWith("--profile="));

// ---------------------------------------------------------------------------------------------
// Processes: pinned, with a raised file-descriptor limit

const hasTaskset = spawnSync("taskset", ["-c", "0", "true"]).status === 0;
const wantedNice = Number(option("nice") ?? -10);
const niceness = wantedNice !== 0 && spawnSync("nice", ["-n", String(wantedNice), "true"]).status === 0 ? wantedNice : 0;
const fdLimits = spawnSync("sh", ["-c", "ulimit -Sn; ulimit -Hn"], { encoding: "utf8" }).stdout.trim().split("\n");
const hardFds = fdLimits[1] === "unlimited" ? 1_048_576 : Number(fdLimits[1]);
const wantedFds = Math.min(hardFds, Math.max(Number(fdLimits[0]), idleConnections + 2048));
const notes: string[] = [];
if (wantedNice !== 0 && niceness === 0) notes.push(`could not raise the priority (nice ${wantedNice}): other work on the machine competes on equal terms`);
if (!hasTaskset) notes.push("taskset is not available: server and load generator are not pinned to separate cores");
if (hardFds < idleConnections + 1024) notes.push(`the hard file-descriptor limit (${hardFds}) is below ${idleConnections} connections plus headroom`);

const children = new Set<ChildProcess>();

/**
 * Spawns `node <args>` as `sh -c 'ulimit -n …; exec nice -n … taskset -c <core> node …'` (same pid
 * as the node process), in a session of its own. With the kernel's autogroup scheduling on, nice
 * only ranks processes within one session's group, so the new session's group gets the niceness too.
 */
/** Per-address and per-client join limits raised for thousands of clients sharing 127.0.0.1. */
const LOOPBACK_CROWD = {
  MAX_JOINS_PER_SECOND: "1000000",
  MAX_ADDRESS_MESSAGES_PER_SECOND: "1000000",
  MAX_ADDRESS_JOINS_PER_SECOND: "1000000",
  MAX_CONNECTIONS_PER_ADDRESS: "1000000",
  MAX_ADDRESS_CONNECTIONS_PER_SECOND: "1000000",
};

function spawnNode(core: string, nodeArgs: string[], env: NodeJS.ProcessEnv, label: string): ChildProcess {
  const command = [...(niceness ? ["nice", "-n", String(niceness)] : []), ...(hasTaskset ? ["taskset", "-c", core] : []), process.execPath, ...nodeArgs];
  const autogroup = niceness ? `echo ${niceness} > /proc/$$/autogroup 2>/dev/null; ` : "";
  const child = spawn("sh", ["-c", `${autogroup}ulimit -n ${wantedFds} 2>/dev/null; exec "$@"`, "sh", ...command], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // setsid(): a new session, hence a new autogroup
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  createInterface({ input: child.stderr! }).on("line", (line) => console.error(`[${label}] ${line}`));
  return child;
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const inTime = await Promise.race([exited.then(() => true), unrefSleep(graceMs).then(() => false)]);
  if (!inTime) {
    child.kill("SIGKILL");
    await exited;
  }
}

function cleanup() {
  for (const child of children) child.kill("SIGKILL");
}
process.once("SIGINT", () => {
  cleanup();
  process.exit(130);
});
process.once("exit", cleanup);

// ---------------------------------------------------------------------------------------------
// Servers

interface RunningServer {
  readonly system: SystemId;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  stop(): Promise<void>;
}

/** Environment without the project's settings, so nothing from the caller's shell leaks in. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (
      /^(PORT|HOST|DATA_DIR|DATABASE_URL|ADMIN_TOKEN|LOG_LEVEL|REDIS_|JWT_|TRIGGER_|CHANNEL_|REQUIRE_CHANNEL_CONFIG|INTROSPECTION|GRAPHIQL|MAX_|WS_|GRAPHQL_|CORS_|WEBHOOK_|SHUTDOWN_|NODE_OPTIONS|NODE_ENV)/.test(key)
    ) {
      delete env[key];
    }
  }
  return env;
}

async function startServer(system: SystemId, extraNodeArgs: string[] = []): Promise<RunningServer> {
  const port = await freePort();
  const env = cleanEnv();
  env.PORT = String(port);
  env.HOST = "127.0.0.1";
  let script: string;
  let dataDir: string | null = null;
  if (system === "R") script = "bench/servers/raw-ws.ts";
  else if (system === "Y") script = "bench/servers/plain-yoga.ts";
  else {
    script = "src/main.ts";
    dataDir = mkdtempSync(join(tmpdir(), "realtime-bench-"));
    Object.assign(env, {
      DATA_DIR: dataDir,
      ADMIN_TOKEN,
      LOG_LEVEL: "warn",
      GRAPHIQL: "false",
      NODE_ENV: "production",
      // The bench's one publisher sends every message; the per-client send limit (50/s by default)
      // is for real clients and would cap the ladder instead of the delivery path.
      MAX_MESSAGES_PER_SECOND: "1000000",
      // Every simulated client connects from 127.0.0.1: the per-address limits would see one
      // abusive host where the bench means thousands of clients.
      ...LOOPBACK_CROWD,
      // R and Y have no slow-consumer guard: past saturation the load generator reads late, and the
      // 4 MiB default would drop its sockets, ending the ladder by disconnection rather than latency.
      MAX_WS_BUFFERED_BYTES: String(1024 ** 3),
    });
  }
  const child = spawnNode(SERVER_CORE, ["--import", "tsx", ...extraNodeArgs, script], env, `server ${system}`);
  const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`server ${system} exited (${code}) before it was ready`))));
  exited.catch(() => {});
  const httpUrl = `http://127.0.0.1:${port}/graphql`;
  const ready =
    system === "R" || system === "Y"
      ? new Promise<void>((resolve) => {
          const lines = createInterface({ input: child.stdout! });
          lines.on("line", (line) => {
            if (line.startsWith("READY")) resolve();
          });
        })
      : (async () => {
          child.stdout!.resume();
          for (;;) {
            try {
              const response = await fetch(`http://127.0.0.1:${port}/health`);
              if (response.ok) return;
            } catch {
              // not listening yet
            }
            await sleep(200);
          }
        })();
  await Promise.race([ready, exited, unrefSleep(90_000).then(() => Promise.reject(new Error(`server ${system} not ready in 90 s`)))]);
  if (system === "PT") await createBenchTrigger(httpUrl);
  return {
    system,
    child,
    pid: child.pid!,
    wsUrl: system === "R" ? `ws://127.0.0.1:${port}/` : `ws://127.0.0.1:${port}/graphql`,
    httpUrl,
    stop: async () => {
      // SIGKILL: a graceful stop of P with many subscribers publishes a LEAVE per socket to every
      // remaining subscriber first, which measures nothing and takes long.
      await stopProcess(child, "SIGKILL");
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Creates the P+T trigger through the admin API, like an operator would. */
async function createBenchTrigger(httpUrl: string): Promise<void> {
  const response = await fetch(httpUrl, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({
      query: "mutation Create($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }",
      variables: { input: { name: "bench 3-step", channel: CHANNEL, actions: ["MESSAGE"], stack: BENCH_STACK } },
    }),
  });
  const body = (await response.json()) as { data?: { createTrigger?: { id: string } }; errors?: unknown };
  if (!body.data?.createTrigger?.id) throw new Error(`createTrigger failed: ${JSON.stringify(body)}`);
}

// ---------------------------------------------------------------------------------------------
// Load generator

const workDir = mkdtempSync(join(tmpdir(), "realtime-bench-load-"));

async function runLoad<T>(config: Omit<LadderConfig, "out"> | Omit<IdleConfig, "out">, server: RunningServer): Promise<T> {
  const name = `${config.system}-${config.mode}-${config.mode === "ladder" ? config.subscribers : config.connections}`;
  const out = join(workDir, `${name}.json`);
  const configPath = join(workDir, `${name}.config.json`);
  writeFileSync(configPath, JSON.stringify({ ...config, out }));
  const child = spawnNode(LOAD_CORE, ["--import", "tsx", "bench/load.ts", configPath], cleanEnv(), "load");
  const limitMs = (config.deadlineSeconds + (config.mode === "ladder" ? config.setupDeadlineSeconds : 0) + 60) * 1000;
  try {
    const resultPath = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`load generator for ${name} exceeded ${limitMs / 1000} s`)), limitMs);
      createInterface({ input: child.stdout! }).on("line", (line) => {
        if (line.startsWith("RESULT ")) {
          clearTimeout(timer);
          resolve(line.slice(7));
        } else console.log(line);
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`load generator for ${name} exited (${code}) without a result`));
      });
    });
    return JSON.parse(readFileSync(resultPath, "utf8")) as T;
  } finally {
    await server.stop(); // before the generator closes its sockets
    await stopProcess(child);
  }
}

function ladderConfig(system: SystemId, server: RunningServer, subscribers: number, rates = LADDER): Omit<LadderConfig, "out"> {
  return {
    mode: "ladder",
    system,
    url: server.wsUrl,
    serverPid: server.pid,
    channel: CHANNEL,
    subscribers,
    rates,
    stepSeconds,
    drainSeconds,
    warmupSeconds,
    refineSteps,
    p99LimitMs: P99_LIMIT_MS,
    keepUpSlackMs: KEEP_UP_SLACK_MS,
    retryAboveOtherCores: 0.5,
    setupDeadlineSeconds: SETUP_DEADLINE_S,
    deadlineSeconds: LADDER_DEADLINE_S,
  };
}

// ---------------------------------------------------------------------------------------------
// Report

interface SystemResult {
  readonly system: SystemId;
  readonly name: string;
  readonly ladders: Record<string, LadderResult | { error: string }>;
  idle: IdleResult | { error: string } | null;
  /** P and P+T only: 1 subscriber, 1,000 messages/s, three steps: server CPU per published message. */
  perMessage?: LadderResult | { error: string };
}

interface Report {
  readonly date: string;
  readonly durationSeconds: number;
  readonly quick: boolean;
  readonly machine: Record<string, string | number | boolean>;
  readonly method: Record<string, unknown>;
  readonly systems: SystemResult[];
  readonly summary: Summary;
  readonly triggerCost: TriggerCostResult | { error: string } | null;
  readonly machineLoad: MachineLoad;
  readonly notes: string[];
}

interface MachineLoad {
  readonly loadavgStart: string;
  readonly loadavgEnd: string;
  /** Median over all ladder steps of the CPU other processes used meanwhile, in cores. */
  readonly otherCpuCoresMedian: number | null;
  readonly otherCpuCoresMax: number | null;
}

interface Summary {
  /** Per subscriber count: the highest ladder rate every system kept up with. */
  readonly commonRate: Record<string, number | null>;
  readonly perSystem: Record<
    string,
    {
      /** 100% delivery and p99 ≤ 100 ms. */
      maxPerSec: Record<string, number | null>;
      /** 100% delivery, kept up, no p99 bound. */
      maxKeepUpPerSec: Record<string, number | null>;
      setupSeconds: Record<string, number | null>;
      atCommonRate: Record<string, { p50Ms: number; p99Ms: number; fanoutP50Ms: number; cpuSecondsPer100k: number } | null>;
      rssPerConnectionBytes: number | null;
      rssPerSubscribedConnectionBytes: number | null;
      idleOpen: string | null;
    }
  >;
  /** By criterion ("p99" or "keepUp"), then subscriber count, then ratio name. */
  readonly ratios: Record<string, Record<string, Record<string, number | null>>>;
  /** Server CPU per published message with 1 subscriber (median of three steps), µs, for P and P+T. */
  readonly perMessageCpuMicros: Record<string, number | null>;
  /** P+T minus P of the above: what the trigger costs the server per event, recording its run included. */
  readonly triggerCostInServerMicros: number | null;
}

function isError(value: unknown): value is { error: string } {
  return typeof value === "object" && value !== null && "error" in value;
}

/** The ladder step at a rate, if the server kept up with it. */
function keptUpStepAt(ladder: LadderResult, rate: number): StepResult | undefined {
  return ladder.steps.findLast((s) => s.kind === "ladder" && s.offeredPerSec === rate && s.keepsUp);
}

function summarize(results: SystemResult[]): Summary {
  const commonRate: Record<string, number | null> = {};
  for (const subs of subscriberCounts) {
    const ladders = results.map((r) => r.ladders[subs]);
    const rates = LADDER.filter((rate) => ladders.every((l) => l && !isError(l) && keptUpStepAt(l, rate)));
    commonRate[subs] = rates.at(-1) ?? null;
  }
  const perSystem: Summary["perSystem"] = {};
  for (const r of results) {
    const maxPerSec: Record<string, number | null> = {};
    const maxKeepUpPerSec: Record<string, number | null> = {};
    const setupSeconds: Record<string, number | null> = {};
    const atCommonRate: Summary["perSystem"][string]["atCommonRate"] = {};
    for (const subs of subscriberCounts) {
      const ladder = r.ladders[subs];
      const ok = ladder && !isError(ladder) ? ladder : null;
      maxPerSec[subs] = ok ? ok.maxSustainedPerSec : null;
      maxKeepUpPerSec[subs] = ok ? ok.maxKeepUpPerSec : null;
      setupSeconds[subs] = ok ? ok.setupSeconds : null;
      const rate = commonRate[subs];
      const step = ok && rate ? keptUpStepAt(ok, rate) : undefined;
      atCommonRate[subs] = step
        ? { p50Ms: step.p50Ms, p99Ms: step.p99Ms, fanoutP50Ms: step.fanoutP50Ms, cpuSecondsPer100k: step.cpuSecondsPer100k }
        : null;
    }
    const idle = r.idle && !isError(r.idle) ? r.idle : null;
    perSystem[r.system] = {
      maxPerSec,
      maxKeepUpPerSec,
      setupSeconds,
      atCommonRate,
      rssPerConnectionBytes: idle ? idle.bytesPerConnection : null,
      rssPerSubscribedConnectionBytes: idle ? idle.bytesPerSubscribedConnection : null,
      idleOpen: idle ? `${idle.openAtEnd}/${idle.connections}` : null,
    };
  }
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);
  const ratios: Summary["ratios"] = { p99: {}, keepUp: {} };
  for (const criterion of ["p99", "keepUp"] as const) {
    for (const subs of subscriberCounts) {
      const max = (s: SystemId) => (criterion === "p99" ? perSystem[s]?.maxPerSec[subs] : perSystem[s]?.maxKeepUpPerSec[subs]);
      ratios[criterion]![subs] = {
        "P/Y": ratio(max("P"), max("Y")),
        "(P+T)/Y": ratio(max("PT"), max("Y")),
        "P/R": ratio(max("P"), max("R")),
        "R/P": ratio(max("R"), max("P")),
      };
    }
  }
  const perMessageCpuMicros: Record<string, number | null> = {};
  for (const r of results) {
    if (!r.perMessage || isError(r.perMessage)) continue;
    const costs = r.perMessage.steps.filter((s) => s.keepsUp).map((s) => (s.serverCpuSeconds / s.sent) * 1e6).sort((a, b) => a - b);
    perMessageCpuMicros[r.system] = costs.length ? Math.round(costs[Math.floor(costs.length / 2)]!) : null;
  }
  const p = perMessageCpuMicros.P;
  const pt = perMessageCpuMicros.PT;
  const triggerCostInServerMicros = p != null && pt != null ? pt - p : null;
  return { commonRate, perSystem, ratios, perMessageCpuMicros, triggerCostInServerMicros };
}

const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || Number.isNaN(n) ? "–" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const label = (s: SystemId) => (s === "PT" ? "P+T" : s);

function markdown(report: Report): string {
  const { summary } = report;
  const subsList = subscriberCounts;
  const big = Math.max(...subsList);
  const maxCell = (r: SystemResult, subs: number, key: "maxSustainedPerSec" | "maxKeepUpPerSec") => {
    const ladder = r.ladders[subs];
    if (!ladder) return "–";
    if (isError(ladder)) return "error";
    return ladder[key] === 0 ? `< ${fmt(LADDER[0])}` : fmt(ladder[key]);
  };
  const header = [
    "system",
    ...subsList.map((s) => `max delivered/s, p99 ≤ ${P99_LIMIT_MS} ms, ${fmt(s)} subs`),
    ...subsList.map((s) => `max delivered/s kept up (no p99 bound), ${fmt(s)} subs`),
    ...subsList.map((s) => `p50 / p99 ms at ${fmt(summary.commonRate[s])}/s, ${fmt(s)} subs`),
    `CPU-s per 100k delivered at ${fmt(summary.commonRate[big])}/s, ${fmt(big)} subs`,
    `RSS per idle connection: handshake / + 1 subscription (${fmt(idleConnections)} connections)`,
  ];
  const rows = report.systems.map((r) => {
    const s = summary.perSystem[r.system]!;
    const at = (subs: number) => s.atCommonRate[subs];
    return [
      `**${label(r.system)}**`,
      ...subsList.map((subs) => maxCell(r, subs, "maxSustainedPerSec")),
      ...subsList.map((subs) => maxCell(r, subs, "maxKeepUpPerSec")),
      ...subsList.map((subs) => (at(subs) ? `${fmt(at(subs)!.p50Ms, 1)} / ${fmt(at(subs)!.p99Ms, 1)}` : "–")),
      at(big) ? fmt(at(big)!.cpuSecondsPer100k, 2) : "–",
      s.rssPerConnectionBytes === null
        ? "–"
        : `${fmt(s.rssPerConnectionBytes / 1024, 1)} KB / ${fmt(s.rssPerSubscribedConnectionBytes! / 1024, 1)} KB (${s.idleOpen} open)`,
    ];
  });
  const ratioRows = ["P/Y", "(P+T)/Y", "P/R", "R/P"].map((name) => [
    name,
    ...subsList.map((subs) => fmt(summary.ratios.p99?.[subs]?.[name], 2)),
    ...subsList.map((subs) => fmt(summary.ratios.keepUp?.[subs]?.[name], 2)),
    { "P/Y": "≥ 1.0 (aim ≥ 3)", "(P+T)/Y": "≥ 0.9", "P/R": "–", "R/P": "aim ≤ 2" }[name]!,
  ]);
  const table = (head: string[], body: string[][]) =>
    [`| ${head.join(" | ")} |`, `| ${head.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`, ...body.map((r) => `| ${r.join(" | ")} |`)].join("\n");
  const m = report.machine;
  const tc = report.triggerCost && !isError(report.triggerCost) ? report.triggerCost : null;
  const generatorNotes = report.systems.flatMap((r) =>
    Object.entries(r.ladders).flatMap(([subs, l]) => (isError(l) ? [`${label(r.system)} at ${subs} subscribers: ${l.error}`] : l.notes.map((n) => `${label(r.system)} at ${subs} subscribers: ${n}`))),
  );
  return [
    `Benchmark of ${report.date.slice(0, 10)} (${report.quick ? "quick run" : "full run"}, ${fmt(report.durationSeconds / 60, 1)} min): ${m.cpus} × ${m.cpuModel}, ${m.nproc} cores, Node ${m.node}, Linux ${m.kernel}; server pinned to core ${SERVER_CORE}, load generator to core ${LOAD_CORE}${m.taskset ? "" : " (taskset missing: not pinned)"}${m.nice ? `, both at nice ${m.nice}` : ""}. Other work on the machine during the steps: median ${fmt(report.machineLoad.otherCpuCoresMedian, 2)} cores, max ${fmt(report.machineLoad.otherCpuCoresMax, 2)} (load average ${report.machineLoad.loadavgStart} at start).`,
    "",
    table(header, rows),
    "",
    table(
      [
        "ratio of max delivered/s",
        ...subsList.map((s) => `p99 ≤ ${P99_LIMIT_MS} ms, ${fmt(s)} subs`),
        ...subsList.map((s) => `kept up, ${fmt(s)} subs`),
        "target",
      ],
      ratioRows,
    ),
    "",
    `- Max delivered/s, p99 ≤ ${P99_LIMIT_MS} ms: the highest offered rate (ladder 2,000 × √2^k deliveries/s, then up to ${refineSteps} bisection steps per boundary) with 100% delivery within ${drainSeconds} s of the last send and p99 ≤ ${P99_LIMIT_MS} ms; ${stepSeconds} s per step, 100-byte payloads, one channel. "Kept up": 100% delivered within ${KEEP_UP_SLACK_MS} ms of the end of the send schedule, whatever the p99 (the ladder climbs while this holds).`,
    `- Median fan-out time of one message (first to last subscriber) at the common rate, ${fmt(big)} subs: ${report.systems.map((r) => `${label(r.system)} ${fmt(summary.perSystem[r.system]!.atCommonRate[big]?.fanoutP50Ms, 1)} ms`).join(", ")}. Setup of ${fmt(big)} subscribers (connect, subscribe, all live): ${report.systems.map((r) => `${label(r.system)} ${fmt(summary.perSystem[r.system]!.setupSeconds[big], 1)} s`).join(", ")}.`,
    `- Trigger cost per event, 3-step stack: engine alone (bench/trigger-cost.ts) ${tc ? `${fmt(tc.microsPerEvent, 1)} µs (p50 ${fmt(tc.p50Micros, 1)}, p99 ${fmt(tc.p99Micros, 1)} µs; the three expressions evaluated bare with jsonata: ${Object.values(tc.expressionMicros).map((v) => fmt(v, 1)).join(" + ")} µs)` : "not measured"}; in the server, P+T minus P CPU per published message with 1 subscriber at 1,000 messages/s: ${fmt(summary.triggerCostInServerMicros)} µs (P ${fmt(summary.perMessageCpuMicros.P)} µs, P+T ${fmt(summary.perMessageCpuMicros.PT)} µs per message; 10 ms CPU-clock ticks, so ± about 10 µs).`,
    ...generatorNotes.map((n) => `- ${n}`),
    ...report.notes.map((n) => `- ${n}`),
    "",
  ].join("\n");
}

function machineInfo(): Record<string, string | number | boolean> {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "unknown";
  const nproc = spawnSync("nproc", { encoding: "utf8" }).stdout.trim();
  return {
    nproc: Number(nproc) || cpus().length,
    cpus: cpus().length,
    cpuModel: model.trim(),
    node: process.version,
    kernel: release(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    taskset: hasTaskset,
    nice: niceness,
    fdLimit: wantedFds,
  };
}

// ---------------------------------------------------------------------------------------------
// Main

async function runTriggerCost(): Promise<TriggerCostResult> {
  const child = spawnNode(SERVER_CORE, ["--import", "tsx", "bench/trigger-cost.ts", "--json", "--n=50000"], cleanEnv(), "trigger-cost");
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk));
  const code = await Promise.race([
    new Promise<number | null>((resolve) => child.once("exit", resolve)),
    unrefSleep(120_000).then(() => "timeout" as const),
  ]);
  if (code !== 0) {
    await stopProcess(child, "SIGKILL");
    throw new Error(`trigger-cost failed (${code})`);
  }
  return JSON.parse(output.trim().split("\n").at(-1)!) as TriggerCostResult;
}

/** Waits until the machine is quiet (< 0.3 cores busy over 5 s, twice in a row), at most `minutes`. */
async function waitQuiet(minutes: number): Promise<void> {
  const until = performance.now() + minutes * 60_000;
  let quietSamples = 0;
  while (performance.now() < until && quietSamples < 2) {
    const before = machineBusySeconds();
    await sleep(5000);
    const cores = (machineBusySeconds() - before) / 5;
    quietSamples = cores < 0.3 ? quietSamples + 1 : 0;
    console.log(`bench: waiting for a quiet machine: ${cores.toFixed(2)} cores busy`);
  }
  if (quietSamples < 2) notes.push(`the machine did not become quiet within ${minutes} min of waiting; the run started anyway`);
}

async function benchmark(): Promise<void> {
  const quietMinutes = Number(option("wait-quiet") ?? 0);
  if (quietMinutes > 0) await waitQuiet(quietMinutes);
  const started = performance.now();
  const date = new Date().toISOString();
  const loadavgStart = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  console.log(
    `bench: systems ${systems.join(", ")}; subscribers ${subscriberCounts.join(", ")}; idle ${idleConnections}; ${stepSeconds} s steps${quick ? " (quick)" : ""}`,
  );
  const results: SystemResult[] = [];
  for (const system of systems) {
    const result: SystemResult = { system, name: SYSTEM_NAMES[system], ladders: {}, idle: null };
    results.push(result);
    for (const subscribers of subscriberCounts) {
      console.log(`\n== ${SYSTEM_NAMES[system]}: ${subscribers} subscribers`);
      try {
        const server = await startServer(system);
        result.ladders[subscribers] = await runLoad<LadderResult>(ladderConfig(system, server, subscribers), server);
      } catch (error) {
        result.ladders[subscribers] = { error: (error as Error).message };
        console.error(`bench: ${system} at ${subscribers} subscribers failed: ${(error as Error).message}`);
      }
    }
    if (idleConnections > 0) {
      console.log(`\n== ${SYSTEM_NAMES[system]}: ${idleConnections} idle connections`);
      try {
        const server = await startServer(system);
        const config: Omit<IdleConfig, "out"> = {
          mode: "idle",
          system,
          url: server.wsUrl,
          serverPid: server.pid,
          connections: idleConnections,
          deadlineSeconds: IDLE_DEADLINE_S,
        };
        result.idle = await runLoad<IdleResult>(config, server);
      } catch (error) {
        result.idle = { error: (error as Error).message };
        console.error(`bench: ${system} idle connections failed: ${(error as Error).message}`);
      }
    }
  }
  for (const result of results) {
    if (flag("no-trigger-cost") || (result.system !== "P" && result.system !== "PT")) continue;
    console.log(`\n== ${SYSTEM_NAMES[result.system]}: server CPU per message, 1 subscriber, 1,000 messages/s`);
    try {
      const server = await startServer(result.system);
      result.perMessage = await runLoad<LadderResult>({ ...ladderConfig(result.system, server, 1, [1000, 1000, 1000]), refineSteps: 0 }, server);
    } catch (error) {
      result.perMessage = { error: (error as Error).message };
    }
  }
  let triggerCost: Report["triggerCost"] = null;
  if (!flag("no-trigger-cost")) {
    try {
      triggerCost = await runTriggerCost();
    } catch (error) {
      triggerCost = { error: (error as Error).message };
    }
  }
  const others = results
    .flatMap((r) => Object.values(r.ladders))
    .flatMap((l) => (isError(l) ? [] : l.steps.map((step) => step.otherCpuCores)))
    .sort((a, b) => a - b);
  const machineLoad: MachineLoad = {
    loadavgStart,
    loadavgEnd: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
    otherCpuCoresMedian: others.length ? others[Math.floor(others.length / 2)]! : null,
    otherCpuCoresMax: others.length ? others.at(-1)! : null,
  };
  const report: Report = {
    date,
    durationSeconds: Math.round((performance.now() - started) / 1000),
    quick,
    machine: machineInfo(),
    method: {
      ladderDeliveriesPerSec: LADDER,
      stepSeconds,
      drainSeconds,
      warmupSeconds,
      refineSteps,
      p99LimitMs: P99_LIMIT_MS,
      payloadBytes: 100,
      publishing: "one separate publisher WebSocket: graphql-transport-ws `subscribe` of the sendMessage mutation (Y, P, P+T); {type:publish} (R)",
      subscribers: "one WebSocket per subscriber, one subscription each, all on channel `bench`",
      idle: "connections with the handshake done (connection_ack for Y/P), then one subscription each on a channel of its own",
      cpu: "server utime+stime from /proc/<pid>/stat over each step (step start to last delivery)",
      trigger: BENCH_STACK,
    },
    systems: results,
    summary: summarize(results),
    triggerCost,
    machineLoad,
    notes,
  };
  mkdirSync(RESULTS, { recursive: true });
  const base = quick ? "quick" : "latest";
  const md = markdown(report);
  writeFileSync(join(RESULTS, `${base}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(RESULTS, `${base}.md`), md);
  if (!quick) {
    const stamp = date.slice(0, 16).replace(/:/g, "-");
    copyFileSync(join(RESULTS, "latest.json"), join(RESULTS, `${stamp}.json`));
    copyFileSync(join(RESULTS, "latest.md"), join(RESULTS, `${stamp}.md`));
  }
  console.log(`\n${md}`);
  console.log(`bench: wrote bench/results/${base}.json and ${base}.md in ${fmt(report.durationSeconds / 60, 1)} min`);
}

/** Profiles P (or P+T) at 1,000 subscribers during one step with `node --cpu-prof`, then summarizes that step. */
async function profile(): Promise<void> {
  const subscribers = Number(option("subs") ?? 1000);
  const system = (option("system") ?? "P").replace("P+T", "PT") as SystemId;
  if (system !== "P" && system !== "PT") throw new Error("--profile runs P or PT");
  let rate = Number(profileArg!.split("=")[1] ?? Number.NaN);
  if (!Number.isFinite(rate)) {
    const latest = join(RESULTS, "latest.json");
    const max = existsSync(latest) ? (JSON.parse(readFileSync(latest, "utf8")) as Report).summary.perSystem[system]?.maxKeepUpPerSec[subscribers] : null;
    rate = max ? Math.round(max * 0.8) : 8000;
  }
  const profileDir = mkdtempSync(join(tmpdir(), "realtime-bench-profile-"));
  console.log(`bench: profiling ${label(system)} at ${subscribers} subscribers, one ${stepSeconds} s step at ${rate} deliveries/s`);
  const server = await startServer(system, ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, "--import", "./bench/servers/profile-exit.ts"]);
  const exited = new Promise<void>((resolve) => server.child.once("exit", () => resolve()));
  const config = { ...ladderConfig(system, server, subscribers, [rate]), refineSteps: 0 };
  const out = join(workDir, "profile.json");
  const configPath = join(workDir, "profile.config.json");
  writeFileSync(configPath, JSON.stringify({ ...config, out }));
  const load = spawnNode(LOAD_CORE, ["--import", "tsx", "bench/load.ts", configPath], cleanEnv(), "load");
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("profile run took too long")), (config.setupDeadlineSeconds + config.deadlineSeconds + 60) * 1000);
    createInterface({ input: load.stdout! }).on("line", (line) => {
      if (line.startsWith("RESULT ")) {
        clearTimeout(timer);
        resolve();
      } else console.log(line);
    });
    load.once("exit", (code) => reject(new Error(`load generator exited (${code})`)));
  });
  server.child.kill("SIGUSR2"); // exit at once: V8 writes the profile
  await Promise.race([exited, unrefSleep(30_000)]);
  await server.stop();
  await stopProcess(load);
  const result = JSON.parse(readFileSync(out, "utf8")) as LadderResult;
  const step = result.steps[0]!;
  const file = readdirSync(profileDir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no .cpuprofile in ${profileDir}`);
  const summary = summarizeProfile(readProfile(join(profileDir, file)), { from: step.monoStartUs, to: step.monoEndUs }, 30);
  const title = `${label(system)} at ${subscribers} subscribers, ${step.offeredPerSec} deliveries/s offered (${step.delivered}/${step.expected} delivered, p99 ${step.p99Ms} ms, server CPU ${step.serverCpuUtil} of a core): self time`;
  const md = profileMarkdown(summary, title);
  mkdirSync(RESULTS, { recursive: true });
  const name = `profile-${label(system)}-${subscribers}`;
  writeFileSync(join(RESULTS, `${name}.md`), md);
  writeFileSync(join(RESULTS, `${name}.json`), `${JSON.stringify({ step, summary }, null, 2)}\n`);
  console.log(`\n${md}`);
  console.log(`bench: full profile at ${join(profileDir, file)} (open in Chrome DevTools); summary in bench/results/${name}.md`);
}

try {
  await (profileArg ? profile() : benchmark());
} finally {
  rmSync(workDir, { recursive: true, force: true });
  cleanup();
}
