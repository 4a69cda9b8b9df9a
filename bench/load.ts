/**
 * The one load generator for every system under test. Its sockets are bench/client.ts's: raw `ws`
 * sockets whose graphql-transport-ws frames (connection_init, subscribe, next) are written and read
 * by hand, so the client-side cost is the same for R, Y, P and P+T.
 *
 *   node --import tsx bench/load.ts <config.json>
 *
 * Modes:
 * - `ladder`: N subscribers on one channel, one separate publisher socket publishing open-loop at
 *   a fixed rate per step (send timestamps in the payload), a rate ladder that stops at the first
 *   failing step, then a few bisection steps between the last pass and the first failure.
 *   With `halfMaxStep`, one more step at half of the highest ladder rate kept up with (the p99 a server
 *   shows with headroom). With no rates, only the setup is measured (N subscribers joining one
 *   channel).
 * - `idle`: N idle connections (handshake only, then one subscription each on a channel of its
 *   own), server RSS before and after.
 * - `rooms`: many small rooms, clients sending over their own sockets (bench/load-rooms.ts).
 *
 * Writes its result as JSON to `config.out`, prints `RESULT <path>`, and stays alive (its sockets
 * open) until the orchestrator has stopped the server and sends SIGTERM, or for at most 60 s.
 */
import { readFileSync, writeFileSync } from "node:fs";
import WebSocket from "ws";
import {
  BENCH_MARK,
  BenchSocket,
  type Frame,
  latencyHistogram,
  log,
  MarkerReader,
  monoUs,
  nowUs,
  openBounded,
  PROBE_MARK,
  quantileMs,
} from "./client.js";
import { type RoomsConfig, runRooms } from "./load-rooms.js";
import {
  benchPayload,
  machineBusySeconds,
  PROTOCOL_OF,
  type Protocol,
  probePayload,
  processCpuSeconds,
  processRssBytes,
  round3,
  type SystemId,
  settle,
  sleep,
} from "./shared.js";

export interface LadderConfig {
  readonly mode: "ladder";
  readonly system: SystemId;
  readonly url: string;
  readonly serverPid: number;
  readonly channel: string;
  readonly subscribers: number;
  /** Offered deliveries per second (messages/s × subscribers), ascending. */
  readonly rates: readonly number[];
  readonly stepSeconds: number;
  /** How long after the last send a step may take to deliver everything. */
  readonly drainSeconds: number;
  readonly warmupSeconds: number;
  /** Bisection steps between the last passing and the first failing rate. */
  readonly refineSteps: number;
  readonly p99LimitMs: number;
  /**
   * A step "keeps up" when everything is delivered within this long after the end of its send
   * schedule: the throughput criterion, without the p99 bound.
   */
  readonly keepUpSlackMs: number;
  /** Bound on connecting and subscribing (P's JOIN fan-out is quadratic in the subscriber count). */
  readonly setupDeadlineSeconds: number;
  /**
   * A failing step during which other processes used more than this many cores is run again once,
   * after waiting (at most 30 s) for the machine to quiet down.
   */
  readonly retryAboveOtherCores: number;
  /** Bound on the ladder after setup; the ladder stops when it is reached. */
  readonly deadlineSeconds: number;
  /** After the climb, one step at half of the highest ladder rate kept up with. */
  readonly halfMaxStep: boolean;
  readonly out: string;
}

export interface IdleConfig {
  readonly mode: "idle";
  readonly system: SystemId;
  readonly url: string;
  readonly serverPid: number;
  readonly connections: number;
  readonly deadlineSeconds: number;
  readonly out: string;
}

export type LoadConfig = LadderConfig | IdleConfig | RoomsConfig;

