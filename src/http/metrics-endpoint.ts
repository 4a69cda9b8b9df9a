import type { IncomingMessage, ServerResponse } from "node:http";
import { bearerToken, isAdminToken } from "../auth/admin-token.js";
import type { Metrics } from "../observability/metrics.js";

/**
 * Answers `GET /metrics` with the Prometheus text format. With a `token`, a scrape must send
 * `Authorization: Bearer <token>`; anything else gets 401 and no metrics.
 */
export function serveMetrics(req: IncomingMessage, res: ServerResponse, metrics: Metrics, token: string | undefined): void {
  if (token && !isAdminToken(token, bearerToken(req.headers.authorization))) {
    res.writeHead(401, { "content-type": "text/plain; charset=utf-8", "www-authenticate": 'Bearer realm="metrics"' });
    res.end("Unauthorized: send Authorization: Bearer <METRICS_TOKEN>\n");
    return;
  }
  metrics.text().then(
    (text) => {
      res.writeHead(200, { "content-type": metrics.contentType, "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : text);
    },
    () => {
      res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("Metrics could not be collected\n");
    },
  );
}
