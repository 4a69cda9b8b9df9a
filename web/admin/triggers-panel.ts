/** The triggers panel: triggers listed (by tag), created, edited, toggled and deleted. */
import { RealtimeError } from "@realtime-channels/client";
import type { CreateTriggerInput, TriggerAction, TriggerErrorPolicy, TriggerFieldsFragment, TriggerTiming } from "../generated/graphql.js";
import { byId, h } from "../shared/dom.js";
import {
  activeToggle,
  clearFeedback,
  clearFieldErrors,
  type Feedback,
  markCurrentRow,
  messageOf,
  type RunAdmin,
  runChange,
} from "./forms.js";
import { parseStack } from "./json-paths.js";
import { CreateTriggerDocument, DeleteTriggerDocument, TriggersDocument, UpdateTriggerDocument } from "./operations.js";
import { StackEditor } from "./stack-editor.js";

const EXAMPLE_STACK = [{ set: "payload.text", value: "$uppercase(payload.text)" }];

/** What the triggers panel tells the rest of the console. */
export interface TriggersPanelHost {
  readonly admin: RunAdmin;
  /** A trigger was opened in the form (or the form emptied); `saved` when it is the one the form just saved. */
  selected(trigger: TriggerFieldsFragment | null, saved: boolean): void;
  /** Triggers changed: a channel's list of triggers may have too. */
  changed(): void;
}

/** The panel, as the console drives it. */
export interface TriggersPanel {
  load(): Promise<void>;
  /** Opens a trigger in the form, or empties it for a new one. */
  select(trigger: TriggerFieldsFragment | null): void;
  /** The trigger as the form holds it, or null when its stack is not JSON (the editor shows where). */
  readDraft(): CreateTriggerInput | null;
  /** Shows a message under the form. */
  say(text: string): void;
}

