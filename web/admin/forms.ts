/** What the console's panels share: errors shown at their fields, and the save/toggle/delete flow. */
import { RealtimeError } from "@realtime-channels/client";
import type { TypedDocumentString } from "../generated/graphql.js";
import { h } from "../shared/dom.js";

/** Runs an admin operation over HTTP with the admin token. */
export type RunAdmin = <TResult, TVariables>(document: TypedDocumentString<TResult, TVariables>, variables: TVariables) => Promise<TResult>;

/** The error and message lines under a panel's form. */
export interface Feedback {
  readonly form: HTMLFormElement;
  readonly error: HTMLElement;
  readonly message: HTMLElement;
}

/** An error's message, for people. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Shows a GraphQL error at the input it names (`extensions.path` "input.<field>" or `extensions.field`); false when it names none. */
export function showFieldError(form: HTMLFormElement, error: unknown): boolean {
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

/** Removes the errors {@link showFieldError} added. */
export function clearFieldErrors(form: HTMLFormElement): void {
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

/** Clears a form's field errors and its error and message lines. */
export function clearFeedback(feedback: Feedback): void {
  clearFieldErrors(feedback.form);
  feedback.error.textContent = "";
  feedback.message.textContent = "";
}

/**
 * Runs a change (create, save, delete): clears the feedback, then shows the message the change
 * returns, or its error at the field it names (`showError` may place it elsewhere first), else
 * under the form.
 */
export async function runChange(feedback: Feedback, change: () => Promise<string>, showError?: (error: unknown) => boolean): Promise<void> {
  clearFeedback(feedback);
  try {
    feedback.message.textContent = await change();
  } catch (error) {
    if (showError?.(error) || showFieldError(feedback.form, error)) return;
    feedback.error.textContent = messageOf(error);
  }
}

/** A list row's active checkbox: sends the change and reports it; a refused change turns the box back. */
export function activeToggle(
  feedback: Feedback,
  label: string,
  active: boolean,
  send: (active: boolean) => Promise<void>,
): HTMLInputElement {
  const toggle = h("input", { type: "checkbox", "aria-label": `${label} active` }) as HTMLInputElement;
  toggle.checked = active;
  toggle.addEventListener("change", async () => {
    try {
      await send(toggle.checked);
      feedback.message.textContent = `${label} is now ${toggle.checked ? "active" : "inactive"}.`;
    } catch (error) {
      toggle.checked = !toggle.checked;
      feedback.error.textContent = messageOf(error);
    }
  });
  return toggle;
}

/** Marks the row of the item being edited (`index`, or none). */
export function markCurrentRow(rows: HTMLTableSectionElement, index: number): void {
  for (const row of rows.querySelectorAll("tr")) row.removeAttribute("aria-current");
  if (index >= 0) rows.querySelectorAll("tr")[index]?.setAttribute("aria-current", "true");
}
