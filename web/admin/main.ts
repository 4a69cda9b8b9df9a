/**
 * The admin console at /admin: channels and triggers (list, create, edit, toggle, delete), the
 * trigger author's tools (authoring.ts: test runs, revisions, live runs), and a channel's live events. Every call
 * carries the admin token: `Authorization: Bearer` over HTTP, `connectionParams.adminToken` on the
 * WebSocket used to watch a channel.
 */
import { type ChannelEvent, createRealtimeClient, type RealtimeClient, RealtimeError, requestGraphQL } from "@realtime-channels/client";
import type {
  ChannelConfigFieldsFragment,
  ChannelMessaging,
  CreateTriggerInput,
  TriggerAction,
  TriggerErrorPolicy,
  TriggerFieldsFragment,
  TypedDocumentString,
} from "../generated/graphql.js";
import { byId, clock, h, nearBottom, pretty } from "../shared/dom.js";
import { createAuthoring } from "./authoring.js";
import { parseStack } from "./json-paths.js";
import { createLiveView } from "./live-view.js";
import {
  ChannelsDocument,
  CreateChannelDocument,
  CreateTriggerDocument,
  DeleteChannelDocument,
  DeleteTriggerDocument,
  ServerInfoDocument,
  TriggersDocument,
  UpdateChannelDocument,
  UpdateTriggerDocument,
} from "./operations.js";
import { StackEditor } from "./stack-editor.js";

const TOKEN_KEY = "realtime.adminToken";
const MAX_WATCHED_EVENTS = 300;
const EXAMPLE_STACK = [{ set: "payload.text", value: "$uppercase(payload.text)" }];

let token = sessionStorage.getItem(TOKEN_KEY);
const liveView = createLiveView(admin);

/** Runs an admin operation over HTTP with the token. */
function admin<TResult, TVariables>(document: TypedDocumentString<TResult, TVariables>, variables: TVariables): Promise<TResult> {
  return requestGraphQL(document, variables, { token });
}

// ---------------------------------------------------------------------------------------------
// Signing in

const statusEl = byId("status");
const signInForm = byId("sign-in-form", HTMLFormElement);
const tokenInput = byId("token", HTMLInputElement);
const signOutButton = byId("sign-out", HTMLButtonElement);
/** What only matters while signed out: the token field, its button and its hint. */
const signedOutOnly = [byId("token-field"), byId("sign-in"), byId("token-hint")];
const signInHeading = byId("sign-in-heading");
const signInError = byId("sign-in-error");
const consoleEl = byId("console");
const nav = byId("nav");

signInForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!signInForm.reportValidity()) return;
  void signIn(tokenInput.value.trim());
});
signOutButton.addEventListener("click", () => signOut());

async function signIn(candidate: string): Promise<void> {
  signInError.textContent = "";
  token = candidate;
  try {
    const { serverInfo } = await admin(ServerInfoDocument, {});
    sessionStorage.setItem(TOKEN_KEY, candidate);
    tokenInput.value = "";
    statusEl.dataset.status = "connected";
    statusEl.textContent = `Signed in · ${serverInfo.version} · ${serverInfo.database} · ${serverInfo.pubsub}`;
    consoleEl.hidden = false;
    nav.hidden = false;
    signOutButton.hidden = false;
    for (const element of signedOutOnly) element.hidden = true;
    signInHeading.textContent = "Signed in";
    liveView.start();
    await Promise.all([loadChannels(), loadTriggers()]);
  } catch (error) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    signInError.textContent =
      error instanceof RealtimeError && error.code === "UNAUTHENTICATED"
        ? "The server refused this token."
        : `Could not sign in: ${message(error)}`;
    tokenInput.focus();
  }
}

function signOut(): void {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  stopWatching();
  liveView.stop();
  authoring.stop();
  selectTrigger(null);
  consoleEl.hidden = true;
  nav.hidden = true;
  signOutButton.hidden = true;
  for (const element of signedOutOnly) element.hidden = false;
  signInHeading.textContent = "Sign in";
  statusEl.dataset.status = "closed";
  statusEl.textContent = "Signed out";
  tokenInput.focus();
}

