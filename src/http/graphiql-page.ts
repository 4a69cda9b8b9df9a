import type { IncomingMessage, ServerResponse } from "node:http";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";

const gzipAsync = promisify(gzip);

/**
 * What GraphiQL opens with: the server's name as its title, and subscriptions over SSE, so that the
 * headers of its Headers tab (an `Authorization` with the admin token or a client's JWT) go with
 * subscriptions as with queries; a browser's WebSocket can carry no headers.
 */
export const GRAPHIQL_OPTIONS = { subscriptionsProtocol: "SSE", title: "Realtime channels" } as const;

/** Whether the request's `Accept-Encoding` allows gzip (a `q=0` refuses it). */
function acceptsGzip(req: IncomingMessage): boolean {
  const header = req.headers["accept-encoding"];
  if (!header) return false;
  return header.split(",").some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(";");
    if (coding!.trim() !== "gzip" && coding!.trim() !== "*") return false;
    const quality = params.map((param) => param.trim()).find((param) => param.startsWith("q="));
    return quality === undefined || Number(quality.slice(2)) > 0;
  });
}

/**
 * Serves GraphiQL's page on `GET <endpoint>` for browsers (`Accept: text/html`). The page inlines the
 * whole editor (about 9 MB) so that it works offline; it is rendered once and gzipped once (to about
 * 2.4 MB), in the background, instead of being rendered and sent uncompressed on every visit.
 * Returns true when it answered the request.
 */
export function createGraphiQLPage(endpoint: string): (req: IncomingMessage, res: ServerResponse, path: string) => boolean {
  let page: Buffer | undefined;
  let gzipped: Promise<Buffer> | undefined;
  const send = (req: IncomingMessage, res: ServerResponse, body: Buffer, encoding?: "gzip") => {
    res.writeHead(200, {
      "content-type": "text/html; charset=utf-8",
      "content-length": body.length,
      "cache-control": "no-cache",
      vary: "accept-encoding",
      ...(encoding ? { "content-encoding": encoding } : {}),
    });
    res.end(req.method === "HEAD" ? undefined : body);
  };
  return (req, res, path) => {
    if (path !== endpoint && path !== `${endpoint}/`) return false;
    if (!req.headers.accept?.includes("text/html")) return false;
    page ??= Buffer.from(renderGraphiQL(GRAPHIQL_OPTIONS));
    const identity = page;
    if (!acceptsGzip(req)) {
      send(req, res, identity);
      return true;
    }
    gzipped ??= gzipAsync(identity, { level: 9 });
    gzipped.then(
      (body) => send(req, res, body, "gzip"),
      () => {
        gzipped = undefined; // try again next time; this visitor gets the page uncompressed
        send(req, res, identity);
      },
    );
    return true;
  };
}
