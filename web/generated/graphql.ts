/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** Who may send: ANYONE, AUTHENTICATED clients, or NOBODY but the admin. */
export type ChannelMessaging =
  | 'ANYONE'
  | 'AUTHENTICATED'
  | 'NOBODY';

/** Unset settings take the server-wide defaults. */
export type CreateChannelInput = {
  active?: boolean | null | undefined;
  anonymousClients?: boolean | null | undefined;
  description?: string | null | undefined;
  history?: number | null | undefined;
  membersOnly?: boolean | null | undefined;
  messaging?: ChannelMessaging | null | undefined;
  pattern: string;
  presence?: boolean | null | undefined;
};

export type CreateTriggerInput = {
  actions: Array<TriggerAction>;
  active?: boolean | null | undefined;
  channel: string;
  description?: string | null | undefined;
  name: string;
  onError?: TriggerErrorPolicy | null | undefined;
  order?: number | null | undefined;
  stack: unknown;
  tags?: Array<string> | null | undefined;
  /** AFTER triggers may not have drop or reject steps (refused with BAD_USER_INPUT). */
  timing?: TriggerTiming | null | undefined;
};

/** Who a test event comes from. Defaults: id test-client, anonymous, no extras. */
export type TestClientInput = {
  authenticated?: boolean | null | undefined;
  /** The token's own claims (authenticated clients only). */
  extras?: unknown;
  id?: string | null | undefined;
};

/** The events a trigger runs on. */
export type TriggerAction =
  | 'JOIN'
  | 'LEAVE'
  | 'MESSAGE';

/** What happens to an event when its trigger fails: REJECT it (fail closed), DROP it, or DELIVER it unchanged. */
export type TriggerErrorPolicy =
  | 'DELIVER'
  | 'DROP'
  | 'REJECT';

/** How a run ended. BEFORE triggers: DELIVERED, MODIFIED, DROPPED, REJECTED or FAILED. AFTER triggers: PENDING (waiting for an attempt), DELIVERED or FAILED. */
export type TriggerOutcome =
  | 'DELIVERED'
  | 'DROPPED'
  | 'FAILED'
  | 'MODIFIED'
  | 'PENDING'
  | 'REJECTED';

export type TriggerTestEventInput = {
  action: TriggerAction;
  channel: string;
  client?: TestClientInput | null | undefined;
  /** Shorthand for client: { id }. */
  clientId?: string | null | undefined;
  commandOptions?: unknown;
  payload?: unknown;
};

/** When a trigger runs: BEFORE delivery (it may change, drop or refuse the event), or AFTER it, on the event as delivered, queued durably and retried (at least once). */
export type TriggerTiming =
  | 'AFTER'
  | 'BEFORE';

export type UpdateChannelInput = {
  active?: boolean | null | undefined;
  anonymousClients?: boolean | null | undefined;
  description?: string | null | undefined;
  history?: number | null | undefined;
  membersOnly?: boolean | null | undefined;
  messaging?: ChannelMessaging | null | undefined;
  pattern?: string | null | undefined;
  presence?: boolean | null | undefined;
};

export type UpdateTriggerInput = {
  actions?: Array<TriggerAction> | null | undefined;
  active?: boolean | null | undefined;
  channel?: string | null | undefined;
  description?: string | null | undefined;
  name?: string | null | undefined;
  onError?: TriggerErrorPolicy | null | undefined;
  order?: number | null | undefined;
  stack?: unknown;
  tags?: Array<string> | null | undefined;
  timing?: TriggerTiming | null | undefined;
};

export type AdminTestDraftMutationVariables = Exact<{
  draft: CreateTriggerInput;
  event: TriggerTestEventInput;
}>;


export type AdminTestDraftMutation = { testTrigger: { outcome: TriggerOutcome, payload: unknown, commandOptions: unknown, error: string | null, errorCode: string | null, log: Array<unknown>, matches: boolean, matchNote: string | null, trace: Array<{ path: string, step: string, durationMs: number, result: unknown, error: string | null }> } };

export type AdminTriggerRevisionsQueryVariables = Exact<{
  id: string;
  last?: number | null | undefined;
}>;


export type AdminTriggerRevisionsQuery = { trigger: { id: string, revision: number, revisions: Array<{ revision: number, config: unknown, note: string | null, createdAt: string }> } | null };

export type AdminRollbackTriggerMutationVariables = Exact<{
  id: string;
  revision: number;
}>;


