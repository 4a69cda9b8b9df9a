/**
 * The function stack editor: a JSON textarea, an outline of its steps (one item per step, with its
 * path such as `stack[2].then[0]`), and errors shown at the step they concern, whether they come
 * from `JSON.parse` (line and column) or from the server's validation (`extensions.path`).
 */
import { h } from "../shared/dom.js";
import { lineAndColumn, locateJsonPaths, parseStack, type Span } from "./json-paths.js";

/** A one-line summary of a step, e.g. `set payload.text = $uppercase(payload.text)`. */
function summary(step: unknown): string {
  if (typeof step !== "object" || step === null || Array.isArray(step)) return JSON.stringify(step);
  const s = step as Record<string, unknown>;
  const text = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));
  if ("var" in s) return `var $${text(s.var)} = ${text(s.value)}`;
  if ("set" in s) return `set ${text(s.set)} = ${text(s.value)}`;
  if ("return" in s) return `return ${text(s.return)}`;
  if ("if" in s) return `if ${text(s.if)}`;
  if ("drop" in s) return "drop";
  if ("reject" in s) return `reject ${text(s.reject)}${s.code ? ` (${text(s.code)})` : ""}`;
  if ("log" in s) return `log ${text(s.log)}`;
  return JSON.stringify(step);
}

/** Binds the stack textarea, its outline list and its error message. */
export class StackEditor {
  private renderTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly textarea: HTMLTextAreaElement,
    private readonly outline: HTMLOListElement,
    private readonly error: HTMLElement,
  ) {
    textarea.addEventListener("input", () => {
      clearTimeout(this.renderTimer);
      this.renderTimer = setTimeout(() => this.render(), 250);
    });
  }

  get text(): string {
    return this.textarea.value;
  }

  /** Shows a stack, pretty-printed. */
  set(stack: unknown): void {
    this.textarea.value = JSON.stringify(stack, null, 2);
    this.render();
  }

  /** The parsed stack; shows the JSON error and returns null when the text is not JSON. */
  read(): unknown {
    clearTimeout(this.renderTimer);
    const parsed = parseStack(this.textarea.value);
    this.render();
    return parsed.ok ? parsed.stack : null;
  }

  /** Redraws the outline from the text and clears earlier errors. */
  render(): void {
    clearTimeout(this.renderTimer);
    this.clearErrors();
    const parsed = parseStack(this.textarea.value);
    if (!parsed.ok) {
      this.outline.replaceChildren();
      this.showGeneral(parsed.message, parsed.offset === undefined ? undefined : { start: parsed.offset, end: parsed.offset + 1 });
      return;
    }
    const steps = Array.isArray(parsed.stack) ? parsed.stack : [];
    this.outline.replaceChildren(...steps.map((step, index) => this.item(step, `stack[${index}]`)));
  }

  /**
   * Shows a validation error at the step its path names (e.g. `stack[2].then[0].value`): on that
   * outline item, and under the textarea with the line and a way to select the text concerned.
   */
  showError(path: string | undefined, message: string): void {
    const spans = locateJsonPaths(this.textarea.value);
    const span = path ? (spans.get(path) ?? spans.get(longestPrefix(path, [...spans.keys()]) ?? "")) : undefined;
    const stepPath = path
      ? longestPrefix(
          path,
          [...this.outline.querySelectorAll<HTMLElement>("[data-path]")].map((li) => li.dataset.path!),
        )
      : null;
    const item = stepPath ? this.outline.querySelector<HTMLElement>(`[data-path="${CSS.escape(stepPath)}"]`) : null;
    if (item) {
      item.classList.add("has-error");
      item
        .querySelector(":scope > .step-label")
        ?.after(h("p", { class: "step-error" }, message, span ? ` (line ${lineAndColumn(this.textarea.value, span.start).line})` : ""));
    }
    this.showGeneral(message, span);
  }

  clearErrors(): void {
    this.error.replaceChildren();
    this.textarea.removeAttribute("aria-invalid");
    for (const item of this.outline.querySelectorAll(".has-error")) item.classList.remove("has-error");
    for (const message of this.outline.querySelectorAll(".step-error")) message.remove();
  }

  private showGeneral(message: string, span?: Span): void {
    this.textarea.setAttribute("aria-invalid", "true");
    const line = span ? lineAndColumn(this.textarea.value, span.start).line : null;
    const show = span ? h("button", { type: "button", class: "link" }, `Show line ${line} in the editor`) : null;
    show?.addEventListener("click", () => this.select(span!));
    this.error.replaceChildren(h("span", {}, message, " "), show ?? "");
  }

  private select(span: Span): void {
    this.textarea.focus();
    this.textarea.setSelectionRange(span.start, Math.max(span.end, span.start + 1));
    const line = lineAndColumn(this.textarea.value, span.start).line;
    const lineHeight = parseFloat(getComputedStyle(this.textarea).lineHeight) || 20;
    this.textarea.scrollTop = Math.max(0, (line - 3) * lineHeight);
  }

  private item(step: unknown, path: string): HTMLLIElement {
    const li = h("li", { dataset: { path } }, h("span", { class: "step-label" }, h("span", { class: "path" }, path), summary(step)));
    if (typeof step === "object" && step !== null && "if" in step) {
      for (const branch of ["then", "else"] as const) {
        const steps = (step as Record<string, unknown>)[branch];
        if (!Array.isArray(steps)) continue;
        li.append(
          h("ol", { "aria-label": `${path}.${branch}` }, ...steps.map((child, index) => this.item(child, `${path}.${branch}[${index}]`))),
        );
      }
    }
    return li;
  }
}

/** The longest candidate that is `path` or a parent of it (`stack[2]` for `stack[2].then[0]`). */
function longestPrefix(path: string, candidates: readonly string[]): string | null {
  let best: string | null = null;
  for (const candidate of candidates) {
    const parent = path === candidate || (path.startsWith(candidate) && (path[candidate.length] === "." || path[candidate.length] === "["));
    if (parent && (best === null || candidate.length > best.length)) best = candidate;
  }
  return best;
}
