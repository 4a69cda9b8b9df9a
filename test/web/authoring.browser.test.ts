import type { Page } from "playwright-core";
import { beforeAll, expect, it } from "vitest";
import { SEND_MESSAGE } from "../helpers/channels.js";
import { eventually } from "../helpers/eventually.js";
import { httpGraphQL } from "../helpers/graphql.js";
import { startReceiver } from "../helpers/receiver.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";
import { describeBrowser, screenshot, suitePages } from "./browser.js";

let server: TestServer;
let origin: string;
const newPage = suitePages({ width: 1280, height: 900 });

beforeAll(async () => {
  server = await startServer();
  origin = new URL(server.httpUrl).origin;
});

/** The admin console, signed in, in a context of its own; confirmation dialogs are accepted. */
async function openAdmin(at = origin): Promise<Page> {
  const page = await newPage(`${at}/admin`);
  page.on("dialog", (dialog) => void dialog.accept());
  await page.getByLabel("Admin token").fill(ADMIN_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("status").filter({ hasText: "Signed in" }).waitFor();
  return page;
}

async function openTrigger(page: Page, name: string): Promise<void> {
  await page.locator("#trigger-rows").getByRole("button", { name, exact: true }).click();
  await page
    .locator("#trigger-form-heading")
    .filter({ hasText: `Edit ${name}` })
    .waitFor();
}

const stackField = (page: Page) => page.getByLabel("Function stack (JSON)");

describeBrowser("the trigger author's workflow in the console", () => {
  it("tests a draft before saving, as an anonymous or an authenticated client, and says when it would not run", async () => {
    const page = await openAdmin();
    await page.getByRole("button", { name: "New trigger" }).click();
    await page.getByLabel("Name", { exact: true }).fill("mods only");
    await page.getByLabel("Channel", { exact: true }).fill("mods:*");
    await page.locator("#trigger-actions").getByLabel("Joins").check();
    await page.locator("#trigger-actions").getByLabel("Messages").uncheck();
    await stackField(page).fill(
      JSON.stringify([{ if: "client.extras.role != 'mod'", then: [{ reject: "'Moderators only'", code: "NOT_A_MODERATOR" }] }]),
    );

    const test = page.locator("#test-form");
    await test.getByLabel("Action").selectOption("JOIN");
    await test.getByLabel("Channel name").fill("mods:1");
    // Anonymous: the missing role compares as false, and `!=` lets the client in. The test shows it.
    await test.getByRole("button", { name: "Run test" }).click();
    await page.locator("#test-result .badge").filter({ hasText: "DELIVERED" }).waitFor();

    await test.getByLabel("Identity").selectOption("authenticated");
    await test.getByLabel("Token claims (JSON, the client's extras)").fill('{ "role": "user" }');
    await test.getByRole("button", { name: "Run test" }).click();
    await page.locator("#test-result").getByText("NOT_A_MODERATOR: Moderators only").waitFor();

    await test.getByLabel("Action").selectOption("MESSAGE");
    await test.getByRole("button", { name: "Run test" }).click();
    await page.locator("#match-note").filter({ hasText: "this trigger runs on JOIN only, not on MESSAGE" }).waitFor();
    await screenshot(page, "admin-test-draft");
    // Nothing was saved.
    expect((await admin(server.httpUrl, `{ triggers { name } }`)).data!.triggers).toEqual([]);

    // Saving keeps the test's channel, action and result where they were, also on a later save.
    await test.getByLabel("Action").selectOption("JOIN");
    await test.getByRole("button", { name: "Run test" }).click();
    await page.locator("#test-result").getByText("NOT_A_MODERATOR: Moderators only").waitFor();
    for (const revision of [1, 2]) {
      if (revision === 2) await page.locator("#trigger-description").fill("moderators only");
      await page.getByRole("button", { name: revision === 1 ? "Create trigger" : "Save trigger" }).click();
      await page
        .getByRole("status")
        .filter({ hasText: revision === 1 ? "Trigger created" : `revision ${revision}` })
        .waitFor();
      expect(await test.getByLabel("Channel name").inputValue()).toBe("mods:1");
      expect(await test.getByLabel("Action").inputValue()).toBe("JOIN");
      await page.locator("#test-result").getByText("NOT_A_MODERATOR: Moderators only").waitFor({ timeout: 1000 });
    }
    await page.context().close();
  });

  it("saves revisions, shows a revision's diff, rolls back, and refuses to overwrite someone else's change", async () => {
    const trigger = await createTrigger(server.httpUrl, { name: "stamp", channel: "rev:*", stack: [{ set: "payload.v", value: "1" }] });
    const page = await openAdmin();
    await openTrigger(page, "stamp");
    await stackField(page).fill(JSON.stringify([{ set: "payload.v", value: "2" }], null, 2));
    await page.getByRole("button", { name: "Save trigger" }).click();
    await page.getByRole("status").filter({ hasText: "Trigger saved as revision 2." }).waitFor();

    const revisions = page.locator("#revision-rows tr");
    await revisions.filter({ hasText: "2 (current)" }).waitFor();
    await revisions.filter({ hasText: "created" }).getByRole("button", { name: "Compare with 2" }).click();
    const diff = page.locator("#revision-diff-lines li");
    await diff.filter({ hasText: '"value": "1"' }).and(page.locator("li.removed")).waitFor();
    await diff.filter({ hasText: '"value": "2"' }).and(page.locator("li.added")).waitFor();
    await screenshot(page, "admin-revisions-diff");

    await revisions.filter({ hasText: "created" }).getByRole("button", { name: "Roll back to 1" }).click();
    await page.getByRole("status").filter({ hasText: "Rolled back: stamp is now revision 3." }).waitFor();
    expect(JSON.parse(await stackField(page).inputValue())).toEqual([{ set: "payload.v", value: "1" }]);
    await revisions.filter({ hasText: "rolled back to revision 1" }).waitFor();
    const sent = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "rev:1", payload: {} });
    expect(sent.body.data!.sendMessage.event.payload).toEqual({ v: 1 });

    // Someone else saves revision 4 while the console still shows revision 3.
    await admin(server.httpUrl, `mutation ($id: ID!) { updateTrigger(id: $id, input: { order: 7 }) { revision } }`, { id: trigger.id });
    await page.locator("#trigger-form").getByLabel("Description").fill("my change");
    await page.getByRole("button", { name: "Save trigger" }).click();
    await page
      .locator("#trigger-error")
      .filter({ hasText: "someone else changed this trigger since you opened it (now revision 4)" })
      .waitFor();
    const stored = (await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { description order revision } }`, { id: trigger.id }))
      .data!.trigger;
    expect(stored).toEqual({ description: null, order: 7, revision: 4 });
    await page.context().close();
  });

  it("streams a trigger's runs live, with client, revision, input and output", async () => {
    await createTrigger(server.httpUrl, { name: "live", channel: "live:*", stack: [{ set: "payload.seen", value: "true" }] });
    const page = await openAdmin();
    await openTrigger(page, "live");
    await page.locator("#runs-live").filter({ hasText: "Live" }).waitFor();
    // The stream may start just after the console says it is connected: send until a run shows up.
    const rows = page.locator("#run-rows tr");
    for (let n = 0; (await rows.count()) === 0; n++) {
      expect(n).toBeLessThan(50);
      await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel: "live:1", payload: { n } });
      await page.waitForTimeout(100);
    }
    const row = rows.first();
    await row.filter({ hasText: "MODIFIED" }).filter({ hasText: "live:1" }).waitFor();
    await row.getByText("Input and output").click();
    await row.locator("pre").filter({ hasText: '"seen": true' }).waitFor();
    expect(await row.locator("td").nth(3).textContent()).toBe("1"); // the revision
    // The date goes with the time; the client's id is shortened, whole on hover and copied by its button.
    const createdAt = await row.locator("td time").first().getAttribute("datetime");
    expect(await row.locator("td").first().textContent()).toContain(String(new Date(createdAt!).getFullYear()));
    const clientId = await row.locator("td").nth(2).locator("code").getAttribute("title");
    expect(clientId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await row.locator("td").nth(2).locator("code").textContent()).toBe(`${clientId!.slice(0, 8)}…`);
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
    await row.getByRole("button", { name: `Copy ${clientId}` }).click();
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(clientId);
    expect(
      await row
        .locator("td")
        .first()
        .evaluate((cell) => getComputedStyle(cell).whiteSpace),
    ).toBe("nowrap");
    await screenshot(page, "admin-live-runs");
    await page.context().close();
  });

  it("shows a trigger's state by key prefix and clears the keys shown", async () => {
    const trigger = await createTrigger(server.httpUrl, {
      name: "remember",
      channel: "remember:*",
      stack: [
        { incr: "'count:' & channel", as: "n" },
        { put: "'last:' & channel", value: "payload", ttl: "3600" },
      ],
    });
    for (const channel of ["remember:a", "remember:b", "remember:a"]) {
      await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: { from: channel } });
    }
    const page = await openAdmin();
    await openTrigger(page, "remember");
    const rows = page.locator("#state-rows tr");
    await rows.nth(3).waitFor();
    expect(await rows.locator("td:first-child").allTextContents()).toEqual([
      "count:remember:a",
      "count:remember:b",
      "last:remember:a",
      "last:remember:b",
    ]);
    await page.locator('#state-rows tr[data-key="count:remember:a"] pre').filter({ hasText: "2" }).waitFor();
    expect(await page.locator('#state-rows tr[data-key="count:remember:a"] td').nth(2).textContent()).toBe("never");
    expect(await page.locator('#state-rows tr[data-key="last:remember:b"] time').count()).toBe(1);

    await page.getByLabel("Key prefix").fill("last:");
    await page.locator("#state-form").getByRole("button", { name: "Show keys" }).click();
    await expect.poll(() => rows.count()).toBe(2);
    await page.getByRole("button", { name: "Clear these keys" }).click(); // the dialog is accepted
    await page.locator("#state-note").filter({ hasText: "Removed 2 keys." }).waitFor();
    await expect.poll(() => rows.count()).toBe(0);
    const left = await admin(server.httpUrl, `query ($id: ID!) { trigger(id: $id) { state { key } } }`, { id: trigger.id });
    expect(left.data!.trigger.state.map((e: { key: string }) => e.key)).toEqual(["count:remember:a", "count:remember:b"]);
    await screenshot(page, "admin-trigger-state");
    await page.context().close();
  });

  it("smooths the rough edges: channel created, tagged triggers stay visible, the http step is hinted, the tools stand apart", async () => {
    const page = await openAdmin();
    await page.getByRole("button", { name: "New channel" }).click();
    await page.getByLabel("Pattern").fill("edges:*");
    await page.getByRole("button", { name: "Create channel" }).click();
    await page.getByRole("status").filter({ hasText: "Channel created." }).waitFor();

    await createTrigger(server.httpUrl, { name: "tagged", channel: "edges:*", tags: ["moderation"], stack: [] });
    await page.reload();
    await page.getByRole("status").filter({ hasText: "Signed in" }).waitFor();
    await page.getByLabel("Filter by tag").selectOption("moderation");
    await page.getByRole("button", { name: "New trigger" }).click();
    await page.getByLabel("Name", { exact: true }).fill("untagged");
    await page.getByLabel("Channel", { exact: true }).fill("edges:*");
    await page.getByRole("button", { name: "Create trigger" }).click();
    await page.getByRole("status").filter({ hasText: "Trigger created." }).waitFor();
    await page.locator("#trigger-rows").getByRole("button", { name: "untagged", exact: true }).waitFor();

    expect(await page.locator("#stack-hint").textContent()).toContain("http");
    // The test form sits beside the trigger form; revisions and runs start below the form's buttons.
    const save = (await page.getByRole("button", { name: "Save trigger" }).boundingBox())!;
    const testHeading = (await page.getByRole("heading", { name: "Test on a sample event" }).boundingBox())!;
    const tools = (await page.locator("#trigger-tools").boundingBox())!;
    expect(testHeading.y).toBeLessThan(save.y);
    expect(tools.y).toBeGreaterThan(save.y + save.height + 16);
    await screenshot(page, "admin-trigger-layout");
    await page.context().close();
  });

  it("shows an AFTER trigger's timing and its runs' attempts, and retries a FAILED run", async () => {
    let answer = 404;
    const receiver = await startReceiver(() => ({
      status: answer,
      headers: { "content-type": "text/plain" },
      body: answer === 404 ? "no such archive" : "archived as #7",
    }));
    const secret = `whsec_${Buffer.from("a-console-webhook-secret-012345").toString("base64")}`;
    const hooked = await startServer({ WEBHOOK_SECRET: secret, WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiver.port}` });
    const trigger = await createTrigger(hooked.httpUrl, {
      name: "archive",
      channel: "archive",
      timing: "AFTER",
      stack: [{ http: { url: `'${receiver.origin}/archive?key=archive-key-1'`, body: "payload" }, as: "r" }],
    });
    await httpGraphQL(hooked.httpUrl, SEND_MESSAGE, { channel: "archive", payload: { n: 1 } });
    const runs = `query ($id: ID!) { trigger(id: $id) { runs { outcome attempts } } }`;
    await eventually("the run FAILED", async () => (await admin(hooked.httpUrl, runs, { id: trigger.id })).data!.trigger.runs[0]?.outcome, {
      until: (outcome) => outcome === "FAILED",
      timeoutMs: 10_000,
    });

    const page = await openAdmin(new URL(hooked.httpUrl).origin);
    await page.locator("#trigger-rows tr").filter({ hasText: "after delivery" }).waitFor();
    await openTrigger(page, "archive");
    expect(await page.getByLabel("Timing").inputValue()).toBe("AFTER");
    const row = page.locator("#run-rows tr").first();
    await row.filter({ hasText: "FAILED" }).filter({ hasText: "1 attempt" }).waitFor();
    await row.getByText("the receiver answered 404").first().waitFor(); // the run's error (its attempt's too, in Attempts)

    answer = 200;
    await row.getByRole("button", { name: "Retry" }).click();
    await page.locator("#runs-note").filter({ hasText: "Queued again" }).waitFor();
    // The attempt streams in (triggerRuns): the row turns DELIVERED without a refresh.
    await page.locator("#run-rows tr").first().filter({ hasText: "DELIVERED" }).filter({ hasText: "1 attempt" }).waitFor();
    expect((await admin(hooked.httpUrl, runs, { id: trigger.id })).data!.trigger.runs[0]).toMatchObject({
      outcome: "DELIVERED",
      attempts: 1,
    });
    expect(await page.locator("#run-rows tr").first().getByRole("button", { name: "Retry" }).count()).toBe(0);

    // Every attempt is listed, the retried one after the failed one, each with its webhook call.
    const delivered = page.locator("#run-rows tr").first();
    await delivered.getByText("Attempts (2)").click();
    const attempts = delivered.locator(".run-attempts li");
    await attempts.nth(1).waitFor();
    expect(await attempts.count()).toBe(2);
    const [failedAttempt, deliveredAttempt] = [attempts.nth(0), attempts.nth(1)];
    expect(await failedAttempt.textContent()).toContain("#1");
    expect(await failedAttempt.locator(".badge").textContent()).toBe("FAILED");
    expect(await failedAttempt.textContent()).toContain("the receiver answered 404");
    expect(await failedAttempt.locator(".run-request code").textContent()).toBe(`POST ${receiver.origin}/archive`);
    expect(await failedAttempt.locator(".run-request").textContent()).toContain("→ 404");
    expect(await failedAttempt.locator(".run-request pre").textContent()).toBe("no such archive");
    expect(await deliveredAttempt.textContent()).toContain("#2");
    expect(await deliveredAttempt.locator(".badge").textContent()).toBe("DELIVERED");
    expect(await deliveredAttempt.locator(".run-request").textContent()).toContain("→ 200");
    expect(await deliveredAttempt.locator(".run-request pre").textContent()).toBe("archived as #7");
    // The date and time of each attempt, as the console shows times.
    expect(await deliveredAttempt.locator("time").getAttribute("datetime")).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(await delivered.textContent()).not.toContain("archive-key-1");
    const [first, second] = receiver.requests;
    expect(second!.webhookId).toBe(first!.webhookId); // the retry keeps the webhook-id
    await screenshot(page, "admin-after-runs");
    await page.context().close();
  });
});
