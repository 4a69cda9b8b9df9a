import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { renderGraphiQL } from "@graphql-yoga/render-graphiql";
import { GraphQLError } from "graphql";
import { createYoga, type YogaInitialContext } from "graphql-yoga";
import { bearerToken, isAdminToken } from "./auth/admin-token.js";
import { anonymousClient, type VerifiedClient } from "./auth/client-tokens.js";
import type { Env } from "./env.js";
import { AppError, ErrorCode } from "./errors.js";
import { clientAddress } from "./http/client-address.js";
import { corsSettings, varyOnOrigin } from "./http/cors.js";
import { guardConnections } from "./http/edge.js";
import { GRAPHIQL_OPTIONS } from "./http/graphiql-page.js";
import { createOperationsHandler } from "./http/operations.js";
import { hardeningPlugins } from "./http/plugins.js";
import { createWebHandler } from "./http/web.js";
import type { Logger } from "./logger.js";
import type { Session } from "./realtime/types.js";
import type { Context } from "./schema/builder.js";
import { createErrorMasker } from "./schema/errors.js";
import { schema } from "./schema/index.js";
import { safeSerialization } from "./schema/results.js";
import { createServices, type Services } from "./services.js";
import { serveGraphqlOverWebSocket } from "./ws/graphql-ws.js";

/** The GraphQL endpoint, for HTTP, SSE and WebSocket alike. */
export const GRAPHQL_PATH = "/graphql";

/** A built server: listen with {@link App.start}, stop everything it holds with {@link App.stop}. */
export interface App {
  readonly services: Services;
  /** Listens on `port` (0 picks a free one) and resolves once accepting connections. */
  start(port?: number, host?: string): Promise<{ port: number; url: string }>;
  /** Closes sockets, subscriptions, the HTTP server and the database. Safe to call twice. */
  stop(): Promise<void>;
}

function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: ErrorCode.Unauthenticated, http: { status: 401 } } });
}

/**
 * Refuses a request whose body is larger than `max` bytes with 413: at once when Content-Length says
 * so, or as soon as a chunked body goes past it. Returns true when the request was refused.
 */
function refuseLargeBody(req: IncomingMessage, res: ServerResponse, max: number): boolean {
  const refuse = () => {
    if (!res.headersSent) {
      res.writeHead(413, { "content-type": "application/json", connection: "close" });
      res.end(
        JSON.stringify({ errors: [{ message: `Request body larger than ${max} bytes`, extensions: { code: "PAYLOAD_TOO_LARGE" } }] }),
      );
    }
    req.destroy();
  };
  if (Number(req.headers["content-length"] ?? 0) > max) {
    refuse();
    return true;
  }
  let received = 0;
  req.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (received > max) refuse();
  });
  return false;
}