export function createTriggersPanel(host: TriggersPanelHost): TriggersPanel {
  const { admin } = host;
  const tagFilter = byId("tag-filter", HTMLSelectElement);
  const rows = byId("trigger-rows", HTMLTableSectionElement);
  const heading = byId("trigger-form-heading");
  const inputs = {
    name: byId("trigger-name", HTMLInputElement),
    channel: byId("trigger-channel", HTMLInputElement),
    description: byId("trigger-description", HTMLInputElement),
    order: byId("trigger-order", HTMLInputElement),
    onError: byId("trigger-on-error", HTMLSelectElement),
    timing: byId("trigger-timing", HTMLSelectElement),
    tags: byId("trigger-tags", HTMLInputElement),
    active: byId("trigger-active", HTMLInputElement),
  };
  const actionBoxes = [...byId("trigger-actions").querySelectorAll<HTMLInputElement>('input[name="actions"]')];
  const stackEditor = new StackEditor(
    byId("trigger-stack", HTMLTextAreaElement),
    byId("stack-outline", HTMLOListElement),
    byId("stack-error"),
  );
  const save = byId("trigger-save", HTMLButtonElement);
  const remove = byId("trigger-delete", HTMLButtonElement);
  const feedback: Feedback = {
    form: byId("trigger-form", HTMLFormElement),
    error: byId("trigger-error"),
    message: byId("trigger-message"),
  };

  let triggers: TriggerFieldsFragment[] = [];
  let selected: TriggerFieldsFragment | null = null;

  byId("new-trigger").addEventListener("click", () => {
    select(null);
    inputs.name.focus();
  });
  tagFilter.addEventListener("change", () => void load());
  feedback.form.addEventListener("submit", (event) => {
    event.preventDefault();
    void saveTrigger();
  });
  remove.addEventListener("click", () => {
    if (selected && confirm(`Delete the trigger ${selected.name}?`)) void runChange(feedback, deleteTrigger);
  });

  async function load(): Promise<void> {
    let allTags: string[];
    try {
      const result = await admin(TriggersDocument, { tag: tagFilter.value || null });
      triggers = result.triggers;
      allTags = [...new Set(result.allTags.flatMap((trigger) => trigger.tags))].sort();
    } catch (error) {
      feedback.error.textContent = `Could not load triggers: ${messageOf(error)}`;
      return;
    }
    const chosen = tagFilter.value;
    tagFilter.replaceChildren(h("option", { value: "" }, "All triggers"), ...allTags.map((tag) => h("option", { value: tag }, tag)));
    tagFilter.value = allTags.includes(chosen) ? chosen : "";
    rows.replaceChildren(
      ...triggers.map((trigger) => {
        const open = h("button", { type: "button", class: "link" }, trigger.name);
        open.addEventListener("click", () => select(trigger));
        const toggle = activeToggle(feedback, trigger.name, trigger.active, async (active) => {
          const { updateTrigger } = await admin(UpdateTriggerDocument, { id: trigger.id, input: { active } });
          if (selected?.id === trigger.id) {
            selected = updateTrigger;
            inputs.active.checked = updateTrigger.active;
          }
          await load();
        });
        return h(
          "tr",
          { "aria-current": trigger.id === selected?.id ? "true" : null },
          h("td", {}, open),
          h("td", {}, toggle),
          h("td", {}, h("code", {}, trigger.channel)),
          h(
            "td",
            {},
            trigger.actions.map((action) => action.toLowerCase()).join(", "),
            trigger.timing === "AFTER"
              ? h("span", { class: "tag", title: "Runs after delivery, queued and retried" }, "after delivery")
              : null,
          ),
          h("td", {}, trigger.order),
          h("td", {}, ...trigger.tags.map((tag) => h("span", { class: "tag" }, tag))),
        );
      }),
    );
    if (triggers.length === 0) {
      rows.append(h("tr", {}, h("td", { colspan: "6", class: "muted" }, chosen ? `No trigger tagged ${chosen}.` : "No triggers yet.")));
    }
  }

  function select(trigger: TriggerFieldsFragment | null, saved = false): void {
    selected = trigger;
    clearFeedback(feedback);
    heading.textContent = trigger ? `Edit ${trigger.name}` : "New trigger";
    save.textContent = trigger ? "Save trigger" : "Create trigger";
    remove.hidden = !trigger;
    inputs.name.value = trigger?.name ?? "";
    inputs.channel.value = trigger?.channel ?? "";
    inputs.description.value = trigger?.description ?? "";
    inputs.order.value = String(trigger?.order ?? 0);
    inputs.onError.value = trigger?.onError ?? "REJECT";
    inputs.timing.value = trigger?.timing ?? "BEFORE";
    inputs.tags.value = trigger?.tags.join(", ") ?? "";
    inputs.active.checked = trigger?.active ?? true;
    for (const box of actionBoxes) box.checked = trigger ? trigger.actions.includes(box.value as TriggerAction) : box.value === "MESSAGE";
    stackEditor.set(trigger?.stack ?? EXAMPLE_STACK);
    markCurrentRow(rows, trigger ? triggers.findIndex((candidate) => candidate.id === trigger.id) : -1);
    host.selected(trigger, saved);
  }

  function readDraft(): CreateTriggerInput | null {
    clearFieldErrors(feedback.form);
    const stack = stackEditor.read();
    if (stack === null && !parseStack(stackEditor.text).ok) {
      byId("trigger-stack").focus();
      return null;
    }
    return {
      name: inputs.name.value.trim(),
      channel: inputs.channel.value.trim(),
      description: inputs.description.value.trim() || null,
      order: Number(inputs.order.value || 0),
      onError: inputs.onError.value as TriggerErrorPolicy,
      timing: inputs.timing.value as TriggerTiming,
      tags: inputs.tags.value
        .split(",")
        .map((tag) => tag.trim())
        .filter(Boolean),
      active: inputs.active.checked,
      actions: actionBoxes.filter((box) => box.checked).map((box) => box.value as TriggerAction),
      stack,
    };
  }

  async function saveTrigger(): Promise<void> {
    const input = readDraft();
    if (!input) return;
    save.disabled = true;
    await runChange(
      feedback,
      async () => {
        // expectedRevision: a change someone else saved since this trigger was opened is not overwritten.
        const saved = selected
          ? (await admin(UpdateTriggerDocument, { id: selected.id, input, expectedRevision: selected.revision })).updateTrigger
          : (await admin(CreateTriggerDocument, { input })).createTrigger;
        const created = !selected;
        // A new trigger the tag filter would hide is shown by clearing the filter.
        if (tagFilter.value && !saved.tags.includes(tagFilter.value)) tagFilter.value = "";
        await load();
        select(saved, true);
        host.changed();
        return created ? "Trigger created." : `Trigger saved as revision ${saved.revision}.`;
      },
      showTriggerError,
    );
    save.disabled = false;
  }

  /** A conflict says what to do; stack errors go to the step they name; other input errors to their field. */
  function showTriggerError(error: unknown): boolean {
    if (error instanceof RealtimeError && error.code === "CONFLICT") {
      const revision = String(error.errors[0]?.extensions?.revision ?? "?");
      feedback.error.textContent = `Not saved: someone else changed this trigger since you opened it (now revision ${revision}). Copy your changes, open it again from the list, and reapply them.`;
      return true;
    }
    const path = error instanceof RealtimeError ? error.path?.replace(/^input\./, "") : undefined;
    if (error instanceof RealtimeError && path?.startsWith("stack")) {
      stackEditor.showError(path, error.message);
      byId("trigger-stack").setAttribute("aria-invalid", "true");
      return true;
    }
    return false;
  }

  async function deleteTrigger(): Promise<string> {
    await admin(DeleteTriggerDocument, { id: selected!.id });
    select(null);
    await load();
    host.changed();
    return "Trigger deleted.";
  }

  return { load, select, readDraft, say: (text) => void (feedback.message.textContent = text) };
}
