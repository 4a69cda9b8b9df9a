import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import type { WebSocketServer } from "ws";
import { clientAddress } from "../http/client-address.js";
import { type ConnectionGuard, refuseConnection } from "../http/edge.js";
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
  /** The server's edge: every socket already has an error listener, and is counted there without a proxy. */
  readonly guard: ConnectionGuard;
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
 * address over its connection cap or rate (429). Without a trusted proxy the connection was counted
 * toward its address's cap when it was accepted (see {@link ConnectionGuard}); behind proxies the
 * address is only known from the request, so the upgrade counts it. Returns a function that stops accepting.
 */
export function acceptUpgrades(httpServer: Server, wsServer: WebSocketServer, policy: UpgradePolicy): () => void {
  const { guard } = policy;
  const rate = new RateLimiter(policy.connectionsPerSecondPerAddress);
  const capMessage = `At most ${policy.maxConnectionsPerAddress} connections per address`;
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? "").split("?")[0];
    if (path !== policy.path) return refuseConnection(socket, 404, "Not Found");
    const origin = request.headers.origin;
    if (origin !== undefined && policy.allowedOrigins !== "*" && !policy.allowedOrigins.includes(origin)) {
      policy.logger.debug({ origin }, "refused a WebSocket from an origin that is not allowed");
      return refuseConnection(socket, 403, "Forbidden", "Origin not allowed");
    }
    if (guard.overCap(request.socket)) return refuseConnection(socket, 429, "Too Many Requests", capMessage);
    const address = clientAddress(request.socket.remoteAddress, request.headers["x-forwarded-for"], policy.trustProxy);
    // Behind proxies: counted from now until the TCP connection ends, whether or not the handshake completes.
    if (!guard.countsConnections && !guard.counts.countUntilClosed(socket, address, policy.maxConnectionsPerAddress)) {
      return refuseConnection(socket, 429, "Too Many Requests", capMessage);
    }
    if (!rate.take(address)) {
      return refuseConnection(
        socket,
        429,
        "Too Many Requests",
        `At most ${policy.connectionsPerSecondPerAddress} new connections per second per address`,
      );
    }
    addresses.set(request, address);
    wsServer.handleUpgrade(request, socket, head, (webSocket) => wsServer.emit("connection", webSocket, request));
  };
  httpServer.on("upgrade", onUpgrade);
  return () => httpServer.off("upgrade", onUpgrade);
}
