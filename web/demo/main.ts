/**
 * The demo chat room at /demo: join a room (`?room=` and `?name=` preset them), see its recent
 * messages and live ones, send, and see who is here. Everything goes through the client package,
 * `@realtime-channels/client`.
 */
import {
  type ChannelEvent,
  type ChannelMembership,
  type ConnectionStatus,
  createRealtimeClient,
  type PresenceUpdate,
} from "@realtime-channels/client";
import { byId, clock, h, nearBottom } from "../shared/dom.js";

const STATUS_TEXT: Record<ConnectionStatus, string> = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Disconnected",
};
/** Messages kept on screen. */
const MAX_MESSAGES = 500;

const statusEl = byId("status");
const joinForm = byId("join-form", HTMLFormElement);
const nameInput = byId("name", HTMLInputElement);
const roomInput = byId("room", HTMLInputElement);
const roomHeading = byId("room-heading");
const roomName = byId("room-name");
const messages = byId("messages", HTMLOListElement);
const notice = byId("notice");
const sendForm = byId("send-form", HTMLFormElement);
const messageInput = byId("message", HTMLInputElement);
const sendButton = byId("send", HTMLButtonElement);
const people = byId("people", HTMLUListElement);
const peopleNote = byId("people-note");

const params = new URLSearchParams(location.search);
nameInput.value = params.get("name") ?? sessionStorage.getItem("demo.name") ?? `guest-${Math.floor(1000 + Math.random() * 9000)}`;
roomInput.value = params.get("room") ?? "room:lobby";

