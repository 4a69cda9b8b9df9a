import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { ExecutionResult } from "graphql";
import {
  CloseCode,
  handleProtocols,
  MessageType,
  type Server as ProtocolServer,
  type SubscribePayload,
  stringifyMessage,
  validateMessage,
} from "graphql-ws";
import type { WebSocket, WebSocketServer } from "ws";
import type { Logger } from "../logger.js";

/**
 * What the protocol server keeps for each connection: its socket. Not the upgrade request, which
 * would stay in memory (headers and all) for as long as the connection lasts; whatever a connection
 * needs from it is read when it opens.
 */
export interface ConnectionExtra {
  readonly socket: WebSocket;
}

/** Settings of {@link carryProtocol}. */
export interface TransportOptions {
  readonly logger: Logger;
  /** How often each socket is pinged; one that has not answered by the next ping is cut off. */
  readonly keepAliveMs: number;
}

/** The TCP sockets under WebSockets written to in this turn of the event loop, held corked until it ends. */
const corkedSockets = new Set<Duplex>();

function uncorkAll(): void {
  for (const socket of corkedSockets) socket.uncork();
  corkedSockets.clear();
}

/**
 * Holds a WebSocket's writes until the current turn of the event loop ends, so that every frame
 * written to it meanwhile (a mutation's `next` and `complete`, its sender's own copy of the event,
 * several events of a busy channel) leaves in one system call instead of one each. Closing the
 * socket flushes it at once.
 */
export function coalesceWrites(socket: WebSocket): void {
  // `ws` keeps the TCP socket in `_socket`; it has no public way to cork it.
  const tcp = (socket as unknown as { _socket?: Duplex | null })._socket;
  if (!tcp || corkedSockets.has(tcp)) return;
  tcp.cork();
  if (corkedSockets.size === 0) setImmediate(uncorkAll);
  corkedSockets.add(tcp);
}

const SERVER_ONLY_TYPES = new Set(["connection_ack", "next", "error"]);

/** True for a graphql-transport-ws message whose type only servers send. */
function isServerOnlyMessage(text: string): boolean {
  if (!/"(connection_ack|next|error)"/.test(text)) return false; // cheap test first: most messages are not
  try {
    return SERVER_ONLY_TYPES.has((JSON.parse(text) as { type?: unknown }).type as string);
  } catch {
    return false; // not JSON: the protocol server closes it with 4400 itself
  }
}

/** A `subscribe` or `complete` message, parsed. */
interface OperationFrame {
  readonly type: "subscribe" | "complete";
  readonly id: string;
  readonly message: Record<string, unknown>;
}

/** The type, id and content of a `subscribe` or `complete` message; null for any other message. */
function operationFrame(text: string): OperationFrame | null {
  if (!text.includes('"subscribe"') && !text.includes('"complete"')) return null; // cheap test first
  try {
    const message = JSON.parse(text) as Record<string, unknown> | null;
    const { type, id } = message ?? {};
    return message && (type === "subscribe" || type === "complete") && typeof id === "string" ? { type, id, message } : null;
  } catch {
    return null; // not JSON: the protocol server closes it with 4400 itself
  }
}

/**
 * Runs a valid `subscribe` message's operation without the protocol server, when it can: returns
 * its single result, or null to leave the message to the protocol server. The result is sent as
 * the protocol server would send it (`next`, then `complete`), unless the client completes the
 * operation first.
 */
export type DirectOperation<Extra> = (extra: Extra, id: string, payload: SubscribePayload) => Promise<ExecutionResult> | null;

/** An operation under way, as {@link OperationIds} tracks it. */
interface Running {
  /** The client sent `complete` for it. */
  completed: boolean;
  /** Run by a {@link DirectOperation}: the protocol server does not know its id. */
  readonly direct: boolean;
}

/**
 * Keeps one operation per id at a time. The protocol server forgets an id as soon as the client
 * completes it, although the operation may still be starting (joining its channel) or stopping; a
 * `subscribe` that reuses the id then would share its bookkeeping with the old one, and one of the
 * two would be orphaned, never to leave its channel. So a `subscribe` for an id whose earlier
 * operation the client completed waits until that operation has ended, and a `complete` for a
 * waiting `subscribe` withdraws it. Operations a {@link DirectOperation} takes are run here, their
 * ids refused to a second `subscribe` as the protocol server refuses its own (4409). Everything
 * else passes straight through, in order.
 */
