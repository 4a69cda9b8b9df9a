import type { Server } from "node:http";
import { type ExecutionArgs, type ExecutionResult, type execute as graphqlExecute, GraphQLError, type subscribe as graphqlSubscribe } from "graphql";
import { isAsyncIterable, type YogaServerInstance } from "graphql-yoga";
import { makeServer } from "graphql-ws";
import { type WebSocket, WebSocketServer } from "ws";
import { isAdminToken } from "../auth/admin-token.js";
import { anonymousClient } from "../auth/client-tokens.js";
import type { Logger } from "../logger.js";
import type { Session } from "../realtime/types.js";
import type { Context } from "../schema/builder.js";
import { MASKED_MESSAGE, maskedResult, serializableResult } from "../schema/results.js";
import type { Services } from "../services.js";
import { ChannelDelivery, type MaskError, type SocketOperation } from "./channel-delivery.js";
import { carryProtocol, type ConnectionExtra } from "./transport.js";

/** What {@link serveGraphqlOverWebSocket} serves with. */
export interface GraphqlWsOptions {
  readonly path: string;
  /** Parses, validates and builds contexts with the same plugins as HTTP. */
  readonly yoga: YogaServerInstance<Record<string, unknown>, Context>;
  readonly services: Services;
  readonly logger: Logger;
  /** The server's error masker, for the errors of channel subscriptions (Yoga masks the others). */
  readonly maskError: MaskError;
}

/** The WebSocket endpoint; `close()` completes every subscription and closes every socket with 1001. */
export interface GraphqlWsEndpoint {
  close(): Promise<void>;
}

/**
 * What each operation's root value carries from `onSubscribe` to `execute`/`subscribe`: who it
 * belongs to and, unless it is a channel subscription, Yoga's executor.
 */
interface OperationRoot {
  readonly execute: typeof graphqlExecute;
  readonly subscribe: typeof graphqlSubscribe;
  readonly operation: SocketOperation;
}

/** Connection-level state kept for each WebSocket. */
interface SocketExtra extends ConnectionExtra {
  /** Set once the connection is accepted (`connection_init`). */
  session?: Session;
}

function rootOf(args: ExecutionArgs): OperationRoot {
  return args.rootValue as OperationRoot;
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
    execute: (args) => masked(() => rootOf(args).execute(args)),
    subscribe: (args) =>
      masked(() =>
        channelDelivery.serves(args.document, args.operationName)
          ? channelDelivery.subscribe(args, rootOf(args).operation)
          : rootOf(args).subscribe(args),
      ),
    onError: (_ctx, _id, _payload, errors) => errors.map((error) => (maskError(error, MASKED_MESSAGE) as GraphQLError).toJSON()),
    onNext: (ctx) => dropIfSlow(ctx.extra.socket, ctx.extra.session),
    connectionInitWaitTimeout: env.WS_INIT_TIMEOUT_MS,
    onConnect: async (ctx) => {
      const { adminToken, authToken } = ctx.connectionParams ?? {};
      const isAdmin = isAdminToken(services.adminToken, typeof adminToken === "string" ? adminToken : null);
      if (adminToken !== undefined && !isAdmin) return false; // closes with 4403 Forbidden
      let client = anonymousClient();
      if (authToken !== undefined) {
        if (typeof authToken !== "string") return false; // a token is a string: anything else is refused, never coerced
        try {
          client = await services.clientTokens.verify(authToken);
        } catch (error) {
          logger.debug({ reason: error instanceof Error ? error.message : "unknown" }, "refused a WebSocket client token");
          return false;
        }
      }
      const socket = ctx.extra.socket;
      ctx.extra.session = { client, isAdmin, socket: { joins: [], subscriptions: 0, drop: (reason) => drop(socket, client.id, reason) } };
      return true;
    },
    onClose: (ctx) => {
      if (ctx.extra.session) services.channels.closeSession(ctx.extra.session);
    },
    onSubscribe: async (ctx, id, params) => {
      const session = ctx.extra.session as Session; // set by onConnect before any subscribe is accepted
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        ...ctx,
        socket: ctx.extra.socket,
        params,
        session,
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
      const operation: SocketOperation = { socket: ctx.extra.socket, id, session };
      const args = { schema, document, operationName: params.operationName, variableValues: params.variables };
      // Channel subscriptions need neither a context nor Yoga's executor: keep neither for as long as they last.
      if (channelDelivery.serves(document, params.operationName)) return { ...args, contextValue: undefined, rootValue: { operation } };
      const rootValue: OperationRoot = { execute, subscribe, operation };
      return { ...args, contextValue: await contextFactory(), rootValue };
    },
  });
  const wsServer = new WebSocketServer({ server: httpServer, path: options.path, maxPayload: env.MAX_WS_MESSAGE_BYTES });
  const transport = carryProtocol(wsServer, protocol, (socket) => ({ socket }), { logger, keepAliveMs: env.WS_KEEPALIVE_MS });
  return { close: () => transport.dispose() };
}
