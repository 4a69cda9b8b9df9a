/**
 * Small pieces shared by the benchmark's orchestrator, load generator and servers: the payload
 * format, the wire frames, and readers for a process's CPU time and memory from /proc.
 */
import { readFileSync } from "node:fs";

/** The systems under test. */
export type SystemId = "R" | "Y" | "P" | "PT" | "PR";

/** Which wire protocol a system speaks. */
export type Protocol = "raw" | "gql";

export const SYSTEM_NAMES: Record<SystemId, string> = {
  R: "R: raw ws broadcast",
  Y: "Y: plain graphql-yoga + graphql-ws + createPubSub",
  P: "P: this project, no triggers",
  PT: "P+T: this project, one 3-step JSONata trigger",
  PR: "P+R: this project over Redis (REDIS_URL), no triggers",
};

export const PROTOCOL_OF: Record<SystemId, Protocol> = { R: "raw", Y: "gql", P: "gql", PT: "gql", PR: "gql" };

/** Size of the published payload as JSON, in bytes. */
export const PAYLOAD_BYTES = 100;

/**
 * A bench payload: `{"text":"B|<step>|<sent µs>|xxxx…"}`, exactly {@link PAYLOAD_BYTES} bytes of
 * JSON. The marker uses only characters that JSON leaves alone and that `$uppercase` keeps (`B`,
 * digits, `|`), so it survives the P+T trigger, and it is the only `|` in a delivered frame, which
 * lets the load generator find it with one byte search instead of parsing the frame.
 */
export function benchPayload(step: number, sentMicros: number): string {
  return padded(`B|${step}|${sentMicros}|`);
}

/** A readiness probe payload (`Q|…`): the load generator publishes these until every subscriber saw one. */
export function probePayload(round: number): string {
  return padded(`Q|${round}|`);
}

/** `{"text":"<prefix>xxxx…"}`, exactly {@link PAYLOAD_BYTES} bytes of JSON. */
export function padded(prefix: string): string {
  const text = prefix.padEnd(PAYLOAD_BYTES - '{"text":""}'.length, "x");
  return `{"text":"${text}"}`;
}

/** The graphql-transport-ws subscription every Y/P subscriber runs (same selection on both). */
export const SUBSCRIPTION_QUERY = "subscription Bench($name: String!) { channel(name: $name) { id action channel payload createdAt } }";

/** The mutation the publisher sends to Y/P over its WebSocket. */
export const PUBLISH_MUTATION =
  "mutation Send($channel: String!, $payload: JSON!) { sendMessage(channel: $channel, payload: $payload) { delivered } }";

/** Hand-built graphql-transport-ws / raw frames (no client library on the load side). */
export const frames = {
  connectionInit: '{"type":"connection_init","payload":{}}',
  gqlSubscribe: (id: string, channel: string) =>
    JSON.stringify({ id, type: "subscribe", payload: { query: SUBSCRIPTION_QUERY, variables: { name: channel } } }),
  /** `payloadJson` is already JSON: spliced in, not re-serialized. */
  gqlPublish: (id: string, channelJson: string, payloadJson: string) =>
    `{"id":"${id}","type":"subscribe","payload":{"query":${JSON.stringify(PUBLISH_MUTATION)},"variables":{"channel":${channelJson},"payload":${payloadJson}}}}`,
  rawSubscribe: (channel: string) => JSON.stringify({ type: "subscribe", channel }),
  rawPublish: (id: string, channelJson: string, payloadJson: string) =>
    `{"type":"publish","id":"${id}","channel":${channelJson},"payload":${payloadJson}}`,
};

/** User + system CPU time of a process so far, in seconds (/proc/<pid>/stat, clock ticks of 1/100 s). */
export function processCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

const CLOCK_TICKS = 100; // `getconf CLK_TCK` on Linux

/**
 * Time a process's main thread has run plus waited runnable for a CPU, in seconds
 * (/proc/<pid>/schedstat, nanoseconds). Grows while the thread has work, even when starved.
 */
export function processDemandSeconds(pid: number): number {
  const [running, waiting] = readFileSync(`/proc/${pid}/schedstat`, "utf8").trim().split(" ").map(Number);
  return ((running ?? 0) + (waiting ?? 0)) / 1e9;
}

/** Resident set size of a process, in bytes (/proc/<pid>/status VmRSS). */
export function processRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) * 1024;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Like {@link sleep}, but does not keep the process alive (for timeouts raced against work). */
export const unrefSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

/** CPU time used by every process on the machine so far, in seconds (/proc/stat: all but idle and iowait). */
export function machineBusySeconds(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0); // user..steal (guest time is inside user)
  return (total - ticks[3]! - ticks[4]!) / CLOCK_TICKS;
}

/** Rounds to three decimals (NaN and infinities pass through). */
export function round3(value: number): number {
  return Number.isFinite(value) ? Math.round(value * 1000) / 1000 : value;
}

/**
 * Waits until the server's main thread wants less than 10% of a core (CPU time plus time spent
 * runnable but waiting for a CPU, from /proc/<pid>/schedstat, sampled every 250 ms), or `maxMs`.
 * Counting the wait matters on a busy machine, where a starved server would look idle.
 */
export async function settle(pid: number, maxMs: number): Promise<boolean> {
  const until = performance.now() + maxMs;
  let before = processDemandSeconds(pid);
  while (performance.now() < until) {
    await sleep(250);
    const after = processDemandSeconds(pid);
    if (after - before <= 0.025) return true;
    before = after;
  }
  return false;
}
