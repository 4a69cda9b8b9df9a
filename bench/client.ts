/**
 * The client side every load generator shares (bench/load.ts, bench/load-rooms.ts,
 * bench/load-memory.ts): one `ws` socket per client speaking graphql-transport-ws (Y, P, P+T) or
 * R's small JSON protocol by hand, with no client library, so that the client-side cost is the
 * same for every system; a pool that opens many of them a bounded number at a time; a reader of
 * the payload marker that gets a delivery's step and send time without parsing the frame; and
 * the clocks and latency histograms the generators measure with.
 */
import hdr from "hdr-histogram-js";
import WebSocket from "ws";
import { frames, type Protocol } from "./shared.js";

/** A line of the load generator's log (the orchestrator passes it on). */
export const log = (message: string) => console.log(`[load] ${message}`);

/** `performance.now()` in whole microseconds: the clock of the send stamps in bench payloads. */
export const nowUs = () => Math.round(performance.now() * 1000);

/** CLOCK_MONOTONIC in microseconds, the clock V8 CPU profiles are stamped with. */
export const monoUs = () => Number(process.hrtime.bigint() / 1000n);

/** A histogram of latencies in µs, from 1 µs to 120 s, 3 significant digits. */
export const latencyHistogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });

/** The `q`th percentile of a {@link latencyHistogram}, in ms (NaN when it is empty). */
export function quantileMs(histogram: ReturnType<typeof latencyHistogram>, q: number): number {
  return histogram.totalCount === 0 ? Number.NaN : histogram.getValueAtPercentile(q) / 1000;
}

/** A frame that {@link BenchSocket.onRawFrame} left, parsed: graphql-transport-ws or R's protocol. */
export interface Frame {
  readonly type?: string;
  readonly id?: string;
  readonly payload?: unknown;
  /** R's `subscribed`: the channel subscribed to. */
  readonly channel?: string;
}

const PONG = '{"type":"pong"}';

/**
 * One client socket. On open it does the handshake (graphql-transport-ws: `connection_init`, then
 * `connection_ack`; R has none), it answers `ping` with `pong`, and an error or a close ends it
 * (`dead`, with the first reason). Subclasses read every other frame: {@link onRawFrame} gets the
 * bytes first (the hot path: deliveries and replies found by a byte search), {@link onFrame} the
 * frames it left, parsed once.
 */
export abstract class BenchSocket {
  readonly ws: WebSocket;
  /** The handshake is done (graphql-transport-ws: `connection_ack` received; R: the socket is open). */
  connected = false;
  dead = false;
  /** Why the socket ended: its first error or close, or what a subclass ended it for. */
  deadReason = "";
  private onHandshake: ((failure?: Error) => void) | null = null;

  /** `localAddress`: the source address to connect from (spreads many sockets over loopback addresses). */
  constructor(
    url: string,
    readonly protocol: Protocol,
    options: { readonly localAddress?: string } = {},
  ) {
    this.ws = new WebSocket(url, protocol === "gql" ? ["graphql-transport-ws"] : [], {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      ...options,
    });
    this.ws.on("error", (error) => this.end(`socket error: ${error.message}`));
    this.ws.on("close", (code) => this.end(`closed ${code}`));
    this.ws.on("open", () => {
      if (protocol === "gql") this.ws.send(frames.connectionInit);
      else this.markConnected();
    });
    this.ws.on("message", (data: Buffer) => this.receive(data));
  }

  /** Resolves once the handshake is done; rejects with the reason when the socket ends first. One caller per socket. */
  ready(): Promise<void> {
    if (this.connected) return Promise.resolve();
    if (this.dead) return Promise.reject(new Error(this.deadReason));
    return new Promise((resolve, reject) => {
      this.onHandshake = (failure) => (failure ? reject(failure) : resolve());
    });
  }

