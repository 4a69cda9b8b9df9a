/**
 * The live events panel: watch a channel's events as they are delivered, unseen (the admin is an
 * observer), and send a message to it as the admin, an anonymous client or a client token.
 */
import { type ChannelEvent, createRealtimeClient, type EventInfo, type RealtimeClient, requestGraphQL } from "@realtime-channels/client";
import { byId, clock, h, nearBottom, pretty } from "../shared/dom.js";
import { messageOf } from "./forms.js";
import { PublishMessageDocument } from "./operations.js";

const MAX_WATCHED_EVENTS = 300;

/** The panel, as the console drives it. */
export interface WatchPanel {
  /** Stops watching and closes the connection (on sign-out). */
  stop(): void;
}

export function createWatchPanel(token: () => string | null): WatchPanel {
  const form = byId("watch-form", HTMLFormElement);
  const channelInput = byId("watch-channel", HTMLInputElement);
  const toggle = byId("watch-toggle", HTMLButtonElement);
  const status = byId("watch-status");
  const events = byId("watch-events", HTMLOListElement);

  const publishForm = byId("publish-form", HTMLFormElement);
  const publishPayload = byId("publish-payload", HTMLTextAreaElement);
  const publishAs = byId("publish-as", HTMLSelectElement);
  const publishTokenField = byId("publish-token-field");
  const publishToken = byId("publish-token", HTMLInputElement);
  const publishStatus = byId("publish-status");

  let watcher: RealtimeClient | null = null;
  let watching: string | null = null;
  /** Whether the current watch has delivered its own JOIN: what comes before it is replayed history. */
  let live = false;

  publishAs.addEventListener("change", () => {
    publishTokenField.hidden = publishAs.value !== "token";
  });
  publishForm.addEventListener("submit", (event) => {
    event.preventDefault();
    void publish();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (watching) stop();
    else if (form.reportValidity()) void watch(channelInput.value.trim());
  });
  byId("watch-clear").addEventListener("click", () => events.replaceChildren());

  async function watch(channel: string): Promise<void> {
    if (!watcher || watcher.status === "closed") {
      watcher = createRealtimeClient({
        url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
        adminToken: token(),
      });
    }
    watching = channel;
    live = false;
    toggle.textContent = "Stop";
    channelInput.disabled = true;
    status.textContent = `Joining ${channel}…`;
    try {
      await watcher.join(channel, (event, info) => addEvent(event, info), {
        history: 20,
        onGap: (gap) => addNote(`Missed messages ${gap.afterSeq + 1}–${gap.nextSeq - 1} (no longer in history).`),
        onEnd: (error) => {
          addNote(error ? `Stopped: ${error.message}` : "The server ended the subscription.");
          reset();
        },
      });
      status.textContent = `Watching ${channel}.`;
      publishForm.hidden = false;
      publishStatus.textContent = "";
    } catch (error) {
      status.textContent = `Could not watch ${channel}: ${messageOf(error)}`;
      reset();
    }
  }

  function stop(): void {
    if (watching) watcher?.leave(watching);
    watcher?.close();
    watcher = null;
    if (watching) status.textContent = `Stopped watching ${watching}.`;
    reset();
  }

  function reset(): void {
    watching = null;
    toggle.textContent = "Watch";
    channelInput.disabled = false;
    publishForm.hidden = true;
  }

  /** Sends the form's payload to the channel watched, as the identity chosen. */
  async function publish(): Promise<void> {
    const channel = watching;
    if (!channel) return;
    let payload: unknown;
    try {
      payload = JSON.parse(publishPayload.value);
    } catch (error) {
      publishStatus.textContent = `The payload is not valid JSON: ${messageOf(error)}`;
      return;
    }
    const as = publishAs.value;
    const credential = as === "admin" ? token() : as === "token" ? publishToken.value.trim() : null;
    if (as === "token" && !credential) {
      publishStatus.textContent = "Paste a client token (JWT) to send as its client.";
      return;
    }
    publishStatus.textContent = "Sending…";
    try {
      const { sendMessage } = await requestGraphQL(PublishMessageDocument, { channel, payload }, { token: credential });
      publishStatus.textContent = sendMessage.delivered
        ? `Sent${sendMessage.event?.seq != null ? ` as message #${sendMessage.event.seq}` : ""}.`
        : "Not delivered: a trigger dropped it.";
    } catch (error) {
      publishStatus.textContent = `Not sent: ${messageOf(error)}`;
    }
  }

  function addEvent(event: ChannelEvent, info: EventInfo): void {
    // The first JOIN of its own is the admin's: an observer's, seen by nobody else.
    const own = !live && event.action === "JOIN" && info.self;
    const replayed = !live && !own;
    if (own) live = true;
    if (own) {
      append(
        h(
          "li",
          { class: "muted", dataset: { kind: "observer" } },
          h("time", { datetime: event.createdAt }, clock(event.createdAt)),
          " Watching from here on, as an observer (no JOIN was published; members do not see the admin).",
        ),
      );
      return;
    }
    append(
      h(
        "li",
        replayed ? { class: "replayed", dataset: { kind: "history" } } : {},
        replayed
          ? h("span", { class: "badge", title: "Sent before watching began; replayed from the channel's history" }, "history")
          : null,
        replayed ? " " : null,
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

  function addNote(text: string): void {
    append(h("li", { class: "muted" }, text));
  }

  function append(item: HTMLLIElement): void {
    const stick = nearBottom(events);
    events.append(item);
    while (events.childElementCount > MAX_WATCHED_EVENTS) events.firstElementChild?.remove();
    if (stick) events.scrollTop = events.scrollHeight;
  }

  return { stop };
}