export type AdminRollbackTriggerMutation = { rollbackTrigger: { id: string, name: string, description: string | null, active: boolean, tags: Array<string>, actions: Array<TriggerAction>, channel: string, order: number, onError: TriggerErrorPolicy, timing: TriggerTiming, stack: unknown, revision: number, createdAt: string, updatedAt: string } };

export type TriggerRunFieldsFragment = { id: string, triggerId: string, action: TriggerAction, channel: string, outcome: TriggerOutcome, durationMs: number, error: string | null, log: Array<unknown>, clientId: string | null, revision: number | null, input: unknown, output: unknown, truncated: boolean, createdAt: string, attempts: number | null, nextAttemptAt: string | null, attemptHistory: Array<{ number: number, startedAt: string, durationMs: number, outcome: TriggerOutcome, error: string | null, requests: Array<{ method: string, url: string, status: number | null, durationMs: number, responseExcerpt: string | null, responseTruncated: boolean }> }> };

export type AdminRetryTriggerRunMutationVariables = Exact<{
  id: string;
}>;


export type AdminRetryTriggerRunMutation = { retryTriggerRun: { id: string, triggerId: string, action: TriggerAction, channel: string, outcome: TriggerOutcome, durationMs: number, error: string | null, log: Array<unknown>, clientId: string | null, revision: number | null, input: unknown, output: unknown, truncated: boolean, createdAt: string, attempts: number | null, nextAttemptAt: string | null, attemptHistory: Array<{ number: number, startedAt: string, durationMs: number, outcome: TriggerOutcome, error: string | null, requests: Array<{ method: string, url: string, status: number | null, durationMs: number, responseExcerpt: string | null, responseTruncated: boolean }> }> } };

export type AdminRecentRunsQueryVariables = Exact<{
  id: string;
  last?: number | null | undefined;
  outcome?: TriggerOutcome | null | undefined;
}>;


export type AdminRecentRunsQuery = { trigger: { id: string, runs: Array<{ id: string, triggerId: string, action: TriggerAction, channel: string, outcome: TriggerOutcome, durationMs: number, error: string | null, log: Array<unknown>, clientId: string | null, revision: number | null, input: unknown, output: unknown, truncated: boolean, createdAt: string, attempts: number | null, nextAttemptAt: string | null, attemptHistory: Array<{ number: number, startedAt: string, durationMs: number, outcome: TriggerOutcome, error: string | null, requests: Array<{ method: string, url: string, status: number | null, durationMs: number, responseExcerpt: string | null, responseTruncated: boolean }> }> }> } | null };

export type AdminLiveRunsSubscriptionVariables = Exact<{
  triggerId?: string | null | undefined;
}>;


export type AdminLiveRunsSubscription = { triggerRuns: { id: string, triggerId: string, action: TriggerAction, channel: string, outcome: TriggerOutcome, durationMs: number, error: string | null, log: Array<unknown>, clientId: string | null, revision: number | null, input: unknown, output: unknown, truncated: boolean, createdAt: string, attempts: number | null, nextAttemptAt: string | null, attemptHistory: Array<{ number: number, startedAt: string, durationMs: number, outcome: TriggerOutcome, error: string | null, requests: Array<{ method: string, url: string, status: number | null, durationMs: number, responseExcerpt: string | null, responseTruncated: boolean }> }> } };

export type AdminLiveViewQueryVariables = Exact<{
  prefix?: string | null | undefined;
  first?: number | null | undefined;
}>;


export type AdminLiveViewQuery = { serverInfo: { connections: { webSockets: number, httpRequests: number, webSocketSubscriptions: number, httpSubscriptions: number, channels: number } }, activeChannels: Array<{ name: string, members: number, subscribers: number, clusterMembers: number | null }> };

export type AdminServerInfoQueryVariables = Exact<{ [key: string]: never; }>;


export type AdminServerInfoQuery = { serverInfo: { version: string, database: string, pubsub: string, startedAt: string } };

export type ChannelConfigFieldsFragment = { id: string, pattern: string, description: string | null, active: boolean, anonymousClients: boolean, membersOnly: boolean, messaging: ChannelMessaging, presence: boolean, history: number, createdAt: string, updatedAt: string, triggers: Array<{ id: string, name: string }> };

export type AdminChannelsQueryVariables = Exact<{ [key: string]: never; }>;


export type AdminChannelsQuery = { channels: Array<{ id: string, pattern: string, description: string | null, active: boolean, anonymousClients: boolean, membersOnly: boolean, messaging: ChannelMessaging, presence: boolean, history: number, createdAt: string, updatedAt: string, triggers: Array<{ id: string, name: string }> }> };

