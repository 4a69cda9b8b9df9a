import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { WebSocketServer } from "ws";
import { clientAddress } from "../http/client-address.js";
import type { Logger } from "../logger.js";
import { RateLimiter } from "../realtime/rate-limit.js";

/** Who may open a WebSocket, checked before the upgrade. */
export interface UpgradePolicy {
  readonly path: string;
  /** Origins a browser may connect from; `*` allows any. A request without `Origin` (not a browser) is allowed. */
  readonly allowedOrigins: "*" | readonly string[];
  /** Proxies whose `X-Forwarded-For` entries are believed. */
  readonly trustProxy: number;
  /** Open connections from one address. */
  readonly maxConnectionsPerAddress: number;
  /** New connections one address may open per second. */
  readonly connectionsPerSecondPerAddress: number;
  readonly logger: Logger;
}

const addresses = new WeakMap<IncomingMessage, string>();

/** The address an accepted upgrade request came from (see {@link acceptUpgrades}). */
export function upgradeAddress(request: IncomingMessage): string {
  return addresses.get(request) ?? "unknown";
}

/**
 * Hands the HTTP server's WebSocket upgrades on `policy.path` to `wsServer`, refusing before the
 * upgrade, with a plain HTTP answer: another path (404), a browser origin not allowed (403), and an
 * address over its connection cap or rate (429). Returns a function that stops accepting.
 */
export function acceptUpgrades(httpServer: Server, wsServer: WebSocketServer, policy: UpgradePolicy): () => void {
  const open = new Map<string, number>();
  const rate = new RateLimiter(policy.connectionsPerSecondPerAddress);
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? "").split("?")[0];
    if (path !== policy.path) return refuse(socket, 404, "Not Found");
    const origin = request.headers.origin;
    if (origin !== undefined && policy.allowedOrigins !== "*" && !policy.allowedOrigins.includes(origin)) {
      policy.logger.debug({ origin }, "refused a WebSocket from an origin that is not allowed");
      return refuse(socket, 403, "Forbidden", "Origin not allowed");
    }
    const address = clientAddress(request.socket.remoteAddress, request.headers["x-forwarded-for"], policy.trustProxy);
    const count = open.get(address) ?? 0;
    if (count >= policy.maxConnectionsPerAddress) {
      return refuse(socket, 429, "Too Many Requests", `At most ${policy.maxConnectionsPerAddress} connections per address`);
    }
    if (!rate.take(address)) {
      return refuse(
        socket,
        429,
        "Too Many Requests",
        `At most ${policy.connectionsPerSecondPerAddress} new connections per second per address`,
      );
    }
    // Counted from now until the TCP connection ends, whether or not the handshake completes.
    open.set(address, count + 1);
    countUntilClosed(socket, open, address);
    addresses.set(request, address);
    wsServer.handleUpgrade(request, socket, head, (webSocket) => wsServer.emit("connection", webSocket, request));
  };
  httpServer.on("upgrade", onUpgrade);
  return () => httpServer.off("upgrade", onUpgrade);
}

/**
 * Takes the connection off its address's count when it closes. A function of its own so that the
 * listener, which lives as long as the connection, holds the address only: one made inside the
 * upgrade handler would keep the upgrade request (headers and all) alive with it.
 */
function countUntilClosed(socket: Duplex, open: Map<string, number>, address: string): void {
  // `close` is emitted once: `on` spares the wrapper `once` would keep for the connection's lifetime.
  socket.on("close", () => {
    const left = (open.get(address) ?? 1) - 1;
    if (left > 0) open.set(address, left);
    else open.delete(address);
  });
}

function refuse(socket: Duplex, status: number, statusText: string, body = statusText): void {
  socket.end(
    `HTTP/1.1 ${status} ${statusText}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
