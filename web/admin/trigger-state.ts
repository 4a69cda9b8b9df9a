/**
 * The trigger's state in the admin console: the keys its get, put, incr and delete steps keep, with
 * their values and expiry, filtered by a key prefix, and a button that clears the keys shown.
 */
import { graphql } from "../generated/gql.js";
import type { TypedDocumentString } from "../generated/graphql.js";
import { byId, h, pretty } from "../shared/dom.js";

export const TriggerStateDocument = graphql(`
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
`);

export const ClearTriggerStateDocument = graphql(`
  mutation AdminClearTriggerState($id: ID!, $prefix: String) {
    clearTriggerState(id: $id, prefix: $prefix)
  }
`);

/** Keys listed at most. */
const SHOWN = 100;

/** What the view needs from the console. */
export interface StateViewHost {
  admin<TResult, TVariables>(document: TypedDocumentString<TResult, TVariables>, variables: TVariables): Promise<TResult>;
}

/** Wires the state view to the page; `select` shows one trigger's state (null hides it). */
export function createStateView(host: StateViewHost): { select(trigger: { id: string; name: string } | null): void } {
  const rows = byId("state-rows", HTMLTableSectionElement);
  const note = byId("state-note");
  const prefixField = byId("state-prefix", HTMLInputElement);
  let selected: { id: string; name: string } | null = null;
  let request = 0;

  byId("state-form", HTMLFormElement).addEventListener("submit", (event) => {
    event.preventDefault();
    void load();
  });
  byId("state-clear").addEventListener("click", () => void clear());

  async function load(): Promise<void> {
    const trigger = selected;
    const current = ++request;
    if (!trigger) return;
    try {
      const prefix = prefixField.value;
      const entries = (await host.admin(TriggerStateDocument, { id: trigger.id, prefix, first: SHOWN })).trigger?.state ?? [];
      if (current !== request) return; // a newer load, or another trigger
      rows.replaceChildren(
        ...entries.map((entry) =>
          h(
            "tr",
            { dataset: { key: entry.key } },
            h("td", {}, h("code", {}, entry.key)),
            h("td", {}, h("pre", {}, pretty(entry.value))),
            h("td", {}, entry.expiresAt ? h("time", { datetime: entry.expiresAt }, new Date(entry.expiresAt).toLocaleString()) : "never"),
          ),
        ),
      );
      note.textContent =
        entries.length === 0
          ? prefix
            ? `No keys start with “${prefix}”.`
            : "No state kept."
          : entries.length === SHOWN
            ? `The first ${SHOWN} keys.`
            : "";
    } catch (error) {
      if (current === request) note.textContent = `Could not load state: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  async function clear(): Promise<void> {
    const trigger = selected;
    if (!trigger) return;
    const prefix = prefixField.value;
    if (!confirm(prefix ? `Remove the state keys of ${trigger.name} starting with “${prefix}”?` : `Remove all state of ${trigger.name}?`))
      return;
    try {
      const { clearTriggerState } = await host.admin(ClearTriggerStateDocument, { id: trigger.id, prefix: prefix || null });
      await load();
      note.textContent = `Removed ${clearTriggerState} ${clearTriggerState === 1 ? "key" : "keys"}.`;
    } catch (error) {
      note.textContent = `Could not clear state: ${error instanceof Error ? error.message : String(error)}`;
    }
  }

  return {
    select(trigger) {
      selected = trigger;
      request++;
      rows.replaceChildren();
      note.textContent = "";
      prefixField.value = "";
      void load();
    },
  };
}
