import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAdminToken } from "./auth/admin-token.js";
import { type ClientTokenVerifier, clientTokenSettingsFromEnv, createClientTokenVerifier } from "./auth/client-tokens.js";
import { type Database, isDatabaseUnreachable, migrate, openDatabase, projectRoot, resolveDatabaseUrl, secureDataDir } from "./db.js";
import type { Env } from "./env.js";
import { checkHealth, type Health } from "./health.js";
import type { Logger } from "./logger.js";
import { ConfigApplier } from "./management/apply-config.js";
import { countTriggerRuns, countWebhookCalls } from "./observability/instrument.js";
import { Metrics } from "./observability/metrics.js";
import { OutageLog, whenReachable } from "./observability/outages.js";
import { type ActiveChannel, listActiveChannels } from "./realtime/active-channels.js";
import { type Backplane, createBackplane } from "./realtime/backplane.js";
import { ChannelConfigStore } from "./realtime/channel-config.js";
import { ChannelService } from "./realtime/channels.js";
import { clusterLeaves, joinCluster } from "./realtime/cluster.js";
import { ensureDemoRoom } from "./realtime/demo-room.js";
import { ChannelFanout } from "./realtime/fanout.js";
import { ChannelHistory } from "./realtime/history.js";
import { Membership } from "./realtime/membership.js";
import { Publisher } from "./realtime/publisher.js";
import { isRedisUnreachable } from "./realtime/redis.js";
import { ChannelSequencer, resumeFromHistory } from "./realtime/sequence.js";
import { AfterRunQueue } from "./triggers/after/queue.js";
import { AfterRunThread } from "./triggers/after-thread.js";
import { createTriggerMiddleware } from "./triggers/run/middleware.js";
import { TriggerRunRecorder } from "./triggers/run/recorder.js";
import { TriggerTester } from "./triggers/run/test-run.js";
import {
  afterQueueOptionsFromEnv,
  runLimitsFromEnv,
  stackLimitsFromEnv,
  stateLimitsFromEnv,
  webhookClientFromEnv,
} from "./triggers/settings.js";
import { RedisStateStore } from "./triggers/state/redis.js";
import { DatabaseStateStore, TriggerState } from "./triggers/state/state.js";
import { TriggerStore } from "./triggers/store/trigger-store.js";

/** Everything the transport and schema layers call into; built once per server. */
export interface Services {
  readonly env: Env;
  readonly logger: Logger;
  readonly db: Database;
  readonly adminToken: string;
  readonly channels: ChannelService;
  readonly channelConfigs: ChannelConfigStore;
  /** Verifies client JWTs (disabled when no key is configured). */
  readonly clientTokens: ClientTokenVerifier;
  readonly publisher: Publisher;
  readonly triggers: TriggerStore;
  readonly triggerRuns: TriggerRunRecorder;
  /** The queue and record of AFTER trigger runs. */
  readonly afterRuns: AfterRunQueue;
  /** Runs a stored or draft trigger on a sample event with a step trace, publishing nothing. */
  readonly triggerTester: TriggerTester;
  /** Makes channel configurations and triggers match a configuration file, in one transaction (applyConfig). */
  readonly configFiles: ConfigApplier;
  /** What triggers' state steps keep: in Redis with REDIS_URL, else in the database. */
  readonly triggerState: TriggerState;
  readonly pubsubKind: "memory" | "redis";
  /** The state of each backing service, for /health and /ready. */
  health(): Promise<Health>;
  /** Logs outages of the database and Redis, once each way, with the failures counted in between. */
  readonly outages: ServiceOutages;
  readonly version: string;
  readonly startedAt: Date;
  /** The Prometheus metrics (GET /metrics). */
  readonly metrics: Metrics;
  /** Channels with members on this instance, for the admin's live view. */
  activeChannels(prefix: string, first: number): Promise<ActiveChannel[]>;
  /** Releases what the services hold (database connections). */
  close(): Promise<void>;
}

/** The outage logs of the backing services (see {@link OutageLog}). */
export interface ServiceOutages {
  readonly database: OutageLog;
  /** With a Redis backplane. */
  readonly redis: OutageLog | null;
}

const version: string = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")).version;

