/**
 * The benchmark's report: what a run measured ({@link Report}, written as JSON), the numbers read
 * from it ({@link summarize}) and the tables of `bench/results/*.md` ({@link markdown}).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, release, totalmem } from "node:os";
import type { IdleResult, LadderResult, StepResult } from "./load.js";
import type { RoomsResult } from "./load-rooms.js";
import { type BenchOptions, KEEP_UP_SLACK_MS, LADDER, P99_LIMIT_MS } from "./options.js";
import { LOAD_CORE, type Placement, SERVER_CORE } from "./processes.js";
import type { SystemId } from "./shared.js";
import type { TriggerCostResult } from "./trigger-cost.js";

/** A scenario's result, or why it failed. */
export type Outcome<T> = T | { error: string };

/** Everything measured for one system. */
export interface SystemResult {
  readonly system: SystemId;
  readonly name: string;
  /** Single-channel ladders by subscriber count. */
  readonly ladders: Record<string, Outcome<LadderResult>>;
  idle?: Outcome<IdleResult>;
  /** Subscribers joining one channel, setup only. */
  setup?: Outcome<LadderResult>;
  rooms?: Outcome<RoomsResult>;
  /** P and P+T only: 1 subscriber, 1,000 messages/s, three steps: server CPU per published message. */
  perMessage?: Outcome<LadderResult>;
}

export interface MachineLoad {
  readonly loadavgStart: string;
  readonly loadavgEnd: string;
  /** Median over all ladder steps and rooms phases of the CPU other processes used meanwhile, in cores. */
  readonly otherCpuCoresMedian: number | null;
  readonly otherCpuCoresMax: number | null;
}

export interface Report {
  readonly date: string;
  readonly durationSeconds: number;
  readonly quick: boolean;
  readonly scenarios: string[];
  readonly machine: Record<string, string | number | boolean>;
  readonly method: Record<string, unknown>;
  readonly systems: SystemResult[];
  readonly summary: Summary;
  readonly triggerCost: Outcome<TriggerCostResult> | null;
  readonly machineLoad: MachineLoad;
  readonly notes: string[];
}

interface RoomsSummary {
  publishesPerSec: number;
  cpuMicrosPerMessage: number;
  p50Ms: number;
  p99Ms: number;
  rssPerConnectionBytes: number;
  setupSeconds: number;
}

export interface Summary {
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
      /** The step at half of the highest ladder rate kept up with, by subscriber count. */
      atHalfMax: Record<string, { offeredPerSec: number; p50Ms: number; p99Ms: number; keepsUp: boolean } | null>;
      rssPerConnectionBytes: number | null;
      rssPerSubscribedConnectionBytes: number | null;
      idleOpen: string | null;
      /** The setup scenario: subscribers joining one channel until all are live, seconds. */
      setupOneChannelSeconds: number | null;
      rooms: RoomsSummary | null;
    }
  >;
  /** By criterion ("p99" or "keepUp"), then subscriber count, then ratio name. */
  readonly ratios: Record<string, Record<string, Record<string, number | null>>>;
  /** Rooms workload, server CPU per sent message: P/R, Y/P, (P+T)/R, (P+R)/P; and P+T minus P in µs. */
  readonly roomsRatios: Record<string, number | null>;
  /** Server CPU per published message with 1 subscriber (median of three steps), µs, for P and P+T. */
  readonly perMessageCpuMicros: Record<string, number | null>;
  /** P+T minus P of the above: what the trigger costs the server per event, recording its run included. */
  readonly triggerCostInServerMicros: number | null;
}

export function isError(value: unknown): value is { error: string } {
  return typeof value === "object" && value !== null && "error" in value;
}

const ok = <T>(value: Outcome<T> | undefined | null): T | null => (value && !isError(value) ? value : null);

/** The ladder step at a rate, if the server kept up with it. */
function keptUpStepAt(ladder: LadderResult, rate: number): StepResult | undefined {
  return ladder.steps.findLast((s) => s.kind === "ladder" && s.offeredPerSec === rate && s.keepsUp);
}