export interface StepResult {
  readonly kind: "warmup" | "ladder" | "refine" | "refine-p99" | "half-max";
  readonly offeredPerSec: number;
  readonly messagesPerSec: number;
  readonly seconds: number;
  readonly sent: number;
  readonly acked: number;
  readonly publishErrors: number;
  readonly expected: number;
  readonly delivered: number;
  /** Delivered / (time from the first send to the last delivery). */
  readonly achievedPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  /** Per message, time from its first to its last delivery (the fan-out); median and max over messages. */
  readonly fanoutP50Ms: number;
  readonly fanoutMaxMs: number;
  readonly serverCpuSeconds: number;
  /** Server CPU time / wall time of the step (1 = one core busy). */
  readonly serverCpuUtil: number;
  readonly cpuSecondsPer100k: number;
  readonly serverRssBytes: number;
  /** Load generator CPU / wall: near 1 means the generator, not the server, may be the limit. */
  readonly generatorCpuUtil: number;
  /** CPU used by every other process on the machine during the step, in cores (noise from other work). */
  readonly otherCpuCores: number;
  /** Worst delay between a message's scheduled and actual send time. */
  readonly maxSendLagMs: number;
  readonly deadSubscribers: number;
  /** 100% delivered within drainSeconds of the last send, p99 ≤ p99LimitMs, no errors. */
  readonly pass: boolean;
  readonly failure: string | null;
  /** 100% delivered within keepUpSlackMs of the end of the schedule, no errors (no p99 bound). */
  readonly keepsUp: boolean;
  /** CLOCK_MONOTONIC microseconds (same clock as V8 CPU profiles), for cutting a profile to this step. */
  readonly monoStartUs: number;
  readonly monoEndUs: number;
  /** 2 when this step repeats one that failed while other work used the machine. */
  readonly attempt: number;
}

export interface LadderResult {
  readonly mode: "ladder";
  readonly system: SystemId;
  readonly subscribers: number;
  readonly setupSeconds: number;
  /** The setup's window on the monotonic clock (µs), for profiles. */
  readonly setupMonoStartUs: number;
  readonly setupMonoEndUs: number;
  readonly rssAfterSetupBytes: number;
  readonly warmup: StepResult | null;
  readonly steps: StepResult[];
  /** Highest offered deliveries/s that passed: 100% delivery and p99 ≤ the limit (0 when none did). */
  readonly maxSustainedPerSec: number;
  /** Lowest offered rate above that one that failed. */
  readonly firstFailingPerSec: number | null;
  /** Highest offered deliveries/s the server kept up with (100% delivery, no p99 bound; 0 when none). */
  readonly maxKeepUpPerSec: number;
  readonly firstNotKeepingUpPerSec: number | null;
  /** The step at half of the highest ladder rate kept up with (before bisection), when asked for. */
  readonly halfMax: StepResult | null;
  readonly stoppedBy: string;
  readonly notes: string[];
}

export interface IdleResult {
  readonly mode: "idle";
  readonly system: SystemId;
  readonly connections: number;
  readonly connected: number;
  readonly subscribed: number;
  readonly failed: number;
  readonly openAtEnd: number;
  readonly rssBaselineBytes: number;
  readonly rssConnectedBytes: number;
  readonly rssSubscribedBytes: number;
  readonly bytesPerConnection: number;
  readonly bytesPerSubscribedConnection: number;
  readonly connectSeconds: number;
  readonly subscribeSeconds: number;
  readonly notes: string[];
}

const marker = new MarkerReader();
const NEXT = Buffer.from('"type":"next"');
const EVENT = Buffer.from('"type":"event"');
const DELIVERED = Buffer.from('"delivered":true');
const PUBLISHED = Buffer.from('"type":"published"');
const COMPLETE = Buffer.from('"type":"complete"');
const CONNECTION_ACK = Buffer.from('"type":"connection_ack"');

/** Delivery counts and latencies of one step, fed by every subscriber socket. */
class StepStats {
  delivered = 0;
  lastDeliveryMs = 0;
  readonly histogram = latencyHistogram();
  /** Per message (keyed by its send stamp): first and last delivery time, µs. */
  readonly spans = new Map<number, [number, number]>();
  expected = Number.POSITIVE_INFINITY;
  private onComplete: (() => void) | null = null;

  record(sentUs: number, receivedUs: number): void {
    this.delivered++;
    const latency = receivedUs - sentUs;
    this.histogram.recordValue(Math.max(latency, 1));
    const span = this.spans.get(sentUs);
    if (span) span[1] = receivedUs;
    else this.spans.set(sentUs, [receivedUs, receivedUs]);
    if (this.delivered >= this.expected && this.onComplete) {
      this.lastDeliveryMs = performance.now();
      this.onComplete();
      this.onComplete = null;
    }
  }

