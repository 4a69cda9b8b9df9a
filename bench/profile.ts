/**
 * `npm run bench -- --profile`: runs P (or P+T) under `node --cpu-prof` through one scenario and
 * summarizes the server's self time over the measured window only (bench/profile-summary.ts): one
 * ladder step, or the measured phase of the rooms workload. Writes
 * `bench/results/profile-<system>-<what>.{md,json}`; the raw `.cpuprofile` stays in a temp folder.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LadderResult } from "./load.js";
import { type BenchOptions, type ProfileOptions, RESULTS } from "./options.js";
import type { Processes, RunningServer } from "./processes.js";
import { profileMarkdown, readProfile, summarizeProfile } from "./profile-summary.js";
import { label, type Report } from "./report.js";
import type { Scenarios } from "./scenarios.js";
import { unrefSleep } from "./shared.js";

/**
 * Node arguments that write a CPU profile into `dir` and let SIGUSR2 end the server at once. Samples
 * every 100 µs rather than V8's 1 ms: a light workload (one subscriber, per-message costs of tens of
 * µs) otherwise gives a few hundred samples per step.
 */
const profilerArgs = (dir: string) => [
  "--cpu-prof",
  "--cpu-prof-interval=100",
  `--cpu-prof-dir=${dir}`,
  "--import",
  "./bench/servers/profile-exit.ts",
];

/** Ends a profiled server with SIGUSR2 (V8 writes the profile on exit) and waits for it. */
async function endProfiled(server: RunningServer): Promise<void> {
  const exited = new Promise<void>((resolve) => server.child.once("exit", () => resolve()));
  server.child.kill("SIGUSR2");
  await Promise.race([exited, unrefSleep(30_000)]);
}

/** The main thread's profile: V8 names them CPU.<date>.<time>.<pid>.<thread>.<seq>, thread 0 first. */
function profileFile(dir: string): string {
  const file = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .sort()[0];
  if (!file) throw new Error(`no .cpuprofile in ${dir}`);
  return join(dir, file);
}

function write(name: string, md: string, json: unknown, rawFile: string): void {
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, `${name}.md`), md);
  writeFileSync(join(RESULTS, `${name}.json`), `${JSON.stringify(json, null, 2)}\n`);
  console.log(`\n${md}`);
  console.log(`bench: full profile at ${rawFile} (open in Chrome DevTools); summary in bench/results/${name}.md`);
}

/** Profiles one single-channel ladder step at `profile.rate` (default: 80% of the max in latest.json). */
async function profileLadder(profile: ProfileOptions, options: BenchOptions, processes: Processes, scenarios: Scenarios): Promise<void> {
  const { system, subscribers } = profile;
  let rate = profile.rate;
  if (rate === null) {
    const latest = join(RESULTS, "latest.json");
    const max = existsSync(latest)
      ? (JSON.parse(readFileSync(latest, "utf8")) as Report).summary.perSystem[system]?.maxKeepUpPerSec[subscribers]
      : null;
    rate = max ? Math.round(max * 0.8) : 8000;
  }
  const dir = mkdtempSync(join(tmpdir(), "realtime-bench-profile-"));
  console.log(`bench: profiling ${label(system)} at ${subscribers} subscribers, one ${options.stepSeconds} s step at ${rate} deliveries/s`);
  const server = await processes.startServer(system, { nodeArgs: profilerArgs(dir) });
  const config = { ...scenarios.ladderConfig(system, server, subscribers, [rate]), refineSteps: 0 };
  const result = await processes.runLoad<LadderResult>(
    "profile",
    config,
    server,
    config.setupDeadlineSeconds + config.deadlineSeconds,
    () => endProfiled(server),
  );
  const step = result.steps[0]!;
  const raw = profileFile(dir);
  const summary = summarizeProfile(
    readProfile(raw),
    { from: step.monoStartUs, to: step.monoEndUs },
    { top: 30, perUnit: step.sent, unit: "published message" },
  );
  const title = `${label(system)} at ${subscribers} subscribers, ${step.offeredPerSec} deliveries/s offered (${step.delivered}/${step.expected} delivered, p99 ${step.p99Ms} ms, server CPU ${step.serverCpuUtil} of a core): self time`;
  write(`profile-${label(system)}-${subscribers}`, profileMarkdown(summary, title), { step, summary }, raw);
}

/** Profiles the setup scenario: subscribers joining one channel, from the first connect to every subscriber live. */
async function profileSetup(profile: ProfileOptions, options: BenchOptions, processes: Processes, scenarios: Scenarios): Promise<void> {
  const { system } = profile;
  const subscribers = options.setupSubscribers;
  const dir = mkdtempSync(join(tmpdir(), "realtime-bench-profile-"));
  console.log(`bench: profiling ${label(system)} while ${subscribers} subscribers join one channel`);
  const server = await processes.startServer(system, { nodeArgs: profilerArgs(dir) });
  const config = { ...scenarios.ladderConfig(system, server, subscribers, []), warmupSeconds: 0, refineSteps: 0 };
  const result = await processes.runLoad<LadderResult>("profile", config, server, config.setupDeadlineSeconds + 30, () =>
    endProfiled(server),
  );
  const raw = profileFile(dir);
  const summary = summarizeProfile(
    readProfile(raw),
    { from: result.setupMonoStartUs, to: result.setupMonoEndUs },
    { top: 30, perUnit: subscribers, unit: "subscriber" },
  );
  const title = `${label(system)}, ${subscribers} subscribers joining one channel (ready in ${result.setupSeconds} s under the profiler): self time, from the first connect to every subscriber live`;
  write(`profile-${label(system)}-setup`, profileMarkdown(summary, title), { setupSeconds: result.setupSeconds, summary }, raw);
}

/** Profiles the measured phase of the rooms workload. */
async function profileRooms(profile: ProfileOptions, options: BenchOptions, scenarios: Scenarios): Promise<void> {
  const { system } = profile;
  const dir = mkdtempSync(join(tmpdir(), "realtime-bench-profile-"));
  console.log(
    `bench: profiling ${label(system)} on the rooms workload (${options.rooms.clients} clients, ${options.rooms.messages} messages)`,
  );
  const result = await scenarios.rooms(system, { nodeArgs: profilerArgs(dir) }, endProfiled);
  const phase = result.measured;
  const raw = profileFile(dir);
  const summary = summarizeProfile(
    readProfile(raw),
    { from: phase.monoStartUs, to: phase.monoEndUs },
    { top: 40, perUnit: phase.messages, unit: "sent message" },
  );
  const title =
    `${label(system)}, rooms workload: ${result.clients} clients in ${result.rooms} rooms, ${phase.messages} messages sent, ${result.inFlight} in flight ` +
    `(${phase.publishesPerSec} messages/s under the profiler, ${phase.delivered}/${phase.expectedDeliveries} delivered, p99 ${phase.p99Ms} ms, ` +
    `server CPU ${phase.serverCpuMicrosPerMessage} µs per message from /proc): self time`;
  write(`profile-${label(system)}-rooms`, profileMarkdown(summary, title), { result, summary }, raw);
}

/** Runs the profile the options ask for. */
export async function runProfile(options: BenchOptions, processes: Processes, scenarios: Scenarios): Promise<void> {
  const profile = options.profile!;
  if (profile.scenario === "rooms") await profileRooms(profile, options, scenarios);
  else if (profile.scenario === "setup") await profileSetup(profile, options, processes, scenarios);
  else await profileLadder(profile, options, processes, scenarios);
}
