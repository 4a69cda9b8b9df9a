/**
 * The rooms workload of the load generator (bench/load.ts, mode `rooms`): chat traffic as it looks
 * in many small rooms. Every client has one WebSocket with two subscriptions, its personal channel
 * `user:<i>` and its room `room:<floor(i / roomSize)>`, and sends messages to its room over that
 * same socket (`sendMessage` over graphql-transport-ws for Y/P/P+T, `{"type":"publish"}` for R),
 * closed loop with a fixed number of messages in flight (sent, reply not yet received).
 *
 * Measures: setup (connect, subscribe both channels, every subscription seen live), server RSS per
 * connection, and for the measured messages (after a warm-up): publishes/s, server CPU per sent
 * message (/proc), and send-to-delivery latency over every delivery (each message reaches the
 * room's members, the sender included).
 */
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
import {
  benchPayload,
  machineBusySeconds,
  PROTOCOL_OF,
  type Protocol,
  padded,
  processCpuSeconds,
  processRssBytes,
  round3,
  type SystemId,
  settle,
  sleep,
} from "./shared.js";

export interface RoomsConfig {
  readonly mode: "rooms";
  readonly system: SystemId;
  readonly url: string;
  readonly serverPid: number;
  /** Clients, a multiple of `roomSize`. */
  readonly clients: number;
  readonly roomSize: number;
  /** Messages sent to rooms in the measured phase, and in the warm-up before it. */
  readonly messages: number;
  readonly warmupMessages: number;
  /** Messages sent but not yet answered, at most. */
  readonly inFlight: number;
  /** Bound on the whole run (setup included). */
  readonly deadlineSeconds: number;
  readonly out: string;
}

/** One phase of sends (warm-up or measured). */
export interface RoomsPhase {
  readonly messages: number;
  readonly replies: number;
  readonly errors: number;
  readonly firstError: string | null;
  readonly expectedDeliveries: number;
  readonly delivered: number;
  /** From the first send to the last reply or delivery. */
  readonly seconds: number;
  readonly publishesPerSec: number;
  readonly deliveriesPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
  readonly maxMs: number;
  readonly serverCpuSeconds: number;
  /** Server CPU per sent message, µs (utime + stime from /proc, 10 ms ticks). */
  readonly serverCpuMicrosPerMessage: number;
  readonly serverCpuUtil: number;
  readonly generatorCpuUtil: number;
  readonly otherCpuCores: number;
  /** CLOCK_MONOTONIC microseconds, for cutting a CPU profile to this phase. */
  readonly monoStartUs: number;
  readonly monoEndUs: number;
}

export interface RoomsResult {
  readonly mode: "rooms";
  readonly system: SystemId;
  readonly clients: number;
  readonly rooms: number;
  readonly roomSize: number;
  readonly inFlight: number;
  readonly connectSeconds: number;
  /** Connect, subscribe to both channels, and every subscription seen live (a probe received on it). */
  readonly setupSeconds: number;
  readonly probeRounds: number;
  readonly rssBaselineBytes: number;
  readonly rssAfterSetupBytes: number;
  readonly rssAfterRunBytes: number;
  /** (RSS after setup − RSS before connecting) / clients: one socket with two subscriptions. */
  readonly rssPerConnectionBytes: number;
  readonly warmup: RoomsPhase;
  readonly measured: RoomsPhase;
  readonly deadClients: number;
  readonly notes: string[];
}

const marker = new MarkerReader();
const USER_PROBE = 0x55; // 'U': a probe on a user channel
const DELIVERED = Buffer.from('"delivered":true');
const PUBLISHED = Buffer.from('"type":"published"');

/** Deliveries and replies of the current phase, fed by every client socket. */
class PhaseStats {
  delivered = 0;
  replies = 0;
  errors = 0;
  firstError: string | null = null;
  lastEventMs = 0;
  readonly histogram = latencyHistogram();

  constructor(readonly id: number) {}

  delivery(sentUs: number): void {
    this.delivered++;
    const latency = nowUs() - sentUs;
    this.histogram.recordValue(Math.max(latency, 1));
    this.lastEventMs = performance.now();
  }
}