export type AdminCreateChannelMutationVariables = Exact<{
  input: CreateChannelInput;
}>;


export type AdminCreateChannelMutation = { createChannel: { id: string, pattern: string, description: string | null, active: boolean, anonymousClients: boolean, membersOnly: boolean, messaging: ChannelMessaging, presence: boolean, history: number, createdAt: string, updatedAt: string, triggers: Array<{ id: string, name: string }> } };

export type AdminUpdateChannelMutationVariables = Exact<{
  pattern: string;
  input: UpdateChannelInput;
}>;


export type AdminUpdateChannelMutation = { updateChannel: { id: string, pattern: string, description: string | null, active: boolean, anonymousClients: boolean, membersOnly: boolean, messaging: ChannelMessaging, presence: boolean, history: number, createdAt: string, updatedAt: string, triggers: Array<{ id: string, name: string }> } };

export type AdminDeleteChannelMutationVariables = Exact<{
  pattern: string;
}>;


export type AdminDeleteChannelMutation = { deleteChannel: boolean };

export type TriggerFieldsFragment = { id: string, name: string, description: string | null, active: boolean, tags: Array<string>, actions: Array<TriggerAction>, channel: string, order: number, onError: TriggerErrorPolicy, timing: TriggerTiming, stack: unknown, revision: number, createdAt: string, updatedAt: string };

export type AdminTriggersQueryVariables = Exact<{
  tag?: string | null | undefined;
}>;


export type AdminTriggersQuery = { triggers: Array<{ id: string, name: string, description: string | null, active: boolean, tags: Array<string>, actions: Array<TriggerAction>, channel: string, order: number, onError: TriggerErrorPolicy, timing: TriggerTiming, stack: unknown, revision: number, createdAt: string, updatedAt: string }>, allTags: Array<{ tags: Array<string> }> };

export type AdminCreateTriggerMutationVariables = Exact<{
  input: CreateTriggerInput;
}>;


export type AdminCreateTriggerMutation = { createTrigger: { id: string, name: string, description: string | null, active: boolean, tags: Array<string>, actions: Array<TriggerAction>, channel: string, order: number, onError: TriggerErrorPolicy, timing: TriggerTiming, stack: unknown, revision: number, createdAt: string, updatedAt: string } };

export type AdminUpdateTriggerMutationVariables = Exact<{
  id: string;
  input: UpdateTriggerInput;
  expectedRevision?: number | null | undefined;
}>;


export type AdminUpdateTriggerMutation = { updateTrigger: { id: string, name: string, description: string | null, active: boolean, tags: Array<string>, actions: Array<TriggerAction>, channel: string, order: number, onError: TriggerErrorPolicy, timing: TriggerTiming, stack: unknown, revision: number, createdAt: string, updatedAt: string } };

export type AdminDeleteTriggerMutationVariables = Exact<{
  id: string;
}>;


export type AdminDeleteTriggerMutation = { deleteTrigger: boolean };

export type AdminPublishMessageMutationVariables = Exact<{
  channel: string;
  payload: unknown;
}>;


export type AdminPublishMessageMutation = { sendMessage: { delivered: boolean, event: { id: string, seq: number | null } | null } };

export type AdminTriggerStateQueryVariables = Exact<{
  id: string;
  prefix?: string | null | undefined;
  first?: number | null | undefined;
}>;


export type AdminTriggerStateQuery = { trigger: { id: string, state: Array<{ key: string, value: unknown, expiresAt: string | null }> } | null };

export type AdminClearTriggerStateMutationVariables = Exact<{
  id: string;
  prefix?: string | null | undefined;
}>;


export type AdminClearTriggerStateMutation = { clearTriggerState: number };

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
export const TriggerRunFieldsFragmentDoc = new TypedDocumentString(`
    fragment TriggerRunFields on TriggerRun {
  id
  triggerId
  action
  channel
  outcome
  durationMs
  error
  log
  clientId
  revision
  input
  output
  truncated
  createdAt
  attempts
  nextAttemptAt
  attemptHistory {
    number
    startedAt
    durationMs
    outcome
    error
    requests {
      method
      url
      status
      durationMs
      responseExcerpt
      responseTruncated
    }
  }
}
    `, {"fragmentName":"TriggerRunFields"}) as unknown as TypedDocumentString<TriggerRunFieldsFragment, unknown>;