  /** Median and max fan-out time over the step's messages, ms. */
  fanout(): { p50: number; max: number } {
    const spans = [...this.spans.values()].map(([first, last]) => last - first).sort((a, b) => a - b);
    if (spans.length === 0) return { p50: Number.NaN, max: Number.NaN };
    return { p50: spans[Math.floor(spans.length / 2)]! / 1000, max: spans.at(-1)! / 1000 };
  }

  /** Resolves once `expected` deliveries arrived, or false at the deadline. */
  complete(deadlineMs: number): Promise<boolean> {
    if (this.delivered >= this.expected) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.onComplete = null;
          this.lastDeliveryMs = performance.now();
          resolve(false);
        },
        Math.max(0, deadlineMs - performance.now()),
      );
      this.onComplete = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}

/** All steps' stats by id; a late delivery still lands in its own step. */
const stepStats = new Map<number, StepStats>();
let currentStep: StepStats | null = null;
let currentStepId = -1;

function recordDelivery(step: number, sentUs: number): void {
  const received = nowUs();
  if (step === currentStepId && currentStep) currentStep.record(sentUs, received);
  else stepStats.get(step)?.record(sentUs, received);
}

/** One subscriber socket, with one subscription (operation id `s`); its bench deliveries go to their step. */
class Subscriber extends BenchSocket {
  subscribed = false;
  /** Highest readiness-probe round seen (0: none yet). */
  probeRound = 0;
  private onSubscribed: (() => void) | null = null;

  constructor(
    url: string,
    protocol: Protocol,
    private readonly system: SystemId,
  ) {
    super(url, protocol);
  }

  private markSubscribed() {
    if (this.subscribed) return;
    this.subscribed = true;
    this.onSubscribed?.();
    this.onSubscribed = null;
  }

  protected override onRawFrame(data: Buffer): boolean {
    const kind = marker.start(data);
    if (kind === BENCH_MARK) {
      const step = marker.number();
      const sentUs = marker.number();
      recordDelivery(step, sentUs);
      return true;
    }
    if (kind === PROBE_MARK) {
      this.probeRound = Math.max(this.probeRound, marker.number());
      return true;
    }
    if (data.indexOf(NEXT) >= 0 || data.indexOf(EVENT) >= 0) {
      // An event without the bench marker: our own (or someone else's) JOIN/LEAVE. Not counted,
      // but the first one proves that this subscription is live (P sends our own JOIN first).
      if (this.system === "P" || this.system === "PT" || this.system === "PR") this.markSubscribed();
      return true;
    }
    return false;
  }

  protected override onFrame(frame: Frame): void {
    if (frame.type === "subscribed") this.markSubscribed();
    else if (frame.type === "error" || frame.type === "complete")
      this.end(`${frame.type}: ${JSON.stringify(frame.payload ?? null).slice(0, 300)}`);
  }

  /** Starts the one subscription of this socket. For Y there is no confirmation frame. */
  subscribe(channel: string): Promise<void> {
    this.sendSubscribe("s", channel);
    if (this.system === "Y") return Promise.resolve();
    if (this.subscribed) return Promise.resolve();
    return new Promise((resolve) => (this.onSubscribed = resolve));
  }
}

/** The one publisher socket (not subscribed to anything); every reply but an acknowledgement counts as an error. */
class Publisher extends BenchSocket {
  acked = 0;
  errors = 0;
  firstError: string | null = null;
  private next = 0;
  private readonly channelJson: string;

  constructor(url: string, protocol: Protocol, channel: string) {
    super(url, protocol);
    this.channelJson = JSON.stringify(channel);
    this.ws.on("error", (error) => this.fail(`publisher socket error: ${error.message}`));
    this.ws.on("close", (code) => this.fail(`publisher socket closed ${code}`));
  }

  private fail(reason: string) {
    this.errors++;
    this.firstError ??= reason;
  }

  /** Counts acknowledgements; drops `complete` (the end of each reply); leaves the handshake to BenchSocket; any other frame is an error. */
  protected override onRawFrame(data: Buffer): boolean {
    if (data.indexOf(DELIVERED) >= 0 || data.indexOf(PUBLISHED) >= 0) this.acked++;
    else if (data.indexOf(CONNECTION_ACK) >= 0) return false;
    else if (data.indexOf(COMPLETE) < 0) this.fail(String(data).slice(0, 300));
    return true;
  }

  publish(payloadJson: string): void {
    this.sendPublish(`p${++this.next}`, this.channelJson, payloadJson);
  }
}