let phase: PhaseStats | null = null;
/** Called with each reply to a send, delivered or refused (setup: probes; phases: messages). */
let onReply: (() => void) | null = null;
/** The first failed send outside a phase (a readiness probe). */
let setupError: string | null = null;

/** A probe payload: `Q|<round>|U|…` on a user channel, `Q|<round>|R|…` on a room. */
const probe = (round: number, kind: "U" | "R") => padded(`Q|${round}|${kind}|`);

/** One client: one socket, subscribed to its user channel and its room, sending to its room. */
class RoomClient extends BenchSocket {
  readonly userChannel: string;
  readonly roomChannel: string;
  readonly userChannelJson: string;
  readonly roomChannelJson: string;
  /** Subscriptions the server confirmed (R: `subscribed`; P: the first event on it, our JOIN). */
  readonly confirmed = new Set<string>();
  userProbe = 0;
  roomProbe = 0;
  private nextId = 0;

  constructor(
    url: string,
    protocol: Protocol,
    readonly index: number,
    room: number,
  ) {
    super(url, protocol);
    this.userChannel = `user:${index}`;
    this.roomChannel = `room:${room}`;
    this.userChannelJson = JSON.stringify(this.userChannel);
    this.roomChannelJson = JSON.stringify(this.roomChannel);
  }

  protected override onRawFrame(data: Buffer): boolean {
    const kind = marker.start(data);
    if (kind === BENCH_MARK) {
      const id = marker.number();
      const sentUs = marker.number();
      if (phase && id === phase.id) phase.delivery(sentUs);
      return true;
    }
    if (kind === PROBE_MARK) {
      const round = marker.number();
      if (marker.peek() === USER_PROBE) this.userProbe = Math.max(this.userProbe, round);
      else this.roomProbe = Math.max(this.roomProbe, round);
      return true;
    }
    if (data.indexOf(DELIVERED) >= 0 || data.indexOf(PUBLISHED) >= 0) {
      if (phase) phase.replies++;
      onReply?.();
      return true;
    }
    return false;
  }

  protected override onFrame(frame: Frame, data: Buffer): void {
    switch (frame.type) {
      case "subscribed": // R
        this.confirmed.add(String(frame.channel));
        break;
      case "next": // P: an event without a marker (a JOIN) proves the subscription live
        if (frame.id === "u" || frame.id === "r") this.confirmed.add(frame.id);
        else this.replyError(`reply ${String(data).slice(0, 300)}`);
        break;
      case "complete":
        if (frame.id === "u" || frame.id === "r") this.end(`subscription ${frame.id} completed`);
        break;
      case "error":
        if (frame.id === "u" || frame.id === "r")
          this.end(`subscription ${frame.id} failed: ${JSON.stringify(frame.payload).slice(0, 300)}`);
        else this.replyError(`send failed: ${JSON.stringify(frame.payload).slice(0, 300)}`);
        break;
    }
  }

  private replyError(reason: string) {
    if (phase) {
      phase.errors++;
      phase.firstError ??= reason;
    } else setupError ??= reason;
    onReply?.();
  }

  /** Subscribes to the user channel (id `u`) and the room (id `r`). */
  subscribe(): void {
    this.sendSubscribe("u", this.userChannel);
    this.sendSubscribe("r", this.roomChannel);
  }

  /** Whether the server confirmed both subscriptions (never for Y, which confirms nothing). */
  get bothConfirmed(): boolean {
    return this.confirmed.size >= 2;
  }

  /** Sends `payloadJson` to this client's room (or its user channel) over its own socket. */
  send(payloadJson: string, toUserChannel = false): void {
    this.sendPublish(`m${++this.nextId}`, toUserChannel ? this.userChannelJson : this.roomChannelJson, payloadJson);
  }

  /** Whether this client's subscriptions delivered probe `round` (both channels). */
  saw(round: number): boolean {
    return this.userProbe >= round && this.roomProbe >= round;
  }
}

