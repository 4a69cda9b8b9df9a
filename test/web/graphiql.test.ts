import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { createTrigger } from "../helpers/triggers.js";
import { describeBrowser, launchChromium, screenshot } from "./browser.js";

let server: TestServer;
let origin: string;
let browser: Browser;

beforeAll(async () => {
  server = await startServer();
  origin = new URL(server.httpUrl).origin;
});

afterAll(async () => {
  await browser?.close();
});

const SUBSCRIPTION = `subscription {
  channel(name: "room:graphiql") { action payload client { id } }
}`;

/** Opens GraphiQL with a query in the URL, recording the URL of every request the page makes. */
async function openGraphiQL(query: string): Promise<{ page: Page; requested: string[] }> {
  browser ??= await launchChromium();
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const requested: string[] = [];
  // Every request is recorded; one that would leave this server is aborted, so the test never goes out.
  await context.route("**/*", (route) => (originOf(route.request().url()) === origin ? route.continue() : route.abort()));
  page.on("request", (request) => requested.push(request.url()));
  page.on("websocket", (socket) => requested.push(socket.url()));
  await page.goto(`${origin}/graphql?query=${encodeURIComponent(query)}`);
  return { page, requested };
}

/** The origin of a URL the page requested, as http(s) (a WebSocket to this server counts as this origin). */
function originOf(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol === "data:" || parsed.protocol === "blob:") return origin;
  return `${parsed.protocol.replace(/^ws/, "http")}//${parsed.host}`;
}

describeBrowser("GraphiQL served from the package", () => {
  it("loads with no request leaving the server's origin, and runs a subscription over SSE", async () => {
    const { page, requested } = await openGraphiQL(SUBSCRIPTION);
    const run = page.locator(".graphiql-execute-button");
    await run.waitFor({ timeout: 20_000 });
    await page.locator(".graphiql-query-editor").getByText('"room:graphiql"').waitFor();
    await run.click();
    const results = page.locator(".graphiql-response");
    await results.getByText('"JOIN"').waitFor();

    const sent = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "room:graphiql", payload: { text: "hello from curl" } });
    expect(sent.body.data?.sendMessage.delivered).toBe(true);
    await results.getByText("hello from curl").waitFor();
    await screenshot(page, "graphiql-subscription");

    expect(requested.some((url) => url.startsWith("ws://"))).toBe(false); // subscriptions run over SSE, with the tab's headers
    expect(requested.map(originOf).filter((seen) => seen !== origin)).toEqual([]);
    await page.context().close();
  });

  it("runs an admin subscription with the token from the Headers tab, and without it says where to put it", async () => {
    const query = "subscription { triggerRuns { outcome channel } }";
    const refused = await openGraphiQL(query);
    await refused.page.locator(".graphiql-execute-button").click({ timeout: 20_000 });
    await refused.page.locator(".graphiql-response").getByText("UNAUTHENTICATED").waitFor();
    await refused.page.locator(".graphiql-response").getByText("in the Headers tab").waitFor();
    await refused.page.context().close();

    const { page } = await openGraphiQL(query);
    const run = page.locator(".graphiql-execute-button");
    await run.waitFor({ timeout: 20_000 });
    await page.locator(".graphiql-query-editor").getByText("triggerRuns").waitFor();
    await page.getByRole("button", { name: "Headers" }).click();
    await page.locator(".graphiql-editor-tool .graphiql-editor").last().click();
    await page.keyboard.press("ControlOrMeta+a");
    await page.keyboard.insertText(JSON.stringify({ Authorization: `Bearer ${ADMIN_TOKEN}` }));
    await run.click();
    const results = page.locator(".graphiql-response");
    await createTrigger(server.httpUrl, { name: "graphiql-watch", actions: ["MESSAGE"], channel: "graphiql:*", stack: [] });
    // The stream starts asynchronously and replays nothing: send until a run shows.
    await eventually(
      "a trigger run shown in GraphiQL",
      async () => {
        const sent = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "graphiql:admin", payload: { text: "watched" } });
        expect(sent.body.data?.sendMessage.delivered).toBe(true);
        return results.getByText('"graphiql:admin"').count();
      },
      { intervalMs: 250 },
    );
    await results.getByText('"DELIVERED"').first().waitFor();
    expect(await results.getByText("UNAUTHENTICATED").count()).toBe(0);
    await screenshot(page, "graphiql-admin-subscription");
    await page.context().close();
  });
});
