/**
 * The fault-injection suite: `npm run chaos -- [--minutes 1] [--seed N] [--instances 3] [--report FILE]`.
 *
 * Starts instances over the machine's PostgreSQL and Redis (a database and a key prefix of the run's
 * own), each reaching them through TCP proxies the suite controls. Clients on every instance send
 * uniquely numbered messages on channels with and without history, through a BEFORE trigger that
 * counts in trigger state and an AFTER trigger that calls a loopback receiver, while subscribers on
 * every instance record what they receive. A nemesis injects faults on a schedule made from the seed
 * (kills, pauses, outages of PostgreSQL and Redis for one instance or all, partitions, latency).
 * Then everything is healed, the run settles, and a checker reads the clients' records, the history,
 * the trigger state, presence and the receiver's log, and reports each invariant. Exit code 0 when
 * every invariant held.
 */
import { randomInt } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { seededRandom } from "../../dev/random.js";
import { eventually } from "../helpers/eventually.js";
import { check, type RunRecord, type StoredEvent, type Verdict } from "./checker.js";
import { Cluster, type Instance, REDIS_URL } from "./cluster.js";
import { type FaultLog, runNemesis, scheduleFaults } from "./nemesis.js";
import { adminRequest, HISTORY_QUOTA, Workload } from "./workload.js";

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "1" },
    seed: { type: "string" },
    instances: { type: "string", default: "3" },
    report: { type: "string" },
    "keep-logs": { type: "boolean", default: false },
  },
});

const minutes = Number(args.minutes);
const seed = args.seed === undefined ? randomInt(2 ** 31) : Number(args.seed);
const instanceCount = Number(args.instances);
const runMs = Math.round(minutes * 60_000);
const SEND_INTERVAL_MS = 150;
const SUBSCRIBERS_PER_INSTANCE = 2;

/** Enough history channels that none gets more than its quota: two senders per instance, half the sends on history channels. */
const historyChannelCount = Math.max(2, Math.ceil((instanceCount * 2 * (runMs / SEND_INTERVAL_MS) * 0.5) / (HISTORY_QUOTA * 0.8)));
const channels = {
  history: Array.from({ length: historyChannelCount }, (_, i) => `hist:${i}`),
  live: ["live:0", "live:1", "live:2"],
};