/** Opens `count` subscriber sockets, at most `concurrency` handshakes at a time. */
async function connectAll(config: { url: string; system: SystemId }, count: number, concurrency: number, deadlineMs: number) {
  const protocol = PROTOCOL_OF[config.system];
  const subscribers: Subscriber[] = [];
  let failed = 0;
  let firstFailure: string | null = null;
  await openBounded(count, concurrency, deadlineMs, async () => {
    const subscriber = new Subscriber(config.url, protocol, config.system);
    try {
      await subscriber.ready();
      subscribers.push(subscriber);
    } catch (error) {
      failed++;
      firstFailure ??= (error as Error).message;
      subscriber.ws.terminate();
    }
  });
  return { subscribers, failed, firstFailure };
}

/** Waits until processes other than the server and this one use at most `cores` over a second, or `maxMs`. */
async function machineQuiet(serverPid: number, cores: number, maxMs: number): Promise<boolean> {
  const until = performance.now() + maxMs;
  while (performance.now() < until) {
    const busy0 = machineBusySeconds();
    const server0 = processCpuSeconds(serverPid);
    const self0 = process.cpuUsage();
    await sleep(1000);
    const self = process.cpuUsage(self0);
    const others = machineBusySeconds() - busy0 - (processCpuSeconds(serverPid) - server0) - (self.user + self.system) / 1e6;
    if (others <= cores) return true;
  }
  return false;
}

let stepCounter = 0;