/** Builds the server: services, GraphQL over HTTP/SSE (Yoga) and over WebSocket (graphql-ws). */
export async function createApp(env: Env, logger: Logger): Promise<App> {
  const services = await createServices(env, logger);
  const development = env.NODE_ENV === "development";
  const maskError = createErrorMasker(logger, development, services.outages);

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    // Browsers get GraphiQL from the operations handler (rendered and gzipped once); these settings
    // cover what reaches Yoga all the same. Served from the package: no CDN, works offline.
    graphiql: env.GRAPHIQL ? GRAPHIQL_OPTIONS : false,
    renderGraphiQL,
    landingPage: false,
    healthCheckEndpoint: false as unknown as string,
    logging: {
      debug: (...args) => logger.debug(args.join(" ")),
      info: (...args) => logger.info(args.join(" ")),
      warn: (...args) => logger.warn(args.join(" ")),
      // Yoga logs every error it masks; client errors (GraphQL errors) are not the server's, and the
      // masker logs unexpected ones itself, with their errorId.
      error: (...args) => (args.some((arg) => arg instanceof GraphQLError) ? logger.debug(args.join(" ")) : logger.error(args.join(" "))),
    },
    maskedErrors: { maskError },
    plugins: [...hardeningPlugins(env, development), safeSerialization(maskError), varyOnOrigin(env), services.metrics.yogaPlugin()],
    cors: corsSettings(env),
    context: async (initial): Promise<Context> => {
      const socketSession = (initial as { session?: Session }).session;
      if (socketSession) return { session: socketSession, services };
      const { request, req } = initial as unknown as YogaInitialContext & { req?: IncomingMessage };
      const address = clientAddress(req?.socket.remoteAddress, request.headers.get("x-forwarded-for"), env.TRUST_PROXY);
      const token = readBearerToken(request.headers.get("authorization"));
      if (!token) return { session: { client: anonymousClient(), isAdmin: false, address }, services };
      if (isAdminToken(services.adminToken, token)) return { session: { client: anonymousClient(), isAdmin: true, address }, services };
      const { client, expiresAt } = await verifyClientToken(token);
      return { session: { client, isAdmin: false, address, expiresAt }, services };
    },
  });

  /** The request's bearer token, or null without one; a malformed `Authorization` header is refused with 401. */
  function readBearerToken(header: string | null): string | null {
    try {
      return bearerToken(header);
    } catch (error) {
      if (error instanceof AppError) throw unauthenticated(error.message);
      throw error;
    }
  }

  /** Verifies a client token; a bad one is refused with 401, never downgraded to anonymous. */
  async function verifyClientToken(token: string): Promise<VerifiedClient> {
    try {
      return await services.clientTokens.verifyToken(token);
    } catch (error) {
      if (error instanceof AppError) throw unauthenticated(error.message);
      throw error;
    }
  }

  const web = createWebHandler({ development, logger });
  let draining = false;
  const operations = createOperationsHandler(services, () => draining, GRAPHQL_PATH); // /metrics, /ready, GET /, GraphiQL
  const activeRequests = new Set<ServerResponse>();
  const httpServer = createServer(
    {
      // A request's headers (and the whole request) must arrive in time, checked every second: a
      // connection that dribbles bytes or sends none is answered 408 and closed.
      headersTimeout: env.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeout: env.HTTP_REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: Math.min(1000, env.HTTP_HEADERS_TIMEOUT_MS),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      if (guard.refuseRequest(req, res)) return;
      activeRequests.add(res);
      res.once("close", () => activeRequests.delete(res));
      if (req.url === "/health" || req.url?.startsWith("/health?")) {
        void services.health().then(({ healthy, ...parts }) => {
          const ok = healthy && !draining;
          res.writeHead(ok ? 200 : 503, { "content-type": "application/json" });
          res.end(JSON.stringify({ status: draining ? "draining" : ok ? "ok" : "unavailable", ...parts }));
        });
        return;
      }
      if (operations(req, res)) return;
      if (refuseLargeBody(req, res, env.MAX_HTTP_BODY_BYTES)) return;
      if (web(req, res)) return; // /demo, /admin and their /assets/
      void yoga.handle(req, res);
    },
  );
  const guard = guardConnections(httpServer, {
    trustProxy: env.TRUST_PROXY,
    maxConnectionsPerAddress: env.MAX_CONNECTIONS_PER_ADDRESS,
    logger,
  });

  services.metrics.watch(httpServer, GRAPHQL_PATH);
  const webSockets = serveGraphqlOverWebSocket(httpServer, {
    path: GRAPHQL_PATH,
    yoga,
    services,
    logger,
    maskError,
    guard,
  });

  let stopped: Promise<void> | null = null;
  return {
    services,
    start: (port = env.PORT, host = env.HOST) =>
      new Promise((resolve, reject) => {
        httpServer.once("error", reject);
        httpServer.listen(port, host, () => {
          httpServer.off("error", reject);
          const address = httpServer.address() as AddressInfo;
          const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;
          resolve({ port: address.port, url: `http://${shownHost}:${address.port}${GRAPHQL_PATH}` });
        });
      }),
    stop: () =>
      (stopped ??= (async () => {
        // Drain: stop accepting connections, let sends under way finish, then close every socket with 1001.
        draining = true;
        if (env.SHUTDOWN_DELAY_MS > 0) await new Promise((resolve) => setTimeout(resolve, env.SHUTDOWN_DELAY_MS)); // /ready is 503: let load balancers notice
        const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        httpServer.closeIdleConnections();
        const deadline = Date.now() + env.SHUTDOWN_TIMEOUT_MS;
        await services.publisher.drain(env.SHUTDOWN_TIMEOUT_MS);
        // Let the answers to those sends go out: HTTP responses finish, WebSocket results are written.
        while (activeRequests.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
        await new Promise((resolve) => setImmediate(resolve));
        await webSockets.close(); // completes subscriptions, closes sockets with 1001
        httpServer.closeAllConnections();
        await closed;
        await services.close();
      })()),
  };
}
