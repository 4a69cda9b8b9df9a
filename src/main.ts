import { adminTokenPath } from "./auth/admin-token.js";
import type { Env } from "./env.js";
import { EnvError, parseEnv } from "./env.js";
import { createLogger } from "./logger.js";
import { createApp } from "./server.js";

/** Where to go first: the pages' URLs and where the admin token is, logged once the server listens. */
function startBanner(graphqlUrl: string, env: Env): Record<string, string> {
  const base = graphqlUrl.replace(/\/graphql$/, "");
  return {
    ...(env.GRAPHIQL ? { graphiql: graphqlUrl } : {}),
    demo: `${base}/demo`,
    admin: `${base}/admin`,
    home: `${base}/`,
    adminTokenIn: env.ADMIN_TOKEN ? "the ADMIN_TOKEN environment variable" : `the file ${adminTokenPath(env.DATA_DIR)}`,
  };
}

/** Starts the server from the environment and stops it cleanly on SIGINT/SIGTERM. */
async function main(): Promise<void> {
  let env: Env;
  try {
    env = parseEnv();
  } catch (error) {
    if (error instanceof EnvError) {
      console.error(error.message);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger(env.LOG_LEVEL, env.LOG_FORMAT);
  const app = await createApp(env, logger);
  const { url } = await app.start();
  logger.info({ url, database: app.services.db.provider, pubsub: app.services.pubsubKind }, `listening on ${url}`);
  const banner = startBanner(url, env);
  logger.info(banner, `try ${banner.demo} (demo chat) and ${banner.admin} (admin console; the admin token is in ${banner.adminTokenIn})`);

  const shutdown = (signal: string) => {
    logger.info({ signal }, "shutting down");
    app.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
