import { badInput } from "../errors.js";

/** The longest channel name accepted. */
export const MAX_CHANNEL_NAME_LENGTH = 255;

const CHANNEL_NAME = /^[A-Za-z0-9_\-:./@]+$/;

/** The rule, as told to clients whose channel name breaks it. */
export const CHANNEL_NAME_RULE = `1-${MAX_CHANNEL_NAME_LENGTH} characters from A-Z a-z 0-9 _ - : . / @`;

/**
 * Checks a concrete channel name.
 * @throws AppError `BAD_USER_INPUT` naming the rule
 */
export function assertChannelName(name: string): void {
  if (name.length === 0 || name.length > MAX_CHANNEL_NAME_LENGTH || !CHANNEL_NAME.test(name)) {
    throw badInput(`Invalid channel name: a channel name is ${CHANNEL_NAME_RULE}`, {
      field: "channel",
      rule: CHANNEL_NAME_RULE,
    });
  }
}
