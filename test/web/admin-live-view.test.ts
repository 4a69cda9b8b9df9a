import type { Browser } from "playwright-core";
import { afterAll, beforeAll, expect, it } from "vitest";
import { joinBySubscription } from "../helpers/channels.js";
import { connectWs } from "../helpers/graphql.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { describeBrowser, launchChromium, pageErrors, screenshot } from "./browser.js";

let server: TestServer;
let browser: Browser;

beforeAll(async () => {
  server = await startServer();
});

afterAll(async () => {
  await browser?.close();
});

describeBrowser("the admin console's live view", () => {
  it("shows the instance's connections and its channels with members, filtered by prefix", async () => {
    const client = await connectWs(server.wsUrl);
    await joinBySubscription(client, "room:live");
    await joinBySubscription(client, "lobby");

    browser = await launchChromium();
    const page = await (await browser.newContext({ viewport: { width: 1200, height: 900 } })).newPage();
    const errors = pageErrors(page);
    await page.goto(`${new URL(server.httpUrl).origin}/admin`);
    await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();

    const panel = page.locator("#live");
    await panel.getByText("What this instance carries now").click(); // opens the panel
    const rows = panel.getByRole("row");
    await rows.filter({ hasText: "room:live" }).waitFor();
    await rows.filter({ hasText: "lobby" }).waitFor();
    // Counts of one are singular.
    await panel
      .getByText(/^1 WebSocket connection · \d+ HTTP requests? in progress · 2 subscriptions \(0 over SSE\) · 2 channels with members$/)
      .waitFor();
    expect(await rows.filter({ hasText: "room:live" }).getByRole("cell").allTextContents()).toEqual(["room:live", "1", "1", "—"]);

    await panel.getByLabel("Channels starting with").fill("room:");
    await expect.poll(() => rows.filter({ hasText: "lobby" }).count()).toBe(0);
    await rows.filter({ hasText: "room:live" }).waitFor();
    await screenshot(page, "admin-live-view");
    expect(errors).toEqual([]);
  });
});
