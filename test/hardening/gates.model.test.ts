/**
 * A model-based property test of the channel gates (fast-check commands). Several raw WebSocket
 * peers speak graphql-transport-ws (so a command can write many frames in one tick and reuse
 * operation ids): two anonymous clients, one client with a long-lived HS256 token and one whose
 * token expires during the run. Commands subscribe (fast and generic path), complete, re-subscribe
 * with the same id, join and leave (over the socket, and over HTTP where an authenticated client's
 * membership outlives its socket), send (over the socket by the fast and the generic path, and over
 * HTTP), read history and presence, change a channel's configuration as the admin, wait for the
 * token to expire, close and reconnect sockets, and write bursts.
 *
 * After every command the test waits for quiescence by round trips (a sentinel message on every
 * channel, sent as the admin, until every watcher and every live subscription has it) and checks:
 * - presence (asked as the admin) equals the model's membership;
 * - every live subscription receives each event of its channel exactly once, and nothing else:
 *   no subscription that ended, was refused or was removed receives anything;
 * - every member who goes away yields exactly one LEAVE (watchers see JOIN/LEAVE alternate per
 *   client, and their last word matches the model);
 * - MAX_SUBSCRIPTIONS_PER_SOCKET and MAX_CHANNELS_PER_CLIENT hold, under bursts too;
 * - the server holds exactly the listeners and memberships the model holds
 *   (`ChannelService.stats()`), and all zeros once every socket has closed.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { GraphQLResponse } from "../helpers/graphql.js";
import { assertProperty } from "../helpers/property.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { clientToken } from "../helpers/tokens.js";

const JWT_SECRET = "gates-model-secret-0123456789-abcdef";
const MAX_SUBSCRIPTIONS_PER_SOCKET = 5;
const MAX_CHANNELS_PER_CLIENT = 4;
/** One more channel than a client may be in, so the channel limit is reachable. */
const CHANNELS = ["m:0", "m:1", "m:2", "m:3", "m:4"] as const;
/** How long an answer may take before the command counts as unanswered. */
const ANSWER_MS = 4_000;
/** The expiring token's lifetime, and how long after it the server may take to close the socket (the verifier allows 5 s of clock skew). */
const EXPIRING_TOKEN_SECONDS = 1;
const EXPIRY_GRACE_MS = 5_000 + 2_500;
/** Quiescence rounds before a lagging invariant counts as broken. */
const SETTLE_ROUNDS = 6;

const SERVER_ENV = {
  JWT_SECRET,
  MAX_SUBSCRIPTIONS_PER_SOCKET: String(MAX_SUBSCRIPTIONS_PER_SOCKET),
  MAX_CHANNELS_PER_CLIENT: String(MAX_CHANNELS_PER_CLIENT),
  MAX_MESSAGES_PER_SECOND: "10000",
  CHANNEL_PRESENCE: "true",
  CHANNEL_HISTORY: "5",
  // Per-address limits for anonymous traffic: every peer here comes from 127.0.0.1.
  MAX_ADDRESS_MESSAGES_PER_SECOND: "100000",
  MAX_ADDRESS_JOINS_PER_SECOND: "100000",
  MAX_JOINS_PER_SECOND: "100000",
  MAX_CONNECTIONS_PER_ADDRESS: "100000",
  MAX_ADDRESS_CONNECTIONS_PER_SECOND: "100000",
};

const EVENT = "action channel payload client { id }";
const SUBSCRIBE_FAST = `subscription ($name: String!) { channel(name: $name) { ${EVENT} } }`;
const SUBSCRIBE_GENERIC = `subscription ($name: String!) { channel(name: $name) @include(if: true) { ${EVENT} } }`;
const JOIN = `mutation ($channel: String!) { joinChannel(channel: $channel) { joined event { client { id } } } }`;
const LEAVE = `mutation ($channel: String!) { leaveChannel(channel: $channel) }`;
const SEND = `mutation ($channel: String!, $payload: JSON!) { sendMessage(channel: $channel, payload: $payload) { delivered } }`;
const SEND_GENERIC = `mutation ($channel: String!, $payload: JSON!) { sendMessage(channel: $channel, payload: $payload) @include(if: true) { delivered } }`;
const HISTORY = `query ($channel: String!) { history(channel: $channel, last: 5) { id } }`;
const PRESENCE = `query ($channel: String!) { presence(channel: $channel) { id } }`;
const CREATE_CHANNEL = `mutation ($input: CreateChannelInput!) { createChannel(input: $input) { id } }`;
const UPDATE_CHANNEL = `mutation ($pattern: String!, $input: UpdateChannelInput!) { updateChannel(pattern: $pattern, input: $input) { id } }`;

type Channel = (typeof CHANNELS)[number];
type Path = "fast" | "generic";
type Door = "ws" | "http";
type Messaging = "ANYONE" | "AUTHENTICATED" | "NOBODY";

/** A channel configuration as the commands set it (presence and history stay on). */
interface Rules {
  anonymousClients: boolean;
  messaging: Messaging;
  membersOnly: boolean;
}

const DEFAULT_RULES: Rules = { anonymousClients: true, messaging: "ANYONE", membersOnly: false };

// ---------------------------------------------------------------------------------------------
// The model.

type SlotKind = "anonymous" | "user" | "expiring";

/** What the model knows of one socket slot. */
interface SlotModel {
  readonly kind: SlotKind;
  /** The token's subject (also the client id) for authenticated slots. */
  readonly sub?: string;
  open: boolean;
  /** Live subscriptions: operation id → channel. */
  subs: Map<string, Channel>;
  /** Channels joined with joinChannel over the socket. */
  joins: Set<Channel>;
  /** Channels joined with joinChannel over HTTP (authenticated clients only): these outlive the socket. */
  httpJoins: Set<Channel>;
  /** True while the socket's token is the short-lived one. */
  expiring: boolean;
}

interface Model {
  slots: SlotModel[];
  configs: Map<Channel, Rules>;
}

const rulesOf = (model: Model, channel: Channel) => model.configs.get(channel) ?? DEFAULT_RULES;
const isMember = (slot: SlotModel, channel: Channel) =>
  slot.joins.has(channel) || slot.httpJoins.has(channel) || [...slot.subs.values()].includes(channel);
const memberships = (slot: SlotModel) => new Set<Channel>([...slot.joins, ...slot.httpJoins, ...slot.subs.values()]);
const canListen = (model: Model, slot: SlotModel, channel: Channel) =>
  slot.kind !== "anonymous" || rulesOf(model, channel).anonymousClients;

