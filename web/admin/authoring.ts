/**
 * The trigger author's tools in the admin console: test the trigger in the form (saved or not) as an
 * anonymous or authenticated client, see its revisions with a diff and roll back, and see its runs
 * stream in live (`triggerRuns` over the WebSocket) with what went in and came out, and its state
 * (./trigger-state.ts).
 */

import { isGraphQLErrors, RealtimeError } from "@realtime-channels/client";
import { type Client, createClient } from "graphql-ws";
import type {
  AdminTestDraftMutation,
  CreateTriggerInput,
  TriggerAction,
  TriggerFieldsFragment,
  TriggerOutcome,
  TriggerRunFieldsFragment,
  TypedDocumentString,
} from "../generated/graphql.js";
import { byId, counted, dateTime, h, pretty, shortId } from "../shared/dom.js";
import {
  LiveRunsDocument,
  RecentRunsDocument,
  RetryTriggerRunDocument,
  RollbackTriggerDocument,
  TestDraftDocument,
  TriggerRevisionsDocument,
} from "./authoring-operations.js";
import { diffLines } from "./line-diff.js";
import { createStateView } from "./trigger-state.js";

/** Runs shown at most; older ones drop off as new ones stream in. */
const MAX_RUN_ROWS = 50;

/** What the tools need from the console. */
export interface AuthoringHost {
  /** Runs an admin operation over HTTP. */
  admin<TResult, TVariables>(document: TypedDocumentString<TResult, TVariables>, variables: TVariables): Promise<TResult>;
  /** The admin token, for the WebSocket that streams runs. */
  token(): string | null;
  /** The trigger as the form holds it, or null after showing the form's own error. */
  readDraft(): CreateTriggerInput | null;
  /** Called with a trigger after a rollback changed it. */
  changed(trigger: TriggerFieldsFragment): Promise<void>;
}