async function runLadder(config: LadderConfig): Promise<LadderResult> {
  const started = performance.now();
  const setupMonoStartUs = monoUs();
  let deadlineMs = started + config.setupDeadlineSeconds * 1000;
  const notes: string[] = [];
  const protocol = PROTOCOL_OF[config.system];

  // Setup: subscribers, then the publisher, then readiness probes until every subscriber saw one.
  const { subscribers, failed, firstFailure } = await connectAll(config, config.subscribers, 100, deadlineMs);
  if (failed > 0 || subscribers.length < config.subscribers) {
    throw new Error(`only ${subscribers.length} of ${config.subscribers} subscribers connected (${failed} failed: ${firstFailure})`);
  }
  const subscribing = subscribers.map((subscriber) => subscriber.subscribe(config.channel));
  const publisher = new Publisher(config.url, protocol, config.channel);
  await publisher.ready();
  await Promise.race([Promise.all(subscribing), sleep(Math.max(0, deadlineMs - performance.now()))]);
  let round = 0;
  while (subscribers.some((s) => s.probeRound === 0)) {
    if (performance.now() > deadlineMs) throw new Error("subscribers never all received a readiness probe");
    publisher.publish(probePayload(++round));
    await sleep(round < 20 ? 100 : 500);
  }
  // Then wait for the last probe sent to reach everyone: nothing of the setup is still in flight.
  while (subscribers.some((s) => s.probeRound < round)) {
    if (performance.now() > deadlineMs) throw new Error("the last readiness probe never reached every subscriber");
    await sleep(50);
  }
  // Every subscriber is live and nothing of the setup is in flight: that is the setup time.
  const setupSeconds = (performance.now() - started) / 1000;
  const setupMonoEndUs = monoUs();
  await settle(config.serverPid, 60_000);
  const rssAfterSetupBytes = processRssBytes(config.serverPid);
  log(`${config.system}: ${config.subscribers} subscribers ready in ${setupSeconds.toFixed(1)} s`);
  deadlineMs = performance.now() + config.deadlineSeconds * 1000;
  const deadSubscribers = () => subscribers.reduce((n, s) => n + (s.dead ? 1 : 0), 0);

  const runStep = async (kind: StepResult["kind"], offered: number, seconds: number, attempt = 1): Promise<StepResult> => {
    const id = ++stepCounter;
    const stats = new StepStats();
    stepStats.set(id, stats);
    currentStep = stats;
    currentStepId = id;
    const messagesPerSec = offered / config.subscribers;
    const total = Math.max(1, Math.round(messagesPerSec * seconds));
    stats.expected = total * subscribers.length;
    const acked0 = publisher.acked;
    const errors0 = publisher.errors;
    const cpu0 = processCpuSeconds(config.serverPid);
    const gen0 = process.cpuUsage();
    const busy0 = machineBusySeconds();
    const monoStartUs = monoUs();
    const t0 = performance.now();
    let sent = 0;
    let maxSendLagMs = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        const due = Math.min(total, Math.floor(((now - t0) / 1000) * messagesPerSec) + 1);
        if (due > sent) maxSendLagMs = Math.max(maxSendLagMs, now - (t0 + (sent / messagesPerSec) * 1000));
        while (sent < due) {
          publisher.publish(benchPayload(id, nowUs()));
          sent++;
        }
        if (sent >= total) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, 2);
      tick();
    });
    const sendEnd = performance.now();
    const scheduledEnd = t0 + (total / messagesPerSec) * 1000;
    const allDelivered = await stats.complete(sendEnd + config.drainSeconds * 1000);
    const deliveredInTime = stats.delivered;
    // Publisher acknowledgements trail the deliveries a little; give them a moment.
    for (let i = 0; i < 100 && publisher.acked - acked0 + (publisher.errors - errors0) < sent; i++) await sleep(10);
    const wall = (performance.now() - t0) / 1000;
    const serverCpuSeconds = processCpuSeconds(config.serverPid) - cpu0;
    const gen = process.cpuUsage(gen0);
    const busy = machineBusySeconds() - busy0;
    const monoEndUs = monoUs();
    currentStep = null;
    currentStepId = -1;
    const p99Ms = quantileMs(stats.histogram, 99);
    const dead = deadSubscribers();
    const publishErrors = publisher.errors - errors0;
    const keepsUp = allDelivered && stats.lastDeliveryMs <= scheduledEnd + config.keepUpSlackMs && publishErrors === 0 && dead === 0;
    const fanout = stats.fanout();
    const failure = !allDelivered
      ? `delivered ${deliveredInTime} of ${stats.expected} within ${config.drainSeconds} s after the last send`
      : p99Ms > config.p99LimitMs
        ? `p99 ${p99Ms.toFixed(1)} ms > ${config.p99LimitMs} ms`
        : publishErrors > 0
          ? `${publishErrors} publish errors: ${publisher.firstError}`
          : dead > 0
            ? `${dead} subscribers ended: ${subscribers.find((s) => s.dead)?.deadReason}`
            : null;
    const result: StepResult = {
      kind,
      offeredPerSec: Math.round(offered),
      messagesPerSec: Number(messagesPerSec.toFixed(3)),
      seconds,
      sent,
      acked: publisher.acked - acked0,
      publishErrors,
      expected: stats.expected,
      delivered: stats.delivered,
      achievedPerSec: Math.round(stats.delivered / ((stats.lastDeliveryMs - t0) / 1000)),
      p50Ms: round3(quantileMs(stats.histogram, 50)),
      p99Ms: round3(p99Ms),
      p999Ms: round3(quantileMs(stats.histogram, 99.9)),
      maxMs: round3(stats.histogram.maxValue / 1000),
      fanoutP50Ms: round3(fanout.p50),
      fanoutMaxMs: round3(fanout.max),
      serverCpuSeconds: round3(serverCpuSeconds),
      serverCpuUtil: round3(serverCpuSeconds / wall),
      cpuSecondsPer100k: round3(stats.delivered > 0 ? (serverCpuSeconds / stats.delivered) * 100_000 : Number.NaN),
      serverRssBytes: processRssBytes(config.serverPid),
      generatorCpuUtil: round3((gen.user + gen.system) / 1e6 / wall),
      otherCpuCores: round3(Math.max(0, busy - serverCpuSeconds - (gen.user + gen.system) / 1e6) / wall),
      maxSendLagMs: round3(maxSendLagMs),
      deadSubscribers: dead,
      pass: failure === null,
      failure,
      keepsUp,
      monoStartUs,
      monoEndUs,
      attempt,
    };
    log(
      `${config.system} ${config.subscribers} subs ${kind} ${result.offeredPerSec}/s: delivered ${result.delivered}/${result.expected}` +
        ` p50 ${result.p50Ms} p99 ${result.p99Ms} fan-out ${result.fanoutP50Ms} ms, server cpu ${result.serverCpuUtil}, gen cpu ${result.generatorCpuUtil}, others ${result.otherCpuCores}` +
        ` -> ${result.pass ? "pass" : `FAIL (${failure})`}${result.keepsUp ? ", keeps up" : ", does not keep up"}`,
    );
    return result;
  };

  const remaining = () => deadlineMs - performance.now();
  /** Runs a step; a failure under competing load is retried once when the machine is quieter. */
  const measure = async (kind: StepResult["kind"], offered: number): Promise<StepResult> => {
    const first = await runStep(kind, offered, config.stepSeconds);
    steps.push(first);
    if ((first.pass && first.keepsUp) || first.otherCpuCores <= config.retryAboveOtherCores) return first;
    if (remaining() < (2 * config.stepSeconds + config.drainSeconds + 40) * 1000) return first;
    await settle(config.serverPid, 20_000);
    const quiet = await machineQuiet(config.serverPid, config.retryAboveOtherCores, 30_000);
    log(`retrying ${Math.round(offered)}/s (other work used ${first.otherCpuCores} cores${quiet ? "" : "; still busy"})`);
    const second = await runStep(kind, offered, config.stepSeconds, 2);
    steps.push(second);
    return second;
  };
  const steps: StepResult[] = [];
  const warmup = config.warmupSeconds > 0 ? await runStep("warmup", config.rates[0]!, config.warmupSeconds) : null;
  await settle(config.serverPid, 10_000);
  let stoppedBy = "end of ladder";
  // Climb while the server keeps up; the p99 bound is judged on the same steps.
  for (const rate of config.rates) {
    if (remaining() < (config.stepSeconds + config.drainSeconds + 5) * 1000) {
      stoppedBy = "time limit";
      notes.push(`ladder stopped by the time limit before ${rate}/s`);
      break;
    }
    const step = await measure("ladder", rate);
    if (!step.keepsUp) {
      stoppedBy = `did not keep up at ${Math.round(rate)}/s: ${step.failure ?? "deliveries finished too late"}`;
      break;
    }
    await settle(config.serverPid, 10_000);
  }
  // Bisection of each boundary (keep-up, then p99), while every subscriber is still alive.
  const boundary = (ok: (s: StepResult) => boolean) => {
    // A step that was retried is superseded by its retry; the half-max step bounds nothing.
    const final = steps.filter((s, i) => s.kind !== "half-max" && !(s.attempt === 1 && steps[i + 1]?.attempt === 2));
    const passes = final.filter(ok).map((s) => s.offeredPerSec);
    const low = passes.length ? Math.max(...passes) : null;
    const fails = final.filter((s) => !ok(s) && (low === null || s.offeredPerSec > low)).map((s) => s.offeredPerSec);
    return { low, high: fails.length ? Math.min(...fails) : null };
  };
  const refine = async (kind: "refine" | "refine-p99", ok: (s: StepResult) => boolean) => {
    for (let i = 0; i < config.refineSteps; i++) {
      const { low, high } = boundary(ok);
      if (low === null || high === null || high / low < 1.08) return;
      const settled = await settle(config.serverPid, 20_000);
      if (!settled || deadSubscribers() > 0 || remaining() < (config.stepSeconds + config.drainSeconds + 25) * 1000) {
        notes.push(`${kind} skipped: ${!settled ? "server still busy" : deadSubscribers() > 0 ? "subscribers ended" : "time limit"}`);
        return;
      }
      await measure(kind, Math.sqrt(low * high));
    }
  };
  // Half of the highest rate kept up with on the ladder (before the bisection, which may use up the
  // time left): the latency with headroom.
  let halfMax: StepResult | null = null;
  const climbed = boundary((s) => s.keepsUp).low;
  if (config.halfMaxStep && climbed !== null && deadSubscribers() === 0) {
    if (remaining() < (config.stepSeconds + config.drainSeconds + 25) * 1000) notes.push("half-max step skipped: time limit");
    else {
      await settle(config.serverPid, 20_000);
      halfMax = await measure("half-max", climbed / 2);
    }
  }
  await refine("refine", (s) => s.keepsUp);
  await refine("refine-p99", (s) => s.pass);
  const strict = boundary((s) => s.pass);
  const keepUp = boundary((s) => s.keepsUp);
  const maxGenerator = Math.max(0, ...steps.filter((s) => s.keepsUp).map((s) => s.generatorCpuUtil));
  if (maxGenerator > 0.85) notes.push(`load generator near saturation (${maxGenerator} of a core): the maximum may be the generator's`);
  return {
    mode: "ladder",
    system: config.system,
    subscribers: config.subscribers,
    setupSeconds: round3(setupSeconds),
    setupMonoStartUs,
    setupMonoEndUs,
    rssAfterSetupBytes,
    warmup,
    steps,
    maxSustainedPerSec: strict.low ?? 0,
    firstFailingPerSec: strict.high,
    maxKeepUpPerSec: keepUp.low ?? 0,
    firstNotKeepingUpPerSec: keepUp.high,
    halfMax,
    stoppedBy,
    notes,
  };
}