/** Reads the headline numbers out of every system's results. */
export function summarize(results: readonly SystemResult[], options: BenchOptions): Summary {
  const commonRate: Record<string, number | null> = {};
  for (const subs of options.subscriberCounts) {
    // Systems that ran no ladder (P+R runs only setup and rooms) do not take part.
    const ladders = results.filter((r) => subs in r.ladders).map((r) => ok(r.ladders[subs]));
    const rates = LADDER.filter((rate) => ladders.every((l) => l && keptUpStepAt(l, rate)));
    commonRate[subs] = ladders.length && ladders.every(Boolean) ? (rates.at(-1) ?? null) : null;
  }
  const perSystem: Summary["perSystem"] = {};
  for (const r of results) {
    const maxPerSec: Record<string, number | null> = {};
    const maxKeepUpPerSec: Record<string, number | null> = {};
    const setupSeconds: Record<string, number | null> = {};
    const atCommonRate: Summary["perSystem"][string]["atCommonRate"] = {};
    const atHalfMax: Summary["perSystem"][string]["atHalfMax"] = {};
    for (const subs of options.subscriberCounts) {
      const ladder = ok(r.ladders[subs]);
      maxPerSec[subs] = ladder ? ladder.maxSustainedPerSec : null;
      maxKeepUpPerSec[subs] = ladder ? ladder.maxKeepUpPerSec : null;
      setupSeconds[subs] = ladder ? ladder.setupSeconds : null;
      const rate = commonRate[subs];
      const step = ladder && rate ? keptUpStepAt(ladder, rate) : undefined;
      atCommonRate[subs] = step
        ? { p50Ms: step.p50Ms, p99Ms: step.p99Ms, fanoutP50Ms: step.fanoutP50Ms, cpuSecondsPer100k: step.cpuSecondsPer100k }
        : null;
      const half = ladder?.halfMax;
      atHalfMax[subs] = half ? { offeredPerSec: half.offeredPerSec, p50Ms: half.p50Ms, p99Ms: half.p99Ms, keepsUp: half.keepsUp } : null;
    }
    const idle = ok(r.idle);
    const rooms = ok(r.rooms);
    perSystem[r.system] = {
      maxPerSec,
      maxKeepUpPerSec,
      setupSeconds,
      atCommonRate,
      atHalfMax,
      rssPerConnectionBytes: idle ? idle.bytesPerConnection : null,
      rssPerSubscribedConnectionBytes: idle ? idle.bytesPerSubscribedConnection : null,
      idleOpen: idle ? `${idle.openAtEnd}/${idle.connections}` : null,
      setupOneChannelSeconds: ok(r.setup)?.setupSeconds ?? null,
      rooms: rooms
        ? {
            publishesPerSec: rooms.measured.publishesPerSec,
            cpuMicrosPerMessage: rooms.measured.serverCpuMicrosPerMessage,
            p50Ms: rooms.measured.p50Ms,
            p99Ms: rooms.measured.p99Ms,
            rssPerConnectionBytes: rooms.rssPerConnectionBytes,
            setupSeconds: rooms.setupSeconds,
          }
        : null,
    };
  }
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);
  const ratios: Summary["ratios"] = { p99: {}, keepUp: {} };
  for (const criterion of ["p99", "keepUp"] as const) {
    for (const subs of options.subscriberCounts) {
      const max = (s: SystemId) => (criterion === "p99" ? perSystem[s]?.maxPerSec[subs] : perSystem[s]?.maxKeepUpPerSec[subs]);
      ratios[criterion]![subs] = {
        "P/Y": ratio(max("P"), max("Y")),
        "(P+T)/Y": ratio(max("PT"), max("Y")),
        "P/R": ratio(max("P"), max("R")),
        "R/P": ratio(max("R"), max("P")),
      };
    }
  }
  const roomsCpu = (s: SystemId) => perSystem[s]?.rooms?.cpuMicrosPerMessage;
  const pt = roomsCpu("PT");
  const p = roomsCpu("P");
  const roomsRatios = {
    "P/R": ratio(roomsCpu("P"), roomsCpu("R")),
    "Y/P": ratio(roomsCpu("Y"), roomsCpu("P")),
    "(P+T)/R": ratio(roomsCpu("PT"), roomsCpu("R")),
    "(P+R)/P": ratio(roomsCpu("PR"), roomsCpu("P")),
    "(P+T)−P µs": pt != null && p != null ? pt - p : null,
  };
  const perMessageCpuMicros: Record<string, number | null> = {};
  for (const r of results) {
    const perMessage = ok(r.perMessage);
    if (!perMessage) continue;
    const costs = perMessage.steps
      .filter((s) => s.keepsUp)
      .map((s) => (s.serverCpuSeconds / s.sent) * 1e6)
      .sort((a, b) => a - b);
    perMessageCpuMicros[r.system] = costs.length ? Math.round(costs[Math.floor(costs.length / 2)]!) : null;
  }
  const p1 = perMessageCpuMicros.P;
  const pt1 = perMessageCpuMicros.PT;
  const triggerCostInServerMicros = p1 != null && pt1 != null ? pt1 - p1 : null;
  return { commonRate, perSystem, ratios, roomsRatios, perMessageCpuMicros, triggerCostInServerMicros };
}