// ---------------------------------------------------------------------------------------------
// Form errors

/** Shows a GraphQL error at the input it names (`extensions.path` "input.<field>" or `extensions.field`); false when it names none. */
function showFieldError(form: HTMLFormElement, error: unknown): boolean {
  if (!(error instanceof RealtimeError)) return false;
  const field = error.path?.startsWith("input.") ? error.path.slice("input.".length).split(/[.[]/)[0] : error.errors[0]?.extensions?.field;
  if (typeof field !== "string") return false;
  const input = form.querySelector<HTMLElement>(`[name="${CSS.escape(field)}"]`);
  if (!input) return false;
  const id = `${input.id || field}-error`;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), id].filter(Boolean).join(" "));
  (input.closest(".field, fieldset") ?? input).append(h("span", { id, class: "field-error error-text" }, error.message));
  input.focus();
  return true;
}

function clearFieldErrors(form: HTMLFormElement): void {
  for (const message of form.querySelectorAll(".field-error")) {
    const input = form.querySelector(`[aria-describedby~="${message.id}"]`);
    input?.removeAttribute("aria-invalid");
    const rest = input
      ?.getAttribute("aria-describedby")
      ?.split(" ")
      .filter((id) => id !== message.id)
      .join(" ");
    if (rest) input?.setAttribute("aria-describedby", rest);
    else input?.removeAttribute("aria-describedby");
    message.remove();
  }
}

// ---------------------------------------------------------------------------------------------
// Channels

const channelRows = byId("channel-rows", HTMLTableSectionElement);
const channelForm = byId("channel-form", HTMLFormElement);
const channelHeading = byId("channel-form-heading");
const channelInputs = {
  pattern: byId("channel-pattern", HTMLInputElement),
  description: byId("channel-description", HTMLInputElement),
  messaging: byId("channel-messaging", HTMLSelectElement),
  history: byId("channel-history", HTMLInputElement),
  active: byId("channel-active", HTMLInputElement),
  anonymousClients: byId("channel-anonymous", HTMLInputElement),
  presence: byId("channel-presence", HTMLInputElement),
};
const channelSave = byId("channel-save", HTMLButtonElement);
const channelDelete = byId("channel-delete", HTMLButtonElement);
const channelError = byId("channel-error");
const channelMessage = byId("channel-message");

let channels: ChannelConfigFieldsFragment[] = [];
let editingChannel: string | null = null;

byId("new-channel").addEventListener("click", () => {
  editChannel(null);
  channelInputs.pattern.focus();
});
channelForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void saveChannel();
});
channelDelete.addEventListener("click", () => void deleteChannel());

async function loadChannels(): Promise<void> {
  try {
    channels = (await admin(ChannelsDocument, {})).channels;
  } catch (error) {
    channelError.textContent = `Could not load channels: ${message(error)}`;
    return;
  }
  channelRows.replaceChildren(
    ...channels.map((channel) => {
      const edit = h("button", { type: "button", class: "link" }, channel.pattern);
      edit.addEventListener("click", () => editChannel(channel.pattern));
      const toggle = h("input", { type: "checkbox", "aria-label": `${channel.pattern} active` }) as HTMLInputElement;
      toggle.checked = channel.active;
      toggle.addEventListener("change", () => void toggleChannel(channel.pattern, toggle));
      return h(
        "tr",
        { "aria-current": channel.pattern === editingChannel ? "true" : null },
        h("td", {}, edit, channel.description ? h("div", { class: "muted" }, channel.description) : null),
        h("td", {}, toggle),
        h("td", {}, channel.messaging.toLowerCase(), channel.anonymousClients ? "" : " (signed-in only)"),
        h("td", {}, channel.presence ? "on" : "off"),
        h("td", {}, channel.history),
        h("td", {}, channel.triggers.map((trigger) => trigger.name).join(", ") || "—"),
      );
    }),
  );
  if (channels.length === 0) channelRows.append(h("tr", {}, h("td", { colspan: "6", class: "muted" }, "No channel configurations yet.")));
}

