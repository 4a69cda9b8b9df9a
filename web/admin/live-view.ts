/**
 * The admin console's live view: what this server instance carries now (connections, subscriptions,
 * channels) and its channels with members, filtered by a name prefix. Refreshes every few seconds
 * while signed in and open.
 */
import { graphql } from "../generated/gql.js";
import { byId, counted, h } from "../shared/dom.js";
import type { RunAdmin } from "./forms.js";

const REFRESH_MS = 3000;

export const LiveViewDocument = graphql(`
  query AdminLiveView($prefix: String, $first: Int) {
    serverInfo {
      connections {
        webSockets
        httpRequests
        webSocketSubscriptions
        httpSubscriptions
        channels
      }
    }
    activeChannels(prefix: $prefix, first: $first) {
      name
      members
      subscribers
      clusterMembers
    }
  }
`);

/** Runs an admin operation (the console's, with its token). */

/** The live view's controls: start on sign-in, stop on sign-out. */
export interface LiveView {
  start(): void;
  stop(): void;
}

/** Wires the live view panel (`#live`) to the server. */
export function createLiveView(runAdmin: RunAdmin): LiveView {
  const panel = byId("live-panel", HTMLDetailsElement);
  const counts = byId("live-counts");
  const rows = byId("live-rows");
  const filter = byId("live-prefix", HTMLInputElement);
  const error = byId("live-error");
  let timer: ReturnType<typeof setInterval> | null = null;
  let signedIn = false;

  async function refresh(): Promise<void> {
    try {
      const { serverInfo, activeChannels } = await runAdmin(LiveViewDocument, { prefix: filter.value.trim() || null, first: 100 });
      const c = serverInfo.connections;
      error.textContent = "";
      counts.textContent =
        `${counted(c.webSockets, "WebSocket connection")} · ${counted(c.httpRequests, "HTTP request")} in progress · ` +
        `${counted(c.webSocketSubscriptions + c.httpSubscriptions, "subscription")} (${c.httpSubscriptions} over SSE) · ` +
        `${counted(c.channels, "channel")} with members`;
      rows.replaceChildren(
        ...activeChannels.map((channel) =>
          h(
            "tr",
            {},
            h("td", {}, channel.name),
            h("td", {}, channel.members),
            h("td", {}, channel.subscribers),
            h("td", {}, channel.clusterMembers ?? "—"),
          ),
        ),
      );
      if (activeChannels.length === 0)
        rows.append(h("tr", {}, h("td", { colspan: "4", class: "muted" }, "No channel has members right now.")));
    } catch (cause) {
      error.textContent = `Could not load the live view: ${cause instanceof Error ? cause.message : String(cause)}`;
    }
  }

  /** Polls while signed in with the panel open, and only then. */
  function follow(): void {
    const wanted = signedIn && panel.open;
    if (wanted && !timer) {
      void refresh();
      timer = setInterval(() => void refresh(), REFRESH_MS);
    } else if (!wanted && timer) {
      clearInterval(timer);
      timer = null;
    }
  }

  filter.addEventListener("input", () => void refresh());
  panel.addEventListener("toggle", follow);
  return {
    start: () => {
      signedIn = true;
      follow();
    },
    stop: () => {
      signedIn = false;
      follow();
    },
  };
}
