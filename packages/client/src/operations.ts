import { graphql } from "./generated/gql.js";

/**
 * The operations of the client package. `npm run codegen` (at the repository root) turns every
 * `graphql(...)` call under `packages/client/src/` into typed documents in `src/generated/`; edit a
 * query here, then run it.
 */

/** What the client module selects of every channel event. */
export const ChannelEventFields = graphql(`
  fragment ChannelEventFields on ChannelEvent {
    id
    action
    command
    channel
    payload
    commandOptions
    client {
      id
      authenticated
      extras
    }
    createdAt
    seq
  }
`);

/** Joins a channel and streams its events. */
export const ChannelEventsDocument = graphql(`
  subscription ChannelEvents($name: String!, $options: JSON) {
    channel(name: $name, options: $options) {
      ...ChannelEventFields
    }
  }
`);

/** Sends a message to a channel. */
export const SendMessageDocument = graphql(`
  mutation SendMessage($channel: String!, $payload: JSON!, $options: JSON) {
    sendMessage(channel: $channel, payload: $payload, options: $options) {
      delivered
      event {
        ...ChannelEventFields
      }
    }
  }
`);

/** The latest messages of a channel that keeps history. */
export const ChannelHistoryDocument = graphql(`
  query ChannelHistory($channel: String!, $last: Int) {
    history(channel: $channel, last: $last) {
      ...ChannelEventFields
    }
  }
`);

/** Who is on a channel with presence on. */
export const ChannelPresenceDocument = graphql(`
  query ChannelPresence($channel: String!) {
    presence(channel: $channel) {
      id
      authenticated
      extras
      joinOptions
    }
  }
`);