function log(message: string): void {
  console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${message}`);
}

async function ok(instance: Instance, query: string, variables: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const answer = await adminRequest(instance, query, variables);
  if (answer.errors?.length) throw new Error(`${query.slice(0, 60)}: ${JSON.stringify(answer.errors)}`);
  return answer.data!;
}

/** Channel settings and the two triggers every message runs through. */
async function configure(cluster: Cluster): Promise<{ counter: string; forward: string }> {
  const first = cluster.instances[0]!;
  await ok(first, `mutation { createChannel(input: { pattern: "hist:*", history: 1000, presence: true }) { id } }`);
  await ok(first, `mutation { createChannel(input: { pattern: "live:*", history: 0, presence: true }) { id } }`);
  const counter = await ok(first, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
    input: {
      name: "count",
      channel: "*",
      actions: ["MESSAGE"],
      stack: [
        { incr: "'count:' & channel", as: "count" },
        { set: "payload.count", value: "$count" },
      ],
    },
  });
  const forward = await ok(first, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
    input: {
      name: "forward",
      channel: "*",
      actions: ["MESSAGE"],
      timing: "AFTER",
      stack: [
        { incr: "'after:' & channel" },
        { http: { url: `'http://127.0.0.1:${cluster.receiver.port}/hook'`, body: "{ 'n': payload.n, 'channel': channel }" }, as: "r" },
      ],
    },
  });
  // Every instance must hold both triggers (they travel as Redis notices) before traffic starts.
  for (const instance of cluster.instances) {
    await eventually(`instance ${instance.index} holding both triggers`, () => ok(instance, `{ triggers(channel: "hist:0") { id } }`), {
      until: (data) => data.triggers.length === 2,
      timeoutMs: 10_000,
      intervalMs: 100,
    });
  }
  return { counter: counter.createTrigger.id as string, forward: forward.createTrigger.id as string };
}

/** Waits until `done` or `ms` pass. */
async function settle(done: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done()) && Date.now() < deadline) await sleep(250);
}

/** Everything the checker needs, read once the run has settled. */
async function collect(cluster: Cluster, workload: Workload, triggers: { counter: string; forward: string }): Promise<RunRecord> {
  const reader = cluster.instances[0]!;
  const history: Record<string, StoredEvent[]> = {};
  for (const channel of channels.history) {
    const data = await ok(reader, `query ($c: String!) { history(channel: $c, last: 1000) { id seq payload } }`, { c: channel });
    history[channel] = data.history.map((event: { id: string; seq: number | null; payload: { n?: number } }) => ({
      id: event.id,
      seq: event.seq,
      n: typeof event.payload?.n === "number" ? event.payload.n : null,
    }));
  }
  const counters = await stateCounters(reader, triggers.counter, "count:");
  const afterCounters = await stateCounters(reader, triggers.forward, "after:");
  const presence = [];
  for (const instance of cluster.instances) {
    const perChannel: Record<string, string[]> = {};
    for (const channel of [...channels.history, ...channels.live]) {
      const data = await ok(instance, `query ($c: String!) { presence(channel: $c) { id } }`, { c: channel });
      perChannel[channel] = data.presence.map((client: { id: string }) => client.id);
    }
    presence.push(perChannel);
  }
  return {
    sends: workload.sends,
    observations: workload.observations,
    history,
    historyChannels: channels.history,
    deliveries: cluster.receiver.deliveries,
    counters,
    afterCounters,
    presence,
    members: workload.liveMembers(),
    exits: cluster.exits,
  };
}

/** Subscriptions (one per connection and attempt) that received events, none of them their subscriber's own JOIN. */
function withoutOwnJoin(run: RunRecord): number {
  const ownJoin = new Map<string, boolean>();
  for (const observation of run.observations) {
    const subscriber = observation.subscription.split("#")[0];
    const own = observation.action === "JOIN" && observation.clientId === subscriber;
    ownJoin.set(observation.subscription, (ownJoin.get(observation.subscription) ?? false) || own);
  }
  return [...ownJoin.values()].filter((seen) => !seen).length;
}

/** Why a trigger's runs failed (the latest 1,000 failed ones): each error with how often it came. */
async function failures(instance: Instance, trigger: string): Promise<Map<string, number>> {
  const data = await ok(instance, `query ($id: ID!) { trigger(id: $id) { runs(last: 1000, outcome: FAILED) { error } } }`, { id: trigger });
  const counts = new Map<string, number>();
  for (const { error } of data.trigger.runs as { error: string | null }[]) counts.set(String(error), (counts.get(String(error)) ?? 0) + 1);
  return counts;
}

/** A trigger's state counters per channel (`<prefix><channel>`); null for a channel without one. */
async function stateCounters(instance: Instance, trigger: string, prefix: string): Promise<Record<string, number | null>> {
  const data = await ok(instance, `query ($id: ID!, $p: String!) { trigger(id: $id) { state(prefix: $p, first: 1000) { key value } } }`, {
    id: trigger,
    p: prefix,
  });
  const counters: Record<string, number | null> = {};
  for (const channel of [...channels.history, ...channels.live]) counters[channel] = null;
  for (const entry of data.trigger.state as { key: string; value: number }[]) counters[entry.key.slice(prefix.length)] = entry.value;
  return counters;
}

function report(
  run: RunRecord,
  verdicts: Verdict[],
  faults: FaultLog[],
  failedRuns: ReadonlyMap<string, number>,
  startedAt: number,
  settings: Record<string, unknown>,
): string {
  const outcomes = new Map<string, number>();
  for (const send of run.sends) {
    const key = send.outcome === "ack" ? "acknowledged" : `${send.outcome} ${send.code ?? ""}`.trim();
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
  }
  const kinds = new Map<string, number>();
  for (const { fault } of faults) kinds.set(fault.kind, (kinds.get(fault.kind) ?? 0) + 1);
  const lines = [
    `# Fault-injection run, seed ${settings.seed}`,
    "",
    `${new Date(startedAt).toISOString()}: ${settings.instances} instances over PostgreSQL and Redis, ${settings.minutes} min of faults, ` +
      `${channels.history.length} channels with history (1,000 kept) and ${channels.live.length} without. ` +
      `Replay with \`npm run chaos -- --seed ${settings.seed} --minutes ${settings.minutes} --instances ${settings.instances}\`.`,
    "",
    "## Operations",
    "",
    `- sends: ${run.sends.length} (${[...outcomes].map(([key, count]) => `${key}: ${count}`).join(", ")})`,
    `- events received by subscriptions: ${run.observations.length}; AFTER deliveries at the receiver: ${run.deliveries.length}`,
    `- subscriptions that received events but not their own JOIN (lost by Redis pub/sub around an outage): ${withoutOwnJoin(run)}`,
    `- faults: ${faults.length} (${[...kinds].map(([kind, count]) => `${kind} ×${count}`).join(", ")})`,
    "",
    "## Invariants",
    "",
    "| invariant | held | checked | violations |",
    "| --- | --- | ---: | ---: |",
    ...verdicts.map((v) => `| ${v.invariant} | ${v.held ? "yes" : "**NO**"} | ${v.checked} | ${v.violations} |`),
    "",
    ...verdicts.filter((v) => !v.held).flatMap((v) => [`### ${v.invariant}`, "", ...v.examples.map((example) => `- ${example}`), ""]),
    "## Failed runs of the BEFORE trigger",
    "",
    ...(failedRuns.size === 0 ? ["None."] : [...failedRuns].map(([error, count]) => `- ${count} × ${error}`)),
    "",
    "## Faults",
    "",
    "| start (s) | end (s) | kind | instance | |",
    "| ---: | ---: | --- | ---: | --- |",
    ...faults
      .slice()
      .sort((a, b) => a.fault.startMs - b.fault.startMs)
      .map(
        ({ fault, startedAt: began, endedAt, error }) =>
          `| ${(((began ?? startedAt) - startedAt) / 1000).toFixed(1)} | ${(((endedAt ?? startedAt) - startedAt) / 1000).toFixed(1)} | ${fault.kind}${fault.latencyMs ? ` ${fault.latencyMs} ms` : ""} | ${fault.kind.endsWith("-all") ? "all" : fault.instance} | ${error ?? ""} |`,
      ),
    "",
  ];
  return lines.join("\n");
}