/** The codes a subscribe or join may be refused with; empty when it must succeed. */
function refusalsFor(model: Model, slot: SlotModel, channel: Channel, operation: "subscribe" | "join"): Set<string> {
  const codes = new Set<string>();
  if (!canListen(model, slot, channel)) codes.add("UNAUTHENTICATED");
  if (operation === "subscribe" && slot.subs.size >= MAX_SUBSCRIPTIONS_PER_SOCKET) codes.add("LIMIT_EXCEEDED");
  if (!isMember(slot, channel) && memberships(slot).size >= MAX_CHANNELS_PER_CLIENT) codes.add("LIMIT_EXCEEDED");
  return codes;
}

/** The codes a send, history or presence read may be refused with; empty when it must succeed. */
function readOrSendRefusals(
  model: Model,
  slot: SlotModel,
  channel: Channel,
  operation: "send" | "history" | "presence",
  door: Door,
): Set<string> {
  const rules = rulesOf(model, channel);
  const codes = new Set<string>();
  const anonymous = slot.kind === "anonymous";
  if (anonymous && !rules.anonymousClients) codes.add("UNAUTHENTICATED");
  if (operation === "send" && rules.messaging === "NOBODY") codes.add("FORBIDDEN");
  if (operation === "send" && rules.messaging === "AUTHENTICATED" && anonymous) codes.add("UNAUTHENTICATED");
  // An anonymous HTTP request is a client of its own, never a member; an authenticated one is the same client as the socket.
  const member = door === "http" && anonymous ? false : isMember(slot, channel);
  if (rules.membersOnly && !member) codes.add("FORBIDDEN");
  return codes;
}

// ---------------------------------------------------------------------------------------------
// The real system: peers (raw sockets), watchers (admin SSE streams), the server.

/** What one operation id received. */
interface OpLog {
  readonly channel?: Channel;
  /** `next` payloads. */
  readonly results: GraphQLResponse<Record<string, any>>[];
  /** The payload of an `error` frame. */
  errorFrame: { message: string; extensions?: Record<string, any> }[] | null;
  completed: boolean;
  /** Sentinel number → how many times it arrived. */
  readonly sentinels: Map<number, number>;
  /** Events of another channel than the subscription's. */
  readonly strays: string[];
}

/** A raw graphql-transport-ws socket. */
class Peer {
  closed: { code: number; reason: string } | null = null;
  acknowledged = false;
  clientId: string | undefined;
  private readonly logs = new Map<string, OpLog>();
  private readonly waiters = new Set<() => void>();
  private serial = 0;

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data) => {
      const frame = JSON.parse(String(data)) as { id?: string; type: string; payload?: any };
      if (frame.type === "connection_ack") this.acknowledged = true;
      const log = frame.id === undefined ? undefined : this.logs.get(frame.id);
      if (log) {
        if (frame.type === "next") {
          log.results.push(frame.payload as GraphQLResponse);
          const event = frame.payload?.data?.channel;
          if (event && log.channel && event.channel !== log.channel) log.strays.push(`${event.action} of ${event.channel}`);
          const sentinel = event?.payload?.sentinel;
          if (typeof sentinel === "number") log.sentinels.set(sentinel, (log.sentinels.get(sentinel) ?? 0) + 1);
        } else if (frame.type === "error") log.errorFrame = frame.payload;
        else if (frame.type === "complete") log.completed = true;
      }
      this.wake();
    });
    socket.on("close", (code, reason) => {
      this.closed = { code, reason: String(reason) };
      this.wake();
    });
    socket.on("error", () => {}); // the close that follows says what happened
  }

  /** Connects and waits for `connection_ack`. */
  static async open(url: string, connectionParams: Record<string, unknown>): Promise<Peer> {
    const peer = new Peer(new WebSocket(url, "graphql-transport-ws"));
    await new Promise((resolve, reject) => peer.socket.once("open", resolve).once("error", reject));
    peer.socket.send(JSON.stringify({ type: "connection_init", payload: connectionParams }));
    if (!(await peer.until(() => peer.acknowledged || peer.closed !== null, ANSWER_MS)) || !peer.acknowledged)
      throw new Error(`connection refused: ${JSON.stringify(peer.closed)}`);
    return peer;
  }

  nextId(prefix: string): string {
    return `${prefix}${++this.serial}`;
  }

  /** The log of an operation id; `fresh` starts a new one (for a reused id). */
  log(id: string, fresh?: { channel?: Channel }): OpLog {
    let log = this.logs.get(id);
    if (!log || fresh) {
      log = { channel: fresh?.channel, results: [], errorFrame: null, completed: false, sentinels: new Map(), strays: [] };
      this.logs.set(id, log);
    }
    return log;
  }

  /** Writes frames back to back, in one tick. */
  write(frames: object[]): void {
    for (const frame of frames) this.socket.send(JSON.stringify(frame));
  }

  subscribeFrame(id: string, channel: Channel, path: Path): object {
    return {
      id,
      type: "subscribe",
      payload: { query: path === "fast" ? SUBSCRIBE_FAST : SUBSCRIBE_GENERIC, variables: { name: channel } },
    };
  }

  /** Runs a query or mutation over the socket; resolves to its result, or to the errors of an `error` frame. */
  async operation(query: string, variables: Record<string, unknown>): Promise<GraphQLResponse<Record<string, any>>> {
    const id = this.nextId("q");
    const log = this.log(id, {});
    this.write([{ id, type: "subscribe", payload: { query, variables } }]);
    if (!(await this.until(() => log.completed || log.errorFrame !== null || this.closed !== null, ANSWER_MS)))
      throw new Error(`no answer to ${query.slice(0, 40)}`);
    if (log.errorFrame) return { errors: log.errorFrame };
    if (this.closed && !log.completed)
      throw new Error(`the socket closed (${this.closed.code} ${this.closed.reason}) during ${query.slice(0, 40)}`);
    return log.results[0] ?? {};
  }

  /** The operation ids that received a sentinel. */
  receivingIds(sentinel: number): string[] {
    return [...this.logs].filter(([, log]) => log.sentinels.has(sentinel)).map(([id]) => id);
  }

  /** Resolves true once `condition` holds, false after `ms`. */
  until(condition: () => boolean, ms: number): Promise<boolean> {
    if (condition()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => {
        if (!condition()) return;
        done(true);
      };
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => done(false), ms);
      this.waiters.add(check);
    });
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  close(): void {
    if (this.socket.readyState === WebSocket.OPEN || this.socket.readyState === WebSocket.CONNECTING) this.socket.close(1000);
  }
}

