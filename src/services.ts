import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAdminToken } from "./auth/admin-token.js";
import { migrate, openDatabase, projectRoot, resolveDatabaseUrl, type Database } from "./db.js";
import type { Env } from "./env.js";
import type { Logger } from "./logger.js";
import { ChannelService } from "./realtime/channels.js";
import { Membership } from "./realtime/membership.js";
import { createChannelPubSub } from "./realtime/pubsub.js";
import { Publisher } from "./realtime/publisher.js";

/** Everything the transport and schema layers call into; built once per server. */
export interface Services {
  readonly env: Env;
  readonly logger: Logger;
  readonly db: Database;
  readonly adminToken: string;
  readonly channels: ChannelService;
  readonly publisher: Publisher;
  readonly pubsubKind: "memory" | "redis";
  readonly version: string;
  readonly startedAt: Date;
  /** Releases what the services hold (database connections). */
  close(): Promise<void>;
}

const version: string = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")).version;

/** Opens and migrates the database, then builds the realtime core on top of it. */
export async function createServices(env: Env, logger: Logger): Promise<Services> {
  const databaseUrl = resolveDatabaseUrl(env.DATABASE_URL, env.DATA_DIR);
  await migrate(databaseUrl);
  const db = await openDatabase(databaseUrl);
  const admin = loadAdminToken(env.ADMIN_TOKEN, env.DATA_DIR);
  if (admin.generated) {
    logger.warn({ path: join(env.DATA_DIR, "admin-token") }, "ADMIN_TOKEN is not set: generated an admin token and stored it in this file");
  }

  const pubsub = createChannelPubSub();
  const publisher = new Publisher(pubsub);
  const channels = new ChannelService(publisher, pubsub, new Membership());

  return {
    env,
    logger,
    db,
    adminToken: admin.token,
    channels,
    publisher,
    pubsubKind: "memory",
    version,
    startedAt: new Date(),
    close: () => db.close(),
  };
}
