import type { Client } from "graphql-ws";
import { type Subscription, wsSubscribe } from "./graphql.js";

/** The selection tests use for channel events. */
export const EVENT_FIELDS = `id action command channel payload commandOptions client { id authenticated extras } createdAt seq`;

export const CHANNEL_SUBSCRIPTION = `subscription ($name: String!, $options: JSON) { channel(name: $name, options: $options) { ${EVENT_FIELDS} } }`;

/**
 * CHANNEL_SUBSCRIPTION with a directive at the root: it takes the generic GraphQL path, where plain
 * channel subscriptions over WebSocket are rendered once per event for all their subscribers.
 */
export const GENERIC_CHANNEL_SUBSCRIPTION = `subscription ($name: String!, $options: JSON) { channel(name: $name, options: $options) @include(if: true) { ${EVENT_FIELDS} } }`;

export const SEND_MESSAGE = `mutation ($channel: String!, $payload: JSON!, $options: JSON) {
  sendMessage(channel: $channel, payload: $payload, options: $options) { delivered event { ${EVENT_FIELDS} } }
}`;

export const JOIN_CHANNEL = `mutation ($channel: String!, $options: JSON) {
  joinChannel(channel: $channel, options: $options) { joined event { ${EVENT_FIELDS} } }
}`;

/** A channel event as the tests select it. */
export interface TestEvent {
  id: string;
  action: "MESSAGE" | "JOIN" | "LEAVE";
  command: string;
  channel: string;
  payload: any;
  commandOptions: any;
  client: { id: string; authenticated: boolean; extras: any };
  createdAt: string;
  seq: number | null;
}

/**
 * Subscribes to a channel and waits for the subscriber's own JOIN event, which proves the
 * subscription is live. Returns the subscription and that JOIN event.
 */
export async function joinBySubscription(
  client: Client,
  name: string,
  options?: unknown,
): Promise<{ subscription: Subscription<{ channel: TestEvent }>; join: TestEvent }> {
  const subscription = wsSubscribe<{ channel: TestEvent }>(client, CHANNEL_SUBSCRIPTION, { name, options });
  const first = await subscription.next();
  if (!first.data) throw new Error(`subscription failed: ${JSON.stringify(first.errors)}`);
  return { subscription, join: first.data.channel };
}
