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

/** JSON for people: indented, `undefined` shown as nothing. */
export function pretty(value: unknown): string {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

/** Whether a list scrolled to (nearly) its end, so new items should keep it there. */
export function nearBottom(element: HTMLElement): boolean {
  return element.scrollHeight - element.scrollTop - element.clientHeight < 48;
}
