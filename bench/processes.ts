/**
 * The benchmark's processes: servers under test and load generators, each pinned to its own core
 * (`taskset`), at a raised priority (`nice`) in a session of its own, with a raised file-descriptor
 * limit. {@link Processes} starts them, and kills whatever is left when the run ends.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { freePort } from "../dev/net.js";
import type { LoadConfig } from "./load.js";
import { ROOT } from "./options.js";
import { type SystemId, sleep, unrefSleep } from "./shared.js";
import { BENCH_STACK, type TriggerCostResult } from "./trigger-cost.js";

/** Servers run on this core, load generators on the other. */
export const SERVER_CORE = "1";
export const LOAD_CORE = "0";
/** The admin token of P and P+T (the trigger is created through the admin API). */
const ADMIN_TOKEN = "bench-admin-token-0123456789abcdef";

/** Per-address and per-client limits raised for thousands of clients sharing 127.0.0.1. */
const LOOPBACK_CROWD = {
  MAX_JOINS_PER_SECOND: "1000000",
  MAX_ADDRESS_MESSAGES_PER_SECOND: "1000000",
  MAX_ADDRESS_JOINS_PER_SECOND: "1000000",
  MAX_CONNECTIONS_PER_ADDRESS: "1000000",
  MAX_ADDRESS_CONNECTIONS_PER_SECOND: "1000000",
};

/** The local Redis P+R runs over; each server gets a key prefix of its own, deleted when it stops. */
const BENCH_REDIS_URL = "redis://127.0.0.1:6379";

/** Deletes every key under `prefix` in the bench's Redis (sequence counters, presence, liveness). */
async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(BENCH_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    let cursor = "0";
    do {
      const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== "0");
  } finally {
    redis.disconnect();
  }
}

/** A server under test, listening on a free loopback port. */
export interface RunningServer {
  readonly system: SystemId;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly wsUrl: string;
  readonly httpUrl: string;
  stop(): Promise<void>;
}

export interface StartServerOptions {
  /** Extra node arguments before the script (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
  /** P+T only: the channel name or pattern the 3-step trigger is attached to. */
  readonly triggerChannel?: string;
  /** P, P+T, P+R: run the compiled build (`dist/src/main.js`, from `npm run build`) instead of the sources under tsx. */
  readonly compiled?: boolean;
}

/** Where processes run and how (for the report). */
export interface Placement {
  readonly taskset: boolean;
  readonly nice: number;
  readonly fdLimit: number;
}

/** Sends `signal` and waits for the exit; SIGKILL after `graceMs`. */
export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const inTime = await Promise.race([exited.then(() => true), unrefSleep(graceMs).then(() => false)]);
  if (!inTime) {
    child.kill("SIGKILL");
    await exited;
  }
}

/** Environment without the project's settings, so nothing from the caller's shell leaks in. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) {
    if (
      /^(PORT|HOST|DATA_DIR|DATABASE_URL|ADMIN_TOKEN|LOG_LEVEL|REDIS_|JWT_|TRIGGER_|CHANNEL_|REQUIRE_CHANNEL_CONFIG|INTROSPECTION|GRAPHIQL|MAX_|WS_|GRAPHQL_|CORS_|WEBHOOK_|SHUTDOWN_|NODE_OPTIONS|NODE_ENV)/.test(
        key,
      )
    ) {
      delete env[key];
    }
  }
  return env;
}

/** Starts servers and load generators for one benchmark run; {@link dispose} kills what is left. */
export class Processes {
  readonly placement: Placement;
  /** Things the report should say about the placement (no priority, no pinning, low fd limit). */
  readonly notes: string[] = [];
  private readonly children = new Set<ChildProcess>();
  private readonly workDir = mkdtempSync(join(tmpdir(), "realtime-bench-load-"));

  /** `wantedNice`: 0 disables; `connections`: the most sockets one process will hold. */
  constructor(wantedNice: number, connections: number) {
    const taskset = spawnSync("taskset", ["-c", "0", "true"]).status === 0;
    const nice = wantedNice !== 0 && spawnSync("nice", ["-n", String(wantedNice), "true"]).status === 0 ? wantedNice : 0;
    const fdLimits = spawnSync("sh", ["-c", "ulimit -Sn; ulimit -Hn"], { encoding: "utf8" }).stdout.trim().split("\n");
    const hardFds = fdLimits[1] === "unlimited" ? 1_048_576 : Number(fdLimits[1]);
    this.placement = { taskset, nice, fdLimit: Math.min(hardFds, Math.max(Number(fdLimits[0]), connections + 2048)) };
    if (wantedNice !== 0 && nice === 0)
      this.notes.push(`could not raise the priority (nice ${wantedNice}): other work on the machine competes on equal terms`);
    if (!taskset) this.notes.push("taskset is not available: server and load generator are not pinned to separate cores");
    if (hardFds < connections + 1024)
      this.notes.push(`the hard file-descriptor limit (${hardFds}) is below ${connections} connections plus headroom`);
  }

