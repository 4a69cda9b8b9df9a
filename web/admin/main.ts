/**
 * The admin console at /admin: signing in, and the panels it is made of: channels
 * (channels-panel.ts), triggers (triggers-panel.ts) with the trigger author's tools (authoring.ts:
 * test runs, revisions, live runs), the live view (live-view.ts) and a channel's live events
 * (watch-panel.ts). Every call carries the admin token: `Authorization: Bearer` over HTTP,
 * `connectionParams.adminToken` on the WebSockets that watch a channel or stream runs.
 */
import { RealtimeError, requestGraphQL } from "@realtime-channels/client";
import type { TypedDocumentString } from "../generated/graphql.js";
import { byId } from "../shared/dom.js";
import { createAuthoring } from "./authoring.js";
import { createChannelsPanel } from "./channels-panel.js";
import { messageOf } from "./forms.js";
import { createLiveView } from "./live-view.js";
import { ServerInfoDocument } from "./operations.js";
import { createTriggersPanel } from "./triggers-panel.js";
import { createWatchPanel } from "./watch-panel.js";

const TOKEN_KEY = "realtime.adminToken";

let token = sessionStorage.getItem(TOKEN_KEY);

/** Runs an admin operation over HTTP with the token. */
function admin<TResult, TVariables>(document: TypedDocumentString<TResult, TVariables>, variables: TVariables): Promise<TResult> {
  return requestGraphQL(document, variables, { token });
}

const channels = createChannelsPanel(admin);
const triggers = createTriggersPanel({
  admin,
  selected: (trigger, saved) => authoring.select(trigger, saved),
  changed: () => void channels.load(),
});
const authoring = createAuthoring({
  admin,
  token: () => token,
  readDraft: () => triggers.readDraft(),
  changed: async (trigger) => {
    await triggers.load();
    triggers.select(trigger);
    triggers.say(`Rolled back: ${trigger.name} is now revision ${trigger.revision}.`);
  },
});
const liveView = createLiveView(admin);
const watch = createWatchPanel(() => token);

// ---------------------------------------------------------------------------------------------
// Signing in

const statusEl = byId("status");
const signInForm = byId("sign-in-form", HTMLFormElement);
const tokenInput = byId("token", HTMLInputElement);
const signOutButton = byId("sign-out", HTMLButtonElement);
/** What only matters while signed out: the token field, its button and its hint. */
const signedOutOnly = [byId("token-field"), byId("sign-in"), byId("token-hint")];
const signInHeading = byId("sign-in-heading");
const signInError = byId("sign-in-error");
const consoleEl = byId("console");
const nav = byId("nav");

signInForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!signInForm.reportValidity()) return;
  void signIn(tokenInput.value.trim());
});
signOutButton.addEventListener("click", () => signOut());

async function signIn(candidate: string): Promise<void> {
  signInError.textContent = "";
  token = candidate;
  try {
    const { serverInfo } = await admin(ServerInfoDocument, {});
    sessionStorage.setItem(TOKEN_KEY, candidate);
    tokenInput.value = "";
    statusEl.dataset.status = "connected";
    statusEl.textContent = `Signed in · ${serverInfo.version} · ${serverInfo.database} · ${serverInfo.pubsub}`;
    consoleEl.hidden = false;
    nav.hidden = false;
    signOutButton.hidden = false;
    for (const element of signedOutOnly) element.hidden = true;
    signInHeading.textContent = "Signed in";
    liveView.start();
    await Promise.all([channels.load(), triggers.load()]);
  } catch (error) {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    signInError.textContent =
      error instanceof RealtimeError && error.code === "UNAUTHENTICATED"
        ? "The server refused this token."
        : `Could not sign in: ${messageOf(error)}`;
    tokenInput.focus();
  }
}

function signOut(): void {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  watch.stop();
  liveView.stop();
  authoring.stop();
  triggers.select(null);
  consoleEl.hidden = true;
  nav.hidden = true;
  signOutButton.hidden = true;
  for (const element of signedOutOnly) element.hidden = false;
  signInHeading.textContent = "Sign in";
  statusEl.dataset.status = "closed";
  statusEl.textContent = "Signed out";
  tokenInput.focus();
}

triggers.select(null);
channels.edit(null);
if (token) void signIn(token);
else tokenInput.focus();
