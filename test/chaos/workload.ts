import { type Client, createClient } from "graphql-ws";
import WebSocket from "ws";
import { clientToken } from "../helpers/tokens.js";
import type { Cluster, Instance } from "./cluster.js";
import { ADMIN_TOKEN, JWT_SECRET } from "./cluster.js";

/** How a send ended, as its sender saw it. */
export type SendOutcome =
  /** Acknowledged: the server said it was delivered (or dropped by a trigger: `delivered: false`). */
  | "ack"
  /** The server answered with an error and its code: the message must not have reached anyone. */
  | "error"
  /** No answer (the connection went away, or none came in time): it may or may not have been delivered. */
  | "unknown";

/** One uniquely numbered message and what became of it. */
export interface SendRecord {
  readonly n: number;
  readonly channel: string;
  readonly instance: number;
  readonly door: "ws" | "http";
  readonly at: number;
  doneAt: number;
  outcome: SendOutcome;
  code?: string;
  /** The error's message, kept for refusals other than `SERVICE_UNAVAILABLE` (to show what went wrong). */
  message?: string;
  eventId?: string;
  seq?: number | null;
}

/** One event a subscription received. */
export interface Observation {
  /** One subscription on one connection: a reconnect starts a new one. */
  readonly subscription: string;
  readonly instance: number;
  readonly channel: string;
  readonly eventId: string;
  readonly action: string;
  readonly seq: number | null;
  /** The message number (`payload.n`), for MESSAGE events. */
  readonly n: number | null;
  readonly clientId: string;
  readonly at: number;
}

/** The live membership of a subscriber at the end: its client id on its current connection, per channel. */
export interface Member {
  readonly subscriber: string;
  readonly instance: number;
  readonly channel: string;
  readonly clientId: string;
}

const EVENT = "id action channel seq payload client { id }";
const SUBSCRIBE = `subscription ($name: String!) { channel(name: $name) { ${EVENT} } }`;
const SEND = `mutation ($channel: String!, $payload: JSON!) { sendMessage(channel: $channel, payload: $payload) { delivered event { id seq } } }`;

/** How long a send may take before it counts as unanswered. */
const SEND_TIMEOUT_MS = 20_000;

/** A GraphQL answer over HTTP, as JSON. */
interface HttpAnswer {
  data?: Record<string, any> | null;
  errors?: { message: string; extensions?: { code?: string; outcome?: string } }[];
}

/** Runs an admin operation over HTTP against `instance`. */
export async function adminRequest(instance: Instance, query: string, variables: Record<string, unknown> = {}): Promise<HttpAnswer> {
  const response = await fetch(instance.httpUrl, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(30_000),
  });
  return (await response.json()) as HttpAnswer;
}

/** The channels of a run: some keep history (checked against it), some do not. */
export interface Channels {
  readonly history: readonly string[];
  readonly live: readonly string[];
}

/** Most messages sent to one history channel, so its whole history stays readable (1,000 at most). */
export const HISTORY_QUOTA = 900;

/**
 * The clients of a run: subscribers on every instance (each on every channel, over one graphql-ws
 * connection that reconnects), and senders on every instance (one over the WebSocket, one over
 * HTTP), each sending uniquely numbered messages one at a time.
 */
export class Workload {
  readonly sends: SendRecord[] = [];
  readonly observations: Observation[] = [];
  private readonly members = new Map<string, Member>();
  private readonly clients: Client[] = [];
  private nextN = 1;
  private readonly perChannel = new Map<string, number>();
  private running = false;
  private closing = false;
  private readonly loops: Promise<void>[] = [];

  constructor(
    private readonly cluster: Cluster,
    private readonly channels: Channels,
    private readonly random: () => number,
    private readonly options: { subscribersPerInstance: number; sendIntervalMs: number },
  ) {}

