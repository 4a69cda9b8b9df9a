/**
 * (Y) The baseline: plain graphql-yoga + graphql-ws + `createPubSub`, wired the standard way (one
 * HTTP server, Yoga on /graphql, a `ws` server on the same path, graphql-ws `useServer` calling
 * `yoga.getEnveloped`), with the same wire shapes as this project:
 *
 *   mutation     sendMessage(channel: String!, payload: JSON!): { delivered }
 *   subscription channel(name: String!): { id action channel payload createdAt }
 *
 * Any socket may subscribe to several channels and send with the same socket (graphql-ws carries
 * mutations too). No membership, no JOIN/LEAVE events, no triggers, no sequence numbers, no auth.
 * PORT from the environment (0 picks one); prints `READY <port>` once listening.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import type { ExecutionArgs } from "graphql";
import { JSONResolver } from "graphql-scalars";
import { useServer } from "graphql-ws/use/ws";
import { createPubSub, createSchema, createYoga } from "graphql-yoga";
import { WebSocketServer } from "ws";

interface BenchEvent {
  id: string;
  action: "MESSAGE";
  channel: string;
  payload: unknown;
  createdAt: string;
}

// One EventTarget listener per subscriber: without raising its listener limit, Node warns at the
// 11th subscriber of a channel.
const eventTarget = new EventTarget();
setMaxListeners(0, eventTarget);
const pubsub = createPubSub<{ channel: [channel: string, event: BenchEvent] }>({ eventTarget });

const schema = createSchema({
  typeDefs: /* GraphQL */ `
    scalar JSON
    type ChannelEvent {
      id: ID!
      action: String!
      channel: String!
      payload: JSON
      createdAt: String!
    }
    type SendMessageResult {
      delivered: Boolean!
    }
    type Query {
      ok: Boolean!
    }
    type Mutation {
      sendMessage(channel: String!, payload: JSON!): SendMessageResult!
    }
    type Subscription {
      channel(name: String!): ChannelEvent!
    }
  `,
  resolvers: {
    JSON: JSONResolver,
    Query: { ok: () => true },
    Mutation: {
      sendMessage: (_root: unknown, args: { channel: string; payload: unknown }) => {
        const event: BenchEvent = {
          id: randomUUID(),
          action: "MESSAGE",
          channel: args.channel,
          payload: args.payload,
          createdAt: new Date().toISOString(),
        };
        pubsub.publish("channel", args.channel, event);
        return { delivered: true };
      },
    },
    Subscription: {
      channel: {
        subscribe: (_root: unknown, args: { name: string }) => pubsub.subscribe("channel", args.name),
        resolve: (event: BenchEvent) => event,
      },
    },
  },
});

const yoga = createYoga({ schema, graphiql: false, landingPage: false, logging: "warn" });
const httpServer = createServer(yoga);
const wsServer = new WebSocketServer({ server: httpServer, path: yoga.graphqlEndpoint });

type EnvelopedRoot = { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };

useServer(
  {
    execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
    subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
    onSubscribe: async (ctx, _id, params) => {
      const { schema, execute, subscribe, contextFactory, parse, validate } = yoga.getEnveloped({
        ...ctx,
        req: ctx.extra.request,
        socket: ctx.extra.socket,
        params,
      });
      const args = {
        schema,
        operationName: params.operationName,
        document: parse(params.query),
        variableValues: params.variables,
        contextValue: await contextFactory(),
        rootValue: { execute, subscribe },
      };
      const errors = validate(args.schema, args.document);
      if (errors.length) return errors;
      return args;
    },
  },
  wsServer,
);

httpServer.listen(Number(process.env.PORT ?? 0), process.env.HOST ?? "127.0.0.1", () => {
  console.log(`READY ${(httpServer.address() as AddressInfo).port}`);
});

const stop = () => {
  for (const socket of wsServer.clients) socket.terminate();
  httpServer.close(() => process.exit(0));
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
