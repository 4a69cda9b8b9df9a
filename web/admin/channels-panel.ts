/** The channels panel: channel configurations listed, created, edited, toggled and deleted. */
import type { ChannelConfigFieldsFragment, ChannelMessaging } from "../generated/graphql.js";
import { byId, h } from "../shared/dom.js";
import { activeToggle, clearFeedback, type Feedback, markCurrentRow, messageOf, type RunAdmin, runChange } from "./forms.js";
import { ChannelsDocument, CreateChannelDocument, DeleteChannelDocument, UpdateChannelDocument } from "./operations.js";

/** The panel, as the console drives it. */
export interface ChannelsPanel {
  /** Reloads the list (a trigger change may change a channel's triggers). */
  load(): Promise<void>;
  /** Fills the form with a configuration, or empties it for a new one. */
  edit(pattern: string | null): void;
}

export function createChannelsPanel(admin: RunAdmin): ChannelsPanel {
  const rows = byId("channel-rows", HTMLTableSectionElement);
  const heading = byId("channel-form-heading");
  const inputs = {
    pattern: byId("channel-pattern", HTMLInputElement),
    description: byId("channel-description", HTMLInputElement),
    messaging: byId("channel-messaging", HTMLSelectElement),
    history: byId("channel-history", HTMLInputElement),
    active: byId("channel-active", HTMLInputElement),
    anonymousClients: byId("channel-anonymous", HTMLInputElement),
    presence: byId("channel-presence", HTMLInputElement),
    membersOnly: byId("channel-members-only", HTMLInputElement),
  };
  const save = byId("channel-save", HTMLButtonElement);
  const remove = byId("channel-delete", HTMLButtonElement);
  const feedback: Feedback = {
    form: byId("channel-form", HTMLFormElement),
    error: byId("channel-error"),
    message: byId("channel-message"),
  };

  let channels: ChannelConfigFieldsFragment[] = [];
  let editing: string | null = null;

  byId("new-channel").addEventListener("click", () => {
    edit(null);
    inputs.pattern.focus();
  });
  feedback.form.addEventListener("submit", (event) => {
    event.preventDefault();
    void runChange(feedback, saveChannel);
  });
  remove.addEventListener("click", () => {
    if (editing && confirm(`Delete the configuration for ${editing}?`)) void runChange(feedback, deleteChannel);
  });

  async function load(): Promise<void> {
    try {
      channels = (await admin(ChannelsDocument, {})).channels;
    } catch (error) {
      feedback.error.textContent = `Could not load channels: ${messageOf(error)}`;
      return;
    }
    rows.replaceChildren(
      ...channels.map((channel) => {
        const open = h("button", { type: "button", class: "link" }, channel.pattern);
        open.addEventListener("click", () => edit(channel.pattern));
        const toggle = activeToggle(feedback, channel.pattern, channel.active, async (active) => {
          await admin(UpdateChannelDocument, { pattern: channel.pattern, input: { active } });
          await load();
          if (editing === channel.pattern) edit(channel.pattern);
        });
        return h(
          "tr",
          { "aria-current": channel.pattern === editing ? "true" : null },
          h("td", {}, open, channel.description ? h("div", { class: "muted" }, channel.description) : null),
          h("td", {}, toggle),
          h(
            "td",
            {},
            channel.messaging.toLowerCase(),
            channel.anonymousClients ? "" : " (signed-in only)",
            channel.membersOnly ? " (members only)" : "",
          ),
          h("td", {}, channel.presence ? "on" : "off"),
          h("td", {}, channel.history),
          h("td", {}, channel.triggers.map((trigger) => trigger.name).join(", ") || "—"),
        );
      }),
    );
    if (channels.length === 0) rows.append(h("tr", {}, h("td", { colspan: "6", class: "muted" }, "No channel configurations yet.")));
  }

  function edit(pattern: string | null): void {
    const channel = channels.find((candidate) => candidate.pattern === pattern) ?? null;
    editing = channel?.pattern ?? null;
    clearFeedback(feedback);
    heading.textContent = channel ? `Edit ${channel.pattern}` : "New channel";
    save.textContent = channel ? "Save channel" : "Create channel";
    remove.hidden = !channel;
    inputs.pattern.value = channel?.pattern ?? "";
    inputs.description.value = channel?.description ?? "";
    inputs.messaging.value = channel?.messaging ?? "ANYONE";
    inputs.history.value = String(channel?.history ?? 0);
    inputs.active.checked = channel?.active ?? true;
    inputs.anonymousClients.checked = channel?.anonymousClients ?? true;
    inputs.presence.checked = channel?.presence ?? false;
    inputs.membersOnly.checked = channel?.membersOnly ?? false;
    markCurrentRow(rows, channel ? channels.indexOf(channel) : -1);
  }

  async function saveChannel(): Promise<string> {
    const input = {
      pattern: inputs.pattern.value.trim(),
      description: inputs.description.value.trim() || null,
      messaging: inputs.messaging.value as ChannelMessaging,
      history: Number(inputs.history.value),
      active: inputs.active.checked,
      anonymousClients: inputs.anonymousClients.checked,
      presence: inputs.presence.checked,
      membersOnly: inputs.membersOnly.checked,
    };
    const created = !editing;
    const saved = editing
      ? (await admin(UpdateChannelDocument, { pattern: editing, input })).updateChannel
      : (await admin(CreateChannelDocument, { input })).createChannel;
    editing = saved.pattern;
    await load();
    edit(saved.pattern);
    return created ? "Channel created." : "Channel saved.";
  }

  async function deleteChannel(): Promise<string> {
    await admin(DeleteChannelDocument, { pattern: editing! });
    edit(null);
    await load();
    return "Channel configuration deleted.";
  }

  return { load, edit };
}
