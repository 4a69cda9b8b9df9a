import type { IncomingMessage, ServerResponse } from "node:http";
import type { Services } from "../services.js";
import { serveLandingPage } from "./landing.js";
import { serveMetrics } from "./metrics-endpoint.js";
import { serveReadiness } from "./ready.js";

/**
 * The endpoints for operators and first visitors: `GET /metrics`, `GET /ready` and the landing page
 * at `GET /`. Returns a request listener that answers and returns true for those paths, and returns
 * false (having done nothing) for any other request.
 */
export function createOperationsHandler(
  services: Services,
  isDraining: () => boolean,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { env } = services;
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path === "/metrics") serveMetrics(req, res, services.metrics, env.METRICS_TOKEN);
    else if (path === "/ready") serveReadiness(res, services, isDraining());
    else if (path === "/") serveLandingPage(res, { graphiql: env.GRAPHIQL, version: services.version });
    else return false;
    return true;
  };
}
