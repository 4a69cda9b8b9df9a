/**
 * `@realtime-channels/client`: a typed, framework-free client for the realtime channels server. See
 * the package README for the recipe that types an app's own operations against the server's schema.
 */

export { type GraphQLErrorLike, isGraphQLErrors, RealtimeError } from "./graphql-errors.js";
export { type HttpRequestOptions, requestGraphQL } from "./http.js";
export {
  type ChannelEvent,
  type ChannelGap,
  type ChannelMember,
  type ChannelMembership,
  type ConnectionStatus,
  createRealtimeClient,
  type EventHandler,
  type EventInfo,
  type JoinOptions,
  type PresenceChange,
  type PresenceUpdate,
  RealtimeClient,
  type RealtimeClientOptions,
  type ReconnectOptions,
  type SendResult,
  type StatusDetail,
  type StatusListener,
  type SubscriptionHandlers,
} from "./realtime-client.js";
export type { TypedDocument } from "./typed-document.js";