/** The tools, driven by the console's selection. */
export interface Authoring {
  /**
   * Shows the tools for a saved trigger, or for a new one (testing only). With `saved` (the form just
   * saved this trigger, new or not) the draft test keeps its channel, action and result.
   */
  select(trigger: TriggerFieldsFragment | null, saved?: boolean): void;
  /** Stops streaming runs (on sign-out). */
  stop(): void;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Wires the tools to the console's page. */
export function createAuthoring(host: AuthoringHost): Authoring {
  let selected: TriggerFieldsFragment | null = null;
  const stateView = createStateView(host);

  // ------------------------------------------------------------------------------------------
  // Test runs

  const testForm = byId("test-form", HTMLFormElement);
  const testAction = byId("test-action", HTMLSelectElement);
  const testChannel = byId("test-channel", HTMLInputElement);
  const testIdentity = byId("test-identity", HTMLSelectElement);
  const testClient = byId("test-client", HTMLInputElement);
  const testClaimsField = byId("test-claims-field");
  const testClaims = byId("test-claims", HTMLTextAreaElement);
  const testPayload = byId("test-payload", HTMLTextAreaElement);
  const testOptions = byId("test-options", HTMLTextAreaElement);
  const testError = byId("test-error");
  const testResult = byId("test-result");

  testIdentity.addEventListener("change", () => (testClaimsField.hidden = testIdentity.value !== "authenticated"));
  testForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void runTest();
  });

  function readJson(textarea: HTMLTextAreaElement, label: string): { ok: true; value: unknown } | { ok: false } {
    textarea.removeAttribute("aria-invalid");
    if (!textarea.value.trim()) return { ok: true, value: null };
    try {
      return { ok: true, value: JSON.parse(textarea.value) };
    } catch (error) {
      textarea.setAttribute("aria-invalid", "true");
      testError.textContent = `${label} is not valid JSON: ${message(error)}`;
      textarea.focus();
      return { ok: false };
    }
  }

  async function runTest(): Promise<void> {
    testError.textContent = "";
    testResult.replaceChildren();
    const payload = readJson(testPayload, "The payload");
    const options = payload.ok ? readJson(testOptions, "The command options") : { ok: false as const };
    const authenticated = testIdentity.value === "authenticated";
    const claims = options.ok && authenticated ? readJson(testClaims, "The token claims") : { ok: true as const, value: null };
    if (!payload.ok || !options.ok || !claims.ok) return;
    const draft = host.readDraft();
    if (!draft) {
      testError.textContent = "Fix the trigger form first: the test runs what the form holds.";
      return;
    }
    try {
      const { testTrigger } = await host.admin(TestDraftDocument, {
        draft,
        event: {
          action: testAction.value as TriggerAction,
          channel: testChannel.value.trim(),
          payload: payload.value,
          commandOptions: options.value,
          client: { id: testClient.value.trim() || null, authenticated, extras: authenticated ? claims.value : null },
        },
      });
      renderTestResult(testTrigger);
    } catch (error) {
      testError.textContent = message(error);
    }
  }

  function renderTestResult(result: AdminTestDraftMutation["testTrigger"]): void {
    testResult.replaceChildren(
      h("h4", {}, "Outcome ", h("span", { class: "badge", dataset: { outcome: result.outcome } }, result.outcome)),
      result.matches ? "" : h("p", { class: "match-note", id: "match-note" }, `Would not run on this event: ${result.matchNote ?? ""}.`),
      result.error ? h("p", { class: "error-text" }, result.errorCode ? `${result.errorCode}: ${result.error}` : result.error) : "",
      h("h4", {}, "Payload"),
      h("pre", { id: "test-payload-out" }, pretty(result.payload)),
      h("h4", {}, "Command options"),
      h("pre", { id: "test-options-out" }, pretty(result.commandOptions)),
      result.log.length ? h("h4", {}, "Log") : "",
      result.log.length ? h("pre", {}, result.log.map((entry) => JSON.stringify(entry)).join("\n")) : "",
      h("h4", {}, "Step trace"),
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ...["Path", "Step", "Result", "Error", "ms"].map((title) => h("th", { scope: "col" }, title)))),
          h(
            "tbody",
            { id: "trace-rows" },
            ...result.trace.map((step) =>
              h(
                "tr",
                {},
                h("td", {}, h("code", {}, step.path)),
                h("td", {}, step.step),
                h("td", {}, h("pre", {}, pretty(step.result))),
                h("td", { class: "error-text" }, step.error ?? ""),
                h("td", {}, step.durationMs.toFixed(2)),
              ),
            ),
          ),
        ),
      ),
    );
  }

  // ------------------------------------------------------------------------------------------
  // Revisions

  const tools = byId("trigger-tools");
  const toolsName = byId("tools-trigger-name");
  const revisionRows = byId("revision-rows", HTMLTableSectionElement);
  const revisionDiff = byId("revision-diff");
  const revisionError = byId("revision-error");

  type Revision = NonNullable<Awaited<ReturnType<typeof loadRevisionList>>>["revisions"][number];
  async function loadRevisionList(id: string) {
    return (await host.admin(TriggerRevisionsDocument, { id, last: 20 })).trigger;
  }

  async function loadRevisions(trigger: TriggerFieldsFragment): Promise<void> {
    revisionError.textContent = "";
    revisionDiff.replaceChildren();
    let found: Awaited<ReturnType<typeof loadRevisionList>>;
    try {
      found = await loadRevisionList(trigger.id);
    } catch (error) {
      revisionError.textContent = `Could not load revisions: ${message(error)}`;
      return;
    }
    if (selected?.id !== trigger.id || !found) return;
    const current = found.revisions.find((revision) => revision.revision === found.revision) ?? found.revisions[0];
    revisionRows.replaceChildren(
      ...found.revisions.map((revision) => {
        const isCurrent = revision.revision === found.revision;
        const show = h("button", { type: "button", class: "link" }, isCurrent ? "Show" : `Compare with ${found.revision}`);
        show.addEventListener("click", () => showDiff(revision, current));
        const rollback = h("button", { type: "button", class: "secondary" }, `Roll back to ${revision.revision}`);
        rollback.addEventListener("click", () => void rollBack(trigger, revision.revision));
        return h(
          "tr",
          { "aria-current": isCurrent ? "true" : null, dataset: { revision: String(revision.revision) } },
          h("td", {}, String(revision.revision), isCurrent ? " (current)" : ""),
          h("td", {}, h("time", { datetime: revision.createdAt }, new Date(revision.createdAt).toLocaleString())),
          h("td", {}, revision.note ?? ""),
          h("td", {}, h("div", { class: "actions tight" }, show, isCurrent ? null : rollback)),
        );
      }),
    );
  }

  function showDiff(older: Revision, current: Revision | undefined): void {
    const before = pretty(older.config);
    const after = pretty(current?.config ?? older.config);
    const lines = diffLines(before, after);
    const same = older.revision === current?.revision;
    revisionDiff.replaceChildren(
      h("h5", {}, same ? `Revision ${older.revision}` : `Changes from revision ${older.revision} to ${current?.revision}`),
      h(
        "ol",
        { class: "diff", id: "revision-diff-lines", "aria-label": "Differences" },
        ...lines.map((line) => h("li", { class: line.kind }, line.text)),
      ),
    );
  }

  async function rollBack(trigger: TriggerFieldsFragment, revision: number): Promise<void> {
    if (!confirm(`Roll ${trigger.name} back to revision ${revision}? This saves a new revision equal to it.`)) return;
    revisionError.textContent = "";
    try {
      const { rollbackTrigger } = await host.admin(RollbackTriggerDocument, { id: trigger.id, revision });
      await host.changed(rollbackTrigger);
    } catch (error) {
      revisionError.textContent = message(error);
    }
  }

  // ------------------------------------------------------------------------------------------
  // Runs

  const runRows = byId("run-rows", HTMLTableSectionElement);
  const runsNote = byId("runs-note");
  const runsLive = byId("runs-live");
  const runsOutcome = byId("runs-outcome", HTMLSelectElement);
  let socket: Client | null = null;
  let unsubscribe: (() => void) | null = null;
  let runsRequest = 0;

  byId("runs-refresh").addEventListener("click", () => void loadRuns());
  runsOutcome.addEventListener("change", () => void loadRuns());

  function runRow(run: TriggerRunFieldsFragment): HTMLTableRowElement {
    const data = (label: string, value: unknown) =>
      h("div", {}, h("strong", {}, label), h("pre", {}, typeof value === "string" ? value : pretty(value)));
    return h(
      "tr",
      { dataset: { run: run.id, outcome: run.outcome } },
      h("td", {}, h("time", { datetime: run.createdAt }, dateTime(run.createdAt))),
      h("td", {}, `${run.action.toLowerCase()} on `, h("code", {}, run.channel)),
      h("td", {}, run.clientId ? shortId(run.clientId) : "—"),
      h("td", {}, run.revision ?? "—"),
      h(
        "td",
        {},
        h("span", { class: "badge", dataset: { outcome: run.outcome } }, run.outcome),
        run.attempts == null
          ? null
          : h("div", { class: "muted", dataset: { attempts: String(run.attempts) } }, counted(run.attempts, "attempt")),
        run.nextAttemptAt
          ? h("div", { class: "muted" }, "next ", h("time", { datetime: run.nextAttemptAt }, dateTime(run.nextAttemptAt)))
          : null,
        run.attempts != null && run.outcome === "FAILED" ? retryButton(run.id) : null,
      ),
      h("td", {}, run.durationMs.toFixed(2)),
      h(
        "td",
        {},
        run.error ? h("span", { class: "error-text" }, run.error) : null,
        run.log.length ? h("pre", {}, run.log.map((entry) => JSON.stringify(entry)).join("\n")) : null,
        run.attemptHistory.length ? attemptsDetails(run.attemptHistory) : null,
        run.input !== null || run.output !== null
          ? h(
              "details",
              { class: "run-details" },
              h("summary", {}, run.truncated ? "Input and output (cut to 4 KiB)" : "Input and output"),
              data("Input", run.input),
              data("Output", run.output),
            )
          : null,
      ),
    );
  }

  /** An AFTER run's attempts, oldest first: when, how long, how each ended, and each webhook call with its answer. */
  function attemptsDetails(attempts: TriggerRunFieldsFragment["attemptHistory"]): HTMLDetailsElement {
    return h(
      "details",
      { class: "run-details run-attempts" },
      h("summary", {}, `Attempts (${attempts.length})`),
      h(
        "ol",
        {},
        ...attempts.map((attempt) =>
          h(
            "li",
            { dataset: { attempt: String(attempt.number) } },
            h("strong", {}, `#${attempt.number}`),
            " ",
            h("time", { datetime: attempt.startedAt }, dateTime(attempt.startedAt)),
            ` · ${attempt.durationMs.toFixed(0)} ms `,
            h("span", { class: "badge", dataset: { outcome: attempt.outcome } }, attempt.outcome),
            attempt.error ? h("div", { class: "error-text" }, attempt.error) : null,
            ...attempt.requests.map((request) =>
              h(
                "div",
                { class: "run-request", dataset: { status: request.status === null ? "none" : String(request.status) } },
                h("code", {}, `${request.method} ${request.url}`),
                ` → ${request.status ?? "no response"} (${request.durationMs.toFixed(0)} ms)`,
                request.responseExcerpt
                  ? h("pre", {}, request.responseTruncated ? `${request.responseExcerpt}… (cut to 1 KiB)` : request.responseExcerpt)
                  : null,
              ),
            ),
          ),
        ),
      ),
    );
  }

  async function loadRuns(): Promise<void> {
    const trigger = selected;
    const request = ++runsRequest;
    if (!trigger) return;
    try {
      const outcome = (runsOutcome.value || null) as TriggerOutcome | null;
      const runs = (await host.admin(RecentRunsDocument, { id: trigger.id, last: 20, outcome })).trigger?.runs ?? [];
      if (request !== runsRequest) return; // a newer load, or another trigger
      runRows.replaceChildren(...runs.map(runRow));
      runsNote.textContent = runs.length ? "" : "No runs recorded yet.";
    } catch (error) {
      if (request === runsRequest) runsNote.textContent = `Could not load runs: ${message(error)}`;
    }
  }

  function retryButton(id: string): HTMLButtonElement {
    const button = h("button", { type: "button", class: "secondary" }, "Retry");
    button.addEventListener("click", () => {
      button.disabled = true;
      void retryRun(id);
    });
    return button;
  }

  /** Queues a FAILED AFTER run again and shows it as it now stands. */
  async function retryRun(id: string): Promise<void> {
    try {
      const run = (await host.admin(RetryTriggerRunDocument, { id })).retryTriggerRun;
      // The run's first new attempt may have streamed in before this answer: never show it as older.
      const shown = runRows.querySelector<HTMLTableRowElement>(`tr[data-run="${CSS.escape(id)}"]`);
      if (shown?.dataset.outcome === "FAILED") replaceRun(shown, run);
      runsNote.textContent = "Queued again: its attempts appear here as they are made.";
    } catch (error) {
      runsNote.textContent = `Could not retry the run: ${message(error)}`;
    }
  }

  /** Shows a run as it now stands in place of its row, with the sections the admin had open still open. */
  function replaceRun(shown: Element, run: TriggerRunFieldsFragment): void {
    const row = runRow(run);
    const open = new Set([...shown.querySelectorAll("details")].filter((details) => details.open).map((details) => details.className));
    for (const details of row.querySelectorAll("details")) details.open = open.has(details.className);
    shown.replaceWith(row);
  }

  function addLiveRun(run: TriggerRunFieldsFragment): void {
    if (run.triggerId !== selected?.id) return;
    const shown = runRows.querySelector(`tr[data-run="${CSS.escape(run.id)}"]`);
    if (runsOutcome.value && run.outcome !== runsOutcome.value) {
      shown?.remove(); // an AFTER run that left the filtered outcome
      return;
    }
    if (shown) {
      replaceRun(shown, run); // an AFTER run comes again with each attempt
      return;
    }
    runsNote.textContent = "";
    runRows.prepend(runRow(run));
    while (runRows.childElementCount > MAX_RUN_ROWS) runRows.lastElementChild?.remove();
  }

  function streamRuns(triggerId: string): void {
    unsubscribe?.();
    socket ??= createClient({
      url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
      connectionParams: () => ({ adminToken: host.token() }),
      retryAttempts: Infinity,
      shouldRetry: () => true,
      on: {
        connected: () => (runsLive.textContent = "Live: new runs appear as they happen."),
        closed: () => (runsLive.textContent = "Reconnecting…"),
      },
    });
    unsubscribe = socket.subscribe<{ triggerRuns: TriggerRunFieldsFragment }>(
      { query: LiveRunsDocument.toString(), variables: { triggerId } },
      {
        next: (result) => (result.data ? addLiveRun(result.data.triggerRuns) : undefined),
        error: (error) => {
          runsLive.textContent = `Live runs stopped: ${isGraphQLErrors(error) ? RealtimeError.fromErrors(error).message : message(error)}`;
        },
        complete: () => {},
      },
    );
  }

  function stop(): void {
    unsubscribe?.();
    unsubscribe = null;
    void socket?.dispose();
    socket = null;
    runsLive.textContent = "";
  }

  return {
    select(trigger, saved = false) {
      selected = trigger;
      if (!saved) {
        testResult.replaceChildren();
        testError.textContent = "";
      }
      // A trigger just saved keeps the test's channel and action, unless there were none yet.
      if (trigger && (!saved || testChannel.value.trim() === "")) {
        testChannel.value = trigger.channel.replaceAll("*", "test");
        testAction.value = trigger.actions[0] ?? "MESSAGE";
      }
      tools.hidden = !trigger;
      runRows.replaceChildren();
      revisionRows.replaceChildren();
      revisionDiff.replaceChildren();
      runsNote.textContent = "";
      stateView.select(trigger);
      if (!trigger) {
        unsubscribe?.();
        unsubscribe = null;
        return;
      }
      toolsName.textContent = trigger.name;
      void loadRevisions(trigger);
      void loadRuns();
      streamRuns(trigger.id);
    },
    stop,
  };
}
