/**
 * `npm run bench`: the realtime delivery benchmark. Not part of `npm test`.
 *
 * For each system (R raw ws, Y plain Yoga, P this project, P+T this project with one 3-step
 * trigger), each scenario runs against a fresh server process pinned to core 1, driven by one load
 * generator process (bench/load.ts) pinned to core 0:
 *   - ladder: a rate ladder at 100 and at 1,000 subscribers on one channel (100-byte payloads),
 *     then one step at half of the max rate kept up with,
 *   - idle: 10,000 idle WebSocket connections (RSS per connection),
 *   - setup: 1,000 subscribers joining one channel,
 *   - rooms: 1,000 clients in rooms of 10, each also on a channel of its own, sending to their
 *     rooms over their own sockets (bench/load-rooms.ts),
 * then, for P and P+T, per-message: server CPU per message with 1 subscriber at 1,000 messages/s;
 * and trigger-cost: the trigger engine micro-benchmark. Writes bench/results/latest.{json,md} plus
 * a dated copy (a run of only some scenarios or systems writes partial.*, a quick run quick.*).
 *
 * Options: see bench/options.ts, e.g. `npm run bench -- --scenarios=rooms --systems=P,Y`.
 * Layout: options.ts (command line), processes.ts (servers, load generators, pinning),
 * scenarios.ts (what each scenario asks of the load generator), report.ts (summary and tables),
 * profile.ts (`--profile`), this file (the order of things and the files written).
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type BenchOptions, LADDER, P99_LIMIT_MS, parseOptions, REDIS_SCENARIOS, RESULTS, type Scenario } from "./options.js";
import { Processes } from "./processes.js";
import { runProfile } from "./profile.js";
import { fmt, isError, type MachineLoad, machineInfo, markdown, type Report, type SystemResult, summarize } from "./report.js";
import { PAIRED_ROUNDS, Scenarios } from "./scenarios.js";
import { machineBusySeconds, SYSTEM_NAMES, type SystemId, sleep } from "./shared.js";
import { BENCH_STACK } from "./trigger-cost.js";

/** Waits until the machine is quiet (< 0.3 cores busy over 5 s, twice in a row), at most `minutes`. */
async function waitQuiet(minutes: number, notes: string[]): Promise<void> {
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

/** Runs `work`, logging a failure and keeping its message as the outcome. */
async function attempt<T>(what: string, work: () => Promise<T>): Promise<T | { error: string }> {
  try {
    return await work();
  } catch (error) {
    console.error(`bench: ${what} failed: ${(error as Error).message}`);
    return { error: (error as Error).message };
  }
}

async function benchmark(options: BenchOptions, processes: Processes, scenarios: Scenarios): Promise<void> {
  const notes = processes.notes;
  if (options.waitQuietMinutes > 0) await waitQuiet(options.waitQuietMinutes, notes);
  const started = performance.now();
  const date = new Date().toISOString();
  const loadavg = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  const loadavgStart = loadavg();
  const has = (scenario: Scenario) => options.scenarios.has(scenario);
  const runs = (system: SystemId, scenario: Scenario) => has(scenario) && (system !== "PR" || REDIS_SCENARIOS.has(scenario));
  console.log(
    `bench: systems ${options.systems.join(", ")}; scenarios ${[...options.scenarios].join(", ")}; subscribers ${options.subscriberCounts.join(", ")}; ` +
      `idle ${options.idleConnections}; rooms ${options.rooms.clients} clients, ${options.rooms.messages} messages; ${options.stepSeconds} s steps${options.quick ? " (quick)" : ""}`,
  );
  const results: SystemResult[] = [];
  for (const system of options.systems) {
    const result: SystemResult = { system, name: SYSTEM_NAMES[system], ladders: {} };
    results.push(result);
    const name = SYSTEM_NAMES[system];
    if (runs(system, "ladder")) {
      for (const subscribers of options.subscriberCounts) {
        console.log(`\n== ${name}: ${subscribers} subscribers`);
        result.ladders[subscribers] = await attempt(`${system} at ${subscribers} subscribers`, () => scenarios.ladder(system, subscribers));
      }
    }
    if (runs(system, "idle")) {
      console.log(`\n== ${name}: ${options.idleConnections} idle connections`);
      result.idle = await attempt(`${system} idle connections`, () => scenarios.idle(system));
    }
    if (runs(system, "setup")) {
      console.log(`\n== ${name}: ${options.setupSubscribers} subscribers joining one channel`);
      result.setup = await attempt(`${system} setup`, () => scenarios.setup(system));
    }
    if (runs(system, "rooms")) {
      console.log(`\n== ${name}: rooms, ${options.rooms.clients} clients`);
      result.rooms = await attempt(`${system} rooms`, () => scenarios.rooms(system));
    }
  }
  if (has("per-message")) {
    const p = results.find((result) => result.system === "P");
    const pt = results.find((result) => result.system === "PT");
    if (p && pt) {
      console.log(`\n== P and P+T side by side: server CPU per message, 1 subscriber, 1,000 messages/s, ${PAIRED_ROUNDS} rounds`);
      const paired = await attempt("P and P+T per message", () => scenarios.perMessagePaired());
      p.perMessage = isError(paired) ? paired : paired.P;
      pt.perMessage = isError(paired) ? paired : paired.PT;
    } else {
      for (const result of [p, pt]) {
        if (!result) continue;
        console.log(`\n== ${SYSTEM_NAMES[result.system]}: server CPU per message, 1 subscriber, 1,000 messages/s`);
        result.perMessage = await attempt(`${result.system} per message`, () => scenarios.perMessage(result.system));
      }
    }
  }
  const triggerCost = has("trigger-cost") ? await attempt("trigger cost", () => processes.runTriggerCost()) : null;

  const others = results
    .flatMap((r) => [
      ...Object.values(r.ladders).flatMap((l) => (isError(l) ? [] : l.steps.map((step) => step.otherCpuCores))),
      ...(r.rooms && !isError(r.rooms) ? [r.rooms.measured.otherCpuCores] : []),
    ])
    .sort((a, b) => a - b);
  const machineLoad: MachineLoad = {
    loadavgStart,
    loadavgEnd: loadavg(),
    otherCpuCoresMedian: others.length ? others[Math.floor(others.length / 2)]! : null,
    otherCpuCoresMax: others.length ? others.at(-1)! : null,
  };
  const report: Report = {
    date,
    durationSeconds: Math.round((performance.now() - started) / 1000),
    quick: options.quick,
    scenarios: [...options.scenarios],
    machine: machineInfo(processes.placement),
    method: {
      ladderDeliveriesPerSec: LADDER,
      stepSeconds: options.stepSeconds,
      drainSeconds: options.drainSeconds,
      warmupSeconds: options.warmupSeconds,
      refineSteps: options.refineSteps,
      p99LimitMs: P99_LIMIT_MS,
      payloadBytes: 100,
      publishing:
        "one separate publisher WebSocket: graphql-transport-ws `subscribe` of the sendMessage mutation (Y, P, P+T); {type:publish} (R)",
      subscribers: "one WebSocket per subscriber, one subscription each, all on channel `bench`",
      idle: "connections with the handshake done (connection_ack for Y/P), then one subscription each on a channel of its own",
      setup: `${options.setupSubscribers} subscribers on channel \`bench\`: connect, subscribe, until every subscriber received a probe`,
      rooms: {
        ...options.rooms,
        subscriptions: "one WebSocket per client, subscribed to user:<i> and room:<floor(i / roomSize)>",
        sending:
          "message k goes to room k mod rooms from its member floor(k / rooms) mod roomSize, over that client's own socket; closed loop, inFlight unanswered at most",
        trigger: "P+T: the 3-step stack on room:*",
      },
      cpu: "server utime+stime from /proc/<pid>/stat over each step (step start to last delivery) or rooms phase",
      trigger: BENCH_STACK,
    },
    systems: results,
    summary: summarize(results, options),
    triggerCost,
    machineLoad,
    notes,
  };
  mkdirSync(RESULTS, { recursive: true });
  const base = options.quick ? "quick" : options.complete ? "latest" : "partial";
  const md = markdown(report, options);
  writeFileSync(join(RESULTS, `${base}.json`), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(RESULTS, `${base}.md`), md);
  if (base === "latest") {
    const stamp = date.slice(0, 16).replace(/:/g, "-");
    copyFileSync(join(RESULTS, "latest.json"), join(RESULTS, `${stamp}.json`));
    copyFileSync(join(RESULTS, "latest.md"), join(RESULTS, `${stamp}.md`));
  }
  console.log(`\n${md}`);
  console.log(`bench: wrote bench/results/${base}.json and ${base}.md in ${fmt(report.durationSeconds / 60, 1)} min`);
}

const options = parseOptions(process.argv.slice(2));
const processes = new Processes(
  options.nice,
  Math.max(options.idleConnections, options.rooms.clients, options.setupSubscribers, ...options.subscriberCounts),
);
process.once("SIGINT", () => {
  processes.dispose();
  process.exit(130);
});
process.once("exit", () => processes.dispose());
const scenarios = new Scenarios(options, processes);
try {
  await (options.profile ? runProfile(options, processes, scenarios) : benchmark(options, processes, scenarios));
} finally {
  processes.dispose();
}
