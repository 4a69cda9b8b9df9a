import type { Logger } from "../logger.js";
import type { ChannelConfigStore } from "./channel-config.js";

/** The channel the demo page at /demo opens by default. */
export const DEMO_ROOM = "room:lobby";

/** What the demo room keeps, so its "Here now" panel and a reload show something. */
const DEMO_ROOM_SETTINGS = { presence: true, history: 50, description: "The demo chat room at /demo (created on first start)" } as const;

/**
 * Gives the demo room presence and history on first start: when no configuration applies to
 * {@link DEMO_ROOM}, one is created for exactly that name. A configuration that applies to it (the
 * one created here, edited, or a pattern such as `room:*`) is left alone; deleting it brings it back
 * on the next start unless `SEED_DEMO_ROOM=false`.
 */
export async function ensureDemoRoom(configs: ChannelConfigStore, logger: Logger): Promise<void> {
  if (configs.configFor(DEMO_ROOM)) return;
  try {
    await configs.create({ pattern: DEMO_ROOM, ...DEMO_ROOM_SETTINGS });
    logger.info({ channel: DEMO_ROOM, ...DEMO_ROOM_SETTINGS }, "created a configuration for the demo room");
  } catch (error) {
    // Another instance starting at the same moment may have created it first.
    await configs.reload();
    if (!configs.configFor(DEMO_ROOM)) throw error;
  }
}