const realtime = createRealtimeClient({ url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql` });
realtime.onStatus((status, detail) => {
  statusEl.dataset.status = status;
  statusEl.textContent =
    status === "reconnecting" && detail.retryInMs !== undefined
      ? `Reconnecting… (attempt ${detail.attempt})`
      : status === "closed" && detail.error
        ? `Disconnected: ${detail.error.message}`
        : STATUS_TEXT[status];
  setComposerEnabled(status === "connected" && room !== null);
});

let room: ChannelMembership | null = null;
/** Display names by client id, learnt from JOIN options and message payloads. */
const names = new Map<string, string>();

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!joinForm.reportValidity()) return;
  void enter(roomInput.value.trim());
});

sendForm.addEventListener("submit", (event) => {
  event.preventDefault();
  void send();
});

window.addEventListener("pagehide", () => realtime.close());

void enter(roomInput.value.trim());

async function enter(channel: string): Promise<void> {
  const name = nameInput.value.trim() || "guest";
  sessionStorage.setItem("demo.name", name);
  const url = new URL(location.href);
  url.searchParams.set("room", channel);
  url.searchParams.set("name", name);
  history.replaceState(null, "", url);

  room?.leave();
  room = null;
  setComposerEnabled(false);
  messages.replaceChildren();
  people.replaceChildren();
  peopleNote.textContent = "";
  showNotice("");
  roomName.textContent = channel;
  delete roomHeading.dataset.state;
  document.title = `${channel} · Chat demo`;
  try {
    const joined = await realtime.join(channel, (event, info) => onEvent(event, info.self), {
      history: 50,
      options: { name },
      onGap: (gap) => addSystem(`${gap.nextSeq - gap.afterSeq - 1} messages were missed while disconnected.`),
      onEnd: (error) => {
        if (room?.channel !== channel) return;
        room = null;
        setComposerEnabled(false);
        addSystem(error ? `You left the room: ${error.message}` : "The room closed.");
      },
      // Read on joining and after every reconnect, followed join by join in between.
      onPresence: (update) => showPeople(channel, update),
    });
    if (roomName.textContent !== channel) {
      joined.leave(); // another room was chosen meanwhile
      return;
    }
    room = joined;
    setComposerEnabled(realtime.status === "connected");
    if (lastPresence?.channel === channel) showPeople(channel, lastPresence.update);
  } catch (error) {
    if (roomName.textContent !== channel) return; // another room was chosen meanwhile
    // Said where the room's messages would be, and in the heading: nothing here is live.
    roomHeading.dataset.state = "refused";
    roomName.textContent = `${channel} (not joined)`;
    addSystem(`Could not join ${channel}: ${errorMessage(error)}`);
    showNotice(`Could not join ${channel}: ${errorMessage(error)}`);
  }
}

function onEvent(event: ChannelEvent, self: boolean): void {
  const id = event.client.id;
  switch (event.action) {
    case "JOIN": {
      const name = stringField(event.commandOptions, "name");
      if (name) names.set(id, name);
      addSystem(`${self ? "You" : nameOf(id)} joined.`, event.createdAt);
      break;
    }
    case "LEAVE":
      addSystem(`${nameOf(id)} left.`, event.createdAt);
      break;
    case "MESSAGE": {
      const name = stringField(event.payload, "name");
      if (name) names.set(id, name);
      addMessage(event, self);
      break;
    }
  }
}

function addMessage(event: ChannelEvent, mine: boolean): void {
  const text = stringField(event.payload, "text") ?? JSON.stringify(event.payload);
  const item = h(
    "li",
    { class: mine ? "msg mine" : "msg", dataset: { seq: String(event.seq ?? "") } },
    h("span", { class: "who" }, mine ? "You" : nameOf(event.client.id)),
    h("span", { class: "text" }, text),
    h("time", { datetime: event.createdAt }, clock(event.createdAt)),
  );
  append(item);
}

function addSystem(text: string, at?: string): void {
  append(h("li", { class: "system" }, text, at ? h("time", { datetime: at }, clock(at)) : null));
}

function append(item: HTMLLIElement): void {
  const stick = nearBottom(messages);
  messages.append(item);
  while (messages.childElementCount > MAX_MESSAGES) messages.firstElementChild?.remove();
  if (stick) messages.scrollTop = messages.scrollHeight;
}

async function send(): Promise<void> {
  const text = messageInput.value.trim();
  if (!text || !room) return;
  sendButton.disabled = true;
  showNotice("");
  try {
    const result = await realtime.send(room.channel, { text, name: nameInput.value.trim() || "guest" });
    messageInput.value = "";
    if (!result.delivered) showNotice("Your message was not delivered: a trigger dropped it.");
  } catch (error) {
    showNotice(`Not sent: ${errorMessage(error)}`);
  } finally {
    sendButton.disabled = !(room && realtime.status === "connected");
    messageInput.focus();
  }
}

/** The latest presence update, kept for the moment the join resolves (the first sync may come before). */
let lastPresence: { channel: string; update: PresenceUpdate } | null = null;

/** Shows "Here now": each member by the name it joined with. */
function showPeople(channel: string, update: PresenceUpdate): void {
  lastPresence = { channel, update };
  const current = room;
  if (current?.channel !== channel) return;
  if (update.change.kind === "unavailable") {
    people.replaceChildren();
    const { error } = update.change;
    peopleNote.textContent = error.code === "FORBIDDEN" ? "Presence is off in this room." : `Presence unavailable: ${error.message}`;
    return;
  }
  for (const member of update.members) {
    const name = stringField(member.joinOptions, "name");
    if (name) names.set(member.id, name);
  }
  people.replaceChildren(
    ...update.members.map((member) => h("li", {}, member.id === current.clientId ? `${nameOf(member.id)} (you)` : nameOf(member.id))),
  );
  peopleNote.textContent = `${update.members.length} ${update.members.length === 1 ? "person" : "people"}`;
}

function nameOf(clientId: string): string {
  return names.get(clientId) ?? `guest ${clientId.slice(0, 6)}`;
}

function setComposerEnabled(enabled: boolean): void {
  messageInput.disabled = !enabled;
  sendButton.disabled = !enabled;
}

function showNotice(text: string): void {
  notice.textContent = text;
}

function stringField(value: unknown, key: string): string | null {
  if (typeof value !== "object" || value === null) return null;
  const field = (value as Record<string, unknown>)[key];
  return typeof field === "string" ? field : null;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
