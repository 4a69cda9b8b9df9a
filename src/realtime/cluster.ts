import type { Logger } from "../logger.js";
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
): Promise<void> {
  const { triggers, channels } = configuration;
  triggers.onChange((id) => notices.publish({ kind: "trigger", id }));
  channels.onChange(() => notices.publish({ kind: "channel" }));
  const reloadAll = () => {
    logger.info("redis reconnected: reloading triggers and channel settings");
    Promise.all([triggers.reload(), channels.reload()]).catch((error: unknown) => logger.error({ err: error }, "reload failed"));
  };
  await notices.listen((notice) => {
    if (notice.kind === "leave") return leaveHere(notice.channel, notice.clientId, notice.announce);
    const applied = notice.kind === "trigger" ? triggers.refresh(notice.id) : channels.reload();
    applied.catch((error: unknown) => logger.error({ err: error }, "could not apply a configuration change"));
  }, reloadAll);
}
