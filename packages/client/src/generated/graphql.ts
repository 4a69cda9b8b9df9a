/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** What happened on a channel. */
export type RealtimeAction =
  | 'JOIN'
  | 'LEAVE'
  | 'MESSAGE';

export type ChannelEventFieldsFragment = { id: string, action: RealtimeAction, command: string, channel: string, payload: unknown, commandOptions: unknown, createdAt: string, seq: number | null, client: { id: string, authenticated: boolean, extras: unknown } };

export type ChannelEventsSubscriptionVariables = Exact<{
  name: string;
  options?: unknown;
}>;


export type ChannelEventsSubscription = { channel: { id: string, action: RealtimeAction, command: string, channel: string, payload: unknown, commandOptions: unknown, createdAt: string, seq: number | null, client: { id: string, authenticated: boolean, extras: unknown } } };

export type SendMessageMutationVariables = Exact<{
  channel: string;
  payload: unknown;
  options?: unknown;
}>;


export type SendMessageMutation = { sendMessage: { delivered: boolean, event: { id: string, action: RealtimeAction, command: string, channel: string, payload: unknown, commandOptions: unknown, createdAt: string, seq: number | null, client: { id: string, authenticated: boolean, extras: unknown } } | null } };

export type ChannelHistoryQueryVariables = Exact<{
  channel: string;
  last?: number | null | undefined;
}>;


export type ChannelHistoryQuery = { history: Array<{ id: string, action: RealtimeAction, command: string, channel: string, payload: unknown, commandOptions: unknown, createdAt: string, seq: number | null, client: { id: string, authenticated: boolean, extras: unknown } }> };

export type ChannelPresenceQueryVariables = Exact<{
  channel: string;
}>;


export type ChannelPresenceQuery = { presence: Array<{ id: string, authenticated: boolean, extras: unknown, joinOptions: unknown }> };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const ChannelEventFieldsFragmentDoc = new TypedDocumentString(`
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
    `, {"fragmentName":"ChannelEventFields"}) as unknown as TypedDocumentString<ChannelEventFieldsFragment, unknown>;
export const ChannelEventsDocument = new TypedDocumentString(`
    subscription ChannelEvents($name: String!, $options: JSON) {
  channel(name: $name, options: $options) {
    ...ChannelEventFields
  }
}
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
}`) as unknown as TypedDocumentString<ChannelEventsSubscription, ChannelEventsSubscriptionVariables>;
export const SendMessageDocument = new TypedDocumentString(`
    mutation SendMessage($channel: String!, $payload: JSON!, $options: JSON) {
  sendMessage(channel: $channel, payload: $payload, options: $options) {
    delivered
    event {
      ...ChannelEventFields
    }
  }
}
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
}`) as unknown as TypedDocumentString<SendMessageMutation, SendMessageMutationVariables>;
export const ChannelHistoryDocument = new TypedDocumentString(`
    query ChannelHistory($channel: String!, $last: Int) {
  history(channel: $channel, last: $last) {
    ...ChannelEventFields
  }
}
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
}`) as unknown as TypedDocumentString<ChannelHistoryQuery, ChannelHistoryQueryVariables>;
export const ChannelPresenceDocument = new TypedDocumentString(`
    query ChannelPresence($channel: String!) {
  presence(channel: $channel) {
    id
    authenticated
    extras
    joinOptions
  }
}
    `) as unknown as TypedDocumentString<ChannelPresenceQuery, ChannelPresenceQueryVariables>;