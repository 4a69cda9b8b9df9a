import { setTimeout as sleep } from "node:timers/promises";
import { isDatabaseUnreachable } from "../db.js";
import type { Logger } from "../logger.js";
import type { OutageLog } from "../observability/outages.js";
import type { ClusterLeaves } from "./channels.js";
import type { RedisNotices } from "./redis.js";

/** The configuration a cluster keeps in step: triggers by id, channel settings as a whole. */
export interface SharedConfiguration {
  readonly triggers: {
    onChange(listener: (id: string) => void): void;
    refresh(id: string): Promise<void>;
    reload(): Promise<void>;
  };
  readonly channels: {
    onChange(listener: () => void): void;
    reload(): Promise<void>;
  };
}

/** Asks the other instances to undo a client's joins (see `ChannelService.leaveHere`). */
export function clusterLeaves(notices: RedisNotices): ClusterLeaves {
  return { requestLeave: (channel, clientId, announce) => notices.publish({ kind: "leave", channel, clientId, announce }) };
}

/**
 * Keeps this instance in step with the others: tells them about every configuration change made
 * here, applies theirs (and their leave requests, through `leaveHere`), and reloads everything after
 * a reconnect, since notices sent meanwhile are lost.
 */
export async function joinCluster(
  notices: RedisNotices,
  configuration: SharedConfiguration,
  leaveHere: (channel: string, clientId: string, announce: boolean) => void,
  logger: Logger,
  databaseOutage?: OutageLog,
): Promise<void> {
  const { triggers, channels } = configuration;
  triggers.onChange((id) => notices.publish({ kind: "trigger", id }));
  channels.onChange(() => notices.publish({ kind: "channel" }));
  // A change read while the database is unreachable is read again until it is: it is not sent twice.
  const untilApplied = (apply: () => Promise<unknown>, what: string) =>
    void retryUntilDone(apply, (error, delayMs) => {
      if (isDatabaseUnreachable(error) && databaseOutage)
        databaseOutage.failed(error instanceof Error ? error.message.trim().split("\n").at(-1) : undefined);
      else logger.error({ err: error, retryInMs: delayMs }, `could not ${what}; trying again`);
    });
  const reloadAll = () => {
    logger.info("redis reconnected: reloading triggers and channel settings");
    untilApplied(() => Promise.all([triggers.reload(), channels.reload()]), "reload triggers and channel settings");
  };
  await notices.listen((notice) => {
    if (notice.kind === "leave") return leaveHere(notice.channel, notice.clientId, notice.announce);
    untilApplied(() => (notice.kind === "trigger" ? triggers.refresh(notice.id) : channels.reload()), "apply a configuration change");
  }, reloadAll);
}

/** The first wait before an attempt is made again, doubled after each failure up to {@link RETRY_MAX_MS}. */
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 10_000;

/** Runs `task` until it succeeds, waiting longer after each failure (each one told to `failed`). */
async function retryUntilDone(task: () => Promise<unknown>, failed: (error: unknown, delayMs: number) => void): Promise<void> {
  for (let delayMs = RETRY_FIRST_MS; ; delayMs = Math.min(delayMs * 2, RETRY_MAX_MS)) {
    try {
      await task();
      return;
    } catch (error) {
      failed(error, delayMs);
      await sleep(delayMs, undefined, { ref: false });
    }
  }
}