/** The first answer to a subscription: live (an event arrived), refused (errors), or nothing. */
function subscriptionAnswer(log: OpLog): { live: true } | { live: false; codes: string[] } | null {
  if (log.errorFrame) return { live: false, codes: log.errorFrame.map((error) => String(error.extensions?.code)) };
  const first = log.results[0];
  if (first?.errors?.length) return { live: false, codes: first.errors.map((error) => String(error.extensions?.code)) };
  if (first?.data) return { live: true };
  if (log.completed) return { live: false, codes: ["(completed without an event)"] };
  return null;
}

/** An admin SSE subscription to one channel: sees every JOIN, LEAVE and sentinel on it. */
class Watcher {
  ownId: string | undefined;
  /** JOIN and LEAVE events: [action, client id]. */
  readonly comings: ["JOIN" | "LEAVE", string][] = [];
  lastSentinel = 0;
  failure: string | null = null;
  private readonly abort = new AbortController();
  private readonly waiters = new Set<() => void>();

  constructor(
    url: string,
    readonly channel: Channel,
  ) {
    void this.read(url);
  }

  private async read(url: string): Promise<void> {
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({ query: SUBSCRIBE_FAST, variables: { name: this.channel } }),
        signal: this.abort.signal,
      });
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of response.body!) {
        buffered += decoder.decode(chunk, { stream: true });
        for (let end = buffered.indexOf("\n\n"); end >= 0; end = buffered.indexOf("\n\n")) {
          const data = buffered
            .slice(0, end)
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).trim())
            .join("");
          buffered = buffered.slice(end + 2);
          if (data) this.receive(JSON.parse(data) as GraphQLResponse<Record<string, any>>);
        }
      }
      this.failure ??= "the watcher's stream ended";
    } catch (error) {
      if (!this.abort.signal.aborted) this.failure = `the watcher's stream broke: ${String(error)}`;
    }
    for (const waiter of [...this.waiters]) waiter();
  }

  private receive(result: GraphQLResponse<Record<string, any>>): void {
    if (result.errors) this.failure = `the watcher got ${JSON.stringify(result.errors)}`;
    const event = result.data?.channel;
    if (event) {
      if (this.ownId === undefined && event.action === "JOIN") this.ownId = event.client.id;
      else if (event.action === "JOIN" || event.action === "LEAVE") this.comings.push([event.action, event.client.id]);
      if (typeof event.payload?.sentinel === "number") this.lastSentinel = event.payload.sentinel;
    }
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Resolves true once the watcher has seen `sentinel` (or its own JOIN when 0). */
  until(sentinel: number, ms: number): Promise<boolean> {
    const reached = () => this.failure !== null || (sentinel === 0 ? this.ownId !== undefined : this.lastSentinel >= sentinel);
    if (reached()) return Promise.resolve(this.failure === null);
    return new Promise((resolve) => {
      const check = () => {
        if (!reached()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(this.failure === null);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        resolve(false);
      }, ms);
      this.waiters.add(check);
    });
  }

  stop(): void {
    this.abort.abort();
  }
}

/** The system under test for one run. */
class World {
  readonly peers: (Peer | null)[] = [];
  readonly watchers: Watcher[];
  /** When the expiring token expires (ms since the epoch). */
  expiresAt = 0;
  /** Anonymous HTTP clients that joined: they last one request, so their JOIN has no LEAVE. */
  readonly oneRequestClients = new Set<string>();
  private sentinel = 0;

  constructor(readonly server: TestServer) {
    this.watchers = CHANNELS.map((channel) => new Watcher(server.httpUrl, channel));
  }

  async admin(query: string, variables: Record<string, unknown>): Promise<GraphQLResponse<Record<string, any>>> {
    const response = await fetch(this.server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as GraphQLResponse<Record<string, any>>;
  }

  /** An operation over HTTP as the slot's identity (its token, or none). */
  async http(slot: SlotModel, query: string, variables: Record<string, unknown>): Promise<GraphQLResponse<Record<string, any>>> {
    const token = slot.sub
      ? await clientToken(JWT_SECRET, slot.sub, { claims: { name: slot.sub }, expires: Math.floor(Date.now() / 1000) + 600 })
      : undefined;
    const response = await fetch(this.server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify({ query, variables }),
    });
    return (await response.json()) as GraphQLResponse<Record<string, any>>;
  }

  /** Sends a sentinel to one channel as the admin and waits for its watcher to have it; returns its number. */
  async probe(channel: Channel): Promise<number> {
    const sentinel = ++this.sentinel;
    const sent = await this.admin(SEND, { channel, payload: { sentinel } });
    if (sent.data?.sendMessage?.delivered !== true) throw new Error(`the probe to ${channel} was not sent: ${JSON.stringify(sent)}`);
    const watcher = this.watchers[CHANNELS.indexOf(channel)]!;
    if (!(await watcher.until(sentinel, ANSWER_MS))) throw new Error(`the watcher of ${channel} did not receive probe ${sentinel}`);
    return sentinel;
  }

  /** Opens the socket of a slot. */
  async connect(index: number, slot: SlotModel): Promise<void> {
    let connectionParams: Record<string, unknown> = {};
    if (slot.sub) {
      const exp = Math.floor(Date.now() / 1000) + (slot.expiring ? EXPIRING_TOKEN_SECONDS : 600);
      connectionParams = { authToken: await clientToken(JWT_SECRET, slot.sub, { claims: { name: slot.sub }, expires: exp }) };
      if (slot.expiring) this.expiresAt = exp * 1000;
    }
    this.peers[index] = await Peer.open(this.server.wsUrl, connectionParams);
    if (slot.sub) this.peers[index]!.clientId = slot.sub;
  }