/** Formats a number with thousands separators; "–" for nothing. */
export const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || Number.isNaN(n)
    ? "–"
    : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** `PT` is written P+T. */
export const label = (s: SystemId) => (s === "PT" ? "P+T" : s === "PR" ? "P+R" : s);

const table = (head: string[], body: string[][]) =>
  [
    `| ${head.join(" | ")} |`,
    `| ${head.map((_, i) => (i === 0 ? "---" : "---:")).join(" | ")} |`,
    ...body.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");

/** The single-channel ladder and idle-connection tables (when those scenarios ran). */
function ladderSection(report: Report, options: BenchOptions): string[] {
  const { summary } = report;
  const subsList = options.subscriberCounts;
  const big = Math.max(...subsList);
  const idleRan = report.systems.some((r) => r.idle);
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
    ...(idleRan ? [`RSS per idle connection: handshake / + 1 subscription (${fmt(options.idleConnections)} connections)`] : []),
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
      ...(idleRan
        ? [
            s.rssPerConnectionBytes === null
              ? "–"
              : `${fmt(s.rssPerConnectionBytes / 1024, 1)} KB / ${fmt(s.rssPerSubscribedConnectionBytes! / 1024, 1)} KB (${s.idleOpen} open)`,
          ]
        : []),
    ];
  });
  const ratioRows = ["P/Y", "(P+T)/Y", "P/R", "R/P"].map((name) => [
    name,
    ...subsList.map((subs) => fmt(summary.ratios.p99?.[subs]?.[name], 2)),
    ...subsList.map((subs) => fmt(summary.ratios.keepUp?.[subs]?.[name], 2)),
    { "P/Y": "≥ 4 at 1,000 subs", "(P+T)/Y": "≥ 0.9", "P/R": "–", "R/P": "≤ 1.7 at 1,000 subs" }[name]!,
  ]);
  const halfRows = report.systems.map((r) => [
    `**${label(r.system)}**`,
    ...subsList.map((subs) => {
      const half = summary.perSystem[r.system]!.atHalfMax[subs];
      return half
        ? `${fmt(half.p50Ms, 1)} / ${fmt(half.p99Ms, 1)} at ${fmt(half.offeredPerSec)}/s${half.keepsUp ? "" : " (did not keep up)"}`
        : "–";
    }),
  ]);
  const generatorNotes = report.systems.flatMap((r) =>
    Object.entries(r.ladders).flatMap(([subs, l]) =>
      isError(l)
        ? [`${label(r.system)} at ${subs} subscribers: ${l.error}`]
        : l.notes.map((n) => `${label(r.system)} at ${subs} subscribers: ${n}`),
    ),
  );
  return [
    `### One channel: rate ladder${idleRan ? " and idle connections" : ""}`,
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
    table(
      ["p50 / p99 ms at half of the highest ladder rate kept up with (target p99 ≤ 50 ms)", ...subsList.map((s) => `${fmt(s)} subs`)],
      halfRows,
    ),
    "",
    `- Max delivered/s, p99 ≤ ${P99_LIMIT_MS} ms: the highest offered rate (ladder 2,000 × √2^k deliveries/s, then up to ${options.refineSteps} bisection steps per boundary) with 100% delivery within ${options.drainSeconds} s of the last send and p99 ≤ ${P99_LIMIT_MS} ms; ${options.stepSeconds} s per step, 100-byte payloads, one channel. "Kept up": 100% delivered within ${KEEP_UP_SLACK_MS} ms of the end of the send schedule, whatever the p99 (the ladder climbs while this holds). Half max: one more step at half of the highest ladder rate kept up with (before bisection).`,
    `- Median fan-out time of one message (first to last subscriber) at the common rate, ${fmt(big)} subs: ${report.systems.map((r) => `${label(r.system)} ${fmt(summary.perSystem[r.system]!.atCommonRate[big]?.fanoutP50Ms, 1)} ms`).join(", ")}. Setup of ${fmt(big)} subscribers in the ladder (connect, subscribe, all live): ${report.systems.map((r) => `${label(r.system)} ${fmt(summary.perSystem[r.system]!.setupSeconds[big], 1)} s`).join(", ")}.`,
    ...generatorNotes.map((n) => `- ${n}`),
    "",
  ];
}

