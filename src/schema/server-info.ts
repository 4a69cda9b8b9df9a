import { builder } from "./builder.js";
import { requireAdmin } from "./guards.js";

interface ServerInfo {
  version: string;
  database: string;
  pubsub: string;
  startedAt: Date;
}

export const ServerInfoRef = builder.objectRef<ServerInfo>("ServerInfo").implement({
  description: "Facts about this server instance (management only).",
  fields: (t) => ({
    version: t.exposeString("version"),
    database: t.exposeString("database", { description: '"sqlite" or "postgresql".' }),
    pubsub: t.exposeString("pubsub", { description: '"memory" or "redis".' }),
    startedAt: t.field({ type: "DateTime", resolve: (info) => info.startedAt }),
  }),
});

builder.queryFields((t) => ({
  serverInfo: t.field({
    type: ServerInfoRef,
    description: "Facts about this server instance. Needs the admin token.",
    resolve: (_root, _args, context) => {
      requireAdmin(context);
      const { services } = context;
      return { version: services.version, database: services.db.provider, pubsub: services.pubsubKind, startedAt: services.startedAt };
    },
  }),
}));