class OperationIds {
  /** Ids of operations under way. */
  private readonly running = new Map<string, Running>();
  /** A `subscribe` per id, waiting for the id's earlier operation to end; made when first needed. */
  private waiting: Map<string, OperationFrame & { readonly text: string }> | null = null;

  constructor(private readonly host: OperationHost) {}

  receive(text: string): void {
    const frame = operationFrame(text);
    if (!frame) return void this.host.handle(text);
    const running = this.running.get(frame.id);
    if (frame.type === "complete") {
      if (this.waiting?.delete(frame.id)) return; // withdrawn before it started
      if (running) running.completed = true;
      if (running?.direct) return; // the protocol server never knew it
      return void this.host.handle(text);
    }
    // The id is in use by a waiting subscribe, or by a direct operation: refused as the protocol refuses any id in use.
    if (this.waiting?.has(frame.id) || (running?.direct && !running.completed)) {
      this.host.refuseDuplicate(frame.id);
      return;
    }
    if (running?.completed) return void (this.waiting ??= new Map()).set(frame.id, { ...frame, text });
    // An id in use and not completed is the protocol server's to refuse (4409).
    this.start(frame, text, running !== undefined);
  }

  private start(frame: OperationFrame, text: string, inUse: boolean): void {
    const { id } = frame;
    const directly = inUse ? null : this.host.direct(id, frame.message);
    const state: Running = { completed: false, direct: directly !== null };
    this.running.set(id, state);
    const finished = directly
      ? directly.then((result) => {
          if (result && !state.completed) this.host.reply(id, result);
        })
      : this.host.handle(text);
    void finished.then(() => {
      if (this.running.get(id) === state) this.running.delete(id);
      const next = this.waiting?.get(id);
      if (next === undefined) return;
      this.waiting!.delete(id);
      if (this.waiting!.size === 0) this.waiting = null;
      this.start(next, next.text, false);
    });
  }
}

/** What {@link OperationIds} hands messages to: its {@link Connection}. */
interface OperationHost {
  /** Hands a message to the protocol server. */
  handle(text: string): Promise<void>;
  /** Closes the connection for a `subscribe` whose id is in use (4409). */
  refuseDuplicate(id: string): void;
  /** Runs an operation directly, or returns null; its result (null when it failed) is handed to `reply`. */
  direct(id: string, message: Record<string, unknown>): Promise<ExecutionResult | null> | null;
  /** Sends a directly run operation's result as the protocol server would. */
  reply(id: string, result: ExecutionResult): void;
}

/** What every {@link Connection} of one {@link carryProtocol} shares. */
interface ConnectionShared<Extra extends ConnectionExtra> {
  readonly logger: Logger;
  readonly direct?: DirectOperation<Extra>;
}

/**
 * One WebSocket as the protocol server sees it (`protocol`, `send`, `close`, `onMessage`), and the
 * host of its {@link OperationIds}. A class rather than closures: a server holds one per
 * connection, tens of thousands of them, and its methods are shared.
 */
class Connection<Extra extends ConnectionExtra> implements OperationHost {
  readonly protocol: string;
  /**
   * Set as the protocol server accepts the connection: it sends `connection_ack` then, and only
   * then. Before it, `subscribe` messages are the protocol server's to refuse (4401).
   */
  private acknowledged = false;
  private handler: ((text: string) => Promise<void>) | null = null;

  constructor(
    private readonly socket: WebSocket,
    private readonly extra: Extra,
    private readonly shared: ConnectionShared<Extra>,
  ) {
    this.protocol = socket.protocol;
  }

  /**
   * Frames leave in order without waiting for each write to finish: a socket whose client does not
   * read is dropped by the buffered-bytes guard, not slowed down by awaiting it.
   */
  send(data: string): void {
    if (!this.acknowledged && data.includes('"connection_ack"')) this.acknowledged = true;
    const { socket } = this;
    if (socket.readyState !== socket.OPEN) return;
    coalesceWrites(socket);
    socket.send(data);
  }

  close(code?: number, reason?: string): void {
    this.socket.close(code, reason);
  }

