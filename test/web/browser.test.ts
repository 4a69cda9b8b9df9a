import type { Page } from "playwright-core";
import { beforeAll, expect, it } from "vitest";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { describeBrowser, screenshot, suitePages } from "./browser.js";

let server: TestServer;
let origin: string;
const newPage = suitePages();

beforeAll(async () => {
  server = await startServer();
  origin = new URL(server.httpUrl).origin;
});

/** A page of this server in a context of its own (its own sessionStorage and WebSocket), with errors collected. */
const openPage = (path: string): Promise<Page> => newPage(origin + path);

/** Opens the demo chat room as `name` and waits until joined. */
async function openDemo(room: string, name: string): Promise<Page> {
  const page = await openPage(`/demo?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`);
  await page.locator('#status[data-status="connected"]').waitFor();
  await messages(page).filter({ hasText: "You joined." }).waitFor();
  return page;
}

const messages = (page: Page) => page.getByRole("log").getByRole("listitem");

async function sendFrom(page: Page, text: string): Promise<void> {
  await page.getByLabel("Message").fill(text);
  await page.getByRole("button", { name: "Send" }).click();
}

/** Opens the admin console and signs in with the token. */
async function openAdmin(): Promise<Page> {
  const page = await openPage("/admin");
  await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("status").filter({ hasText: "Signed in" }).waitFor();
  return page;
}

async function closeAll(...pages: Page[]): Promise<void> {
  for (const page of pages) await page.context().close();
}