  /**
   * Waits for quiescence and checks every invariant against the model. Each round sends a sentinel
   * to every channel as the admin and waits until every watcher and every live subscription has it.
   * Invariants that may lag (presence, LEAVEs, what the server holds) get a few rounds; the rest
   * fail at once.
   */
  async settle(model: Model): Promise<void> {
    let lagging: string[] = [];
    for (let round = 0; round < SETTLE_ROUNDS; round++) {
      const broken: string[] = [];
      this.adoptExpiry(model, broken);
      const sentinel = ++this.sentinel;
      for (const channel of CHANNELS) {
        const sent = await this.admin(SEND, { channel, payload: { sentinel } });
        if (sent.data?.sendMessage?.delivered !== true)
          broken.push(`the admin's sentinel to ${channel} was not delivered: ${JSON.stringify(sent)}`);
      }
      for (const watcher of this.watchers) {
        if (!(await watcher.until(sentinel, ANSWER_MS)))
          broken.push(`the watcher of ${watcher.channel} did not receive sentinel ${sentinel}: ${watcher.failure ?? "timed out"}`);
      }
      // Every live subscription receives the sentinel of its channel exactly once.
      for (const [index, slot] of model.slots.entries()) {
        const peer = this.peers[index];
        if (!slot.open || !peer) continue;
        for (const [id, channel] of slot.subs) {
          const log = peer.log(id);
          const arrived = await peer.until(() => log.sentinels.has(sentinel) || peer.closed !== null, ANSWER_MS);
          if (peer.closed) break; // the next round judges the close
          if (!arrived || !log.sentinels.has(sentinel))
            broken.push(`slot ${index}'s live subscription ${id} on ${channel} missed sentinel ${sentinel}`);
          else if (log.sentinels.get(sentinel)! > 1)
            broken.push(
              `slot ${index}'s subscription ${id} on ${channel} received sentinel ${sentinel} ${log.sentinels.get(sentinel)} times`,
            );
          if (log.strays.length)
            broken.push(`slot ${index}'s subscription ${id} on ${channel} received events of other channels: ${log.strays.join(", ")}`);
        }
      }
      if (broken.length) throw new Error(broken.join("\n"));
      if (model.slots.some((slot, index) => slot.open && this.peers[index]?.closed)) {
        lagging = ["a socket closed during the last round"];
        continue;
      }
      lagging = await this.laggingProblems(model, sentinel);
      if (lagging.length === 0) return;
    }
    throw new Error(lagging.join("\n"));
  }

  /** The socket of the expiring token closed with 4403 `Token expired`: the model follows, if it is time. */
  private adoptExpiry(model: Model, broken: string[]): void {
    for (const [index, slot] of model.slots.entries()) {
      const closed = this.peers[index]?.closed;
      if (slot.open && slot.expiring && !closed && Date.now() > this.expiresAt + EXPIRY_GRACE_MS)
        broken.push(`slot ${index}'s socket is still open ${Date.now() - this.expiresAt} ms after its token expired`);
      if (!slot.open || !closed) continue;
      if (slot.expiring && closed.code === 4403 && closed.reason === "Token expired" && Date.now() >= this.expiresAt - 50) closeSlot(slot);
      else broken.push(`slot ${index}'s socket closed unexpectedly: ${closed.code} ${closed.reason}`);
    }
  }

  /** Invariants that may take a round or two to hold (LEAVEs and removals are published after the fact). */
  private async laggingProblems(model: Model, sentinel: number): Promise<string[]> {
    const problems: string[] = [];
    const watcherIds = new Set(this.watchers.map((watcher) => watcher.ownId));
    const channelsOf = new Map<string, Set<Channel>>();
    for (const [channelIndex, channel] of CHANNELS.entries()) {
      const answer = await this.admin(PRESENCE, { channel });
      if (!answer.data?.presence) {
        problems.push(`presence of ${channel} as the admin failed: ${JSON.stringify(answer.errors)}`);
        continue;
      }
      const present = new Set((answer.data.presence as { id: string }[]).map((client) => client.id).filter((id) => !watcherIds.has(id)));
      for (const id of present) channelsOf.set(id, (channelsOf.get(id) ?? new Set()).add(channel));
      const expected = new Set<string>();
      for (const [index, slot] of model.slots.entries()) {
        const id = slot.sub ?? this.peers[index]?.clientId;
        if (isMember(slot, channel)) {
          if (id === undefined) problems.push(`slot ${index} is a member of ${channel} but its client id never showed`);
          else expected.add(id);
        }
      }
      if (!sameSet(present, expected))
        problems.push(`presence of ${channel} is [${[...present].sort()}], the model says [${[...expected].sort()}]`);
      // LEAVEs: JOIN and LEAVE alternate per client (one LEAVE per going away), and the last word matches the model.
      const watcher = this.watchers[channelIndex]!;
      const inside = new Map<string, boolean>();
      for (const [action, id] of watcher.comings.filter(([, id]) => !this.oneRequestClients.has(id))) {
        if (action === "LEAVE" && inside.get(id) === false) problems.push(`a second LEAVE of ${id} on ${channel} with no JOIN between`);
        if (action === "LEAVE" && !inside.has(id)) problems.push(`a LEAVE of ${id} on ${channel} that never joined`);
        inside.set(id, action === "JOIN");
      }
      for (const [id, isInside] of inside) {
        if (isInside && !expected.has(id)) problems.push(`${id} went away from ${channel} without a LEAVE`);
        if (!isInside && expected.has(id)) problems.push(`${id} is a member of ${channel} again, but no JOIN followed its LEAVE`);
      }
    }
    for (const [id, channels] of channelsOf) {
      if (channels.size > MAX_CHANNELS_PER_CLIENT)
        problems.push(`${id} is in ${channels.size} channels (limit ${MAX_CHANNELS_PER_CLIENT})`);
    }
    // Limits: live subscriptions per socket, counted by who received this round's sentinel.
    for (const [index, slot] of model.slots.entries()) {
      const peer = this.peers[index];
      if (!slot.open || !peer) continue;
      const receiving = peer.receivingIds(sentinel);
      if (receiving.length > MAX_SUBSCRIPTIONS_PER_SOCKET)
        problems.push(`slot ${index} has ${receiving.length} live subscriptions (limit ${MAX_SUBSCRIPTIONS_PER_SOCKET})`);
      const stale = receiving.filter((id) => !slot.subs.has(id));
      if (stale.length) problems.push(`slot ${index}'s subscriptions [${stale}] ended (or were refused or removed) but still receive`);
    }
    // What the server holds: one listener per live subscription (the watchers' included), one membership per
    // member (the watchers are the admin's, who watches unseen: they hold none).
    const stats = this.server.app.services.channels.stats();
    const listeners = model.slots.reduce((sum, slot) => sum + (slot.open ? slot.subs.size : 0), 0) + this.watchers.length;
    const members = model.slots.reduce((sum, slot) => sum + memberships(slot).size, 0);
    if (stats.listeners !== listeners) problems.push(`the server holds ${stats.listeners} listeners, the model ${listeners}`);
    if (stats.memberships !== members) problems.push(`the server holds ${stats.memberships} memberships, the model ${members}`);
    return problems;
  }

