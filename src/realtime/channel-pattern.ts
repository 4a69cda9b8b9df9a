import { badInput } from "../errors.js";
import { CHANNEL_NAME_RULE, MAX_CHANNEL_NAME_LENGTH } from "./channel-name.js";

const PATTERN = /^[A-Za-z0-9_\-:./@*]+$/;

/** A compiled channel pattern: a channel name, or a pattern where `*` matches one or more characters. */
export interface ChannelPattern {
  readonly source: string;
  /** True for a plain name without `*`. */
  readonly exact: boolean;
  matches(channel: string): boolean;
}

/**
 * Compiles a channel name or pattern (`room:*` matches `room:1` and `room:a/b`).
 * @throws AppError `BAD_USER_INPUT` naming the rule
 */
export function compileChannelPattern(source: string, field = "channel"): ChannelPattern {
  if (source.length === 0 || source.length > MAX_CHANNEL_NAME_LENGTH || !PATTERN.test(source)) {
    throw badInput(`Invalid channel pattern: ${CHANNEL_NAME_RULE}, where * matches one or more characters`, { field });
  }
  if (!source.includes("*")) return { source, exact: true, matches: (channel) => channel === source };
  const parts = source.split("*");
  return { source, exact: false, matches: (channel) => matchesParts(parts, channel) };
}

/**
 * Glob matching in linear passes, with no regular expression to backtrack: the literal parts must
 * appear in order, each `*` covering at least one character. Taking the leftmost place for each part
 * is always safe, since it leaves the most room for the parts after it.
 */
function matchesParts(parts: readonly string[], channel: string): boolean {
  const first = parts[0]!;
  const last = parts[parts.length - 1]!;
  if (!channel.startsWith(first)) return false;
  let position = first.length;
  for (const middle of parts.slice(1, -1)) {
    const found = channel.indexOf(middle, position + 1);
    if (found < 0) return false;
    position = found + middle.length;
  }
  return channel.length - last.length >= position + 1 && channel.endsWith(last);
}

/**
 * Orders patterns from most to least specific for one name: an exact name first, then longer
 * patterns before shorter ones (counting the characters that are not `*`).
 */
export function bySpecificity(a: ChannelPattern, b: ChannelPattern): number {
  if (a.exact !== b.exact) return a.exact ? -1 : 1;
  const literal = (pattern: ChannelPattern) => pattern.source.replace(/\*/g, "").length;
  return literal(b) - literal(a) || b.source.length - a.source.length;
}