function editChannel(pattern: string | null): void {
  const channel = channels.find((candidate) => candidate.pattern === pattern) ?? null;
  editingChannel = channel?.pattern ?? null;
  clearFieldErrors(channelForm);
  channelError.textContent = "";
  channelMessage.textContent = "";
  channelHeading.textContent = channel ? `Edit ${channel.pattern}` : "New channel";
  channelSave.textContent = channel ? "Save channel" : "Create channel";
  channelDelete.hidden = !channel;
  channelInputs.pattern.value = channel?.pattern ?? "";
  channelInputs.description.value = channel?.description ?? "";
  channelInputs.messaging.value = channel?.messaging ?? "ANYONE";
  channelInputs.history.value = String(channel?.history ?? 0);
  channelInputs.active.checked = channel?.active ?? true;
  channelInputs.anonymousClients.checked = channel?.anonymousClients ?? true;
  channelInputs.presence.checked = channel?.presence ?? false;
  for (const row of channelRows.querySelectorAll("tr")) row.removeAttribute("aria-current");
  if (channel) channelRows.querySelectorAll("tr")[channels.indexOf(channel)]?.setAttribute("aria-current", "true");
}

async function saveChannel(): Promise<void> {
  clearFieldErrors(channelForm);
  channelError.textContent = "";
  channelMessage.textContent = "";
  const input = {
    pattern: channelInputs.pattern.value.trim(),
    description: channelInputs.description.value.trim() || null,
    messaging: channelInputs.messaging.value as ChannelMessaging,
    history: Number(channelInputs.history.value),
    active: channelInputs.active.checked,
    anonymousClients: channelInputs.anonymousClients.checked,
    presence: channelInputs.presence.checked,
  };
  try {
    const saved = editingChannel
      ? (await admin(UpdateChannelDocument, { pattern: editingChannel, input })).updateChannel
      : (await admin(CreateChannelDocument, { input })).createChannel;
    const created = !editingChannel;
    editingChannel = saved.pattern;
    await loadChannels();
    editChannel(saved.pattern);
    channelMessage.textContent = created ? "Channel created." : "Channel saved.";
  } catch (error) {
    if (!showFieldError(channelForm, error)) channelError.textContent = message(error);
  }
}

async function toggleChannel(pattern: string, toggle: HTMLInputElement): Promise<void> {
  try {
    await admin(UpdateChannelDocument, { pattern, input: { active: toggle.checked } });
    channelMessage.textContent = `${pattern} is now ${toggle.checked ? "active" : "inactive"}.`;
    await loadChannels();
    if (editingChannel === pattern) editChannel(pattern);
  } catch (error) {
    toggle.checked = !toggle.checked;
    channelError.textContent = message(error);
  }
}