async function main(): Promise<number> {
  const runDir = mkdtempSync(join(tmpdir(), "chaos-"));
  const settings = { seed, minutes, instances: instanceCount };
  log(`seed ${seed}, ${minutes} min, ${instanceCount} instances, logs in ${runDir}`);
  const cluster = await Cluster.start(instanceCount, runDir);
  const random = seededRandom(seed ^ 0x5eed);
  const workload = new Workload(cluster, channels, random, {
    subscribersPerInstance: SUBSCRIBERS_PER_INSTANCE,
    sendIntervalMs: SEND_INTERVAL_MS,
  });
  let code = 2;
  try {
    const triggers = await configure(cluster);
    await workload.subscribe();
    log("subscribed; sending, with faults");
    const faults = scheduleFaults(seed, runMs, instanceCount);
    const faultLog: FaultLog[] = [];
    const startedAt = Date.now();
    workload.start();
    await Promise.all([runNemesis(cluster, faults, startedAt, faultLog), sleep(runMs)]);
    await workload.stop();
    log(`faults over (${faultLog.length}); healing and settling`);
    await cluster.healAll();
    // AFTER runs drain; presence expires what the faults left behind (REDIS_PRESENCE_TTL_SECONDS=5).
    const ackedNs = workload.sends.filter((send) => send.outcome === "ack").map((send) => send.n);
    await settle(() => {
      const delivered = new Set(cluster.receiver.deliveries.map((delivery) => delivery.body.n));
      return ackedNs.every((n) => delivered.has(n));
    }, 120_000);
    await sleep(12_000);
    const run = await collect(cluster, workload, triggers);
    const verdicts = check(run);
    const text = report(run, verdicts, faultLog, await failures(cluster.instances[0]!, triggers.counter), startedAt, settings);
    console.log(text);
    if (args.report) {
      mkdirSync(dirname(args.report), { recursive: true });
      writeFileSync(args.report, text);
      writeFileSync(args.report.replace(/\.md$/, ".json"), JSON.stringify({ settings, verdicts, faults: faultLog }, null, 2));
    }
    code = verdicts.every((v) => v.held) ? 0 : 1;
  } finally {
    await workload.close();
    const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await cluster.destroy(async () => {
      await redis.connect();
      for (let cursor = "0"; ; ) {
        const [next, keys] = await redis.scan(cursor, "MATCH", `${cluster.redisPrefix}*`, "COUNT", 1000);
        if (keys.length > 0) await redis.del(...keys);
        cursor = next;
        if (cursor === "0") break;
      }
      redis.disconnect();
    });
    if (code === 0 && !args["keep-logs"]) rmSync(runDir, { recursive: true, force: true });
    else log(`instance logs kept in ${runDir}`);
  }
  return code;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
