import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GraphQLError } from "graphql";
import { createYoga, type YogaInitialContext } from "graphql-yoga";
import { useServer } from "graphql-ws/use/ws";
import { WebSocketServer } from "ws";
import { bearerToken, isAdminToken } from "./auth/admin-token.js";
import type { Env } from "./env.js";
import { AppError } from "./errors.js";
import { createWebHandler } from "./http/web.js";
import { hardeningPlugins } from "./http/plugins.js";
import type { Logger } from "./logger.js";
import type { RealtimeClient, Session } from "./realtime/types.js";
import type { Context } from "./schema/builder.js";
import { schema } from "./schema/index.js";
import { createServices, type Services } from "./services.js";

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

const SERVER_ONLY_TYPES = new Set(["connection_ack", "next", "error"]);

/** True for a graphql-transport-ws message whose type only servers send. */
function isServerOnlyMessage(text: string): boolean {
  if (!/"(connection_ack|next|error)"/.test(text)) return false; // cheap test first: most messages are not
  try {
    return SERVER_ONLY_TYPES.has((JSON.parse(text) as { type?: unknown }).type as string);
  } catch {
    return false; // not JSON: graphql-ws closes it with 4400 itself
  }
}

/** Connection-level state kept for each WebSocket. */
type SocketExtra = {
  session?: Session;
};

function anonymousClient(): RealtimeClient {
  return { id: randomUUID(), authenticated: false, extras: null };
}

function unauthenticated(message: string): GraphQLError {
  return new GraphQLError(message, { extensions: { code: "UNAUTHENTICATED", http: { status: 401 } } });
}

/**
 * Turns errors into what clients may see: `AppError`s keep their message and code, GraphQL's own
 * errors (syntax, validation) pass through, and everything else becomes a masked error whose id is
 * logged with the real cause.
 */
function createErrorMasker(logger: Logger, development: boolean) {
  return (error: unknown, message: string): Error => {
    const original = error instanceof GraphQLError ? error.originalError : error;
    if (original instanceof AppError) {
      return new GraphQLError(original.message, {
        nodes: error instanceof GraphQLError ? error.nodes : undefined,
        path: error instanceof GraphQLError ? error.path : undefined,
        extensions: { ...original.details, code: original.code },
      });
    }
    if (error instanceof GraphQLError && (!original || original instanceof GraphQLError)) {
      // GraphQL's own errors (syntax, validation, variables) and GraphQL errors thrown on purpose:
      // keep the outer message, which names the argument or field, and give every one a code.
      const extensions = { ...(original as GraphQLError | undefined)?.extensions, ...error.extensions };
      return new GraphQLError(error.message, {
        nodes: error.nodes,
        source: error.source,
        positions: error.positions,
        path: error.path,
        extensions: { ...extensions, code: extensions.code ?? "BAD_USER_INPUT" },
      });
    }
    const errorId = randomUUID();
    logger.error({ err: original, errorId }, "unexpected error");
    return new GraphQLError(development && original instanceof Error ? original.message : message, {
      nodes: error instanceof GraphQLError ? error.nodes : undefined,
      path: error instanceof GraphQLError ? error.path : undefined,
      extensions: { code: "INTERNAL_SERVER_ERROR", errorId },
    });
  };
}

/**
 * Refuses a request whose body is larger than `max` bytes with 413: at once when Content-Length says
 * so, or as soon as a chunked body goes past it. Returns true when the request was refused.
 */