/** Opens every client's socket, at most 100 handshakes at a time. */
async function connectAll(config: RoomsConfig, deadlineMs: number): Promise<RoomClient[]> {
  const protocol = PROTOCOL_OF[config.system];
  const clients: RoomClient[] = new Array(config.clients);
  const started = await openBounded(config.clients, 100, deadlineMs, async (index) => {
    const client = new RoomClient(config.url, protocol, index, Math.floor(index / config.roomSize));
    await client.ready();
    clients[index] = client;
  });
  if (started < config.clients) throw new Error(`connected only ${started} of ${config.clients} clients in time`);
  return clients;
}

/** Runs the rooms workload against a running server. */
export async function runRooms(config: RoomsConfig): Promise<RoomsResult> {
  const started = performance.now();
  const deadlineMs = started + config.deadlineSeconds * 1000;
  const notes: string[] = [];
  const rooms = config.clients / config.roomSize;
  await settle(config.serverPid, 10_000);
  const rssBaselineBytes = processRssBytes(config.serverPid);

  // Setup: connect, subscribe, then probe rounds until one round reached every subscription.
  const setupStart = performance.now();
  const clients = await connectAll(config, deadlineMs);
  const connectSeconds = (performance.now() - setupStart) / 1000;
  for (const client of clients) client.subscribe();
  if (config.system !== "Y") {
    // R and P confirm subscriptions; wait for that before probing (Y confirms nothing).
    while (clients.some((c) => !c.bothConfirmed && !c.dead)) {
      if (performance.now() > deadlineMs) throw new Error("not every subscription was confirmed in time");
      await sleep(20);
    }
  }
  // A round is over when every probe of it was answered (plus a moment for the deliveries); a
  // round that reached every subscription ends the setup. Y confirms nothing, so its first round
  // may go out before some of its subscriptions exist.
  let round = 0;
  let probesSent = 0;
  let probesAnswered = 0;
  onReply = () => probesAnswered++;
  for (;;) {
    const dead = clients.find((c) => c.dead);
    if (dead) throw new Error(`client ${dead.index} ended during setup: ${dead.deadReason}`);
    if (performance.now() > deadlineMs)
      throw new Error(`subscriptions never all received a readiness probe${setupError ? ` (${setupError})` : ""}`);
    round++;
    for (const client of clients) {
      client.send(probe(round, "U"), true);
      probesSent++;
      if (client.index % config.roomSize === 0) {
        client.send(probe(round, "R"));
        probesSent++;
      }
    }
    const roundEnd = performance.now() + 10_000;
    while (performance.now() < roundEnd && probesAnswered < probesSent && !clients.every((c) => c.saw(round))) await sleep(5);
    const graceEnd = performance.now() + 200;
    while (performance.now() < graceEnd && !clients.every((c) => c.saw(round))) await sleep(5);
    if (clients.every((c) => c.saw(round))) break;
  }
  onReply = null;
  const setupSeconds = (performance.now() - setupStart) / 1000;
  await settle(config.serverPid, 30_000);
  await sleep(1000);
  const rssAfterSetupBytes = processRssBytes(config.serverPid);
  log(
    `${config.system}: ${config.clients} clients in ${rooms} rooms ready in ${setupSeconds.toFixed(2)} s (${round} probe rounds), RSS ${(rssAfterSetupBytes / 2 ** 20).toFixed(1)} MiB`,
  );

  const runPhase = async (id: number, messages: number): Promise<RoomsPhase> => {
    const stats = new PhaseStats(id);
    phase = stats;
    const expectedDeliveries = messages * config.roomSize;
    let sent = 0;
    let answered = 0;
    // Message k goes to room k mod rooms, from that room's member floor(k / rooms) mod roomSize:
    // consecutive messages spread over the rooms, and every client sends in turn.
    const sendNext = () => {
      const k = sent++;
      const room = k % rooms;
      const member = Math.floor(k / rooms) % config.roomSize;
      clients[room * config.roomSize + member]!.send(benchPayload(id, nowUs()));
    };
    const cpu0 = processCpuSeconds(config.serverPid);
    const gen0 = process.cpuUsage();
    const busy0 = machineBusySeconds();
    const monoStartUs = monoUs();
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<void>((resolve) => {
      const check = () => {
        if (answered >= messages && stats.delivered >= expectedDeliveries) resolve();
      };
      onReply = () => {
        answered++;
        stats.lastEventMs = performance.now();
        if (sent < messages) sendNext();
        check();
      };
      timer = setInterval(check, 5);
    });
    for (let i = 0; i < Math.min(config.inFlight, messages); i++) sendNext();
    const finished = await Promise.race([done.then(() => true), sleep(Math.max(1000, deadlineMs - performance.now())).then(() => false)]);
    clearInterval(timer);
    const seconds = (stats.lastEventMs - t0) / 1000;
    const serverCpuSeconds = processCpuSeconds(config.serverPid) - cpu0;
    const gen = process.cpuUsage(gen0);
    const wall = (performance.now() - t0) / 1000;
    const busy = machineBusySeconds() - busy0;
    const monoEndUs = monoUs();
    onReply = null;
    phase = null;
    if (!finished)
      notes.push(
        `phase ${id}: ${answered} of ${messages} replies, ${stats.delivered} of ${expectedDeliveries} deliveries before the deadline`,
      );
    const quantile = (q: number) => round3(quantileMs(stats.histogram, q));
    const result: RoomsPhase = {
      messages: sent,
      replies: stats.replies,
      errors: stats.errors,
      firstError: stats.firstError,
      expectedDeliveries,
      delivered: stats.delivered,
      seconds: round3(seconds),
      publishesPerSec: Math.round(sent / seconds),
      deliveriesPerSec: Math.round(stats.delivered / seconds),
      p50Ms: quantile(50),
      p99Ms: quantile(99),
      p999Ms: quantile(99.9),
      maxMs: round3(stats.histogram.maxValue / 1000),
      serverCpuSeconds: round3(serverCpuSeconds),
      serverCpuMicrosPerMessage: Math.round((serverCpuSeconds / sent) * 1e6),
      serverCpuUtil: round3(serverCpuSeconds / wall),
      generatorCpuUtil: round3((gen.user + gen.system) / 1e6 / wall),
      otherCpuCores: round3(Math.max(0, busy - serverCpuSeconds - (gen.user + gen.system) / 1e6) / wall),
      monoStartUs,
      monoEndUs,
    };
    log(
      `${config.system} rooms ${id === 1 ? "warm-up" : "measured"}: ${result.messages} messages, ${result.publishesPerSec}/s, delivered ${result.delivered}/${expectedDeliveries}, ` +
        `p50 ${result.p50Ms} p99 ${result.p99Ms} ms, server ${result.serverCpuMicrosPerMessage} µs/message (cpu ${result.serverCpuUtil}), gen cpu ${result.generatorCpuUtil}, others ${result.otherCpuCores}` +
        (result.errors ? `, ${result.errors} errors: ${result.firstError}` : ""),
    );
    return result;
  };

  const warmup = await runPhase(1, config.warmupMessages);
  await settle(config.serverPid, 20_000);
  const measured = await runPhase(2, config.messages);
  const deadClients = clients.filter((c) => c.dead).length;
  if (deadClients > 0) notes.push(`${deadClients} clients ended: ${clients.find((c) => c.dead)?.deadReason}`);
  if (measured.generatorCpuUtil > 0.85)
    notes.push(`load generator near saturation (${measured.generatorCpuUtil} of a core): publishes/s may be the generator's`);
  return {
    mode: "rooms",
    system: config.system,
    clients: config.clients,
    rooms,
    roomSize: config.roomSize,
    inFlight: config.inFlight,
    connectSeconds: round3(connectSeconds),
    setupSeconds: round3(setupSeconds),
    probeRounds: round,
    rssBaselineBytes,
    rssAfterSetupBytes,
    rssAfterRunBytes: processRssBytes(config.serverPid),
    rssPerConnectionBytes: Math.round((rssAfterSetupBytes - rssBaselineBytes) / config.clients),
    warmup,
    measured,
    deadClients,
    notes,
  };
}
