/** Small DOM helpers for the pages. Text always goes in as text (never HTML), so data cannot inject markup. */

type Child = Node | string | number | null | undefined | false;
type Props = { class?: string; text?: string; dataset?: Record<string, string> } & Record<string, unknown>;

/** Creates an element: `h("li", { class: "msg" }, "text", child)`. Other props are set as attributes (true → empty, false/null → absent). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = String(value);
    else if (key === "text") element.textContent = String(value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "number" ? String(child) : child);
  }
  return element;
}

/** The element with this id, of the expected type; throws when the page lacks it. */
export function byId<T extends HTMLElement = HTMLElement>(id: string, type?: new () => T): T {
  const element = document.getElementById(id);
  if (!element || (type && !(element instanceof type))) throw new Error(`#${id} is missing from the page`);
  return element as T;
}

/** A time as the viewer's clock shows it, e.g. 14:05:09. */
export function clock(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

/** A date and time as the viewer's locale shows them, e.g. 07/12/2026, 14:05:09. */
export function dateTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime())
    ? iso
    : date.toLocaleString(undefined, {
        year: "numeric",
        month: "2-digit",
        day: "2-digit",
        hour: "2-digit",
        minute: "2-digit",
        second: "2-digit",
      });
}

/** A count with its noun: "1 subscription", "2 subscriptions" (`plural` where adding s is wrong). */
export function counted(count: number, noun: string, plural = `${noun}s`): string {
  return `${count} ${count === 1 ? noun : plural}`;
}

/** An id shown by its first 8 characters, the whole of it on hover, with a button that copies it. */
export function shortId(id: string): HTMLSpanElement {
  const copy = h("button", { type: "button", class: "copy", title: "Copy the full id", "aria-label": `Copy ${id}` }, "⧉");
  copy.addEventListener("click", () => {
    void navigator.clipboard?.writeText(id).then(
      () => {
        copy.textContent = "✓";
      },
      () => {
        copy.textContent = "✗";
      },
    );
  });
  return h("span", { class: "short-id" }, h("code", { title: id }, id.length > 8 ? `${id.slice(0, 8)}…` : id), copy);
}

/** JSON for people: indented, `undefined` shown as nothing. */
export function pretty(value: unknown): string {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

/** Whether a list scrolled to (nearly) its end, so new items should keep it there. */
export function nearBottom(element: HTMLElement): boolean {
  return element.scrollHeight - element.scrollTop - element.clientHeight < 48;
}
