import type { Server } from "node:http";
import {
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  GraphQLError,
  type GraphQLSchema,
  type execute as graphqlExecute,
  type subscribe as graphqlSubscribe,
} from "graphql";
import { CloseCode, makeServer, type SubscribePayload } from "graphql-ws";
import { isAsyncIterable, type YogaServerInstance } from "graphql-yoga";
import { type WebSocket, WebSocketServer } from "ws";
import { isAdminToken } from "../auth/admin-token.js";
import { anonymousClient, type VerifiedClient } from "../auth/client-tokens.js";
import type { ConnectionGuard } from "../http/edge.js";
import { deepVariablesError, variablesTooDeep } from "../http/plugins.js";
import type { Logger } from "../logger.js";
import type { Session } from "../realtime/types.js";
import type { Context } from "../schema/builder.js";
import { MASKED_MESSAGE, maskedResult, serializableResult } from "../schema/results.js";
import type { Services } from "../services.js";
import { ChannelDelivery, type ChannelOperation, type MaskError } from "./channel-delivery.js";
import { type KnownSend, SendPath } from "./send-path.js";
import { type ConnectionExtra, carryProtocol, type DirectOperation } from "./transport.js";
import { acceptUpgrades, upgradeAddress } from "./upgrade.js";

/** What {@link serveGraphqlOverWebSocket} serves with. */
export interface GraphqlWsOptions {
  readonly path: string;
  /** Parses, validates and builds contexts with the same plugins as HTTP. */
  readonly yoga: YogaServerInstance<Record<string, unknown>, Context>;
  readonly services: Services;
  readonly logger: Logger;
  /** The server's error masker, for the errors of channel subscriptions (Yoga masks the others). */
  readonly maskError: MaskError;
  /** The HTTP server's connection edge (error listeners, connections counted per address). */
  readonly guard: ConnectionGuard;
}

/** The WebSocket endpoint; `close()` completes every subscription and closes every socket with 1001. */
export interface GraphqlWsEndpoint {
  close(): Promise<void>;
}

/**
 * What each operation's root value carries from `onSubscribe` to `execute`/`subscribe`: which path
 * it takes, decided once, and what that path needs. Plain channel subscriptions are delivered by
 * {@link ChannelDelivery}, plain `sendMessage` mutations run by {@link SendPath}; every other
 * operation runs through Yoga's executor.
 */
type OperationRoute =
  | { readonly path: "channel"; readonly operation: ChannelOperation }
  | { readonly path: "send"; readonly known: KnownSend; readonly session: Session }
  | { readonly path: "generic"; readonly execute: typeof graphqlExecute; readonly subscribe: typeof graphqlSubscribe };

/** Connection-level state kept for each WebSocket. */
interface SocketExtra extends ConnectionExtra {
  /** The caller's address, for per-address limits. */
  readonly address: string;
  /** Set once the connection is accepted (`connection_init`). */
  session?: Session;
  /** Closes the connection when the client's token expires. */
  expiry?: NodeJS.Timeout;
}

/** Longest a timer may be set for (about 24.8 days); a later expiry is checked again then. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Closes `socket` with 4403 once `expiresAt` has passed. */
function closeAtExpiry(extra: SocketExtra, expiresAt: number): void {
  const wait = expiresAt - Date.now();
  extra.expiry = setTimeout(
    () => (Date.now() >= expiresAt ? extra.socket.close(CloseCode.Forbidden, "Token expired") : closeAtExpiry(extra, expiresAt)),
    Math.min(Math.max(wait, 0), MAX_TIMER_MS),
  );
}

/**
 * The arguments an operation runs with. Built as one literal, always in this order: graphql-ws keeps
 * them for as long as a subscription lasts, and objects made by spreading got a hidden class each.
 */
function executionArgs(
  schema: GraphQLSchema,
  document: DocumentNode,
  params: SubscribePayload,
  contextValue: unknown,
  rootValue: OperationRoute,
): ExecutionArgs {
  return { schema, document, operationName: params.operationName, variableValues: params.variables, contextValue, rootValue };
}