/** The rooms workload's table (when it ran). */
function roomsSection(report: Report, options: BenchOptions): string[] {
  const { summary } = report;
  const { clients, roomSize, messages, inFlight } = options.rooms;
  const rows = report.systems.map((r) => {
    const rooms = summary.perSystem[r.system]!.rooms;
    if (!rooms) return [`**${label(r.system)}**`, isError(r.rooms) ? "error" : "–", "–", "–", "–", "–"];
    return [
      `**${label(r.system)}**`,
      fmt(rooms.publishesPerSec),
      fmt(rooms.cpuMicrosPerMessage),
      `${fmt(rooms.p50Ms, 1)} / ${fmt(rooms.p99Ms, 1)}`,
      `${fmt(rooms.rssPerConnectionBytes / 1024, 1)} KB`,
      fmt(rooms.setupSeconds, 2),
    ];
  });
  const ratios = summary.roomsRatios;
  const notes = report.systems.flatMap((r) =>
    isError(r.rooms) ? [`${label(r.system)}: ${r.rooms.error}`] : (ok(r.rooms)?.notes ?? []).map((n) => `${label(r.system)}: ${n}`),
  );
  return [
    `### Rooms: ${fmt(clients)} clients in ${fmt(clients / roomSize)} rooms of ${roomSize}`,
    "",
    `Each client has one WebSocket subscribed to \`user:<i>\` and \`room:<i/${roomSize}>\`; ${fmt(messages)} messages (after a warm-up) are sent to rooms with \`sendMessage\` (R: a raw publish frame) over each sender's own socket, ${inFlight} in flight, each delivered to the ${roomSize} members of its room. P+T has the 3-step trigger on \`room:*\`; P+R is P over the local Redis (\`REDIS_URL\`, a prefix of its own).`,
    "",
    table(
      [
        "system",
        "messages/s",
        `server CPU µs per sent message (${roomSize} deliveries each)`,
        "p50 / p99 ms, send to delivery",
        "RSS per connection (2 subscriptions)",
        "setup s: connect + subscribe all, all live",
      ],
      rows,
    ),
    "",
    `- Server CPU per sent message: P/R ${fmt(ratios["P/R"], 2)} (target ≤ 1.5), Y/P ${fmt(ratios["Y/P"], 2)} (target ≥ 5), (P+T)/R ${fmt(ratios["(P+T)/R"], 2)}; the trigger adds ${fmt(ratios["(P+T)−P µs"])} µs per event (P+T minus P; target ≤ 30); over Redis (P+R)/P ${fmt(ratios["(P+R)/P"], 2)} (target ≤ 1.3). RSS target: ≤ 15 KB per connection.`,
    ...notes.map((n) => `- ${n}`),
    "",
  ];
}