async function deleteChannel(): Promise<void> {
  if (!editingChannel || !confirm(`Delete the configuration for ${editingChannel}?`)) return;
  try {
    await admin(DeleteChannelDocument, { pattern: editingChannel });
    editChannel(null);
    channelMessage.textContent = "Channel configuration deleted.";
    await loadChannels();
  } catch (error) {
    channelError.textContent = message(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Triggers

const tagFilter = byId("tag-filter", HTMLSelectElement);
const triggerRows = byId("trigger-rows", HTMLTableSectionElement);
const triggerForm = byId("trigger-form", HTMLFormElement);
const triggerHeading = byId("trigger-form-heading");
const triggerInputs = {
  name: byId("trigger-name", HTMLInputElement),
  channel: byId("trigger-channel", HTMLInputElement),
  description: byId("trigger-description", HTMLInputElement),
  order: byId("trigger-order", HTMLInputElement),
  onError: byId("trigger-on-error", HTMLSelectElement),
  tags: byId("trigger-tags", HTMLInputElement),
  active: byId("trigger-active", HTMLInputElement),
};
const actionBoxes = [...byId("trigger-actions").querySelectorAll<HTMLInputElement>('input[name="actions"]')];
const stackEditor = new StackEditor(
  byId("trigger-stack", HTMLTextAreaElement),
  byId("stack-outline", HTMLOListElement),
  byId("stack-error"),
);
const triggerSave = byId("trigger-save", HTMLButtonElement);
const triggerDelete = byId("trigger-delete", HTMLButtonElement);
const triggerError = byId("trigger-error");
const triggerMessage = byId("trigger-message");

let triggers: TriggerFieldsFragment[] = [];
let selectedTrigger: TriggerFieldsFragment | null = null;

byId("new-trigger").addEventListener("click", () => {
  selectTrigger(null);
  triggerInputs.name.focus();
});
tagFilter.addEventListener("change", () => void loadTriggers());
triggerForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void saveTrigger();
});
triggerDelete.addEventListener("click", () => void deleteTrigger());

async function loadTriggers(): Promise<void> {
  let allTags: string[];
  try {
    const result = await admin(TriggersDocument, { tag: tagFilter.value || null });
    triggers = result.triggers;
    allTags = [...new Set(result.allTags.flatMap((trigger) => trigger.tags))].sort();
  } catch (error) {
    triggerError.textContent = `Could not load triggers: ${message(error)}`;
    return;
  }
  const chosen = tagFilter.value;
  tagFilter.replaceChildren(h("option", { value: "" }, "All triggers"), ...allTags.map((tag) => h("option", { value: tag }, tag)));
  tagFilter.value = allTags.includes(chosen) ? chosen : "";
  triggerRows.replaceChildren(
    ...triggers.map((trigger) => {
      const edit = h("button", { type: "button", class: "link" }, trigger.name);
      edit.addEventListener("click", () => selectTrigger(trigger));
      const toggle = h("input", { type: "checkbox", "aria-label": `${trigger.name} active` }) as HTMLInputElement;
      toggle.checked = trigger.active;
      toggle.addEventListener("change", () => void toggleTrigger(trigger, toggle));
      return h(
        "tr",
        { "aria-current": trigger.id === selectedTrigger?.id ? "true" : null },
        h("td", {}, edit),
        h("td", {}, toggle),
        h("td", {}, h("code", {}, trigger.channel)),
        h("td", {}, trigger.actions.map((action) => action.toLowerCase()).join(", ")),
        h("td", {}, trigger.order),
        h("td", {}, ...trigger.tags.map((tag) => h("span", { class: "tag" }, tag))),
      );
    }),
  );
  if (triggers.length === 0) {
    triggerRows.append(
      h("tr", {}, h("td", { colspan: "6", class: "muted" }, chosen ? `No trigger tagged ${chosen}.` : "No triggers yet.")),
    );
  }
}

function selectTrigger(trigger: TriggerFieldsFragment | null): void {
  selectedTrigger = trigger;
  clearFieldErrors(triggerForm);
  triggerError.textContent = "";
  triggerMessage.textContent = "";
  triggerHeading.textContent = trigger ? `Edit ${trigger.name}` : "New trigger";
  triggerSave.textContent = trigger ? "Save trigger" : "Create trigger";
  triggerDelete.hidden = !trigger;
  triggerInputs.name.value = trigger?.name ?? "";
  triggerInputs.channel.value = trigger?.channel ?? "";
  triggerInputs.description.value = trigger?.description ?? "";
  triggerInputs.order.value = String(trigger?.order ?? 0);
  triggerInputs.onError.value = trigger?.onError ?? "REJECT";
  triggerInputs.tags.value = trigger?.tags.join(", ") ?? "";
  triggerInputs.active.checked = trigger?.active ?? true;
  for (const box of actionBoxes) box.checked = trigger ? trigger.actions.includes(box.value as TriggerAction) : box.value === "MESSAGE";
  stackEditor.set(trigger?.stack ?? EXAMPLE_STACK);
  for (const row of triggerRows.querySelectorAll("tr")) row.removeAttribute("aria-current");
  if (trigger)
    triggerRows
      .querySelectorAll("tr")
      [triggers.findIndex((candidate) => candidate.id === trigger.id)]?.setAttribute("aria-current", "true");
  authoring.select(trigger);
}

/** The trigger as the form holds it, or null when its stack is not JSON (the editor shows where). */
function formInput(): CreateTriggerInput | null {
  const stack = stackEditor.read();
  if (stack === null && !parseStack(stackEditor.text).ok) {
    byId("trigger-stack").focus();
    return null;
  }
  return {
    name: triggerInputs.name.value.trim(),
    channel: triggerInputs.channel.value.trim(),
    description: triggerInputs.description.value.trim() || null,
    order: Number(triggerInputs.order.value || 0),
    onError: triggerInputs.onError.value as TriggerErrorPolicy,
    tags: triggerInputs.tags.value
      .split(",")
      .map((tag) => tag.trim())
      .filter(Boolean),
    active: triggerInputs.active.checked,
    actions: actionBoxes.filter((box) => box.checked).map((box) => box.value as TriggerAction),
    stack,
  };
}

async function saveTrigger(): Promise<void> {
  clearFieldErrors(triggerForm);
  triggerError.textContent = "";
  triggerMessage.textContent = "";
  const input = formInput();
  if (!input) return;
  triggerSave.disabled = true;
  try {
    // expectedRevision: a change someone else saved since this trigger was opened is not overwritten.
    const saved = selectedTrigger
      ? (await admin(UpdateTriggerDocument, { id: selectedTrigger.id, input, expectedRevision: selectedTrigger.revision })).updateTrigger
      : (await admin(CreateTriggerDocument, { input })).createTrigger;
    const created = !selectedTrigger;
    // A new trigger the tag filter would hide is shown by clearing the filter.
    if (tagFilter.value && !saved.tags.includes(tagFilter.value)) tagFilter.value = "";
    await loadTriggers();
    selectTrigger(saved);
    triggerMessage.textContent = created ? "Trigger created." : `Trigger saved as revision ${saved.revision}.`;
    void loadChannels(); // a channel's trigger list may have changed
  } catch (error) {
    if (error instanceof RealtimeError && error.code === "CONFLICT") {
      triggerError.textContent = `Not saved: someone else changed this trigger since you opened it (now revision ${String(error.errors[0]?.extensions?.revision ?? "?")}). Copy your changes, open it again from the list, and reapply them.`;
    } else showTriggerError(error);
  } finally {
    triggerSave.disabled = false;
  }
}

/** Stack errors go to the step they name; other input errors to their field; the rest under the form. */
function showTriggerError(error: unknown): void {
  const path = error instanceof RealtimeError ? error.path?.replace(/^input\./, "") : undefined;
  if (error instanceof RealtimeError && path?.startsWith("stack")) {
    stackEditor.showError(path, error.message);
    byId("trigger-stack").setAttribute("aria-invalid", "true");
    return;
  }
  if (!showFieldError(triggerForm, error)) triggerError.textContent = message(error);
}

async function toggleTrigger(trigger: TriggerFieldsFragment, toggle: HTMLInputElement): Promise<void> {
  try {
    const { updateTrigger } = await admin(UpdateTriggerDocument, { id: trigger.id, input: { active: toggle.checked } });
    triggerMessage.textContent = `${trigger.name} is now ${toggle.checked ? "active" : "inactive"}.`;
    if (selectedTrigger?.id === trigger.id) {
      selectedTrigger = updateTrigger;
      triggerInputs.active.checked = updateTrigger.active;
    }
    await loadTriggers();
  } catch (error) {
    toggle.checked = !toggle.checked;
    triggerError.textContent = message(error);
  }
}

async function deleteTrigger(): Promise<void> {
  if (!selectedTrigger || !confirm(`Delete the trigger ${selectedTrigger.name}?`)) return;
  try {
    await admin(DeleteTriggerDocument, { id: selectedTrigger.id });
    selectTrigger(null);
    triggerMessage.textContent = "Trigger deleted.";
    await loadTriggers();
    void loadChannels();
  } catch (error) {
    triggerError.textContent = message(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Live events

const watchForm = byId("watch-form", HTMLFormElement);
const watchChannel = byId("watch-channel", HTMLInputElement);
const watchToggle = byId("watch-toggle", HTMLButtonElement);
const watchStatus = byId("watch-status");
const watchEvents = byId("watch-events", HTMLOListElement);

let watcher: RealtimeClient | null = null;
let watching: string | null = null;

watchForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (watching) stopWatching();
  else if (watchForm.reportValidity()) void watch(watchChannel.value.trim());
});
byId("watch-clear").addEventListener("click", () => watchEvents.replaceChildren());

async function watch(channel: string): Promise<void> {
  if (!watcher || watcher.status === "closed")
    watcher = createRealtimeClient({
      url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
      adminToken: token,
    });
  watching = channel;
  watchToggle.textContent = "Stop";
  watchChannel.disabled = true;
  watchStatus.textContent = `Joining ${channel}…`;
  try {
    await watcher.join(channel, (event) => addWatchedEvent(event), {
      history: 20,
      onGap: (gap) => addWatchedNote(`Missed messages ${gap.afterSeq + 1}–${gap.nextSeq - 1} (no longer in history).`),
      onEnd: (error) => {
        addWatchedNote(error ? `Stopped: ${error.message}` : "The server ended the subscription.");
        resetWatch();
      },
    });
    watchStatus.textContent = `Watching ${channel}.`;
  } catch (error) {
    watchStatus.textContent = `Could not watch ${channel}: ${message(error)}`;
    resetWatch();
  }
}

function stopWatching(): void {
  if (watching) watcher?.leave(watching);
  watcher?.close();
  watcher = null;
  if (watching) watchStatus.textContent = `Stopped watching ${watching}.`;
  resetWatch();
}

function resetWatch(): void {
  watching = null;
  watchToggle.textContent = "Watch";
  watchChannel.disabled = false;
}

function addWatchedEvent(event: ChannelEvent): void {
  appendWatched(
    h(
      "li",
      {},
      h("time", { datetime: event.createdAt }, clock(event.createdAt)),
      " ",
      h("strong", {}, event.action),
      event.seq !== null ? ` #${event.seq}` : "",
      " from ",
      h("code", {}, event.client.id),
      event.client.authenticated ? " (authenticated)" : "",
      event.payload !== null ? h("pre", {}, pretty(event.payload)) : null,
      event.commandOptions !== null ? h("pre", { class: "muted" }, `options ${JSON.stringify(event.commandOptions)}`) : null,
    ),
  );
}

function addWatchedNote(text: string): void {
  appendWatched(h("li", { class: "muted" }, text));
}

function appendWatched(item: HTMLLIElement): void {
  const stick = nearBottom(watchEvents);
  watchEvents.append(item);
  while (watchEvents.childElementCount > MAX_WATCHED_EVENTS) watchEvents.firstElementChild?.remove();
  if (stick) watchEvents.scrollTop = watchEvents.scrollHeight;
}

// ---------------------------------------------------------------------------------------------

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

const authoring = createAuthoring({
  admin,
  token: () => token,
  readDraft: () => {
    clearFieldErrors(triggerForm);
    return formInput();
  },
  changed: async (trigger) => {
    await loadTriggers();
    selectTrigger(trigger);
    triggerMessage.textContent = `Rolled back: ${trigger.name} is now revision ${trigger.revision}.`;
  },
});

selectTrigger(null);
editChannel(null);
if (token) void signIn(token);
else tokenInput.focus();
