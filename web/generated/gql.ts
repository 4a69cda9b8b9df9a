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
    "\n  mutation AdminTestDraft($draft: CreateTriggerInput!, $event: TriggerTestEventInput!) {\n    testTrigger(draft: $draft, event: $event) {\n      outcome\n      payload\n      commandOptions\n      error\n      errorCode\n      log\n      matches\n      matchNote\n      trace {\n        path\n        step\n        durationMs\n        result\n        error\n      }\n    }\n  }\n": typeof types.AdminTestDraftDocument,
    "\n  query AdminTriggerRevisions($id: ID!, $last: Int) {\n    trigger(id: $id) {\n      id\n      revision\n      revisions(last: $last) {\n        revision\n        config\n        note\n        createdAt\n      }\n    }\n  }\n": typeof types.AdminTriggerRevisionsDocument,
    "\n  mutation AdminRollbackTrigger($id: ID!, $revision: Int!) {\n    rollbackTrigger(id: $id, revision: $revision) {\n      ...TriggerFields\n    }\n  }\n": typeof types.AdminRollbackTriggerDocument,
    "\n  fragment TriggerRunFields on TriggerRun {\n    id\n    triggerId\n    action\n    channel\n    outcome\n    durationMs\n    error\n    log\n    clientId\n    revision\n    input\n    output\n    truncated\n    createdAt\n    attempts\n    nextAttemptAt\n    attemptHistory {\n      number\n      startedAt\n      durationMs\n      outcome\n      error\n      requests {\n        method\n        url\n        status\n        durationMs\n        responseExcerpt\n        responseTruncated\n      }\n    }\n  }\n": typeof types.TriggerRunFieldsFragmentDoc,
    "\n  mutation AdminRetryTriggerRun($id: ID!) {\n    retryTriggerRun(id: $id) {\n      ...TriggerRunFields\n    }\n  }\n": typeof types.AdminRetryTriggerRunDocument,
    "\n  query AdminRecentRuns($id: ID!, $last: Int, $outcome: TriggerOutcome) {\n    trigger(id: $id) {\n      id\n      runs(last: $last, outcome: $outcome) {\n        ...TriggerRunFields\n      }\n    }\n  }\n": typeof types.AdminRecentRunsDocument,
    "\n  subscription AdminLiveRuns($triggerId: ID) {\n    triggerRuns(triggerId: $triggerId) {\n      ...TriggerRunFields\n    }\n  }\n": typeof types.AdminLiveRunsDocument,
    "\n  query AdminLiveView($prefix: String, $first: Int) {\n    serverInfo {\n      connections {\n        webSockets\n        httpRequests\n        webSocketSubscriptions\n        httpSubscriptions\n        channels\n      }\n    }\n    activeChannels(prefix: $prefix, first: $first) {\n      name\n      members\n      subscribers\n      clusterMembers\n    }\n  }\n": typeof types.AdminLiveViewDocument,
    "\n  query AdminServerInfo {\n    serverInfo {\n      version\n      database\n      pubsub\n      startedAt\n    }\n  }\n": typeof types.AdminServerInfoDocument,
    "\n  fragment ChannelConfigFields on Channel {\n    id\n    pattern\n    description\n    active\n    anonymousClients\n    membersOnly\n    messaging\n    presence\n    history\n    createdAt\n    updatedAt\n    triggers {\n      id\n      name\n    }\n  }\n": typeof types.ChannelConfigFieldsFragmentDoc,
    "\n  query AdminChannels {\n    channels {\n      ...ChannelConfigFields\n    }\n  }\n": typeof types.AdminChannelsDocument,
    "\n  mutation AdminCreateChannel($input: CreateChannelInput!) {\n    createChannel(input: $input) {\n      ...ChannelConfigFields\n    }\n  }\n": typeof types.AdminCreateChannelDocument,
    "\n  mutation AdminUpdateChannel($pattern: String!, $input: UpdateChannelInput!) {\n    updateChannel(pattern: $pattern, input: $input) {\n      ...ChannelConfigFields\n    }\n  }\n": typeof types.AdminUpdateChannelDocument,
    "\n  mutation AdminDeleteChannel($pattern: String!) {\n    deleteChannel(pattern: $pattern)\n  }\n": typeof types.AdminDeleteChannelDocument,
    "\n  fragment TriggerFields on Trigger {\n    id\n    name\n    description\n    active\n    tags\n    actions\n    channel\n    order\n    onError\n    timing\n    stack\n    revision\n    createdAt\n    updatedAt\n  }\n": typeof types.TriggerFieldsFragmentDoc,
    "\n  query AdminTriggers($tag: String) {\n    triggers(tag: $tag) {\n      ...TriggerFields\n    }\n    allTags: triggers {\n      tags\n    }\n  }\n": typeof types.AdminTriggersDocument,
    "\n  mutation AdminCreateTrigger($input: CreateTriggerInput!) {\n    createTrigger(input: $input) {\n      ...TriggerFields\n    }\n  }\n": typeof types.AdminCreateTriggerDocument,
    "\n  mutation AdminUpdateTrigger($id: ID!, $input: UpdateTriggerInput!, $expectedRevision: Int) {\n    updateTrigger(id: $id, input: $input, expectedRevision: $expectedRevision) {\n      ...TriggerFields\n    }\n  }\n": typeof types.AdminUpdateTriggerDocument,
    "\n  mutation AdminDeleteTrigger($id: ID!) {\n    deleteTrigger(id: $id)\n  }\n": typeof types.AdminDeleteTriggerDocument,
    "\n  mutation AdminPublishMessage($channel: String!, $payload: JSON!) {\n    sendMessage(channel: $channel, payload: $payload) {\n      delivered\n      event {\n        id\n        seq\n      }\n    }\n  }\n": typeof types.AdminPublishMessageDocument,
    "\n  query AdminTriggerState($id: ID!, $prefix: String, $first: Int) {\n    trigger(id: $id) {\n      id\n      state(prefix: $prefix, first: $first) {\n        key\n        value\n        expiresAt\n      }\n    }\n  }\n": typeof types.AdminTriggerStateDocument,
    "\n  mutation AdminClearTriggerState($id: ID!, $prefix: String) {\n    clearTriggerState(id: $id, prefix: $prefix)\n  }\n": typeof types.AdminClearTriggerStateDocument,
};
const documents: Documents = {
    "\n  mutation AdminTestDraft($draft: CreateTriggerInput!, $event: TriggerTestEventInput!) {\n    testTrigger(draft: $draft, event: $event) {\n      outcome\n      payload\n      commandOptions\n      error\n      errorCode\n      log\n      matches\n      matchNote\n      trace {\n        path\n        step\n        durationMs\n        result\n        error\n      }\n    }\n  }\n": types.AdminTestDraftDocument,
    "\n  query AdminTriggerRevisions($id: ID!, $last: Int) {\n    trigger(id: $id) {\n      id\n      revision\n      revisions(last: $last) {\n        revision\n        config\n        note\n        createdAt\n      }\n    }\n  }\n": types.AdminTriggerRevisionsDocument,
    "\n  mutation AdminRollbackTrigger($id: ID!, $revision: Int!) {\n    rollbackTrigger(id: $id, revision: $revision) {\n      ...TriggerFields\n    }\n  }\n": types.AdminRollbackTriggerDocument,
    "\n  fragment TriggerRunFields on TriggerRun {\n    id\n    triggerId\n    action\n    channel\n    outcome\n    durationMs\n    error\n    log\n    clientId\n    revision\n    input\n    output\n    truncated\n    createdAt\n    attempts\n    nextAttemptAt\n    attemptHistory {\n      number\n      startedAt\n      durationMs\n      outcome\n      error\n      requests {\n        method\n        url\n        status\n        durationMs\n        responseExcerpt\n        responseTruncated\n      }\n    }\n  }\n": types.TriggerRunFieldsFragmentDoc,
    "\n  mutation AdminRetryTriggerRun($id: ID!) {\n    retryTriggerRun(id: $id) {\n      ...TriggerRunFields\n    }\n  }\n": types.AdminRetryTriggerRunDocument,
    "\n  query AdminRecentRuns($id: ID!, $last: Int, $outcome: TriggerOutcome) {\n    trigger(id: $id) {\n      id\n      runs(last: $last, outcome: $outcome) {\n        ...TriggerRunFields\n      }\n    }\n  }\n": types.AdminRecentRunsDocument,
    "\n  subscription AdminLiveRuns($triggerId: ID) {\n    triggerRuns(triggerId: $triggerId) {\n      ...TriggerRunFields\n    }\n  }\n": types.AdminLiveRunsDocument,
    "\n  query AdminLiveView($prefix: String, $first: Int) {\n    serverInfo {\n      connections {\n        webSockets\n        httpRequests\n        webSocketSubscriptions\n        httpSubscriptions\n        channels\n      }\n    }\n    activeChannels(prefix: $prefix, first: $first) {\n      name\n      members\n      subscribers\n      clusterMembers\n    }\n  }\n": types.AdminLiveViewDocument,
    "\n  query AdminServerInfo {\n    serverInfo {\n      version\n      database\n      pubsub\n      startedAt\n    }\n  }\n": types.AdminServerInfoDocument,
    "\n  fragment ChannelConfigFields on Channel {\n    id\n    pattern\n    description\n    active\n    anonymousClients\n    membersOnly\n    messaging\n    presence\n    history\n    createdAt\n    updatedAt\n    triggers {\n      id\n      name\n    }\n  }\n": types.ChannelConfigFieldsFragmentDoc,
    "\n  query AdminChannels {\n    channels {\n      ...ChannelConfigFields\n    }\n  }\n": types.AdminChannelsDocument,
    "\n  mutation AdminCreateChannel($input: CreateChannelInput!) {\n    createChannel(input: $input) {\n      ...ChannelConfigFields\n    }\n  }\n": types.AdminCreateChannelDocument,
    "\n  mutation AdminUpdateChannel($pattern: String!, $input: UpdateChannelInput!) {\n    updateChannel(pattern: $pattern, input: $input) {\n      ...ChannelConfigFields\n    }\n  }\n": types.AdminUpdateChannelDocument,
    "\n  mutation AdminDeleteChannel($pattern: String!) {\n    deleteChannel(pattern: $pattern)\n  }\n": types.AdminDeleteChannelDocument,
    "\n  fragment TriggerFields on Trigger {\n    id\n    name\n    description\n    active\n    tags\n    actions\n    channel\n    order\n    onError\n    timing\n    stack\n    revision\n    createdAt\n    updatedAt\n  }\n": types.TriggerFieldsFragmentDoc,
    "\n  query AdminTriggers($tag: String) {\n    triggers(tag: $tag) {\n      ...TriggerFields\n    }\n    allTags: triggers {\n      tags\n    }\n  }\n": types.AdminTriggersDocument,
    "\n  mutation AdminCreateTrigger($input: CreateTriggerInput!) {\n    createTrigger(input: $input) {\n      ...TriggerFields\n    }\n  }\n": types.AdminCreateTriggerDocument,
    "\n  mutation AdminUpdateTrigger($id: ID!, $input: UpdateTriggerInput!, $expectedRevision: Int) {\n    updateTrigger(id: $id, input: $input, expectedRevision: $expectedRevision) {\n      ...TriggerFields\n    }\n  }\n": types.AdminUpdateTriggerDocument,
    "\n  mutation AdminDeleteTrigger($id: ID!) {\n    deleteTrigger(id: $id)\n  }\n": types.AdminDeleteTriggerDocument,
    "\n  mutation AdminPublishMessage($channel: String!, $payload: JSON!) {\n    sendMessage(channel: $channel, payload: $payload) {\n      delivered\n      event {\n        id\n        seq\n      }\n    }\n  }\n": types.AdminPublishMessageDocument,
    "\n  query AdminTriggerState($id: ID!, $prefix: String, $first: Int) {\n    trigger(id: $id) {\n      id\n      state(prefix: $prefix, first: $first) {\n        key\n        value\n        expiresAt\n      }\n    }\n  }\n": types.AdminTriggerStateDocument,
    "\n  mutation AdminClearTriggerState($id: ID!, $prefix: String) {\n    clearTriggerState(id: $id, prefix: $prefix)\n  }\n": types.AdminClearTriggerStateDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminTestDraft($draft: CreateTriggerInput!, $event: TriggerTestEventInput!) {\n    testTrigger(draft: $draft, event: $event) {\n      outcome\n      payload\n      commandOptions\n      error\n      errorCode\n      log\n      matches\n      matchNote\n      trace {\n        path\n        step\n        durationMs\n        result\n        error\n      }\n    }\n  }\n"): typeof import('./graphql.js').AdminTestDraftDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AdminTriggerRevisions($id: ID!, $last: Int) {\n    trigger(id: $id) {\n      id\n      revision\n      revisions(last: $last) {\n        revision\n        config\n        note\n        createdAt\n      }\n    }\n  }\n"): typeof import('./graphql.js').AdminTriggerRevisionsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminRollbackTrigger($id: ID!, $revision: Int!) {\n    rollbackTrigger(id: $id, revision: $revision) {\n      ...TriggerFields\n    }\n  }\n"): typeof import('./graphql.js').AdminRollbackTriggerDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment TriggerRunFields on TriggerRun {\n    id\n    triggerId\n    action\n    channel\n    outcome\n    durationMs\n    error\n    log\n    clientId\n    revision\n    input\n    output\n    truncated\n    createdAt\n    attempts\n    nextAttemptAt\n    attemptHistory {\n      number\n      startedAt\n      durationMs\n      outcome\n      error\n      requests {\n        method\n        url\n        status\n        durationMs\n        responseExcerpt\n        responseTruncated\n      }\n    }\n  }\n"): typeof import('./graphql.js').TriggerRunFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminRetryTriggerRun($id: ID!) {\n    retryTriggerRun(id: $id) {\n      ...TriggerRunFields\n    }\n  }\n"): typeof import('./graphql.js').AdminRetryTriggerRunDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AdminRecentRuns($id: ID!, $last: Int, $outcome: TriggerOutcome) {\n    trigger(id: $id) {\n      id\n      runs(last: $last, outcome: $outcome) {\n        ...TriggerRunFields\n      }\n    }\n  }\n"): typeof import('./graphql.js').AdminRecentRunsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription AdminLiveRuns($triggerId: ID) {\n    triggerRuns(triggerId: $triggerId) {\n      ...TriggerRunFields\n    }\n  }\n"): typeof import('./graphql.js').AdminLiveRunsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AdminLiveView($prefix: String, $first: Int) {\n    serverInfo {\n      connections {\n        webSockets\n        httpRequests\n        webSocketSubscriptions\n        httpSubscriptions\n        channels\n      }\n    }\n    activeChannels(prefix: $prefix, first: $first) {\n      name\n      members\n      subscribers\n      clusterMembers\n    }\n  }\n"): typeof import('./graphql.js').AdminLiveViewDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AdminServerInfo {\n    serverInfo {\n      version\n      database\n      pubsub\n      startedAt\n    }\n  }\n"): typeof import('./graphql.js').AdminServerInfoDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment ChannelConfigFields on Channel {\n    id\n    pattern\n    description\n    active\n    anonymousClients\n    membersOnly\n    messaging\n    presence\n    history\n    createdAt\n    updatedAt\n    triggers {\n      id\n      name\n    }\n  }\n"): typeof import('./graphql.js').ChannelConfigFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AdminChannels {\n    channels {\n      ...ChannelConfigFields\n    }\n  }\n"): typeof import('./graphql.js').AdminChannelsDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminCreateChannel($input: CreateChannelInput!) {\n    createChannel(input: $input) {\n      ...ChannelConfigFields\n    }\n  }\n"): typeof import('./graphql.js').AdminCreateChannelDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminUpdateChannel($pattern: String!, $input: UpdateChannelInput!) {\n    updateChannel(pattern: $pattern, input: $input) {\n      ...ChannelConfigFields\n    }\n  }\n"): typeof import('./graphql.js').AdminUpdateChannelDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminDeleteChannel($pattern: String!) {\n    deleteChannel(pattern: $pattern)\n  }\n"): typeof import('./graphql.js').AdminDeleteChannelDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  fragment TriggerFields on Trigger {\n    id\n    name\n    description\n    active\n    tags\n    actions\n    channel\n    order\n    onError\n    timing\n    stack\n    revision\n    createdAt\n    updatedAt\n  }\n"): typeof import('./graphql.js').TriggerFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AdminTriggers($tag: String) {\n    triggers(tag: $tag) {\n      ...TriggerFields\n    }\n    allTags: triggers {\n      tags\n    }\n  }\n"): typeof import('./graphql.js').AdminTriggersDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminCreateTrigger($input: CreateTriggerInput!) {\n    createTrigger(input: $input) {\n      ...TriggerFields\n    }\n  }\n"): typeof import('./graphql.js').AdminCreateTriggerDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminUpdateTrigger($id: ID!, $input: UpdateTriggerInput!, $expectedRevision: Int) {\n    updateTrigger(id: $id, input: $input, expectedRevision: $expectedRevision) {\n      ...TriggerFields\n    }\n  }\n"): typeof import('./graphql.js').AdminUpdateTriggerDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminDeleteTrigger($id: ID!) {\n    deleteTrigger(id: $id)\n  }\n"): typeof import('./graphql.js').AdminDeleteTriggerDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminPublishMessage($channel: String!, $payload: JSON!) {\n    sendMessage(channel: $channel, payload: $payload) {\n      delivered\n      event {\n        id\n        seq\n      }\n    }\n  }\n"): typeof import('./graphql.js').AdminPublishMessageDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AdminTriggerState($id: ID!, $prefix: String, $first: Int) {\n    trigger(id: $id) {\n      id\n      state(prefix: $prefix, first: $first) {\n        key\n        value\n        expiresAt\n      }\n    }\n  }\n"): typeof import('./graphql.js').AdminTriggerStateDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation AdminClearTriggerState($id: ID!, $prefix: String) {\n    clearTriggerState(id: $id, prefix: $prefix)\n  }\n"): typeof import('./graphql.js').AdminClearTriggerStateDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
