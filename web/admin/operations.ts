import { graphql } from "../generated/gql.js";

/** The admin console's operations (admin token required); typed by `npm run codegen`. */

export const ServerInfoDocument = graphql(`
  query AdminServerInfo {
    serverInfo {
      version
      database
      pubsub
      startedAt
    }
  }
`);

export const ChannelConfigFields = graphql(`
  fragment ChannelConfigFields on Channel {
    id
    pattern
    description
    active
    anonymousClients
    membersOnly
    messaging
    presence
    history
    createdAt
    updatedAt
    triggers {
      id
      name
    }
  }
`);

export const ChannelsDocument = graphql(`
  query AdminChannels {
    channels {
      ...ChannelConfigFields
    }
  }
`);

export const CreateChannelDocument = graphql(`
  mutation AdminCreateChannel($input: CreateChannelInput!) {
    createChannel(input: $input) {
      ...ChannelConfigFields
    }
  }
`);

export const UpdateChannelDocument = graphql(`
  mutation AdminUpdateChannel($pattern: String!, $input: UpdateChannelInput!) {
    updateChannel(pattern: $pattern, input: $input) {
      ...ChannelConfigFields
    }
  }
`);

export const DeleteChannelDocument = graphql(`
  mutation AdminDeleteChannel($pattern: String!) {
    deleteChannel(pattern: $pattern)
  }
`);

export const TriggerFields = graphql(`
  fragment TriggerFields on Trigger {
    id
    name
    description
    active
    tags
    actions
    channel
    order
    onError
    timing
    stack
    revision
    createdAt
    updatedAt
  }
`);

/** The triggers with a tag (all without one), and every trigger's tags for the filter. */
export const TriggersDocument = graphql(`
  query AdminTriggers($tag: String) {
    triggers(tag: $tag) {
      ...TriggerFields
    }
    allTags: triggers {
      tags
    }
  }
`);

export const CreateTriggerDocument = graphql(`
  mutation AdminCreateTrigger($input: CreateTriggerInput!) {
    createTrigger(input: $input) {
      ...TriggerFields
    }
  }
`);

export const UpdateTriggerDocument = graphql(`
  mutation AdminUpdateTrigger($id: ID!, $input: UpdateTriggerInput!, $expectedRevision: Int) {
    updateTrigger(id: $id, input: $input, expectedRevision: $expectedRevision) {
      ...TriggerFields
    }
  }
`);

export const DeleteTriggerDocument = graphql(`
  mutation AdminDeleteTrigger($id: ID!) {
    deleteTrigger(id: $id)
  }
`);

/** Sends a message from the live events panel (with the admin token, a client token, or none). */
export const PublishMessageDocument = graphql(`
  mutation AdminPublishMessage($channel: String!, $payload: JSON!) {
    sendMessage(channel: $channel, payload: $payload) {
      delivered
      event {
        id
        seq
      }
    }
  }
`);
