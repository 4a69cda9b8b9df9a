import type { ServerResponse } from "node:http";

/** The pages a first visit is pointed at; GraphiQL only where it is served. */
function links(graphiql: boolean): [href: string, label: string, what: string][] {
  return [
    ...(graphiql ? ([["/graphql", "GraphiQL", "run queries, mutations and subscriptions"]] as [string, string, string][]) : []),
    ["/demo", "Demo chat room", "open it in two windows and chat"],
    ["/admin", "Admin console", "channels, triggers and the live view (needs the admin token)"],
    ["/health", "/health", "liveness"],
    ["/ready", "/ready", "readiness, for load balancers"],
    ["/metrics", "/metrics", "Prometheus metrics"],
  ];
}

/** Answers `GET /` with a small page linking the server's pages and endpoints. */
export function serveLandingPage(res: ServerResponse, options: { graphiql: boolean; version: string }): void {
  const items = links(options.graphiql)
    .map(([href, label, what]) => `<li><a href="${href}">${label}</a> — ${what}</li>`)
    .join("\n      ");
  const html = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Realtime channels</title>
    <style>body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem; } li { margin: .4rem 0; }</style>
  </head>
  <body>
    <h1>Realtime channels</h1>
    <p>A realtime channels server over GraphQL, version ${options.version}. The GraphQL endpoint is <code>/graphql</code> (HTTP, SSE and WebSocket).</p>
    <ul>
      ${items}
    </ul>
  </body>
</html>
`;
  res.writeHead(200, {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-cache",
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
  });
  res.end(html);
}
