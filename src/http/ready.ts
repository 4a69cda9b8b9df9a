import type { ServerResponse } from "node:http";
import type { Services } from "../services.js";

/**
 * Answers `GET /ready`: 200 while this instance should receive traffic (database reachable, event
 * bus connected, not shutting down), 503 otherwise, naming each part. `/health` answers whether the
 * process is alive and its services reachable; `/ready` also turns 503 the moment shutdown begins, so
 * a load balancer stops sending before connections close.
 */
export function serveReadiness(res: ServerResponse, services: Services, draining: boolean): void {
  void services.health().then(({ database, redis }) => {
    const bus = redis ?? "ok"; // the in-memory bus is always there
    const ready = !draining && database === "ok" && bus === "ok";
    res.writeHead(ready ? 200 : 503, { "content-type": "application/json", "cache-control": "no-store" });
    res.end(JSON.stringify({ status: draining ? "draining" : ready ? "ready" : "unavailable", database, bus, draining }));
  });
}