  /** A temporary file path for this run (load configs, results). */
  file(name: string): string {
    return join(this.workDir, name);
  }

  /**
   * Spawns `node <args>` as `sh -c 'ulimit -n …; exec nice -n … taskset -c <core> node …'` (same pid
   * as the node process), in a session of its own. With the kernel's autogroup scheduling on, nice
   * only ranks processes within one session's group, so the new session's group gets the niceness too.
   */
  spawnNode(core: string, nodeArgs: readonly string[], env: NodeJS.ProcessEnv, label: string): ChildProcess {
    const { nice, taskset, fdLimit } = this.placement;
    const command = [
      ...(nice ? ["nice", "-n", String(nice)] : []),
      ...(taskset ? ["taskset", "-c", core] : []),
      process.execPath,
      ...nodeArgs,
    ];
    const autogroup = nice ? `echo ${nice} > /proc/$$/autogroup 2>/dev/null; ` : "";
    const child = spawn("sh", ["-c", `${autogroup}ulimit -n ${fdLimit} 2>/dev/null; exec "$@"`, "sh", ...command], {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
      detached: true, // setsid(): a new session, hence a new autogroup
    });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    createInterface({ input: child.stderr! }).on("line", (line) => console.error(`[${label}] ${line}`));
    return child;
  }

  /** Starts a fresh server of `system` on core {@link SERVER_CORE} and waits until it serves. */
  async startServer(system: SystemId, options: StartServerOptions = {}): Promise<RunningServer> {
    const port = await freePort();
    const env = cleanEnv();
    env.PORT = String(port);
    env.HOST = "127.0.0.1";
    let script: string;
    let dataDir: string | null = null;
    const redisPrefix = `bench-${process.pid}-${port}:`;
    if (system === "R") script = "bench/servers/raw-ws.ts";
    else if (system === "Y") script = "bench/servers/plain-yoga.ts";
    else {
      script = options.compiled ? "dist/src/main.js" : "src/main.ts";
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
      if (system === "PR") Object.assign(env, { REDIS_URL: BENCH_REDIS_URL, REDIS_PREFIX: redisPrefix });
    }
    const loader = options.compiled && system !== "R" && system !== "Y" ? [] : ["--import", "tsx"];
    const child = this.spawnNode(SERVER_CORE, [...loader, ...(options.nodeArgs ?? []), script], env, `server ${system}`);
    const exited = new Promise<never>((_, reject) =>
      child.once("exit", (code) => reject(new Error(`server ${system} exited (${code}) before it was ready`))),
    );
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
    if (system === "PT") await createBenchTrigger(httpUrl, options.triggerChannel ?? "bench");
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
        if (system === "PR") await deleteRedisKeys(redisPrefix);
      },
    };
  }

  /**
   * Runs bench/load.ts with `config` against `server` on core {@link LOAD_CORE} and returns its
   * result. Stops the server before the generator (which keeps its sockets open until then).
   * `deadlineSeconds`: how long the generator may take in all before it is given up on;
   * `beforeStop` runs once it is done (or given up on), before the server is stopped. With
   * `keepServer`, the server is left running (the caller stops it) and only the generator ends.
   */
  async runLoad<T>(
    name: string,
    config: Omit<LoadConfig, "out">,
    server: RunningServer,
    deadlineSeconds: number,
    beforeStop: () => Promise<void> = async () => {},
    { keepServer = false }: { keepServer?: boolean } = {},
  ): Promise<T> {
    const out = this.file(`${name}.json`);
    const configPath = this.file(`${name}.config.json`);
    writeFileSync(configPath, JSON.stringify({ ...config, out }));
    const child = this.spawnNode(LOAD_CORE, ["--import", "tsx", "bench/load.ts", configPath], cleanEnv(), "load");
    const limitMs = (deadlineSeconds + 60) * 1000;
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
      await beforeStop();
      if (!keepServer) await server.stop(); // before the generator closes its sockets
      await stopProcess(child);
    }
  }

  /** The trigger engine micro-benchmark (bench/trigger-cost.ts), pinned like a server. */
  async runTriggerCost(): Promise<TriggerCostResult> {
    const child = this.spawnNode(
      SERVER_CORE,
      ["--import", "tsx", "bench/trigger-cost.ts", "--json", "--n=50000"],
      cleanEnv(),
      "trigger-cost",
    );
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

  /** Kills every process still running and removes the temporary files. */
  dispose(): void {
    for (const child of this.children) child.kill("SIGKILL");
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** Creates the P+T trigger through the admin API, like an operator would. */
async function createBenchTrigger(httpUrl: string, channel: string): Promise<void> {
  const response = await fetch(httpUrl, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({
      query: "mutation Create($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }",
      variables: { input: { name: "bench 3-step", channel, actions: ["MESSAGE"], stack: BENCH_STACK } },
    }),
  });
  const body = (await response.json()) as { data?: { createTrigger?: { id: string } }; errors?: unknown };
  if (!body.data?.createTrigger?.id) throw new Error(`createTrigger failed: ${JSON.stringify(body)}`);
}
