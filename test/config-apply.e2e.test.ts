import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { httpGraphQL } from "./helpers/graphql.js";
import { assertProperty } from "./helpers/property.js";
import { startServer, type TestServer } from "./helpers/server.js";
import { admin, createTrigger, stackStep } from "./helpers/triggers.js";

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ SEED_DEMO_ROOM: "false" });
});

const APPLY = `mutation ($config: JSON!, $prune: Boolean! = false, $dryRun: Boolean! = false) {
  applyConfig(config: $config, prune: $prune, dryRun: $dryRun) {
    applied unchanged changes { action kind key path fields { field from to } summary } problems { path message }
  }
}`;
const CREATE = `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`;
const DELETE = `mutation ($id: ID!) { deleteTrigger(id: $id) }`;
const STATE = `{ channels { pattern description active anonymousClients messaging presence history membersOnly }
  triggers { name revision description active tags actions channel order onError timing stack } }`;

const apply = (url: string, config: unknown, options: { prune?: boolean; dryRun?: boolean } = {}) =>
  admin(url, APPLY, { config, ...options });
/** Everything the server holds that a file configures, as the admin API reports it. */
const state = async (url: string) => (await admin(url, STATE)).data!;

describe("applyConfig", () => {
  it("is for the admin only", async () => {
    const anonymous = await httpGraphQL(server.httpUrl, APPLY, { config: { version: 1 }, dryRun: true });
    expect(anonymous.body.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("dry run: lists every problem at its path in the file, and changes nothing", async () => {
    const before = await state(server.httpUrl);
    const file = {
      version: 1,
      channels: [
        { pattern: "fine:*", history: 10 },
        { pattern: "room:*", history: 5000 },
        { pattern: "bad pattern", colour: "red" },
        { pattern: "fine:*" },
      ],
      triggers: [
        { name: "ok", actions: ["MESSAGE"], channel: "fine:*", stack: [{ set: "payload.a", value: "1" }] },
        {
          name: "two bad steps",
          actions: ["MESSAGE"],
          channel: "fine:*",
          stack: [{ log: "1" }, { set: "payload.a", value: "(((" }, { log: "2" }, { nonsense: true }],
        },
        { name: "after", actions: ["MESSAGE"], channel: "fine:*", timing: "AFTER", stack: [{ if: "true", then: [{ drop: true }] }] },
        { name: "", actions: [], channel: "x", stack: [] },
        { name: "ok", actions: ["MESSAGE"], channel: "other", stack: [] },
      ],
    };
    const result = (await apply(server.httpUrl, file, { dryRun: true })).data!.applyConfig;
    expect(result).toMatchObject({ applied: false, changes: [], unchanged: 0 });
    expect(result.problems.map((problem: { path: string }) => problem.path)).toEqual([
      "channels[1].history",
      "channels[2].colour",
      "channels[2].pattern",
      "channels[3].pattern",
      "triggers[1].stack[1].value",
      "triggers[1].stack[3]",
      "triggers[2].stack[0].then[0].drop",
      "triggers[3].name",
      "triggers[3].actions",
      "triggers[4].name",
    ]);
    expect(result.problems).toContainEqual({ path: "channels[1].history", message: "must be 0..1000" });
    expect(result.problems).toContainEqual({ path: "channels[3].pattern", message: '"fine:*" is the pattern of channels[0] too' });
    expect(result.problems).toContainEqual({ path: "triggers[4].name", message: '"ok" is the name of triggers[0] too' });
    expect(result.problems.find((problem: { path: string }) => problem.path === "triggers[1].stack[1].value").message).toMatch(
      /^expression does not compile/,
    );
    expect(await state(server.httpUrl)).toEqual(before);
  });

  it("refuses a file that nests too deep, or is not a configuration file, with a problem at its top", async () => {
    let deep: unknown = 1;
    for (let level = 0; level < 150; level++) deep = [deep];
    for (const config of [{ version: 1, triggers: [{ name: "deep", actions: ["MESSAGE"], channel: "x", stack: [deep] }] }, [], "text"]) {
      const result = (await apply(server.httpUrl, config, { dryRun: true })).data!.applyConfig;
      expect(result.problems).toHaveLength(1);
      expect(result.problems[0]).toMatchObject({
        path: "",
        message: expect.stringMatching(/nests deeper than 100 levels|must be an object/),
      });
      const refused = await apply(server.httpUrl, config);
      expect(refused.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", problems: result.problems });
    }
  });

  it("a file with a problem changes nothing: BAD_USER_INPUT lists every problem in extensions.problems", async () => {
    const before = await state(server.httpUrl);
    const file = {
      version: 1,
      channels: [{ pattern: "valid:*" }],
      triggers: [
        { name: "valid one", actions: ["MESSAGE"], channel: "valid:*", stack: [] },
        { name: "invalid", actions: ["MESSAGE"], channel: "valid:*", stack: [{ set: "payload.a", value: "1 +" }] },
      ],
    };
    const refused = await apply(server.httpUrl, file);
    expect(refused.data).toBeNull();
    expect(refused.errors?.[0]).toMatchObject({
      message: expect.stringMatching(
        /^The file has a problem, so nothing was applied: triggers\[1\]\.stack\[0\]\.value: expression does not compile/,
      ),
      extensions: { code: "BAD_USER_INPUT", problems: [{ path: "triggers[1].stack[0].value" }] },
    });
    expect(await state(server.httpUrl)).toEqual(before);
  });

  it("applies every change in one transaction: when the last cannot be written, the others are undone", async () => {
    // A second instance on the same database (no Redis here to keep it in step): it plans to create a
    // trigger whose name the first instance has taken meanwhile, so the third write fails in the database.
    const other = await startServer({ SEED_DEMO_ROOM: "false" }, server.dataDir);
    const file = {
      version: 1,
      channels: [{ pattern: "tx-a:*" }, { pattern: "tx-b:*" }],
      triggers: [{ name: "taken meanwhile", actions: ["MESSAGE"], channel: "tx-a:*", stack: [] }],
    };
    const planned = (await apply(other.httpUrl, file, { dryRun: true })).data!.applyConfig;
    expect(planned.changes.map((change: { summary: string }) => change.summary)).toEqual([
      "+ channel tx-a:*",
      "+ channel tx-b:*",
      '+ trigger "taken meanwhile" on tx-a:*',
    ]);
    await createTrigger(server.httpUrl, { name: "taken meanwhile", channel: "elsewhere", stack: [] });
    const before = await state(other.httpUrl);
    const failed = await apply(other.httpUrl, file);
    expect(failed.errors?.[0]).toMatchObject({
      message: expect.stringContaining('(while applying: + trigger "taken meanwhile" on tx-a:*; nothing was applied)'),
      extensions: { code: "CONFLICT" },
    });
    expect(await state(other.httpUrl)).toEqual(before);
    // What the database holds: a third instance loads it afresh.
    const fresh = await startServer({ SEED_DEMO_ROOM: "false" }, server.dataDir);
    const stored = await state(fresh.httpUrl);
    expect(stored.channels.map((channel: { pattern: string }) => channel.pattern)).not.toContain("tx-a:*");
    expect(stored.triggers.filter((trigger: { name: string }) => trigger.name === "taken meanwhile")).toMatchObject([
      { channel: "elsewhere" },
    ]);
    await Promise.all([other.stop(), fresh.stop()]);
  });

  it("plans, applies, reports the changes field by field, and then has nothing to do", async () => {
    const target = await startServer({ SEED_DEMO_ROOM: "false" });
    const file = {
      version: 1,
      channels: [{ pattern: "plan:*", history: 5, description: "planned" }],
      triggers: [{ name: "planned", actions: ["MESSAGE"], channel: "plan:*", stack: [{ log: "1" }] }],
    };
    const dry = (await apply(target.httpUrl, file, { dryRun: true })).data!.applyConfig;
    expect(dry).toEqual({
      applied: false,
      unchanged: 0,
      problems: [],
      changes: [
        { action: "CREATE", kind: "CHANNEL", key: "plan:*", path: "channels[0]", fields: [], summary: "+ channel plan:*" },
        { action: "CREATE", kind: "TRIGGER", key: "planned", path: "triggers[0]", fields: [], summary: '+ trigger "planned" on plan:*' },
      ],
    });
    expect((await state(target.httpUrl)).triggers).toEqual([]);
    const applied = (await apply(target.httpUrl, file)).data!.applyConfig;
    expect(applied).toMatchObject({ applied: true, changes: dry.changes });
    const changed = { ...file, triggers: [{ ...file.triggers[0], order: 2 }] };
    const update = (await apply(target.httpUrl, changed, { prune: true })).data!.applyConfig;
    expect(update).toMatchObject({
      applied: true,
      unchanged: 1,
      changes: [{ action: "UPDATE", kind: "TRIGGER", key: "planned", path: "triggers[0]", fields: [{ field: "order", from: 0, to: 2 }] }],
    });
    const pruned = (await apply(target.httpUrl, { version: 1 }, { prune: true })).data!.applyConfig;
    expect(pruned.changes.map((change: { action: string; key: string; path: null }) => [change.action, change.key, change.path])).toEqual([
      ["DELETE", "plan:*", null],
      ["DELETE", "planned", null],
    ]);
    expect(await state(target.httpUrl)).toEqual({ channels: [], triggers: [] });
    expect((await apply(target.httpUrl, { version: 1 })).data!.applyConfig).toEqual({
      applied: true,
      unchanged: 0,
      changes: [],
      problems: [],
    });
  });
});

describe("a dry run checks a trigger exactly as createTrigger does", () => {
  const trigger = fc.record({
    name: fc.constantFrom("checked", "", "x".repeat(201)),
    channel: fc.constantFrom("room:*", "bad channel", "*"),
    actions: fc.constantFrom(["MESSAGE"], [], ["JOIN", "LEAVE"]),
    timing: fc.constantFrom("BEFORE", "AFTER"),
    order: fc.constantFrom(0, 2_000_000),
    stack: fc.oneof(fc.array(stackStep, { maxLength: 4 }), fc.constant({ not: "a list" })),
  });

  it("finds a problem exactly when createTrigger refuses, first the one createTrigger names", async () => {
    await assertProperty(
      fc.asyncProperty(trigger, async (input) => {
        const checked = (await apply(server.httpUrl, { version: 1, triggers: [input] }, { dryRun: true })).data!.applyConfig;
        const created = await admin(server.httpUrl, CREATE, { input });
        if (created.data) {
          await admin(server.httpUrl, DELETE, { id: created.data.createTrigger.id });
          expect(checked.problems).toEqual([]);
          return;
        }
        expect(created.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
        const [first] = checked.problems;
        const field = String(created.errors![0]!.extensions!.path ?? created.errors![0]!.extensions!.field).replace(/^input\./, "");
        expect(first.path).toBe(`triggers[0].${field}`);
        expect(created.errors![0]!.message.endsWith(first.message)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