function refuseLargeBody(req: IncomingMessage, res: ServerResponse, max: number): boolean {
  const refuse = () => {
    if (!res.headersSent) {
      res.writeHead(413, { "content-type": "application/json", connection: "close" });
      res.end(JSON.stringify({ errors: [{ message: `Request body larger than ${max} bytes`, extensions: { code: "PAYLOAD_TOO_LARGE" } }] }));
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

  const yoga = createYoga<Record<string, unknown>, Context>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: env.GRAPHIQL ? { subscriptionsProtocol: "WS", title: "Realtime channels" } : false,
    landingPage: false,
    healthCheckEndpoint: false as unknown as string,
    logging: {
      debug: (...args) => logger.debug(args.join(" ")),
      info: (...args) => logger.info(args.join(" ")),
      warn: (...args) => logger.warn(args.join(" ")),
      // Yoga logs every error it masks; client errors (GraphQL errors) are not the server's, and the
      // masker logs unexpected ones itself, with their errorId.
      error: (...args) =>
        args.some((arg) => arg instanceof GraphQLError) ? logger.debug(args.join(" ")) : logger.error(args.join(" ")),
    },
    maskedErrors: { maskError: createErrorMasker(logger, development) },
    plugins: hardeningPlugins(env, development),
    cors: { origin: env.CORS_ORIGINS === "*" ? "*" : env.CORS_ORIGINS.split(",").map((origin) => origin.trim()) },
    context: async (initial): Promise<Context> => {
      const socketSession = (initial as { session?: Session }).session;
      if (socketSession) return { session: socketSession, services };
      const token = bearerToken((initial as unknown as YogaInitialContext).request.headers.get("authorization"));
      if (!token) return { session: { client: anonymousClient(), isAdmin: false }, services };
      if (isAdminToken(services.adminToken, token)) return { session: { client: anonymousClient(), isAdmin: true }, services };
      return { session: { client: await verifyClientToken(token), isAdmin: false }, services };
    },
  });

  /** Verifies a client token; a bad one is refused with 401, never downgraded to anonymous. */
  async function verifyClientToken(token: string): Promise<RealtimeClient> {
    try {
      return await services.clientTokens.verify(token);
    } catch (error) {
      if (error instanceof AppError) throw unauthenticated(error.message);
      throw error;
    }
  }

  const web = createWebHandler({ development, logger });
  let draining = false;
  const activeRequests = new Set<ServerResponse>();
  const httpServer = createServer((req: IncomingMessage, res: ServerResponse) => {
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
    if (refuseLargeBody(req, res, env.MAX_HTTP_BODY_BYTES)) return;
    if (web(req, res)) return; // /demo, /admin and their /assets/
    void yoga.handle(req, res);
  });

  const wsServer = new WebSocketServer({ server: httpServer, path: GRAPHQL_PATH, maxPayload: env.MAX_WS_MESSAGE_BYTES });
  // Message types only a server may send are a client's protocol error (4400), not an internal one.
  wsServer.on("connection", (socket) => {
    socket.on("message", (data) => {
      if (isServerOnlyMessage(String(data))) socket.close(4400, "Bad message: this message type is sent by servers");
    });
  });
  const graphqlWs = useServer<Record<string, unknown> | undefined, SocketExtra>(
    {
      execute: (args) => (args.rootValue as { execute: typeof import("graphql").execute }).execute(args),
      subscribe: (args) => (args.rootValue as { subscribe: typeof import("graphql").subscribe }).subscribe(args),
      connectionInitWaitTimeout: env.WS_INIT_TIMEOUT_MS,
      isProd: !development, // close reasons never carry internal error messages in production
      onConnect: async (ctx) => {
        const { adminToken, authToken } = ctx.connectionParams ?? {};
        const isAdmin = isAdminToken(services.adminToken, typeof adminToken === "string" ? adminToken : null);
        if (adminToken !== undefined && !isAdmin) return false; // closes with 4403 Forbidden
        let client = anonymousClient();
        if (authToken !== undefined) {
          try {
            client = await services.clientTokens.verify(String(authToken));
          } catch (error) {
            logger.debug({ reason: error instanceof Error ? error.message : "unknown" }, "refused a WebSocket client token");
            return false;
          }
        }
        ctx.extra.session = { client, isAdmin, socket: { joins: [], subscriptions: 0 } };
        return true;
      },
      onClose: (ctx) => {
        if (ctx.extra.session) services.channels.closeSession(ctx.extra.session);
      },
      onSubscribe: async (ctx, _id, params) => {
        const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params,
          session: ctx.extra.session,
        });
        let document;
        let errors: readonly GraphQLError[];
        try {
          document = parse(params.query);
          errors = validate(schema, document);
        } catch (error) {
          // Parse errors and GraphQL Armor's limits arrive as exceptions: answer them as errors.
          return [error instanceof GraphQLError ? error : new GraphQLError("Invalid document")];
        }
        if (errors.length > 0) return errors;
        return {
          schema,
          document,
          operationName: params.operationName,
          variableValues: params.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
      },
    },
    wsServer,
  );

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
        const closed = new Promise<void>((resolve) => httpServer.close(() => resolve()));
        httpServer.closeIdleConnections();
        const deadline = Date.now() + env.SHUTDOWN_TIMEOUT_MS;
        await services.publisher.drain(env.SHUTDOWN_TIMEOUT_MS);
        // Let the answers to those sends go out: HTTP responses finish, WebSocket results are written.
        while (activeRequests.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
        await new Promise((resolve) => setImmediate(resolve));
        await graphqlWs.dispose(); // completes subscriptions, closes sockets with 1001
        wsServer.close();
        httpServer.closeAllConnections();
        await closed;
        await services.close();
      })()),
  };
}
