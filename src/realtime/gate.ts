import { AppError, badInput, ErrorCode } from "../errors.js";
import { clientJsonProblem, MAX_JSON_DEPTH } from "../validation.js";
import type { ChannelRules } from "./channel-config.js";
import { assertChannelName } from "./channel-name.js";
import { RateLimiter } from "./rate-limit.js";
import type { Session } from "./types.js";

/**
 * The one gate every channel operation passes, whatever transport it came through: the channel
 * name, the client's token, the channel's rules for the operation (active, anonymous clients, who
 * may send), the rate limits of sends and joins per client and per address, and the bounds on the
 * JSON a client sends. The channel service (channels.ts) asks it before it does anything; membership,
 * which needs the cluster's presence, the service checks itself.
 */

/** Resolves the rules of a channel name (the {@link ChannelConfigStore}). */
export interface ChannelRulesSource {
  /** @throws AppError `FORBIDDEN` when the channel may not be used at all */
  rulesFor(name: string): ChannelRules;
}

/** What a caller wants to do on a channel; each operation passes the {@link ChannelGate} once. */
export type Operation = "send" | "join" | "read" | "listen";

/** The limits the gate applies: these of the channel service's `ChannelLimits`. */
export interface GateLimits {
  readonly maxPayloadBytes: number;
  readonly messagesPerSecond: number;
  readonly joinsPerSecond: number;
  readonly addressMessagesPerSecond: number;
  readonly addressJoinsPerSecond: number;
}

/** See the top of this file. The admin is exempt from the channel's client rules and from rates. */
export class ChannelGate {
  private readonly sendRate: RateLimiter;
  private readonly joinRate: RateLimiter;
  private readonly addressSendRate: RateLimiter;
  private readonly addressJoinRate: RateLimiter;

  constructor(
    private readonly rules: ChannelRulesSource,
    private readonly limits: GateLimits,
  ) {
    this.sendRate = new RateLimiter(limits.messagesPerSecond);
    this.joinRate = new RateLimiter(limits.joinsPerSecond);
    this.addressSendRate = new RateLimiter(limits.addressMessagesPerSecond);
    this.addressJoinRate = new RateLimiter(limits.addressJoinsPerSecond);
  }

  /**
   * Lets an operation through, or says why not: the channel name, the client's token, the
   * channel's rules for the operation, and the rate limits of sends and joins. Returns the rules.
   * @throws AppError `BAD_USER_INPUT`, `UNAUTHENTICATED`, `FORBIDDEN` or `RATE_LIMITED`
   */
  check(session: Session, channel: string, operation: Operation): ChannelRules {
    assertChannelName(channel);
    if (session.expiresAt !== undefined && Date.now() >= session.expiresAt) {
      throw new AppError(ErrorCode.Unauthenticated, "Token expired");
    }
    const rules = this.rules.rulesFor(channel);
    if (!rules.active) throw new AppError(ErrorCode.Forbidden, `Channel ${channel} is inactive`, { channel });
    if (session.isAdmin) return rules;
    const { authenticated } = session.client;
    if (!authenticated && !rules.anonymousClients) {
      throw new AppError(ErrorCode.Unauthenticated, `Channel ${channel} is for authenticated clients`, { channel });
    }
    if (operation === "send") {
      if (rules.messaging === "NOBODY")
        throw new AppError(ErrorCode.Forbidden, `Only the admin may send to channel ${channel}`, { channel });
      if (rules.messaging === "AUTHENTICATED" && !authenticated) {
        throw new AppError(ErrorCode.Unauthenticated, `Only authenticated clients may send to channel ${channel}`, { channel });
      }
      this.limitRate(session, this.sendRate, this.addressSendRate, "messages");
    } else if (operation === "join") {
      this.limitRate(session, this.joinRate, this.addressJoinRate, "joins");
    }
    return rules;
  }

  /** Spends a token of the client's bucket and, for anonymous clients, of their address's. */
  private limitRate(session: Session, perClient: RateLimiter, perAddress: RateLimiter, what: "messages" | "joins"): void {
    if (!perClient.take(session.client.id)) {
      throw new AppError(ErrorCode.RateLimited, `Too many ${what}: at most ${perClient.perSecond} per second`);
    }
    if (!session.client.authenticated && !perAddress.take(session.address)) {
      throw new AppError(
        ErrorCode.RateLimited,
        `Too many ${what} from anonymous clients at your address: at most ${perAddress.perSecond} per second`,
      );
    }
  }

  /**
   * Refuses client JSON that nests deeper than {@link MAX_JSON_DEPTH}, holds text no database
   * stores faithfully, or is larger than the payload limit.
   */
  checkJson(field: "payload" | "options", value: unknown): void {
    const problem = clientJsonProblem(value);
    if (problem === "depth") {
      throw badInput(`The ${field} ${field === "options" ? "nest" : "nests"} deeper than ${MAX_JSON_DEPTH} levels`, { field });
    }
    if (problem === "text") {
      throw badInput(`The ${field} must be Unicode text: no lone surrogates and no NUL characters`, { field });
    }
    const bytes = value === undefined || value === null ? 0 : Buffer.byteLength(JSON.stringify(value));
    if (bytes > this.limits.maxPayloadBytes) {
      throw new AppError(ErrorCode.PayloadTooLarge, `The ${field} is ${bytes} bytes; the limit is ${this.limits.maxPayloadBytes}`, {
        field,
        limit: this.limits.maxPayloadBytes,
      });
    }
  }
}
