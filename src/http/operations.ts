import type { IncomingMessage, ServerResponse } from "node:http";
import type { Services } from "../services.js";
import { createGraphiQLPage } from "./graphiql-page.js";
import { serveLandingPage } from "./landing.js";
import { serveMetrics } from "./metrics-endpoint.js";
import { serveReadiness } from "./ready.js";

/**
 * The endpoints for operators and first visitors: `GET /metrics`, `GET /ready`, the landing page
 * at `GET /` and GraphiQL's page at `GET <graphqlPath>` (for browsers, when `GRAPHIQL` is on). Returns a request listener that answers and returns true for those paths, and returns
 * false (having done nothing) for any other request.
 */
export function createOperationsHandler(
  services: Services,
  isDraining: () => boolean,
  graphqlPath: string,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { env } = services;
  const graphiql = env.GRAPHIQL ? createGraphiQLPage(graphqlPath) : () => false;
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (path === "/metrics") serveMetrics(req, res, services.metrics, env.METRICS_TOKEN);
    else if (path === "/ready") serveReadiness(res, services, isDraining());
    else if (path === "/") serveLandingPage(res, { graphiql: env.GRAPHIQL, version: services.version });
    else return graphiql(req, res, path);
    return true;
  };
}