async function runIdle(config: IdleConfig): Promise<IdleResult> {
  const started = performance.now();
  const deadlineMs = started + config.deadlineSeconds * 1000;
  const notes: string[] = [];
  await settle(config.serverPid, 10_000);
  const rssBaselineBytes = processRssBytes(config.serverPid);
  const connectStart = performance.now();
  const { subscribers, failed, firstFailure } = await connectAll(config, config.connections, 200, deadlineMs);
  const connectSeconds = (performance.now() - connectStart) / 1000;
  if (failed > 0) notes.push(`${failed} connections failed: ${firstFailure}`);
  await settle(config.serverPid, 20_000);
  await sleep(1000);
  const rssConnectedBytes = processRssBytes(config.serverPid);
  log(`${config.system}: ${subscribers.length} idle connections, server RSS ${(rssConnectedBytes / 2 ** 20).toFixed(1)} MiB`);

  // One subscription per connection, each on a channel of its own (one channel for all would
  // make P deliver every JOIN to every earlier subscriber: 50 million events for 10,000).
  const subscribeStart = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < subscribers.length; i++) {
    pending.push(subscribers[i]!.subscribe(`idle-${i}`));
    if (i % 500 === 499) await sleep(20); // let the server keep up
  }
  const all = await Promise.race([
    Promise.all(pending).then(() => true),
    sleep(Math.max(1000, deadlineMs - performance.now())).then(() => false),
  ]);
  if (!all) notes.push("not every subscription was confirmed before the deadline");
  await settle(config.serverPid, 20_000);
  const subscribeSeconds = (performance.now() - subscribeStart) / 1000;
  await sleep(1000);
  const rssSubscribedBytes = processRssBytes(config.serverPid);
  const openAtEnd = subscribers.filter((s) => !s.dead && s.ws.readyState === WebSocket.OPEN).length;
  const subscribed = config.system === "Y" ? openAtEnd : subscribers.filter((s) => s.subscribed).length;
  if (config.system === "Y") notes.push("Y sends nothing on subscribe: subscriptions counted as the connections still open");
  log(`${config.system}: ${subscribed} subscribed, ${openAtEnd} open, server RSS ${(rssSubscribedBytes / 2 ** 20).toFixed(1)} MiB`);
  return {
    mode: "idle",
    system: config.system,
    connections: config.connections,
    connected: subscribers.length,
    subscribed,
    failed,
    openAtEnd,
    rssBaselineBytes,
    rssConnectedBytes,
    rssSubscribedBytes,
    bytesPerConnection: Math.round((rssConnectedBytes - rssBaselineBytes) / Math.max(1, subscribers.length)),
    bytesPerSubscribedConnection: Math.round((rssSubscribedBytes - rssBaselineBytes) / Math.max(1, subscribers.length)),
    connectSeconds: round3(connectSeconds),
    subscribeSeconds: round3(subscribeSeconds),
    notes,
  };
}

async function main(): Promise<void> {
  const path = process.argv[2];
  if (!path) throw new Error("usage: load.ts <config.json>");
  const config = JSON.parse(readFileSync(path, "utf8")) as LoadConfig;
  process.once("SIGTERM", () => process.exit(0));
  const result =
    config.mode === "ladder" ? await runLadder(config) : config.mode === "idle" ? await runIdle(config) : await runRooms(config);
  writeFileSync(config.out, JSON.stringify(result, null, 2));
  console.log(`RESULT ${config.out}`);
  // Keep the sockets open until the orchestrator has stopped the server (closing them first would
  // make P publish a LEAVE per socket to every remaining subscriber); bounded in any case.
  setTimeout(() => process.exit(0), 60_000);
}

main().catch((error: unknown) => {
  console.error(`[load] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