  /** Closes everything of the run; resolves to what the server still holds once it has settled. */
  async shutDown(): Promise<ReturnType<TestServer["app"]["services"]["channels"]["stats"]>> {
    for (const peer of this.peers) peer?.close();
    await Promise.all(this.peers.map((peer) => peer?.until(() => peer.closed !== null, ANSWER_MS)));
    for (const watcher of this.watchers) watcher.stop();
    const stats = () => this.server.app.services.channels.stats();
    const zero = () => Object.values(stats()).every((count) => count === 0);
    // Round trips through the server until it has processed every close (bounded).
    for (let attempt = 0; attempt < 100 && !zero(); attempt++) await fetch(this.server.httpUrl.replace("/graphql", "/health"));
    return stats();
  }
}

const sameSet = <T>(a: Set<T>, b: Set<T>) => a.size === b.size && [...a].every((item) => b.has(item));

function closeSlot(slot: SlotModel): void {
  slot.open = false;
  slot.subs.clear();
  slot.joins.clear();
}

/** Checks a refusal against the codes the model allows; returns a problem or null. */
function refusalProblem(what: string, allowed: Set<string>, answer: { live: boolean; codes?: string[] } | GraphQLResponse): string | null {
  const codes = "live" in answer ? (answer.codes ?? []) : (answer.errors ?? []).map((error) => String(error.extensions?.code));
  const refused = "live" in answer ? !answer.live : codes.length > 0;
  if (allowed.size === 0 && refused) return `${what}: refused with [${codes}], the model says it is allowed`;
  if (allowed.size > 0 && !refused) return `${what}: allowed, the model says it is refused with one of [${[...allowed]}]`;
  if (refused && !codes.some((code) => allowed.has(code)))
    return `${what}: refused with [${codes}], the model expects one of [${[...allowed]}]`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// Commands.

type Command = fc.AsyncCommand<Model, World>;

abstract class SlotCommand implements Command {
  constructor(readonly index: number) {}
  check(model: Readonly<Model>): boolean {
    return model.slots[this.index]!.open;
  }
  /** Runs the command; when the slot's token expired under it (4403 `Token expired`), the model follows and the rest is checked. */
  async run(model: Model, world: World): Promise<void> {
    try {
      await this.act(model, world);
    } catch (error) {
      const slot = model.slots[this.index]!;
      const peer = this.peer(world);
      if (!slot.expiring || Date.now() < world.expiresAt - 50) throw error;
      // The refusal can reach the client a moment before the 4403 close frame that follows it.
      const wait = Math.max(0, world.expiresAt + EXPIRY_GRACE_MS - Date.now());
      if (!(await peer.until(() => peer.closed !== null, wait))) {
        throw new Error(
          `${(error as Error).message} (its token expired ${Date.now() - world.expiresAt} ms ago and the socket is still open)`,
        );
      }
      const closed = peer.closed!;
      if (closed.code !== 4403 || closed.reason !== "Token expired") throw error;
      closeSlot(slot);
      await world.settle(model);
    }
  }
  protected abstract act(model: Model, world: World): Promise<void>;
  abstract toString(): string;
  protected peer(world: World): Peer {
    return world.peers[this.index]!;
  }
}

/** Subscribes to a channel (fast or generic path) with a fresh id. */
class Subscribe extends SlotCommand {
  constructor(
    index: number,
    readonly channel: Channel,
    readonly path: Path,
  ) {
    super(index);
  }
  protected async act(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const peer = this.peer(world);
    const allowed = refusalsFor(model, slot, this.channel, "subscribe");
    const id = peer.nextId("s");
    const log = peer.log(id, { channel: this.channel });
    peer.write([peer.subscribeFrame(id, this.channel, this.path)]);
    if (!(await peer.until(() => subscriptionAnswer(log) !== null || peer.closed !== null, ANSWER_MS)))
      throw new Error(`${this}: no answer`);
    const answer = subscriptionAnswer(log);
    if (!answer) throw new Error(`${this}: the socket closed: ${JSON.stringify(peer.closed)}`);
    const problem = refusalProblem(String(this), allowed, answer);
    if (problem) throw new Error(problem);
    if (answer.live) {
      slot.subs.set(id, this.channel);
      learnClientId(peer, log);
    }
    await world.settle(model);
  }
  toString() {
    return `Subscribe(${this.index}, ${this.channel}, ${this.path})`;
  }
}

/** The first JOIN a subscription of an anonymous peer receives is its own: its client id. */
function learnClientId(peer: Peer, log: OpLog): void {
  const event = log.results[0]?.data?.channel;
  if (peer.clientId === undefined && event?.action === "JOIN") peer.clientId = event.client.id;
}

/** Completes one of the slot's live subscriptions (the `pick`-th, modulo how many there are). */
class Complete extends SlotCommand {
  constructor(
    index: number,
    readonly pick: number,
  ) {
    super(index);
  }
  override check(model: Readonly<Model>): boolean {
    return super.check(model) && model.slots[this.index]!.subs.size > 0;
  }
  protected async act(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const id = [...slot.subs.keys()][this.pick % slot.subs.size]!;
    this.peer(world).write([{ id, type: "complete" }]);
    slot.subs.delete(id);
    await world.settle(model);
  }
  toString() {
    return `Complete(${this.index}, #${this.pick})`;
  }
}

/** Completes a live subscription and subscribes again with the same id, in one tick. */
class Resubscribe extends SlotCommand {
  constructor(
    index: number,
    readonly pick: number,
  ) {
    super(index);
  }
  override check(model: Readonly<Model>): boolean {
    return super.check(model) && model.slots[this.index]!.subs.size > 0;
  }
  protected async act(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const peer = this.peer(world);
    const [id, channel] = [...slot.subs][this.pick % slot.subs.size]!;
    const log = peer.log(id, { channel });
    peer.write([{ id, type: "complete" }, peer.subscribeFrame(id, channel, "fast")]);
    if (!(await peer.until(() => subscriptionAnswer(log) !== null || peer.closed !== null, ANSWER_MS)))
      throw new Error(`${this}: no answer`);
    const answer = subscriptionAnswer(log);
    if (!answer?.live) throw new Error(`${this}: the new subscription was not live: ${JSON.stringify(answer ?? peer.closed)}`);
    await world.settle(model);
  }
  toString() {
    return `Resubscribe(${this.index}, #${this.pick})`;
  }
}

/** subscribe, complete, subscribe with one fresh id, in one tick: exactly one subscription may come of it. */
class SubscribeCompleteSubscribe extends SlotCommand {
  constructor(
    index: number,
    readonly channel: Channel,
  ) {
    super(index);
  }
  protected async act(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const peer = this.peer(world);
    const allowed = refusalsFor(model, slot, this.channel, "subscribe");
    // With room for both at once, the second must be live; at the limit, the first one's slot may not be free yet.
    const roomForTwo = slot.subs.size + 2 <= MAX_SUBSCRIPTIONS_PER_SOCKET;
    const id = peer.nextId("r");
    const log = peer.log(id, { channel: this.channel });
    peer.write([peer.subscribeFrame(id, this.channel, "fast"), { id, type: "complete" }, peer.subscribeFrame(id, this.channel, "fast")]);
    await peer.until(() => log.results.some((result) => result.data) || log.errorFrame !== null || peer.closed !== null, ANSWER_MS);
    // Whether it is live shows by a probe: a sentinel reaches it.
    const probe = await world.probe(this.channel);
    const live = await peer.until(() => log.sentinels.has(probe), 1_000);
    if (allowed.size === 0 && roomForTwo && !live) throw new Error(`${this}: no live subscription came of it`);
    if (allowed.size > 0 && !allowed.has("LIMIT_EXCEEDED") && live)
      throw new Error(`${this}: live, the model says refused with [${[...allowed]}]`);
    if (live) {
      slot.subs.set(id, this.channel);
      learnClientId(peer, log);
    }
    await world.settle(model);
  }
  toString() {
    return `SubscribeCompleteSubscribe(${this.index}, ${this.channel})`;
  }
}

/** Writes subscribe frames for several channels at once, each with its own id. */
class Burst extends SlotCommand {
  constructor(
    index: number,
    readonly channels: Channel[],
    readonly path: Path,
  ) {
    super(index);
  }
  protected async act(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const peer = this.peer(world);
    // In frame order, each subscribe is admitted while there is room: limits are reserved before any await.
    const simulated: SlotModel = { ...slot, subs: new Map(slot.subs), joins: new Set(slot.joins) };
    let admitted = 0;
    const ids = this.channels.map((channel) => {
      const id = peer.nextId("b");
      if (refusalsFor(model, simulated, channel, "subscribe").size === 0) {
        simulated.subs.set(id, channel);
        admitted++;
      }
      return id;
    });
    const logs = ids.map((id, i) => peer.log(id, { channel: this.channels[i] }));
    peer.write(ids.map((id, i) => peer.subscribeFrame(id, this.channels[i]!, this.path)));
    const answered = () => logs.every((log) => subscriptionAnswer(log) !== null);
    if (!(await peer.until(() => answered() || peer.closed !== null, ANSWER_MS)) || !answered())
      throw new Error(`${this}: not every subscribe was answered (${JSON.stringify(peer.closed)})`);
    const live = ids.filter((_, i) => subscriptionAnswer(logs[i]!)!.live);
    for (const [i, log] of logs.entries()) {
      const answer = subscriptionAnswer(log)!;
      if (!answer.live && !answer.codes.every((code) => code === "LIMIT_EXCEEDED" || code === "UNAUTHENTICATED"))
        throw new Error(`${this}: #${i} refused with [${answer.codes}]`);
    }
    // The fast path keeps frame order, so exactly the simulated number is admitted; the generic path may reorder.
    if (this.path === "fast" && live.length !== admitted) throw new Error(`${this}: ${live.length} admitted, the model admits ${admitted}`);
    for (const id of live) {
      slot.subs.set(id, this.channels[ids.indexOf(id)]!);
      learnClientId(peer, peer.log(id));
    }
    if (slot.subs.size > MAX_SUBSCRIPTIONS_PER_SOCKET)
      throw new Error(`${this}: ${slot.subs.size} live subscriptions (limit ${MAX_SUBSCRIPTIONS_PER_SOCKET})`);
    await world.settle(model);
  }
  toString() {
    return `Burst(${this.index}, [${this.channels}], ${this.path})`;
  }
}

/** Writes several subscribe frames with one id at once: the protocol closes the socket (4409); nothing may stay behind. */
class BurstSameId extends SlotCommand {
  constructor(
    index: number,
    readonly channel: Channel,
    readonly count: number,
  ) {
    super(index);
  }
  protected async act(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const peer = this.peer(world);
    const id = peer.nextId("d");
    peer.log(id, { channel: this.channel });
    peer.write(Array.from({ length: this.count }, () => peer.subscribeFrame(id, this.channel, "fast")));
    if (!(await peer.until(() => peer.closed !== null, ANSWER_MS))) throw new Error(`${this}: the socket stayed open`);
    if (peer.closed!.code !== 4409) throw new Error(`${this}: closed with ${peer.closed!.code} ${peer.closed!.reason}, not 4409`);
    closeSlot(slot);
    await world.settle(model);
  }
  toString() {
    return `BurstSameId(${this.index}, ${this.channel}, ×${this.count})`;
  }
}

class JoinChannel extends SlotCommand {
  constructor(
    index: number,
    readonly channel: Channel,
  ) {
    super(index);
  }
  protected async act(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const peer = this.peer(world);
    const allowed = refusalsFor(model, slot, this.channel, "join");
    const result = await peer.operation(JOIN, { channel: this.channel });
    const problem = refusalProblem(String(this), allowed, result);
    if (problem) throw new Error(problem);
    if (result.data?.joinChannel?.joined) {
      slot.joins.add(this.channel);
      peer.clientId ??= result.data.joinChannel.event.client.id;
    }
    await world.settle(model);
  }
  toString() {
    return `JoinChannel(${this.index}, ${this.channel})`;
  }
}

/** leaveChannel: every subscription of the client on the channel completes, then one LEAVE. */
class LeaveChannel extends SlotCommand {
  constructor(
    index: number,
    readonly channel: Channel,
  ) {
    super(index);
  }
  protected async act(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const peer = this.peer(world);
    const wasMember = isMember(slot, this.channel);
    const ending = [...slot.subs].filter(([, channel]) => channel === this.channel).map(([id]) => id);
    const result = await peer.operation(LEAVE, { channel: this.channel });
    if (result.errors || result.data?.leaveChannel !== wasMember)
      throw new Error(`${this}: answered ${JSON.stringify(result)}, the model says ${wasMember}`);
    const open = ending.filter((id) => !peer.log(id).completed);
    if (open.length && !(await peer.until(() => ending.every((id) => peer.log(id).completed), ANSWER_MS))) {
      throw new Error(`${this}: the subscriptions [${ending.filter((id) => !peer.log(id).completed)}] on ${this.channel} did not complete`);
    }
    for (const id of ending) slot.subs.delete(id);
    slot.joins.delete(this.channel);
    slot.httpJoins.delete(this.channel);
    await world.settle(model);
  }
  toString() {
    return `LeaveChannel(${this.index}, ${this.channel})`;
  }
}

/** joinChannel over HTTP as the slot's identity: an authenticated client stays a member, an anonymous one is gone with its request. */
class HttpJoin implements Command {
  constructor(
    readonly index: number,
    readonly channel: Channel,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    // An anonymous HTTP request is a client of its own: no membership to count, none that stays.
    const asClient: SlotModel = slot.kind === "anonymous" ? { ...slot, subs: new Map(), joins: new Set(), httpJoins: new Set() } : slot;
    const allowed = refusalsFor(model, asClient, this.channel, "join");
    const result = await world.http(slot, JOIN, { channel: this.channel });
    const problem = refusalProblem(String(this), allowed, result);
    if (problem) throw new Error(problem);
    if (result.data?.joinChannel?.joined && slot.kind !== "anonymous") slot.httpJoins.add(this.channel);
    // An anonymous HTTP client's JOIN is published, but it is never a member: no LEAVE is owed.
    if (result.data?.joinChannel?.joined && slot.kind === "anonymous") world.oneRequestClients.add(result.data.joinChannel.event.client.id);
    await world.settle(model);
  }
  toString() {
    return `HttpJoin(${this.index}, ${this.channel})`;
  }
}

/** leaveChannel over HTTP as the slot's identity: for an authenticated client, every subscription and join of it on the channel ends. */
class HttpLeave implements Command {
  constructor(
    readonly index: number,
    readonly channel: Channel,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const anonymous = slot.kind === "anonymous";
    const wasMember = !anonymous && isMember(slot, this.channel);
    const peer = world.peers[this.index];
    const ending = anonymous || !slot.open ? [] : [...slot.subs].filter(([, channel]) => channel === this.channel).map(([id]) => id);
    const result = await world.http(slot, LEAVE, { channel: this.channel });
    if (result.errors || result.data?.leaveChannel !== wasMember)
      throw new Error(`${this}: answered ${JSON.stringify(result)}, the model says ${wasMember}`);
    if (ending.length && peer && !(await peer.until(() => ending.every((id) => peer.log(id).completed), ANSWER_MS))) {
      throw new Error(`${this}: the subscriptions [${ending.filter((id) => !peer.log(id).completed)}] on ${this.channel} did not complete`);
    }
    if (!anonymous) {
      for (const id of ending) slot.subs.delete(id);
      slot.joins.delete(this.channel);
      slot.httpJoins.delete(this.channel);
    }
    await world.settle(model);
  }
  toString() {
    return `HttpLeave(${this.index}, ${this.channel})`;
  }
}

/** sendMessage (fast or generic path over the socket), history or presence, over the slot's socket or over HTTP as its identity. */
class ReadOrSend extends SlotCommand {
  constructor(
    index: number,
    readonly operation: "send" | "history" | "presence",
    readonly channel: Channel,
    readonly door: Door,
    readonly path: Path,
  ) {
    super(index);
  }
  protected async act(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    const allowed = readOrSendRefusals(model, slot, this.channel, this.operation, this.door);
    const [query, variables] =
      this.operation === "send"
        ? [this.path === "fast" ? SEND : SEND_GENERIC, { channel: this.channel, payload: { from: this.index } }]
        : [this.operation === "history" ? HISTORY : PRESENCE, { channel: this.channel }];
    const result = this.door === "ws" ? await this.peer(world).operation(query, variables) : await world.http(slot, query, variables);
    const problem = refusalProblem(String(this), allowed, result);
    if (problem) throw new Error(problem);
    await world.settle(model);
  }
  toString() {
    return `ReadOrSend(${this.index}, ${this.operation}, ${this.channel}, ${this.door}, ${this.path})`;
  }
}

/** The admin creates or updates a channel's configuration; subscribers who may no longer listen are removed. */
class ChangeConfig implements Command {
  constructor(
    readonly channel: Channel,
    readonly rules: Rules,
  ) {}
  check(): boolean {
    return true;
  }
  async run(model: Model, world: World): Promise<void> {
    const input = { ...this.rules, presence: true, history: 5 };
    const result = model.configs.has(this.channel)
      ? await world.admin(UPDATE_CHANNEL, { pattern: this.channel, input })
      : await world.admin(CREATE_CHANNEL, { input: { pattern: this.channel, ...input } });
    if (result.errors) throw new Error(`${this}: ${JSON.stringify(result.errors)}`);
    model.configs.set(this.channel, this.rules);
    for (const [index, slot] of model.slots.entries()) {
      if (!slot.open || canListen(model, slot, this.channel)) continue;
      const peer = world.peers[index]!;
      const removed = [...slot.subs].filter(([, channel]) => channel === this.channel).map(([id]) => id);
      const ended = (id: string) => {
        const log = peer.log(id);
        return log.errorFrame !== null || log.results.some((result) => result.errors);
      };
      if (!(await peer.until(() => removed.every(ended), ANSWER_MS)))
        throw new Error(`${this}: slot ${index}'s subscriptions [${removed.filter((id) => !ended(id))}] were not ended`);
      for (const id of removed) {
        const log = peer.log(id);
        const codes = (log.errorFrame ?? log.results.find((result) => result.errors)?.errors ?? []).map((error) =>
          String(error.extensions?.code),
        );
        if (!codes.some((code) => code === "FORBIDDEN" || code === "UNAUTHENTICATED"))
          throw new Error(`${this}: slot ${index}'s subscription ${id} ended with [${codes}]`);
        slot.subs.delete(id);
      }
      // Its joinChannel membership over the socket is removed too (an HTTP one is an authenticated client's, who may still listen).
      slot.joins.delete(this.channel);
    }
    await world.settle(model);
  }
  toString() {
    return `ChangeConfig(${this.channel}, ${JSON.stringify(this.rules)})`;
  }
}

/** Waits for the short-lived token to expire: the server closes that socket with 4403 `Token expired`. */
class AwaitTokenExpiry implements Command {
  check(model: Readonly<Model>): boolean {
    return model.slots.some((slot) => slot.open && slot.expiring);
  }
  async run(model: Model, world: World): Promise<void> {
    const index = model.slots.findIndex((slot) => slot.open && slot.expiring);
    const peer = world.peers[index]!;
    const wait = Math.max(0, world.expiresAt + EXPIRY_GRACE_MS - Date.now());
    if (!(await peer.until(() => peer.closed !== null, wait)))
      throw new Error(`${this}: the socket is still open ${EXPIRY_GRACE_MS} ms after its token expired`);
    if (peer.closed!.code !== 4403 || peer.closed!.reason !== "Token expired")
      throw new Error(`${this}: closed with ${peer.closed!.code} ${JSON.stringify(peer.closed!.reason)}`);
    if (Date.now() < world.expiresAt - 50) throw new Error(`${this}: closed before the token expired`);
    closeSlot(model.slots[index]!);
    await world.settle(model);
  }
  toString() {
    return "AwaitTokenExpiry";
  }
}

class CloseSocket extends SlotCommand {
  protected async act(model: Model, world: World): Promise<void> {
    const peer = this.peer(world);
    peer.close();
    if (!(await peer.until(() => peer.closed !== null, ANSWER_MS))) throw new Error(`${this}: the socket did not close`);
    closeSlot(model.slots[this.index]!);
    await world.settle(model);
  }
  toString() {
    return `CloseSocket(${this.index})`;
  }
}

/** Opens a new socket in a closed slot (same identity kind; a long-lived token from now on). */
class Reconnect implements Command {
  constructor(readonly index: number) {}
  check(model: Readonly<Model>): boolean {
    return !model.slots[this.index]!.open;
  }
  async run(model: Model, world: World): Promise<void> {
    const slot = model.slots[this.index]!;
    slot.expiring = false;
    await world.connect(this.index, slot);
    slot.open = true;
    await world.settle(model);
  }
  toString() {
    return `Reconnect(${this.index})`;
  }
}

// ---------------------------------------------------------------------------------------------
// The property.

const SLOTS: { kind: SlotKind; sub?: string }[] = [
  { kind: "anonymous" },
  { kind: "anonymous" },
  { kind: "user", sub: "user-1" },
  { kind: "expiring", sub: "user-2" },
];

const slotIndex = fc.integer({ min: 0, max: SLOTS.length - 1 });
const channel = fc.constantFrom(...CHANNELS);
const path = fc.constantFrom<Path>("fast", "generic");
const rules = fc.record<Rules>({
  anonymousClients: fc.boolean(),
  messaging: fc.constantFrom<Messaging>("ANYONE", "AUTHENTICATED", "NOBODY"),
  membersOnly: fc.boolean(),
});

const commands = [
  fc.tuple(slotIndex, channel, path).map(([i, c, p]) => new Subscribe(i, c, p)),
  fc.tuple(slotIndex, channel, path).map(([i, c, p]) => new Subscribe(i, c, p)),
  fc.tuple(slotIndex, fc.nat(9)).map(([i, pick]) => new Complete(i, pick)),
  fc.tuple(slotIndex, fc.nat(9)).map(([i, pick]) => new Resubscribe(i, pick)),
  fc.tuple(slotIndex, channel).map(([i, c]) => new SubscribeCompleteSubscribe(i, c)),
  fc.tuple(slotIndex, fc.array(channel, { minLength: 2, maxLength: 8 }), path).map(([i, cs, p]) => new Burst(i, cs, p)),
  fc.tuple(slotIndex, channel, fc.integer({ min: 2, max: 4 })).map(([i, c, n]) => new BurstSameId(i, c, n)),
  fc.tuple(slotIndex, channel).map(([i, c]) => new JoinChannel(i, c)),
  fc.tuple(slotIndex, channel).map(([i, c]) => new LeaveChannel(i, c)),
  fc.tuple(slotIndex, channel).map(([i, c]) => new HttpJoin(i, c)),
  fc.tuple(slotIndex, channel).map(([i, c]) => new HttpLeave(i, c)),
  fc
    .tuple(
      slotIndex,
      fc.constantFrom("send" as const, "history" as const, "presence" as const),
      channel,
      fc.constantFrom<Door>("ws", "http"),
      path,
    )
    .map(([i, o, c, d, p]) => new ReadOrSend(i, o, c, d, p)),
  fc.tuple(channel, rules).map(([c, r]) => new ChangeConfig(c, r)),
  fc.constant(new AwaitTokenExpiry()),
  slotIndex.map((i) => new CloseSocket(i)),
  slotIndex.map((i) => new Reconnect(i)),
];

const NUM_RUNS = Number(process.env.GATES_RUNS ?? 10);

describe("channel gates, model-based", () => {
  it("presence, deliveries, LEAVEs and limits follow the model through every interleaving", { timeout: 120_000 }, async () => {
    await assertProperty(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 30, size: "max" }), async (sequence) => {
        const server = await startServer(SERVER_ENV);
        const world = new World(server);
        try {
          for (const watcher of world.watchers) {
            if (!(await watcher.until(0, ANSWER_MS)))
              throw new Error(`the watcher of ${watcher.channel} did not start: ${watcher.failure}`);
          }
          const model: Model = {
            slots: SLOTS.map(({ kind, sub }) => ({
              kind,
              sub,
              open: true,
              subs: new Map(),
              joins: new Set(),
              httpJoins: new Set(),
              expiring: kind === "expiring",
            })),
            configs: new Map(),
          };
          for (const [index, slot] of model.slots.entries()) await world.connect(index, slot);
          await fc.asyncModelRun(() => ({ model, real: world }), sequence);
          // Joins over HTTP outlive sockets by design: leave them first.
          for (const slot of model.slots)
            for (const channel of slot.httpJoins) await new HttpLeave(model.slots.indexOf(slot), channel).run(model, world);
          // Nothing outlives its socket.
          expect(await world.shutDown()).toEqual({ channels: 0, memberships: 0, feeds: 0, listeners: 0 });
        } finally {
          await world.shutDown();
          await server.stop();
        }
      }),
      {
        numRuns: NUM_RUNS,
        // The 10 runs take 13-27 s on a loaded two-core machine; a run the limit cuts short fails the test.
        interruptAfterTimeLimit: 75_000,
        // Sequences the model once found broken: a WebSocket's joinChannel membership outlived
        // anonymousClients: false, and a watcher counted an anonymous HTTP caller who could never leave.
        examples: [
          [[new JoinChannel(0, "m:0"), new ChangeConfig("m:0", { anonymousClients: false, messaging: "ANYONE", membersOnly: false })]],
          [[new HttpJoin(0, "m:1")]],
        ],
      },
    );
  });
});
