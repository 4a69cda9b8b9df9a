/** The live events panel: watch a channel's events as they are delivered, unseen (the admin is an observer). */
import { type ChannelEvent, createRealtimeClient, type RealtimeClient } from "@realtime-channels/client";
import { byId, clock, h, nearBottom, pretty } from "../shared/dom.js";
import { messageOf } from "./forms.js";

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

  let watcher: RealtimeClient | null = null;
  let watching: string | null = null;

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
    toggle.textContent = "Stop";
    channelInput.disabled = true;
    status.textContent = `Joining ${channel}…`;
    try {
      await watcher.join(channel, (event) => addEvent(event), {
        history: 20,
        onGap: (gap) => addNote(`Missed messages ${gap.afterSeq + 1}–${gap.nextSeq - 1} (no longer in history).`),
        onEnd: (error) => {
          addNote(error ? `Stopped: ${error.message}` : "The server ended the subscription.");
          reset();
        },
      });
      status.textContent = `Watching ${channel}.`;
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
  }

  function addEvent(event: ChannelEvent): void {
    append(
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
