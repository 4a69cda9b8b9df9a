/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  fragment ChannelEventFields on ChannelEvent {\n    id\n    action\n    command\n    channel\n    payload\n    commandOptions\n    client {\n      id\n      authenticated\n      extras\n    }\n    createdAt\n    seq\n  }\n": typeof types.ChannelEventFieldsFragmentDoc,
    "\n  subscription ChannelEvents($name: String!, $options: JSON) {\n    channel(name: $name, options: $options) {\n      ...ChannelEventFields\n    }\n  }\n": typeof types.ChannelEventsDocument,
    "\n  mutation SendMessage($channel: String!, $payload: JSON!, $options: JSON) {\n    sendMessage(channel: $channel, payload: $payload, options: $options) {\n      delivered\n      event {\n        ...ChannelEventFields\n      }\n    }\n  }\n": typeof types.SendMessageDocument,
    "\n  query ChannelHistory($channel: String!, $last: Int) {\n    history(channel: $channel, last: $last) {\n      ...ChannelEventFields\n    }\n  }\n": typeof types.ChannelHistoryDocument,
    "\n  query ChannelPresence($channel: String!) {\n    presence(channel: $channel) {\n      id\n      authenticated\n      extras\n      joinOptions\n    }\n  }\n": typeof types.ChannelPresenceDocument,
};
const documents: Documents = {
    "\n  fragment ChannelEventFields on ChannelEvent {\n    id\n    action\n    command\n    channel\n    payload\n    commandOptions\n    client {\n      id\n      authenticated\n      extras\n    }\n    createdAt\n    seq\n  }\n": types.ChannelEventFieldsFragmentDoc,
    "\n  subscription ChannelEvents($name: String!, $options: JSON) {\n    channel(name: $name, options: $options) {\n      ...ChannelEventFields\n    }\n  }\n": types.ChannelEventsDocument,
    "\n  mutation SendMessage($channel: String!, $payload: JSON!, $options: JSON) {\n    sendMessage(channel: $channel, payload: $payload, options: $options) {\n      delivered\n      event {\n        ...ChannelEventFields\n      }\n    }\n  }\n": types.SendMessageDocument,
    "\n  query ChannelHistory($channel: String!, $last: Int) {\n    history(channel: $channel, last: $last) {\n      ...ChannelEventFields\n    }\n  }\n": types.ChannelHistoryDocument,
    "\n  query ChannelPresence($channel: String!) {\n    presence(channel: $channel) {\n      id\n      authenticated\n      extras\n      joinOptions\n    }\n  }\n": types.ChannelPresenceDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment ChannelEventFields on ChannelEvent {\n    id\n    action\n    command\n    channel\n    payload\n    commandOptions\n    client {\n      id\n      authenticated\n      extras\n    }\n    createdAt\n    seq\n  }\n"): typeof import('./graphql.js').ChannelEventFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription ChannelEvents($name: String!, $options: JSON) {\n    channel(name: $name, options: $options) {\n      ...ChannelEventFields\n    }\n  }\n"): typeof import('./graphql.js').ChannelEventsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation SendMessage($channel: String!, $payload: JSON!, $options: JSON) {\n    sendMessage(channel: $channel, payload: $payload, options: $options) {\n      delivered\n      event {\n        ...ChannelEventFields\n      }\n    }\n  }\n"): typeof import('./graphql.js').SendMessageDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ChannelHistory($channel: String!, $last: Int) {\n    history(channel: $channel, last: $last) {\n      ...ChannelEventFields\n    }\n  }\n"): typeof import('./graphql.js').ChannelHistoryDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ChannelPresence($channel: String!) {\n    presence(channel: $channel) {\n      id\n      authenticated\n      extras\n      joinOptions\n    }\n  }\n"): typeof import('./graphql.js').ChannelPresenceDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