  /** Subscribes every subscriber and waits until each has seen its own JOIN on every channel. */
  async subscribe(): Promise<void> {
    const all = [...this.channels.history, ...this.channels.live];
    const joined: Promise<void>[] = [];
    for (const instance of this.cluster.instances) {
      for (let s = 0; s < this.options.subscribersPerInstance; s++) {
        const subscriber = `sub-${instance.index}-${s}`;
        let connection = 0;
        const client = this.connect(instance, () => connection++, await clientToken(JWT_SECRET, subscriber, { expires: "1d" }));
        for (const channel of all) joined.push(this.follow(client, subscriber, instance, channel, () => connection));
      }
    }
    await Promise.all(joined);
  }

  /** Starts the senders. */
  start(): void {
    this.running = true;
    for (const instance of this.cluster.instances) {
      const client = this.connectSender(instance);
      this.loops.push(this.sendLoop(instance, "ws", (channel, payload) => this.sendOverWs(client, channel, payload)));
      this.loops.push(this.sendLoop(instance, "http", (channel, payload) => this.sendOverHttp(instance, channel, payload)));
    }
  }

  /** Stops the senders and waits for the sends under way to end. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }

  /** Who is subscribed now, per channel: what presence must converge to. */
  liveMembers(): Member[] {
    return [...this.members.values()];
  }

  /** Disconnects every client. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.clients.map((client) => client.dispose()));
  }

  /**
   * A sender's connection. graphql-ws's client sends the operations under way again when it
   * reconnects (retryAttempts), which would run a `sendMessage` whose answer was lost a second time;
   * a sender here never resends (an answer lost is an unknown outcome), and connects again for its next send.
   */
  private connectSender(instance: Instance): Client {
    const client = createClient({ url: instance.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0, keepAlive: 5_000 });
    this.clients.push(client);
    return client;
  }

