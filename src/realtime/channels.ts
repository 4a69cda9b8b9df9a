import { randomUUID } from "node:crypto";
import { assertChannelName } from "./channel-name.js";
import type { Membership } from "./membership.js";
import type { ChannelPubSub } from "./pubsub.js";
import type { Publisher } from "./publisher.js";
import { type ChannelEvent, commandOf, type RealtimeAction, type Session } from "./types.js";

/** The result of a send: the event as delivered, or `delivered: false` when a trigger dropped it. */
export type SendResult = { delivered: true; event: ChannelEvent } | { delivered: false; event: null };

/** The result of a join: the JOIN event as delivered, or `joined: false` when a trigger dropped it. */
export type JoinResult = { joined: true; event: ChannelEvent } | { joined: false; event: null };

/**
 * The channel operations clients perform: send, join, and subscribe. Every event they create goes
 * through the {@link Publisher}, so triggers see it before anyone receives it.
 */
export class ChannelService {
  constructor(
    private readonly publisher: Publisher,
    private readonly pubsub: ChannelPubSub,
    private readonly membership: Membership,
  ) {}

  /** Publishes a MESSAGE event on a channel. */
  async sendMessage(session: Session, channel: string, payload: unknown, options: unknown): Promise<SendResult> {
    assertChannelName(channel);
    const result = await this.publisher.publish(this.createEvent("MESSAGE", session, channel, payload, options));
    return result.delivered ? { delivered: true, event: result.event } : { delivered: false, event: null };
  }

  /**
   * Publishes a JOIN event and, when it is delivered, makes the client a member of the channel.
   * Over a WebSocket the membership lasts until the connection closes; over HTTP it lasts for the
   * request, unless the client is authenticated and so has an identity beyond it.
   */
  async joinChannel(session: Session, channel: string, options: unknown): Promise<JoinResult> {
    const result = await this.join(session, channel, options);
    if (result.joined && (session.socketJoins || session.client.authenticated)) {
      this.membership.add(channel, session.client);
      session.socketJoins?.push(channel);
    }
    return result;
  }

  /**
   * Joins the channel as the session's client, then streams every event published on it from the
   * moment of the call, in publish order. Throws when a trigger refuses the join; the stream is empty
   * when one drops it. Ending the stream leaves the channel.
   */
  async subscribe(session: Session, channel: string, options: unknown): Promise<AsyncIterableIterator<ChannelEvent>> {
    assertChannelName(channel);
    const events = this.pubsub.subscribe("channel", channel);
    // Start listening before the join is published, so nothing published after this call is missed.
    const first = events.next();
    let joined: JoinResult;
    try {
      joined = await this.join(session, channel, options);
    } catch (error) {
      await events.return();
      throw error;
    }
    if (!joined.joined) {
      await events.return();
      return emptyStream();
    }
    this.membership.add(channel, session.client);
    let pending: Promise<IteratorResult<ChannelEvent>> | null = first;
    let open = true;
    const close = async (): Promise<IteratorReturnResult<undefined>> => {
      if (open) {
        open = false;
        this.membership.remove(channel, session.client.id);
        await events.return();
      }
      return { done: true, value: undefined };
    };
    // An explicit iterator rather than a generator: `return()` must clean up even before the first `next()`.
    const stream: AsyncIterableIterator<ChannelEvent> = {
      next: async () => {
        const next = await (pending ?? events.next());
        pending = null;
        if (next.done) await close();
        return next;
      },
      return: close,
      throw: async (error) => {
        await close();
        throw error;
      },
      [Symbol.asyncIterator]: () => stream,
    };
    return stream;
  }

  /** Undoes the joins a WebSocket connection made with `joinChannel`; called when it closes. */
  closeSession(session: Session): void {
    for (const channel of session.socketJoins?.splice(0) ?? []) this.membership.remove(channel, session.client.id);
  }

  private async join(session: Session, channel: string, options: unknown): Promise<JoinResult> {
    assertChannelName(channel);
    const result = await this.publisher.publish(this.createEvent("JOIN", session, channel, null, options));
    if (!result.delivered) return { joined: false, event: null };
    return { joined: true, event: result.event };
  }

  private createEvent(
    action: RealtimeAction,
    session: Session,
    channel: string,
    payload: unknown,
    commandOptions: unknown,
  ): ChannelEvent {
    return {
      id: randomUUID(),
      action,
      command: commandOf[action],
      channel,
      payload: payload ?? null,
      commandOptions: commandOptions ?? null,
      client: session.client,
      createdAt: new Date().toISOString(),
    };
  }
}

async function* emptyStream(): AsyncGenerator<never> {}