  /** Subscribes to `channel`: the bench subscription under operation id `id` (R's protocol has no ids). */
  sendSubscribe(id: string, channel: string): void {
    this.ws.send(this.protocol === "gql" ? frames.gqlSubscribe(id, channel) : frames.rawSubscribe(channel));
  }

  /** Publishes `payloadJson` to `channelJson` (both JSON already): `sendMessage` under operation id `id`, or R's publish. */
  sendPublish(id: string, channelJson: string, payloadJson: string): void {
    this.ws.send(
      this.protocol === "gql" ? frames.gqlPublish(id, channelJson, payloadJson) : frames.rawPublish(id, channelJson, payloadJson),
    );
  }

  /**
   * Every frame comes here first, unparsed. Returns true when it was handled (or is to be dropped),
   * false to have it parsed: the handshake's frames and `ping` are then taken care of, and the rest
   * goes to {@link onFrame}.
   */
  protected abstract onRawFrame(data: Buffer): boolean;

  /** A parsed frame other than `connection_ack` and `ping`; `data` is its bytes. */
  protected onFrame(_frame: Frame, _data: Buffer): void {}

  /** Called once, when the socket ends (see {@link end}). */
  protected onEnd(_reason: string): void {}

  /** Marks the socket dead for `reason`, unless it already is; a pending {@link ready} rejects. */
  protected end(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.deadReason = reason;
    this.onHandshake?.(new Error(reason));
    this.onHandshake = null;
    this.onEnd(reason);
  }

  private markConnected(): void {
    this.connected = true;
    this.onHandshake?.();
    this.onHandshake = null;
  }

  private receive(data: Buffer): void {
    if (this.onRawFrame(data)) return;
    let frame: Frame;
    try {
      frame = JSON.parse(String(data)) as Frame;
    } catch {
      return;
    }
    if (frame.type === "connection_ack") this.markConnected();
    else if (frame.type === "ping") this.ws.send(PONG);
    else this.onFrame(frame, data);
  }
}

/**
 * Calls `open(0)`, `open(1)`, … `open(count − 1)`, at most `concurrency` of them under way at a
 * time, and starts none once `deadlineMs` (`performance.now()`) has passed. Resolves with how many
 * were started, once they have all settled; rejects as soon as one of them rejects.
 */
export async function openBounded(
  count: number,
  concurrency: number,
  deadlineMs: number,
  open: (index: number) => Promise<void>,
): Promise<number> {
  let started = 0;
  const worker = async () => {
    while (started < count && performance.now() < deadlineMs) await open(started++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return started;
}

const BAR = 0x7c; // '|', the marker's separator
/** The kind of a bench message's marker, `B|<step>|<sent µs>|` (see `benchPayload` in shared.ts). */
export const BENCH_MARK = 0x42; // 'B'
/** The kind of a readiness probe's marker, `Q|<round>|…` (see `probePayload` in shared.ts). */
export const PROBE_MARK = 0x51; // 'Q'

/**
 * Reads the marker of a bench payload in a frame, in place: the marker is the only `|` in a
 * delivered frame, so one byte search finds it and its decimal fields are read byte by byte,
 * without parsing the frame or allocating. One reader serves every socket of a generator.
 */
export class MarkerReader {
  private data: Buffer = Buffer.alloc(0);
  /** Where the next field starts in `data`. */
  private at = 0;

  /** Starts on a frame: returns the marker's kind (the byte before the first `|`), 0 when it has none. */
  start(data: Buffer): number {
    const bar = data.indexOf(BAR);
    if (bar <= 0) return 0;
    this.data = data;
    this.at = bar + 1;
    return data[bar - 1]!;
  }

  /** The next field, a decimal number ended by `|`. */
  number(): number {
    const data = this.data;
    let i = this.at;
    let value = 0;
    for (let c = data[i++]!; c !== BAR; c = data[i++]!) value = value * 10 + (c - 48);
    this.at = i;
    return value;
  }

  /** The first byte of the next field (the channel kind of a rooms probe, `U` or `R`). */
  peek(): number {
    return this.data[this.at]!;
  }
}