function routeOf(args: ExecutionArgs): OperationRoute {
  return args.rootValue as OperationRoute;
}

/**
 * Serves GraphQL over WebSocket (graphql-transport-ws) on `path`: authenticates the connection
 * (`connectionParams.adminToken` or `authToken`), parses and validates with Yoga's plugins, and runs
 * each operation; plain channel subscriptions go to {@link ChannelDelivery}.
 */
export function serveGraphqlOverWebSocket(httpServer: Server, options: GraphqlWsOptions): GraphqlWsEndpoint {
  const { yoga, services, logger } = options;
  const env = services.env;
  // A client that does not read would let the server's buffers grow without bound: drop it.
  const drop = (socket: WebSocket, clientId: string | undefined, reason: string) => {
    if (socket.readyState !== socket.OPEN) return;
    logger.warn({ clientId, reason }, "dropped a WebSocket that is not reading its messages");
    services.metrics.slowConsumerDropped("ws");
    socket.terminate();
  };
  const dropIfSlow = (socket: WebSocket, session: Session | undefined) => {
    if (socket.bufferedAmount > env.MAX_WS_BUFFERED_BYTES) drop(socket, session?.client.id, `${socket.bufferedAmount} bytes unread`);
  };
  // Plain `channel` subscriptions are delivered by ChannelDelivery; every other operation runs through Yoga's executor.
  const channelDelivery = new ChannelDelivery(services.channels, options.maskError, dropIfSlow);
  // Every error leaving over the socket is masked here, at the exit: an operation that throws, or a
  // result that cannot be serialized, ends that operation with a masked error; the socket stays open.
  const { maskError } = options;
  const sendPath = new SendPath(services.channels, maskError, services.metrics);
  type Outcome = ExecutionResult | AsyncIterable<ExecutionResult>;
  const masked = async (run: () => Promise<Outcome> | Outcome): Promise<Outcome> => {
    try {
      const outcome = await run();
      return isAsyncIterable(outcome) ? outcome : serializableResult(outcome, maskError);
    } catch (error) {
      return maskedResult(error, maskError);
    }
  };
  const protocol = makeServer<Record<string, unknown> | undefined, SocketExtra>({
    execute: (args) =>
      masked(() => {
        const route = routeOf(args);
        if (route.path === "send") return sendPath.execute(args, route.known, route.session);
        if (route.path !== "generic") throw new Error("A channel subscription cannot be executed as a query");
        return route.execute(args);
      }),
    subscribe: (args) =>
      masked(() => {
        const route = routeOf(args);
        if (route.path === "channel") {
          return services.metrics.subscriptionStarted(args.document, args.operationName, channelDelivery.subscribe(args, route.operation));
        }
        if (route.path !== "generic") throw new Error("A mutation cannot be run as a subscription");
        return route.subscribe(args);
      }),
    onError: (_ctx, _id, _payload, errors) => errors.map((error) => (maskError(error, MASKED_MESSAGE) as GraphQLError).toJSON()),
    onNext: (ctx) => dropIfSlow(ctx.extra.socket, ctx.extra.session),
    connectionInitWaitTimeout: env.WS_INIT_TIMEOUT_MS,
    onConnect: async (ctx) => {
      const { adminToken, authToken } = ctx.connectionParams ?? {};
      const isAdmin = isAdminToken(services.adminToken, typeof adminToken === "string" ? adminToken : null);
      if (adminToken !== undefined && !isAdmin) {
        services.metrics.authFailed("ws", "credentials");
        return false; // closes with 4403 Forbidden
      }
      let verified: VerifiedClient = { client: anonymousClient() };
      if (authToken !== undefined) {
        if (typeof authToken !== "string") {
          services.metrics.authFailed("ws", "credentials");
          return false; // a token is a string: anything else is refused, never coerced
        }
        try {
          verified = await services.clientTokens.verifyToken(authToken);
        } catch (error) {
          logger.debug({ reason: error instanceof Error ? error.message : "unknown" }, "refused a WebSocket client token");
          services.metrics.authFailed("ws", "credentials");
          return false;
        }
      }
      const { client, expiresAt } = verified;
      const extra = ctx.extra;
      const socket = extra.socket;
      if (socket.readyState !== socket.OPEN) return false; // closed while the token was checked
      extra.session = {
        client,
        isAdmin,
        address: extra.address,
        expiresAt,
        socket: { joins: [], subscriptions: 0, closed: false, drop: (reason) => drop(socket, client.id, reason) },
      };
      // Authorization lasts as long as the token: the connection closes when it expires.
      if (expiresAt !== undefined) closeAtExpiry(extra, expiresAt);
      return true;
    },
    onClose: (ctx) => {
      clearTimeout(ctx.extra.expiry);
      if (ctx.extra.session) services.channels.closeSession(ctx.extra.session);
    },
    onSubscribe: async (ctx, id, params) => {
      const session = ctx.extra.session as Session; // set by onConnect before any subscribe is accepted
      if (variablesTooDeep(params.variables)) return [deepVariablesError()];
      const known = sendPath.recall(params.query, params.operationName);
      if (known) {
        const { schema, document } = known;
        const route: OperationRoute = { path: "send", known, session };
        return executionArgs(schema, document, params, { session, services } satisfies Context, route);
      }
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        ...ctx,
        socket: ctx.extra.socket,
        params,
        session,
      });
      let document: DocumentNode;
      let errors: readonly GraphQLError[];
      try {
        document = parse(params.query);
        errors = validate(schema, document);
      } catch (error) {
        // Parse errors and GraphQL Armor's limits arrive as exceptions: answer them as errors.
        return [error instanceof GraphQLError ? error : new GraphQLError("Invalid document")];
      }
      if (errors.length > 0) return errors;
      const field = channelDelivery.recognize(document, params.operationName);
      if (field) {
        // Channel subscriptions need neither a context nor Yoga's executor: keep neither for as long as they last.
        const route: OperationRoute = { path: "channel", operation: { socket: ctx.extra.socket, id, session, field } };
        return executionArgs(schema, document, params, undefined, route);
      }
      const learnt = sendPath.learn(params.query, document, schema, params.operationName);
      if (learnt) {
        const route: OperationRoute = { path: "send", known: learnt, session };
        return executionArgs(schema, document, params, { session, services } satisfies Context, route);
      }
      const route: OperationRoute = { path: "generic", execute, subscribe };
      return executionArgs(schema, document, params, await contextFactory(), route);
    },
  });
  // Plain sendMessage mutations already seen skip the protocol server too: one result, then complete.
  const directSend: DirectOperation<SocketExtra> = (extra, _id, payload) => {
    const session = extra.session;
    const known = session && sendPath.recall(payload.query, payload.operationName);
    if (!known || variablesTooDeep(payload.variables)) return null;
    const { schema, document } = known;
    const args = { schema, document, operationName: payload.operationName, variableValues: payload.variables };
    const contextValue: Context = { session, services };
    return masked(() => sendPath.execute({ ...args, contextValue }, known, session)).then((result) => {
      dropIfSlow(extra.socket, session);
      return result as ExecutionResult;
    });
  };
  const wsServer = new WebSocketServer({ noServer: true, maxPayload: env.MAX_WS_MESSAGE_BYTES });
  const stopAccepting = acceptUpgrades(httpServer, wsServer, {
    path: options.path,
    allowedOrigins: env.CORS_ORIGINS === "*" ? "*" : env.CORS_ORIGINS.split(",").map((origin) => origin.trim()),
    trustProxy: env.TRUST_PROXY,
    maxConnectionsPerAddress: env.MAX_CONNECTIONS_PER_ADDRESS,
    connectionsPerSecondPerAddress: env.MAX_ADDRESS_CONNECTIONS_PER_SECOND,
    guard: options.guard,
    logger,
  });
  const transport = carryProtocol(
    wsServer,
    protocol,
    (socket, request) => ({ socket, address: upgradeAddress(request) }),
    { logger, keepAliveMs: env.WS_KEEPALIVE_MS },
    directSend,
  );
  return {
    close: () => {
      stopAccepting();
      return transport.dispose();
    },
  };
}