  private connect(instance: Instance, onConnected: () => void, authToken?: string): Client {
    const client = createClient({
      url: instance.wsUrl,
      connectionParams: authToken ? { authToken } : undefined,
      webSocketImpl: WebSocket,
      lazy: false,
      retryAttempts: Number.POSITIVE_INFINITY,
      retryWait: (retries) => new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** retries))),
      shouldRetry: () => true,
      keepAlive: 5_000,
      onNonLazyError: () => {},
    });
    client.on("connected", onConnected);
    this.clients.push(client);
    return client;
  }

  /**
   * Follows one channel over `client` for the whole run: graphql-ws subscribes again after a
   * reconnect, and a subscription the server ends (say, refused during an outage) is started again.
   * Resolves at the first own JOIN.
   */
  private follow(client: Client, subscriber: string, instance: Instance, channel: string, connection: () => number): Promise<void> {
    const key = `${subscriber}:${channel}`;
    return new Promise((resolve) => {
      let attempt = 0;
      const subscribe = () => {
        let session: string;
        attempt++;
        // Subscribed until the server ends it or refuses it: a member, whether or not its own JOIN
        // reached it (pub/sub may drop it when this instance's Redis link was just back).
        this.members.set(key, { subscriber, instance: instance.index, channel, clientId: subscriber });
        client.subscribe<{
          channel: { id: string; action: string; channel: string; seq: number | null; payload: any; client: { id: string } };
        }>(
          { query: SUBSCRIBE, variables: { name: channel } },
          {
            next: ({ data }) => {
              if (!data) return;
              const event = data.channel;
              session = `${subscriber}#${connection()}.${attempt}:${channel}`;
              // Subscribers are authenticated: their client id is their name, on every connection.
              if (event.action === "JOIN" && event.client.id === subscriber) resolve();
              this.observations.push({
                subscription: session,
                instance: instance.index,
                channel,
                eventId: event.id,
                action: event.action,
                seq: event.seq,
                n: typeof event.payload?.n === "number" ? event.payload.n : null,
                clientId: event.client.id,
                at: Date.now(),
              });
            },
            error: () => again(),
            complete: () => again(),
          },
        );
      };
      const again = () => {
        this.members.delete(key);
        if (!this.closing) setTimeout(subscribe, 500);
      };
      subscribe();
    });
  }

  /** Picks a channel: history channels until each has its quota, then live ones. */
  private pickChannel(): string {
    const open = this.channels.history.filter((channel) => (this.perChannel.get(channel) ?? 0) < HISTORY_QUOTA);
    const pool = this.random() < 0.5 && open.length > 0 ? open : this.channels.live;
    const channel = pool[Math.floor(this.random() * pool.length)]!;
    this.perChannel.set(channel, (this.perChannel.get(channel) ?? 0) + 1);
    return channel;
  }

  private async sendLoop(
    instance: Instance,
    door: "ws" | "http",
    send: (channel: string, payload: { n: number }) => Promise<SendAnswer>,
  ): Promise<void> {
    while (this.running) {
      const n = this.nextN++;
      const record: SendRecord = {
        n,
        channel: this.pickChannel(),
        instance: instance.index,
        door,
        at: Date.now(),
        doneAt: 0,
        outcome: "unknown",
      };
      this.sends.push(record);
      Object.assign(record, await send(record.channel, { n }), { doneAt: Date.now() });
      await new Promise((resolve) => setTimeout(resolve, this.options.sendIntervalMs * (0.5 + this.random())));
    }
  }

  private sendOverWs(client: Client, channel: string, payload: { n: number }): Promise<SendAnswer> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (result: SendAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unsubscribe();
        resolve(result);
      };
      const timer = setTimeout(() => settle({ outcome: "unknown", code: "TIMEOUT" }), SEND_TIMEOUT_MS);
      const unsubscribe = client.subscribe<{ sendMessage: { delivered: boolean; event: { id: string; seq: number | null } | null } }>(
        { query: SEND, variables: { channel, payload } },
        {
          next: ({ data, errors }) => {
            if (errors?.length) settle(refusal(errors));
            else if (data) settle({ outcome: "ack", eventId: data.sendMessage.event?.id, seq: data.sendMessage.event?.seq });
          },
          // GraphQL errors arrive as an array; anything else (a closed socket) leaves the outcome unknown.
          error: (error) => settle(Array.isArray(error) ? refusal(error) : { outcome: "unknown", code: "CONNECTION_LOST" }),
          complete: () => settle({ outcome: "unknown", code: "NO_RESULT" }),
        },
      );
    });
  }

  private async sendOverHttp(instance: Instance, channel: string, payload: { n: number }): Promise<SendAnswer> {
    try {
      const response = await fetch(instance.httpUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: SEND, variables: { channel, payload } }),
        signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
      });
      const body = (await response.json()) as HttpAnswer;
      if (body.errors?.length) return refusal(body.errors);
      return { outcome: "ack", eventId: body.data?.sendMessage?.event?.id, seq: body.data?.sendMessage?.event?.seq };
    } catch {
      return { outcome: "unknown", code: "CONNECTION_LOST" };
    }
  }
}

/**
 * What a send's errors say: a refusal, or, when the server says it cannot know whether the message
 * was stored (`extensions.outcome: "UNKNOWN"`), an unknown outcome.
 */
function refusal(errors: readonly { message?: unknown; extensions?: { code?: unknown; outcome?: unknown } }[]): SendAnswer {
  const extensions = errors[0]?.extensions;
  const code = String(extensions?.code ?? "GRAPHQL_ERROR");
  if (extensions?.outcome === "UNKNOWN") return { outcome: "unknown", code: `${code} (outcome unknown)` };
  return code === "SERVICE_UNAVAILABLE" ? { outcome: "error", code } : { outcome: "error", code, message: String(errors[0]?.message) };
}

/** What became of a send, as its sender learnt it. */
type SendAnswer = Pick<SendRecord, "outcome" | "code" | "message" | "eventId" | "seq">;
