import { graphql } from "../generated/gql.js";

/** The trigger author's operations in the console: draft tests, revisions, runs (admin token required). */

export const TestDraftDocument = graphql(`
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
`);

export const TriggerRevisionsDocument = graphql(`
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
`);

export const RollbackTriggerDocument = graphql(`
  mutation AdminRollbackTrigger($id: ID!, $revision: Int!) {
    rollbackTrigger(id: $id, revision: $revision) {
      ...TriggerFields
    }
  }
`);

export const TriggerRunFields = graphql(`
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
`);

/** Queues a FAILED run of an AFTER trigger again. */
export const RetryTriggerRunDocument = graphql(`
  mutation AdminRetryTriggerRun($id: ID!) {
    retryTriggerRun(id: $id) {
      ...TriggerRunFields
    }
  }
`);

export const RecentRunsDocument = graphql(`
  query AdminRecentRuns($id: ID!, $last: Int, $outcome: TriggerOutcome) {
    trigger(id: $id) {
      id
      runs(last: $last, outcome: $outcome) {
        ...TriggerRunFields
      }
    }
  }
`);

export const LiveRunsDocument = graphql(`
  subscription AdminLiveRuns($triggerId: ID) {
    triggerRuns(triggerId: $triggerId) {
      ...TriggerRunFields
    }
  }
`);
