/**
 * The benchmark's command line: `npm run bench -- [options]`, parsed once into {@link BenchOptions}
 * by {@link parseOptions} (nothing is read from `process.argv` at import time).
 *
 *   --quick                 short steps, 100 subscribers only, 1,000 idle connections, 300 rooms
 *                           clients; writes results/quick.{json,md}
 *   --scenarios=a,b         which scenarios (default: all): ladder, idle, setup, rooms, per-message,
 *                           trigger-cost
 *   --systems=R,Y,P,PT,PR   which systems (P+T may be written PT, P+R PR); P+R (over Redis) runs the
 *                           setup and rooms scenarios only
 *   --subs=100,1000         ladder subscriber counts
 *   --idle=10000            idle connections (0 skips the idle scenario)
 *   --step=3                seconds per ladder step
 *   --rooms-clients=1000    rooms workload: clients (10 per room)
 *   --rooms-messages=10000  rooms workload: messages sent to rooms in the measured part
 *   --no-trigger-cost       skip the per-message and trigger-cost scenarios
 *   --wait-quiet=10         first wait (at most 10 minutes) until other work on the machine uses < 0.3 cores
 *   --nice=-10              scheduling priority of servers and load generator (default -10 where
 *                           permitted, so that other work on the machine disturbs the numbers less; 0 disables)
 *   --profile[=<rate>]      instead of the benchmark: profile one system under `node --cpu-prof`.
 *                           Ladder (default): P at 1,000 subscribers for one step at <rate>
 *                           deliveries/s (default: 80% of its max kept-up rate in latest.json);
 *                           --system=PT and --subs=N pick another system or subscriber count.
 *                           With --scenarios=rooms: the measured part of the rooms workload; with
 *                           --scenarios=setup: the whole setup run (subscribers joining one channel).
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { SYSTEM_NAMES, type SystemId } from "./shared.js";

/** The project's root folder (servers and the load generator run from there). */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
/** Where reports and profile summaries go. */
export const RESULTS = join(ROOT, "bench", "results");

/** Offered deliveries/s: 2,000 × √2^k, the same for every system so that they share rates. */
export const LADDER = Array.from({ length: 20 }, (_, k) => Math.round(2000 * Math.SQRT2 ** k));
/** A ladder step passes when p99 is at most this. */
export const P99_LIMIT_MS = 100;
/** A step keeps up when everything arrived within this long after the end of its send schedule. */
export const KEEP_UP_SLACK_MS = 500;
/** The one channel of the ladder, setup and per-message scenarios. */
export const CHANNEL = "bench";

/** The scenarios P+R (the project over Redis) runs: what the backplane changes. */
export const REDIS_SCENARIOS: ReadonlySet<Scenario> = new Set(["setup", "rooms"]);

/** The scenarios, in the order a full run runs them. */
export const SCENARIOS = ["ladder", "idle", "setup", "rooms", "per-message", "trigger-cost"] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** The rooms workload's shape (see bench/load-rooms.ts). */
export interface RoomsOptions {
  readonly clients: number;
  readonly roomSize: number;
  readonly messages: number;
  readonly warmupMessages: number;
  readonly inFlight: number;
}

export interface ProfileOptions {
  readonly system: "P" | "PT" | "PR";
  readonly scenario: "ladder" | "rooms" | "setup";
  /** Ladder only: subscribers and offered deliveries/s (null: 80% of the max in latest.json). */
  readonly subscribers: number;
  readonly rate: number | null;
}

export interface BenchOptions {
  readonly quick: boolean;
  readonly systems: readonly SystemId[];
  readonly scenarios: ReadonlySet<Scenario>;
  /** True when every scenario and every system runs (the run may become `latest`). */
  readonly complete: boolean;
  readonly subscriberCounts: readonly number[];
  readonly idleConnections: number;
  /** Subscribers joining one channel in the setup scenario. */
  readonly setupSubscribers: number;
  readonly stepSeconds: number;
  readonly drainSeconds: number;
  readonly warmupSeconds: number;
  readonly refineSteps: number;
  /** Bounds for one ladder scenario: setup (connect, subscribe), then the ladder. */
  readonly setupDeadlineSeconds: number;
  readonly ladderDeadlineSeconds: number;
  readonly idleDeadlineSeconds: number;
  readonly rooms: RoomsOptions;
  readonly roomsDeadlineSeconds: number;
  readonly nice: number;
  readonly waitQuietMinutes: number;
  readonly profile: ProfileOptions | null;
}