describeBrowser("web pages in Chromium", () => {
  it("two demo pages exchange messages live", async () => {
    const alice = await openDemo("room:e2e-chat", "alice");
    const bob = await openDemo("room:e2e-chat", "bob");
    await messages(alice).filter({ hasText: "bob joined." }).waitFor();

    await sendFrom(alice, "hello bob");
    const atBob = messages(bob).filter({ hasText: "hello bob" });
    await atBob.waitFor();
    expect(await atBob.locator(".who").textContent()).toBe("alice");
    await messages(alice).filter({ hasText: "hello bob" }).locator(".who", { hasText: "You" }).waitFor();

    await sendFrom(bob, "hi alice");
    await messages(alice).filter({ hasText: "hi alice" }).waitFor();
    expect(await alice.getByLabel("Message").inputValue()).toBe("");

    await screenshot(alice, "demo-alice");
    await screenshot(bob, "demo-bob");
    await closeAll(bob);
    await messages(alice).filter({ hasText: "bob left." }).waitFor();
    await closeAll(alice);
  });

  it("lists the people here by the names they chose, also those who joined first, and shows a refused join as refused", async () => {
    // room:lobby has presence on from the first start. Carol joins first and says nothing.
    const carol = await openDemo("room:lobby", "carol");
    const dave = await openDemo("room:lobby", "dave");
    const people = (page: Page) => page.getByRole("complementary").getByRole("listitem");
    await expect.poll(async () => (await people(dave).allTextContents()).sort()).toEqual(["carol", "dave (you)"]);
    await expect.poll(async () => (await people(carol).allTextContents()).sort()).toEqual(["carol (you)", "dave"]);

    const created = await fetch(server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({ query: `mutation { createChannel(input: { pattern: "staff:*", anonymousClients: false }) { id } }` }),
    });
    expect(((await created.json()) as { errors?: unknown }).errors).toBeUndefined();
    await dave.locator("#room").fill("staff:desk");
    await dave.getByRole("button", { name: "Join" }).click();
    const heading = dave.locator('#room-heading[data-state="refused"]');
    await heading.filter({ hasText: "staff:desk (not joined)" }).waitFor();
    await messages(dave).filter({ hasText: "Could not join staff:desk:" }).waitFor();
    expect(await dave.getByLabel("Message").isDisabled()).toBe(true);
    await screenshot(dave, "demo-refused-join");
    await closeAll(carol, dave);
  });

  it("an admin creates a trigger in the console and the demo pages see messages transformed at once", async () => {
    const alice = await openDemo("room:e2e-shout", "alice");
    const bob = await openDemo("room:e2e-shout", "bob");
    const admin = await openAdmin();

    await admin.getByRole("button", { name: "New trigger" }).click();
    await admin.getByLabel("Name", { exact: true }).fill("shout");
    await admin.getByLabel("Channel", { exact: true }).fill("room:e2e-shout");
    await admin.getByLabel("Tags").fill("demo, e2e");
    await admin.getByLabel("Function stack (JSON)").fill(JSON.stringify([{ set: "payload.text", value: "$uppercase(payload.text)" }]));
    await admin.getByRole("button", { name: "Create trigger" }).click();
    await admin.getByRole("status").filter({ hasText: "Trigger created." }).waitFor();
    await admin.getByRole("row").filter({ hasText: "shout" }).waitFor();

    await sendFrom(alice, "make it loud");
    // (A string in hasText matches case-insensitively; these regular expressions do not.)
    await messages(bob)
      .filter({ hasText: /MAKE IT LOUD/ })
      .waitFor();
    await messages(alice)
      .filter({ hasText: /MAKE IT LOUD/ })
      .waitFor();
    expect(
      await messages(bob)
        .filter({ hasText: /make it loud/ })
        .count(),
    ).toBe(0);

    // The console's test run shows the step trace, and the recent runs show the live message.
    await admin.getByLabel("Payload (JSON)").fill('{ "text": "psst" }');
    await admin.getByRole("button", { name: "Run test" }).click();
    await admin.locator("#test-result").getByText("MODIFIED").waitFor();
    await admin.locator("#trace-rows tr").filter({ hasText: "stack[0]" }).filter({ hasText: '"PSST"' }).waitFor();
    await admin.getByRole("button", { name: "Refresh" }).click();
    await admin.locator("#run-rows tr").filter({ hasText: "room:e2e-shout" }).filter({ hasText: "MODIFIED" }).first().waitFor();

    // Filter by tag, and turn the trigger off from the list: messages pass unchanged again.
    await admin.getByLabel("Filter by tag").selectOption("e2e");
    await admin.getByRole("checkbox", { name: "shout active" }).uncheck();
    await admin.getByRole("status").filter({ hasText: "shout is now inactive." }).waitFor();
    await sendFrom(alice, "quiet again");
    await messages(bob)
      .filter({ hasText: /quiet again/ })
      .waitFor();

    await screenshot(admin, "admin-trigger");
    await screenshot(bob, "demo-transformed");
    await closeAll(alice, bob, admin);
  });

  it("shows a validation error for a broken expression at its step, and stores nothing", async () => {
    const admin = await openAdmin();
    await admin.getByRole("button", { name: "New trigger" }).click();
    await admin.getByLabel("Name", { exact: true }).fill("broken");
    await admin.getByLabel("Channel", { exact: true }).fill("room:*");
    const stack = [
      { set: "payload.text", value: "$trim(payload.text)" },
      { if: "$length(payload.text) > 3", then: [{ log: "'long'" }, { set: "payload.loud", value: "$uppercase(" }] },
    ];
    await admin.getByLabel("Function stack (JSON)").fill(JSON.stringify(stack, null, 2));
    await admin.getByRole("button", { name: "Create trigger" }).click();

    const step = admin.locator('#stack-outline li[data-path="stack[1].then[1]"]');
    await step.locator(".step-error").waitFor();
    expect(await step.getAttribute("class")).toContain("has-error");
    expect(await step.locator(".step-error").textContent()).toMatch(
      /^stack\[1\]\.then\[1\]\.value: expression does not compile.*\(line \d+\)$/,
    );
    expect(await admin.locator('#stack-outline li[data-path="stack[0]"].has-error').count()).toBe(0);
    expect(await admin.getByLabel("Function stack (JSON)").getAttribute("aria-invalid")).toBe("true");
    await admin
      .getByRole("alert")
      .filter({ hasText: "stack[1].then[1].value" })
      .getByRole("button", { name: /Show line \d+ in the editor/ })
      .click();
    const selected = await admin.getByLabel("Function stack (JSON)").evaluate((element) => {
      const textarea = element as unknown as { value: string; selectionStart: number; selectionEnd: number }; // no DOM types here
      return textarea.value.slice(textarea.selectionStart, textarea.selectionEnd);
    });
    expect(selected).toBe('"$uppercase("');
    await screenshot(admin, "admin-validation-error");
    expect(await admin.getByRole("row").filter({ hasText: "broken" }).count()).toBe(0);

    // Text that is not JSON is caught in the page, with its line.
    await admin.getByLabel("Function stack (JSON)").fill('[\n  { "drop": true },\n  { "log": }\n]');
    await admin.getByRole("button", { name: "Create trigger" }).click();
    await admin
      .locator("#stack-error")
      .filter({ hasText: /Not valid JSON \(line 3/ })
      .waitFor();
    await closeAll(admin);
  });

  it("lets the admin watch a channel's live events and manage channel settings", async () => {
    const admin = await openAdmin();
    await admin.getByRole("button", { name: "New channel" }).click();
    await admin.getByLabel("Pattern").fill("room:e2e-watch");
    await admin.getByLabel("Presence").check();
    await admin.getByLabel("Messages kept (0–1000)").fill("20");
    await admin.getByLabel("Members only").check(); // members (carol, once she joins) may still send and see who is here
    await admin.getByRole("button", { name: "Create channel" }).click();
    await admin.getByRole("status").filter({ hasText: "Channel created." }).waitFor();
    await admin.getByRole("row").filter({ hasText: "room:e2e-watch" }).filter({ hasText: "(members only)" }).waitFor();

    // Sent before anyone watches: the watch replays it from history, marked as such.
    const before = await fetch(server.httpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
      body: JSON.stringify({
        query: `mutation { sendMessage(channel: "room:e2e-watch", payload: { text: "sent before" }) { delivered } }`,
      }),
    });
    expect(await before.json()).toEqual({ data: { sendMessage: { delivered: true } } });

    await admin.locator("#watch").getByLabel("Channel name").fill("room:e2e-watch");
    await admin.getByRole("button", { name: "Watch", exact: true }).click();
    await admin.getByRole("status").filter({ hasText: "Watching room:e2e-watch." }).waitFor();
    const watched = admin.getByRole("log", { name: "Live events" }).getByRole("listitem");
    await watched.first().filter({ hasText: "sent before" }).waitFor();
    expect(await watched.first().getAttribute("data-kind")).toBe("history");
    expect(await watched.nth(1).getAttribute("data-kind")).toBe("observer"); // the admin's own JOIN, not a member's
    expect(await watched.nth(1).textContent()).toContain("as an observer");

    const carol = await openDemo("room:e2e-watch", "carol");
    await carol.locator("#people li").filter({ hasText: "carol (you)" }).waitFor(); // presence is on
    // The admin watches unseen: carol is alone in "Here now", and saw no one else join.
    await expect.poll(() => carol.locator("#people li").count()).toBe(1);
    await sendFrom(carol, "watched message");
    const live = admin.getByRole("log", { name: "Live events" }).getByRole("listitem");
    await live.filter({ hasText: "MESSAGE #2" }).filter({ hasText: "watched message" }).waitFor();
    expect(await live.filter({ hasText: "watched message" }).getAttribute("data-kind")).toBeNull();

    // The admin sends from the panel: carol gets it. As an anonymous client the channel's rules
    // apply, and members only refuses a client that has not joined.
    const publish = admin.locator("#publish-form");
    await publish.getByLabel("Message to send (JSON)").fill('{ "text": "from the console" }');
    await publish.getByRole("button", { name: "Send" }).click();
    await publish.getByRole("status").filter({ hasText: "Sent as message #3." }).waitFor();
    await messages(carol).filter({ hasText: "from the console" }).waitFor();
    await live.filter({ hasText: "MESSAGE #3" }).filter({ hasText: "from the console" }).waitFor();
    await publish.getByLabel("Send as").selectOption("anonymous");
    await publish.getByRole("button", { name: "Send" }).click();
    await publish
      .getByRole("status")
      .filter({ hasText: /^Not sent: / })
      .waitFor();

    // A setting the form shows wrongly is refused at its field.
    await admin.getByLabel("Messages kept (0–1000)").fill("5000");
    await admin.getByRole("button", { name: "Save channel" }).click();
    await admin.locator("#channel-form .field-error").waitFor();
    await screenshot(admin, "admin-watch");
    await closeAll(carol, admin);
  });
});