export const ChannelConfigFieldsFragmentDoc = new TypedDocumentString(`
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
    `, {"fragmentName":"ChannelConfigFields"}) as unknown as TypedDocumentString<ChannelConfigFieldsFragment, unknown>;
export const TriggerFieldsFragmentDoc = new TypedDocumentString(`
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
    `, {"fragmentName":"TriggerFields"}) as unknown as TypedDocumentString<TriggerFieldsFragment, unknown>;
export const AdminTestDraftDocument = new TypedDocumentString(`
    mutation AdminTestDraft($draft: CreateTriggerInput!, $event: TriggerTestEventInput!) {
  testTrigger(draft: $draft, event: $event) {
    outcome
    payload
    commandOptions
    error
    errorCode
    log
    matches
    matchNote
    trace {
      path
      step
      durationMs
      result
      error
    }
  }
}
    `) as unknown as TypedDocumentString<AdminTestDraftMutation, AdminTestDraftMutationVariables>;
export const AdminTriggerRevisionsDocument = new TypedDocumentString(`
    query AdminTriggerRevisions($id: ID!, $last: Int) {
  trigger(id: $id) {
    id
    revision
    revisions(last: $last) {
      revision
      config
      note
      createdAt
    }
  }
}
    `) as unknown as TypedDocumentString<AdminTriggerRevisionsQuery, AdminTriggerRevisionsQueryVariables>;
export const AdminRollbackTriggerDocument = new TypedDocumentString(`
    mutation AdminRollbackTrigger($id: ID!, $revision: Int!) {
  rollbackTrigger(id: $id, revision: $revision) {
    ...TriggerFields
  }
}
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
}`) as unknown as TypedDocumentString<AdminRollbackTriggerMutation, AdminRollbackTriggerMutationVariables>;
export const AdminRetryTriggerRunDocument = new TypedDocumentString(`
    mutation AdminRetryTriggerRun($id: ID!) {
  retryTriggerRun(id: $id) {
    ...TriggerRunFields
  }
}
    fragment TriggerRunFields on TriggerRun {
  id
  triggerId
  action
  channel
  outcome
  durationMs
  error
  log
  clientId
  revision
  input
  output
  truncated
  createdAt
  attempts
  nextAttemptAt
  attemptHistory {
    number
    startedAt
    durationMs
    outcome
    error
    requests {
      method
      url
      status
      durationMs
      responseExcerpt
      responseTruncated
    }
  }
}`) as unknown as TypedDocumentString<AdminRetryTriggerRunMutation, AdminRetryTriggerRunMutationVariables>;
export const AdminRecentRunsDocument = new TypedDocumentString(`
    query AdminRecentRuns($id: ID!, $last: Int, $outcome: TriggerOutcome) {
  trigger(id: $id) {
    id
    runs(last: $last, outcome: $outcome) {
      ...TriggerRunFields
    }
  }
}
    fragment TriggerRunFields on TriggerRun {
  id
  triggerId
  action
  channel
  outcome
  durationMs
  error
  log
  clientId
  revision
  input
  output
  truncated
  createdAt
  attempts
  nextAttemptAt
  attemptHistory {
    number
    startedAt
    durationMs
    outcome
    error
    requests {
      method
      url
      status
      durationMs
      responseExcerpt
      responseTruncated
    }
  }
}`) as unknown as TypedDocumentString<AdminRecentRunsQuery, AdminRecentRunsQueryVariables>;
export const AdminLiveRunsDocument = new TypedDocumentString(`
    subscription AdminLiveRuns($triggerId: ID) {
  triggerRuns(triggerId: $triggerId) {
    ...TriggerRunFields
  }
}
    fragment TriggerRunFields on TriggerRun {
  id
  triggerId
  action
  channel
  outcome
  durationMs
  error
  log
  clientId
  revision
  input
  output
  truncated
  createdAt
  attempts
  nextAttemptAt
  attemptHistory {
    number
    startedAt
    durationMs
    outcome
    error
    requests {
      method
      url
      status
      durationMs
      responseExcerpt
      responseTruncated
    }
  }
}`) as unknown as TypedDocumentString<AdminLiveRunsSubscription, AdminLiveRunsSubscriptionVariables>;
export const AdminLiveViewDocument = new TypedDocumentString(`
    query AdminLiveView($prefix: String, $first: Int) {
  serverInfo {
    connections {
      webSockets
      httpRequests
      webSocketSubscriptions
      httpSubscriptions
      channels
    }
  }
  activeChannels(prefix: $prefix, first: $first) {
    name
    members
    subscribers
    clusterMembers
  }
}
    `) as unknown as TypedDocumentString<AdminLiveViewQuery, AdminLiveViewQueryVariables>;