/** The whole markdown report; sections for the scenarios that ran. */
export function markdown(report: Report, options: BenchOptions): string {
  const { summary } = report;
  const m = report.machine;
  const tc = ok(report.triggerCost);
  const ran = (s: string) => report.scenarios.includes(s);
  const setupRan = report.systems.some((r) => r.setup);
  return [
    `Benchmark of ${report.date.slice(0, 10)} (${report.quick ? "quick run" : options.complete ? "full run" : "partial run"}: ${report.scenarios.join(", ")}; ${fmt(report.durationSeconds / 60, 1)} min): ${m.cpus} × ${m.cpuModel}, ${m.nproc} cores, Node ${m.node}, Linux ${m.kernel}; server pinned to core ${SERVER_CORE}, load generator to core ${LOAD_CORE}${m.taskset ? "" : " (taskset missing: not pinned)"}${m.nice ? `, both at nice ${m.nice}` : ""}. Other work on the machine during the measurements: median ${fmt(report.machineLoad.otherCpuCoresMedian, 2)} cores, max ${fmt(report.machineLoad.otherCpuCoresMax, 2)} (load average ${report.machineLoad.loadavgStart} at start).`,
    "",
    ...(ran("ladder") || ran("idle") ? ladderSection(report, options) : []),
    ...(ran("rooms") ? roomsSection(report, options) : []),
    ...(setupRan
      ? [
          `- Setup, ${fmt(options.setupSubscribers)} subscribers joining one channel (connect, subscribe, every subscriber live; target ≤ 2 s): ${report.systems.map((r) => `${label(r.system)} ${isError(r.setup) ? "error" : `${fmt(summary.perSystem[r.system]!.setupOneChannelSeconds, 2)} s`}`).join(", ")}.`,
        ]
      : []),
    ...(ran("trigger-cost") || ran("per-message")
      ? [
          `- Trigger cost per event, 3-step stack: engine alone (bench/trigger-cost.ts) ${
            tc
              ? `${fmt(tc.microsPerEvent, 1)} µs (p50 ${fmt(tc.p50Micros, 1)}, p99 ${fmt(tc.p99Micros, 1)} µs; the three expressions evaluated bare with jsonata: ${Object.values(
                  tc.expressionMicros,
                )
                  .map((v) => fmt(v, 1))
                  .join(" + ")} µs)`
              : "not measured"
          }; in the server, P+T minus P CPU per published message with 1 subscriber at 1,000 messages/s: ${fmt(summary.triggerCostInServerMicros)} µs (P ${fmt(summary.perMessageCpuMicros.P)} µs, P+T ${fmt(summary.perMessageCpuMicros.PT)} µs per message; 10 ms CPU-clock ticks, so ± about 10 µs).`,
        ]
      : []),
    ...report.notes.map((n) => `- ${n}`),
    "",
  ].join("\n");
}

/** The machine, for the report's first line. */
export function machineInfo(placement: Placement): Record<string, string | number | boolean> {
  const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpus()[0]?.model ?? "unknown";
  const nproc = spawnSync("nproc", { encoding: "utf8" }).stdout.trim();
  return {
    nproc: Number(nproc) || cpus().length,
    cpus: cpus().length,
    cpuModel: model.trim(),
    node: process.version,
    kernel: release(),
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    taskset: placement.taskset,
    nice: placement.nice,
    fdLimit: placement.fdLimit,
  };
}