/** Opens and migrates the database, then builds the realtime core on top of it. */
export async function createServices(env: Env, logger: Logger): Promise<Services> {
  const clientTokens = createClientTokenVerifier(clientTokenSettingsFromEnv(env));
  secureDataDir(env.DATA_DIR);
  const databaseUrl = resolveDatabaseUrl(env.DATABASE_URL, env.DATA_DIR);
  const db = await openDatabase(databaseUrl);
  const databaseOutage = new OutageLog("database", logger, () => db.ping());
  // Every database step of the start waits out an outage (logged once) instead of failing it: an
  // instance started, or restarted, while PostgreSQL is unreachable serves once it is back. A step
  // whose error does not say so (a migration's) counts as the outage's when the database does not answer.
  const databaseDown = async (error: unknown) => (isDatabaseUnreachable(error) || !(await db.ping()) ? databaseOutage : null);
  const whenDatabaseAnswers = <T>(step: () => Promise<T>) => (db.provider === "postgresql" ? whenReachable(step, databaseDown) : step());
  await whenDatabaseAnswers(() => db.prisma.$queryRawUnsafe("SELECT 1"));
  await whenDatabaseAnswers(() => migrate(databaseUrl));
  const admin = loadAdminToken(env.ADMIN_TOKEN, env.DATA_DIR);
  if (admin.generated) {
    logger.warn({ path: join(env.DATA_DIR, "admin-token") }, "ADMIN_TOKEN is not set: generated an admin token and stored it in this file");
  }

  const metrics = new Metrics({
    channelsWithMembers: () => membership.counts().channels,
    subscriptions: () => fanout.listenersByTransport(),
    pendingAfterRuns: () => afterRuns.pendingRuns,
    pendingAfterRunsByTrigger: () => afterRuns.pendingByTrigger(),
  });
  const webhookClient = webhookClientFromEnv(env);
  const webhooks = webhookClient && countWebhookCalls(webhookClient, metrics);
  const runOptions = { ...runLimitsFromEnv(env), webhooks };
  const triggers = new TriggerStore(db.prisma, stackLimitsFromEnv(env));
  await whenDatabaseAnswers(() => triggers.reload());
  const triggerRuns = new TriggerRunRecorder(db.prisma, logger, {
    keepPerTrigger: env.TRIGGER_RUNS_KEPT,
    // Reads flush first, so this only sets how many writes a busy trigger costs: each batch writes up
    // to TRIGGER_RUNS_KEPT rows per trigger and prunes as many. At 1 s rather than 250 ms, recording a
    // run at 1,000 runs/s costs about 30 µs of CPU instead of 130 (SQLite, measured in isolation).
    flushIntervalMs: 1000,
    maxBuffered: 10_000,
    databaseOutage,
  });

  const defaults = {
    active: true,
    membersOnly: false,
    anonymousClients: env.CHANNEL_ANONYMOUS_CLIENTS,
    messaging: env.CHANNEL_MESSAGING,
    presence: env.CHANNEL_PRESENCE,
    history: env.CHANNEL_HISTORY,
  };
  const channelConfigs = new ChannelConfigStore(db.prisma, defaults, env.REQUIRE_CHANNEL_CONFIG);
  await whenDatabaseAnswers(() => channelConfigs.reload());
  if (env.SEED_DEMO_ROOM) await whenDatabaseAnswers(() => ensureDemoRoom(channelConfigs, logger));
  const history = new ChannelHistory(db.prisma, db.provider);
  const membership = new Membership();
  let backplane: Backplane;
  try {
    backplane = await createBackplane({
      redisUrl: env.REDIS_URL,
      redisPrefix: env.REDIS_PREFIX,
      presenceTtlSeconds: env.REDIS_PRESENCE_TTL_SECONDS,
      membership,
      resumeSequence: resumeFromHistory(channelConfigs, history),
      logger,
    });
  } catch (error) {
    await Promise.all([db.close(), triggerRuns.close()]);
    throw error;
  }
  const purging = {
    onFailure: ({ triggerId, error }: { triggerId: string | null; error: unknown }) => {
      metrics.statePurgeFailed();
      logger.warn({ triggerId, err: error }, "could not purge expired trigger state keys");
    },
  };
  let stateStore: RedisStateStore | DatabaseStateStore;
  if (backplane.redis) {
    const { redis } = backplane;
    const redisStore = new RedisStateStore(redis, purging);
    stateStore = redisStore;
    const moved = await whenReachable(
      () => redisStore.moveLegacyKeys(),
      (error) => (isRedisUnreachable(error) ? redis.outage : null),
    );
    if (moved > 0) logger.info({ triggers: moved }, "moved trigger state keys from the layout of earlier versions in Redis");
  } else stateStore = new DatabaseStateStore(db, purging);
  const triggerState = new TriggerState(stateStore, stateLimitsFromEnv(env));
  // A deleted trigger's state goes with it (the database's foreign key covers embedded mode).
  triggers.onChange((id) => {
    if (!triggers.get(id))
      triggerState.store.forget(id).catch((error: unknown) => logger.error({ err: error }, "could not delete a trigger's state"));
  });
  const triggerRunOptions = { ...runOptions, triggerState };
  const afterRuns = new AfterRunQueue(db.prisma, db.provider, triggers, logger, afterQueueOptionsFromEnv(env));
  afterRuns.onRefused((cause) => metrics.afterRefusal(cause));
  // AFTER triggers run on a thread of their own, so they never take time from delivery.
  const afterThread = new AfterRunThread(
    { env, databaseUrl },
    afterRuns,
    logger,
    {
      webhookCall: (status) => metrics.webhookCall(status),
      attempted: (run) => {
        metrics.afterAttempt(run.outcome === "DELIVERED" ? "delivered" : run.outcome === "PENDING" ? "retry" : "failed");
        triggerRuns.streamAfterRun(run);
      },
    },
    databaseOutage,
  );
  triggers.onChange((id) => afterThread.triggerChanged(id));

  const publisher = new Publisher({
    bus: backplane.bus,
    sequencer: new ChannelSequencer(backplane.sequence),
    history,
    policy: channelConfigs,
    middleware: [createTriggerMiddleware(triggers, countTriggerRuns(triggerRuns, metrics), triggerRunOptions)],
    afterDelivery: afterRuns,
    observer: metrics,
  });
  const fanout = new ChannelFanout(backplane.bus, logger).observe(metrics);
  const { notices } = backplane;
  const channels = new ChannelService({
    publisher,
    fanout,
    membership,
    rules: channelConfigs,
    history,
    presence: backplane.presence,
    listening: backplane.listening,
    cluster: notices ? clusterLeaves(notices) : undefined,
    limits: {
      maxPayloadBytes: env.MAX_PAYLOAD_BYTES,
      maxSubscriptionsPerSocket: env.MAX_SUBSCRIPTIONS_PER_SOCKET,
      maxChannelsPerClient: env.MAX_CHANNELS_PER_CLIENT,
      messagesPerSecond: env.MAX_MESSAGES_PER_SECOND,
      joinsPerSecond: env.MAX_JOINS_PER_SECOND,
      addressMessagesPerSecond: env.MAX_ADDRESS_MESSAGES_PER_SECOND,
      addressJoinsPerSecond: env.MAX_ADDRESS_JOINS_PER_SECOND,
      maxQueuedEvents: env.MAX_QUEUED_EVENTS,
    },
    logger,
    observer: metrics,
  });
  // A subscriber who may no longer listen after a configuration change (made here or elsewhere) is removed.
  channelConfigs.onRulesChanged(() => channels.enforceRules());
  if (notices) {
    await joinCluster(
      notices,
      { triggers, channels: channelConfigs },
      (channel, clientId, announce) => channels.leaveHere(channel, clientId, announce),
      logger,
      databaseOutage,
    );
  }

  await whenDatabaseAnswers(() => afterThread.resume());

  return {
    env,
    logger,
    db,
    adminToken: admin.token,
    channels,
    channelConfigs,
    clientTokens,
    publisher,
    triggers,
    triggerRuns,
    afterRuns,
    triggerTester: new TriggerTester(triggers, triggerRunOptions),
    configFiles: new ConfigApplier(db.prisma, channelConfigs, triggers),
    triggerState,
    pubsubKind: backplane.kind,
    health: () => checkHealth(db, backplane),
    outages: { database: databaseOutage, redis: backplane.redis?.outage ?? null },
    version,
    startedAt: new Date(),
    metrics,
    activeChannels: (prefix, first) => listActiveChannels({ membership, fanout, cluster: backplane.clusterPresence }, prefix, first),
    close: async () => {
      databaseOutage.close();
      await afterThread.stop();
      await triggerRuns.close();
      await triggerState.store.close();
      await backplane.close();
      await db.close();
    },
  };
}