  onMessage(handler: (text: string) => Promise<void>): void {
    this.handler = handler;
    const operations = new OperationIds(this);
    this.socket.on("message", (data) => {
      const text = String(data);
      if (isServerOnlyMessage(text)) return this.close(CloseCode.BadRequest, "Bad message: this message type is sent by servers");
      operations.receive(text);
    });
  }

  handle(text: string): Promise<void> {
    return this.handler!(text).catch((error: unknown) => this.fail(error));
  }

  refuseDuplicate(id: string): void {
    this.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${id.slice(0, 64)} already exists`);
  }

  direct(id: string, message: Record<string, unknown>): Promise<ExecutionResult | null> | null {
    const { direct } = this.shared;
    if (!direct || !this.acknowledged) return null; // before the acknowledgement, the protocol server refuses it (4401)
    try {
      validateMessage(message); // an invalid message is the protocol server's to refuse (4400)
    } catch {
      return null;
    }
    const running = direct(this.extra, id, message.payload as SubscribePayload);
    return (
      running?.catch((error: unknown) => {
        this.fail(error);
        return null;
      }) ?? null
    );
  }

  reply(id: string, { errors, ...rest }: ExecutionResult): void {
    // What the protocol server sends for a single result.
    this.send(
      stringifyMessage({
        id,
        type: MessageType.Next,
        payload: { ...rest, ...(errors ? { errors: errors.map((error) => error.toJSON()) } : {}) },
      }),
    );
    this.send(stringifyMessage({ id, type: MessageType.Complete }));
  }

  private fail(error: unknown): void {
    this.shared.logger.error({ err: error }, "could not handle a WebSocket message");
    this.close(CloseCode.InternalServerError, "Internal server error");
  }
}

/**
 * Carries a graphql-ws protocol server over the sockets of a `ws` server: what graphql-ws's own
 * adapter (`graphql-ws/use/ws`) does, with these differences. Everything is logged through the
 * server's logger, never the console, and a client's mistakes are not logged as the server's: a
 * frame over the size limit is closed by `ws` with 1009, and a message type only servers send is a
 * bad message (4400), not an internal error (4500). A write to a socket that has just gone away is
 * not an error either: its close ends its operations. `direct` may take valid `subscribe`
 * messages from the protocol server and run them itself (see {@link DirectOperation}).
 */
export function carryProtocol<Extra extends ConnectionExtra>(
  wsServer: WebSocketServer,
  protocol: ProtocolServer<Extra>,
  extraFor: (socket: WebSocket, request: IncomingMessage) => Extra,
  { logger, keepAliveMs }: TransportOptions,
  direct?: DirectOperation<Extra>,
): { dispose(): Promise<void> } {
  wsServer.options.handleProtocols = handleProtocols;
  // The HTTP server's own errors (such as a port in use) reach the caller of listen().
  wsServer.on("error", (error) => logger.debug({ err: error }, "WebSocket server error"));

  // `ws` has already closed the socket with the matching code (1009 too big, 1002 malformed frame).
  const onSocketError = (error: Error) => logger.debug({ reason: error.message }, "closed a WebSocket on a protocol error");
  const shared: ConnectionShared<Extra> = { logger, direct };

  // One timer pings every socket: one that has not answered since the previous round is cut off.
  const unanswered = new WeakSet<WebSocket>();
  function answered(this: WebSocket): void {
    unanswered.delete(this);
  }
  const keepAlive = setInterval(() => {
    for (const socket of wsServer.clients) {
      if (unanswered.has(socket)) {
        socket.terminate();
        continue;
      }
      unanswered.add(socket);
      socket.ping();
    }
  }, keepAliveMs);
  keepAlive.unref(); // the sockets keep the process alive, not their pings

  wsServer.on("connection", (socket, request) => {
    socket.on("error", onSocketError);
    socket.on("pong", answered);
    const extra = extraFor(socket, request);
    const closed = protocol.opened(new Connection(socket, extra, shared), extra);
    // `close` is emitted once: `on` spares the wrapper `once` would keep for the connection's lifetime.
    socket.on("close", (code, reason) => {
      closed(code, String(reason)).catch((error: unknown) => logger.error({ err: error }, "could not end a WebSocket's operations"));
    });
  });

  return {
    dispose: async () => {
      clearInterval(keepAlive);
      for (const client of wsServer.clients) client.close(1001, "Going away");
      await new Promise<void>((resolve) => wsServer.close(() => resolve()));
    },
  };
}