/** Parses the command line (the arguments after `npm run bench --`). Throws on unknown values. */
export function parseOptions(argv: readonly string[]): BenchOptions {
  const flag = (name: string) => argv.includes(`--${name}`);
  const option = (name: string): string | undefined => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const number = (name: string, fallback: number): number => {
    const raw = option(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value)) throw new Error(`--${name}=${raw}: not a number`);
    return value;
  };
  const list = (raw: string) =>
    raw
      .split(",")
      .map((s) => s.trim())
      .filter(Boolean);
  const quick = flag("quick");

  const systems = list(option("systems") ?? "R,Y,P,PT,PR").map((s) => s.replace("+", "")) as SystemId[];
  for (const system of systems) if (!(system in SYSTEM_NAMES)) throw new Error(`unknown system ${system} (R, Y, P, PT, PR)`);

  const scenarios = new Set<Scenario>(list(option("scenarios") ?? SCENARIOS.join(",")) as Scenario[]);
  for (const scenario of scenarios)
    if (!SCENARIOS.includes(scenario)) throw new Error(`unknown scenario ${scenario} (${SCENARIOS.join(", ")})`);
  const idleConnections = number("idle", quick ? 1000 : 10_000);
  if (idleConnections <= 0) scenarios.delete("idle");
  if (flag("no-trigger-cost")) {
    scenarios.delete("per-message");
    scenarios.delete("trigger-cost");
  }

  const rooms: RoomsOptions = {
    clients: number("rooms-clients", quick ? 300 : 1000),
    roomSize: 10,
    messages: number("rooms-messages", quick ? 3000 : 10_000),
    warmupMessages: quick ? 500 : 2000,
    inFlight: 64,
  };
  if (rooms.clients % rooms.roomSize !== 0) throw new Error(`--rooms-clients must be a multiple of ${rooms.roomSize}`);

  const profileArg = argv.find((a) => a === "--profile" || a.startsWith("--profile="));
  let profile: ProfileOptions | null = null;
  if (profileArg) {
    const system = (option("system") ?? "P").replace("+", "");
    if (system !== "P" && system !== "PT" && system !== "PR") throw new Error("--profile runs P, PT or PR");
    const rate = profileArg.includes("=") ? Number(profileArg.split("=")[1]) : null;
    profile = { system, scenario: profileScenario(option("scenarios")), subscribers: number("subs", 1000), rate };
  }

  const stepSeconds = number("step", quick ? 2 : 3);
  return {
    quick,
    systems,
    scenarios,
    complete:
      !quick && SCENARIOS.every((s) => scenarios.has(s)) && (["R", "Y", "P", "PT", "PR"] as const).every((s) => systems.includes(s)),
    subscriberCounts: list(option("subs") ?? (quick ? "100" : "100,1000")).map(Number),
    idleConnections,
    setupSubscribers: number("setup-subs", 1000),
    stepSeconds,
    drainSeconds: quick ? 1.5 : 2,
    warmupSeconds: quick ? 1 : 2,
    refineSteps: quick ? 1 : 2,
    setupDeadlineSeconds: quick ? 120 : 240,
    ladderDeadlineSeconds: quick ? 90 : 150,
    idleDeadlineSeconds: 120,
    rooms,
    roomsDeadlineSeconds: 240,
    nice: number("nice", -10),
    waitQuietMinutes: number("wait-quiet", 0),
    profile,
  };
}

/** Which scenario `--profile` runs: the ladder unless `--scenarios` names rooms or setup alone. */
function profileScenario(scenarios: string | undefined): ProfileOptions["scenario"] {
  return scenarios === "rooms" || scenarios === "setup" ? scenarios : "ladder";
}
