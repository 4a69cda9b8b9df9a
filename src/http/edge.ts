import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "../logger.js";
import { clientAddress } from "./client-address.js";

/**
 * The server's edge: every TCP connection from the moment it is accepted, before any request on it
 * has been read. Nothing a peer does there (resetting, stalling, sending garbage) may throw, and a
 * connection counts toward its address's cap from its first byte, whatever it turns out to be.
 */

/** What the edge holds every connection to. */
export interface EdgePolicy {
  /** Proxies in front of the server; with any, the peer address is the proxy's and is not counted here. */
  readonly trustProxy: number;
  /** Open connections from one address (WebSockets, HTTP requests and connections still sending headers). */
  readonly maxConnectionsPerAddress: number;
  readonly logger: Logger;
}

/** How long a refused connection is kept for its answer to be read before it is destroyed. */
const REFUSED_LINGER_MS = 1000;

/** Open connections per address: what the per-address caps count. */
export class AddressCounts {
  private readonly counts = new Map<string, number>();

  /** Counts one more connection of `address` unless it already has `max`; true when counted. */
  tryAdd(address: string, max: number): boolean {
    const count = this.counts.get(address) ?? 0;
    if (count >= max) return false;
    this.counts.set(address, count + 1);
    return true;
  }

  /** Takes one connection of `address` off its count. */
  remove(address: string): void {
    const left = (this.counts.get(address) ?? 1) - 1;
    if (left > 0) this.counts.set(address, left);
    else this.counts.delete(address);
  }

  /**
   * Counts `socket` under `address` until it closes (see {@link AddressCounts.tryAdd}). The close
   * listener holds the address only, not whatever the caller holds (the upgrade request, say).
   */
  countUntilClosed(socket: Duplex, address: string, max: number): boolean {
    if (!this.tryAdd(address, max)) return false;
    // `close` is emitted once: `on` spares the wrapper `once` would keep for the connection's lifetime.
    socket.on("close", () => this.remove(address));
    return true;
  }
}

/** Errors of raw sockets (resets, broken pipes): the connection is over, and nothing else is wrong. */
function ignoreSocketError(): void {}

/** Ends `socket` with a plain HTTP answer, and destroys it if the peer keeps it open after reading. */
export function refuseConnection(socket: Duplex, status: number, statusText: string, body = statusText): void {
  socket.on("error", ignoreSocketError);
  if (socket.destroyed) return;
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
}

/** The edge of one HTTP server, from {@link guardConnections}. */
export interface ConnectionGuard {
  /** Open connections per address, shared with the WebSocket upgrade (which counts behind proxies). */
  readonly counts: AddressCounts;
  /** True when connections are counted here, from their first byte (no trusted proxy). */
  readonly countsConnections: boolean;
  /** True when `socket` arrived over its address's cap: its request is answered 429. */
  overCap(socket: Socket): boolean;
  /** Answers a request on a connection over its address's cap with 429; true when it did. */
  refuseRequest(req: IncomingMessage, res: ServerResponse): boolean;
}

/**
 * Guards every connection `httpServer` accepts: an error listener on each socket from the start (a
 * reset before, during or after a refusal is not an unhandled error), and, without a trusted proxy,
 * a count per address from the first byte: a connection past `maxConnectionsPerAddress` gets its
 * request answered 429 (or is destroyed after {@link REFUSED_LINGER_MS} if it sends none).
 */
export function guardConnections(httpServer: Server, policy: EdgePolicy): ConnectionGuard {
  const counts = new AddressCounts();
  const over = new WeakSet<Socket>();
  const countsConnections = policy.trustProxy === 0;
  httpServer.on("connection", (socket: Socket) => {
    socket.on("error", ignoreSocketError);
    if (!countsConnections) return;
    const address = clientAddress(socket.remoteAddress, undefined, 0);
    if (counts.countUntilClosed(socket, address, policy.maxConnectionsPerAddress)) return;
    over.add(socket);
    policy.logger.debug({ address }, "connection over its address's cap");
    setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
  });
  const capBody = JSON.stringify({
    errors: [{ message: `At most ${policy.maxConnectionsPerAddress} connections per address`, extensions: { code: "LIMIT_EXCEEDED" } }],
  });
  return {
    counts,
    countsConnections,
    overCap: (socket) => over.has(socket),
    refuseRequest(req, res) {
      if (!over.has(req.socket)) return false;
      res.writeHead(429, { "content-type": "application/json", connection: "close" });
      res.end(capBody);
      return true;
    },
  };
}