export const AdminServerInfoDocument = new TypedDocumentString(`
    query AdminServerInfo {
  serverInfo {
    version
    database
    pubsub
    startedAt
  }
}
    `) as unknown as TypedDocumentString<AdminServerInfoQuery, AdminServerInfoQueryVariables>;
export const AdminChannelsDocument = new TypedDocumentString(`
    query AdminChannels {
  channels {
    ...ChannelConfigFields
  }
}
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
}`) as unknown as TypedDocumentString<AdminChannelsQuery, AdminChannelsQueryVariables>;
export const AdminCreateChannelDocument = new TypedDocumentString(`
    mutation AdminCreateChannel($input: CreateChannelInput!) {
  createChannel(input: $input) {
    ...ChannelConfigFields
  }
}
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
}`) as unknown as TypedDocumentString<AdminCreateChannelMutation, AdminCreateChannelMutationVariables>;
export const AdminUpdateChannelDocument = new TypedDocumentString(`
    mutation AdminUpdateChannel($pattern: String!, $input: UpdateChannelInput!) {
  updateChannel(pattern: $pattern, input: $input) {
    ...ChannelConfigFields
  }
}
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
}`) as unknown as TypedDocumentString<AdminUpdateChannelMutation, AdminUpdateChannelMutationVariables>;
export const AdminDeleteChannelDocument = new TypedDocumentString(`
    mutation AdminDeleteChannel($pattern: String!) {
  deleteChannel(pattern: $pattern)
}
    `) as unknown as TypedDocumentString<AdminDeleteChannelMutation, AdminDeleteChannelMutationVariables>;
export const AdminTriggersDocument = new TypedDocumentString(`
    query AdminTriggers($tag: String) {
  triggers(tag: $tag) {
    ...TriggerFields
  }
  allTags: triggers {
    tags
  }
}
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
}`) as unknown as TypedDocumentString<AdminTriggersQuery, AdminTriggersQueryVariables>;
export const AdminCreateTriggerDocument = new TypedDocumentString(`
    mutation AdminCreateTrigger($input: CreateTriggerInput!) {
  createTrigger(input: $input) {
    ...TriggerFields
  }
}
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
}`) as unknown as TypedDocumentString<AdminCreateTriggerMutation, AdminCreateTriggerMutationVariables>;
export const AdminUpdateTriggerDocument = new TypedDocumentString(`
    mutation AdminUpdateTrigger($id: ID!, $input: UpdateTriggerInput!, $expectedRevision: Int) {
  updateTrigger(id: $id, input: $input, expectedRevision: $expectedRevision) {
    ...TriggerFields
  }
}
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
}`) as unknown as TypedDocumentString<AdminUpdateTriggerMutation, AdminUpdateTriggerMutationVariables>;
export const AdminDeleteTriggerDocument = new TypedDocumentString(`
    mutation AdminDeleteTrigger($id: ID!) {
  deleteTrigger(id: $id)
}
    `) as unknown as TypedDocumentString<AdminDeleteTriggerMutation, AdminDeleteTriggerMutationVariables>;
export const AdminPublishMessageDocument = new TypedDocumentString(`
    mutation AdminPublishMessage($channel: String!, $payload: JSON!) {
  sendMessage(channel: $channel, payload: $payload) {
    delivered
    event {
      id
      seq
    }
  }
}
    `) as unknown as TypedDocumentString<AdminPublishMessageMutation, AdminPublishMessageMutationVariables>;
export const AdminTriggerStateDocument = new TypedDocumentString(`
    query AdminTriggerState($id: ID!, $prefix: String, $first: Int) {
  trigger(id: $id) {
    id
    state(prefix: $prefix, first: $first) {
      key
      value
      expiresAt
    }
  }
}
    `) as unknown as TypedDocumentString<AdminTriggerStateQuery, AdminTriggerStateQueryVariables>;
export const AdminClearTriggerStateDocument = new TypedDocumentString(`
    mutation AdminClearTriggerState($id: ID!, $prefix: String) {
  clearTriggerState(id: $id, prefix: $prefix)
}
    `) as unknown as TypedDocumentString<AdminClearTriggerStateMutation, AdminClearTriggerStateMutationVariables>;