import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { freePort } from "../../dev/net.js";
import { configCommand } from "../../src/cli/config.js";
import { projectRoot } from "../../src/db.js";
import { type ConfigFile, normalizeConfig } from "../../src/management/config-file.js";
import { assertProperty } from "../helpers/property.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "../helpers/server.js";
import { admin, createTrigger } from "../helpers/triggers.js";

// Every command is a process of its own, started with tsx: seconds each on a busy machine.
vi.setConfig({ testTimeout: 120_000 });

/** Servers without the demo room, so that what the tests create is all there is. */
const NO_DEMO_ROOM = { SEED_DEMO_ROOM: "false" };

const work = mkdtempSync(join(tmpdir(), "realtime-config-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the command as its own process: `node --import tsx src/cli/config.ts ...args`, which is what
 * `npm run -s config -- ...args` runs (one test goes through npm itself).
 */
function cli(args: string[], env: Record<string, string> = { ADMIN_TOKEN }, options: { viaNpm?: boolean } = {}): Promise<CliResult> {
  const { ADMIN_TOKEN: _inherited, ...inherited } = process.env;
  const [command, prefix] = options.viaNpm
    ? ["npm", ["run", "-s", "config", "--"]]
    : [process.execPath, ["--import", "tsx", "src/cli/config.ts"]];
  const child = spawn(command, [...prefix, ...args], { cwd: projectRoot, env: { ...inherited, ...env } });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk));
  return new Promise((resolve) => child.once("close", (code) => resolve({ code, stdout, stderr })));
}

const file = (name: string, config: unknown) => {
  const path = join(work, name);
  writeFileSync(path, typeof config === "string" ? config : JSON.stringify(config));
  return path;
};

const CHANNEL = `mutation ($input: CreateChannelInput!) { createChannel(input: $input) { id } }`;
const SAMPLE: ConfigFile = {
  version: 1,
  channels: [
    {
      pattern: "room:*",
      description: "chat rooms",
      active: true,
      anonymousClients: false,
      messaging: "AUTHENTICATED",
      presence: true,
      history: 50,
      membersOnly: false,
    },
    {
      pattern: "mods:*",
      description: null,
      active: true,
      anonymousClients: false,
      messaging: "ANYONE",
      presence: false,
      history: 0,
      membersOnly: true,
    },
  ],
  triggers: [
    {
      name: "shout",
      description: null,
      active: true,
      tags: ["fun"],
      actions: ["MESSAGE"],
      channel: "room:*",
      order: 0,
      onError: "REJECT",
      timing: "BEFORE",
      stack: [{ set: "payload.text", value: "$uppercase(payload.text)" }],
    },
    {
      name: "mods only",
      description: "gate",
      active: true,
      tags: [],
      actions: ["JOIN"],
      channel: "mods:*",
      order: 5,
      onError: "REJECT",
      timing: "BEFORE",
      stack: [{ if: "$not(client.extras.role = 'mod')", then: [{ reject: "'no'" }] }],
    },
  ],
};

let source: TestServer;
let target: TestServer;
beforeAll(async () => {
  // No demo room: the files these tests compare hold exactly what they create.
  [source, target] = await Promise.all([startServer(NO_DEMO_ROOM), startServer(NO_DEMO_ROOM)]);
  // Created in the reverse of the file's order: export sorts.
  for (const channel of [...SAMPLE.channels].reverse()) await admin(source.httpUrl, CHANNEL, { input: channel });
  for (const trigger of [...SAMPLE.triggers].reverse()) await createTrigger(source.httpUrl, { ...trigger });
});

describe("config export", () => {
  it("prints every channel config and trigger as stable JSON, nothing else on stdout", async () => {
    const result = await cli(["export", "--url", source.httpUrl], { ADMIN_TOKEN }, { viaNpm: true });
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(result.stdout)).toEqual(normalizeConfig(SAMPLE));
    expect(result.stdout).not.toMatch(/"id"|createdAt|updatedAt|revision/);
    const out = join(work, "exported.json");
    expect((await cli(["export", "--url", source.httpUrl, "--out", out])).stdout).toBe("");
    expect(readFileSync(out, "utf8")).toBe(result.stdout);
  });

  it("reads the admin token from the data folder's token file when ADMIN_TOKEN is unset", async () => {
    const dataDir = mkdtempSync(join(work, "data-"));
    writeFileSync(join(dataDir, "admin-token"), `${ADMIN_TOKEN}\n`);
    const result = await cli(["export", "--url", source.httpUrl, "--data-dir", dataDir], {});
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout).triggers).toHaveLength(2);
    const none = await cli(["export", "--url", source.httpUrl, "--data-dir", join(work, "nowhere")], {});
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no admin token: set ADMIN_TOKEN/);
  });
});

describe("export then apply", () => {
  it("round-trips: the server refuses a second trigger with a name in use, so the file it exports is one apply takes", async () => {
    const second = await admin(source.httpUrl, `mutation ($input: CreateTriggerInput!) { createTrigger(input: $input) { id } }`, {
      input: { ...SAMPLE.triggers[0], channel: "elsewhere" },
    });
    expect(second.errors?.[0]?.extensions?.code).toBe("CONFLICT");
    const exported = join(work, "round-trip.json");
    expect((await cli(["export", "--url", source.httpUrl, "--out", exported])).code).toBe(0);
    const copy = await startServer(NO_DEMO_ROOM);
    expect(await cli(["apply", exported, "--url", copy.httpUrl])).toMatchObject({ code: 0, stderr: "" });
    expect((await cli(["export", "--url", copy.httpUrl])).stdout).toBe(readFileSync(exported, "utf8"));
    expect(await cli(["apply", exported, "--url", copy.httpUrl, "--dry-run", "--exit-code"])).toMatchObject({ code: 0, stderr: "" });
  });
});

describe("config apply", () => {
  it("plans, applies, and then has nothing left to do; --dry-run --exit-code tells a pending plan by exit code 2", async () => {
    const path = file("sample.json", SAMPLE);
    const dry = await cli(["apply", path, "--url", target.httpUrl, "--dry-run", "--exit-code"]);
    expect(dry.code).toBe(2);
    expect(dry.stdout).toBe(
      [
        "+ channel mods:*",
        "+ channel room:*",
        '+ trigger "mods only" on mods:*',
        '+ trigger "shout" on room:*',
        "Plan: 4 to create, 0 to change, 0 to delete, 0 unchanged.",
        "",
      ].join("\n"),
    );
    expect((await admin(target.httpUrl, `{ triggers { id } }`)).data!.triggers).toEqual([]);
    const applied = await cli(["apply", path, "--url", target.httpUrl]);
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/Applied 4 changes\.\n$/);
    expect(JSON.parse((await cli(["export", "--url", target.httpUrl])).stdout)).toEqual(normalizeConfig(SAMPLE));
    const again = await cli(["apply", path, "--url", target.httpUrl, "--dry-run", "--exit-code"]);
    expect(again).toMatchObject({ code: 0, stdout: "Plan: 0 to create, 0 to change, 0 to delete, 4 unchanged.\n" });
  });

  it("changes by pattern and name as a new revision, and deletes what the file lacks only with --prune", async () => {
    const server = await startServer(NO_DEMO_ROOM);
    await cli(["apply", file("base.json", SAMPLE), "--url", server.httpUrl]);
    await createTrigger(server.httpUrl, { name: "extra", channel: "x", stack: [] });
    const changed: ConfigFile = {
      ...SAMPLE,
      channels: [{ ...SAMPLE.channels[0]!, history: 10 }, ...SAMPLE.channels.slice(1)],
      triggers: [{ ...SAMPLE.triggers[0]!, order: 3 }, ...SAMPLE.triggers.slice(1)],
    };
    const path = file("changed.json", changed);
    const kept = await cli(["apply", path, "--url", server.httpUrl]);
    expect(kept.stdout).toContain("~ channel room:*: history: 50 -> 10\n");
    expect(kept.stdout).toContain('~ trigger "shout" (revision 1): order: 0 -> 3\n');
    expect(kept.stdout).not.toContain("extra");
    const triggers = (await admin(server.httpUrl, `{ triggers { name revision revisions { note } } }`)).data!.triggers;
    expect(triggers.find((t: { name: string }) => t.name === "shout")).toEqual({
      name: "shout",
      revision: 2,
      revisions: [{ note: "config apply" }, { note: "config apply" }],
    });
    const pruned = await cli(["apply", path, "--url", server.httpUrl, "--prune"]);
    expect(pruned.stdout).toBe('- trigger "extra"\nPlan: 0 to create, 0 to change, 1 to delete, 4 unchanged.\nApplied 1 changes.\n');
    expect((await admin(server.httpUrl, `{ triggers { name } }`)).data!.triggers.map((t: { name: string }) => t.name).sort()).toEqual([
      "mods only",
      "shout",
    ]);
  });

  it("exits 1 with the reason for a bad file, a file the server refuses, a wrong token or an unreachable server", async () => {
    const broken = await cli(["apply", file("broken.json", "{ not json"), "--url", target.httpUrl]);
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/broken\.json is not JSON/);
    const unknownField = await cli([
      "apply",
      file("unknown.json", { version: 1, triggers: [{ ...SAMPLE.triggers[0], colour: "red" }] }),
      "--url",
      target.httpUrl,
    ]);
    expect(unknownField).toMatchObject({ code: 1, stdout: "" });
    expect(unknownField.stderr).toMatch(
      /^config: \S*unknown\.json has 1 problem, so nothing was applied:\n {2}triggers\[0\]\.colour: unknown field/,
    );
    const invalid = {
      version: 1,
      triggers: [{ name: "bad", actions: ["MESSAGE"], channel: "b", stack: [{ set: "payload.x", value: "(((" }] }],
    };
    const refused = await cli(["apply", file("invalid.json", invalid), "--url", target.httpUrl]);
    expect(refused).toMatchObject({ code: 1, stdout: "" });
    expect(refused.stderr).toMatch(/\n {2}triggers\[0\]\.stack\[0\]\.value: expression does not compile/);
    const wrongToken = await cli(["export", "--url", target.httpUrl], { ADMIN_TOKEN: "not-the-admin-token-at-all" });
    expect(wrongToken).toMatchObject({ code: 1, stdout: "" });
    expect(wrongToken.stderr).not.toContain("not-the-admin-token-at-all");
    const closed = await cli(["export", "--url", `http://127.0.0.1:${await freePort()}/graphql`]);
    expect(closed.code).toBe(1);
    expect(closed.stderr).toMatch(/cannot reach/);
  });

  it("--dry-run has the server check the file: every problem it would refuse, at its path, and nothing changes", async () => {
    const server = await startServer(NO_DEMO_ROOM);
    const before = (await cli(["export", "--url", server.httpUrl])).stdout;
    const refusedByServer = {
      version: 1,
      channels: [{ pattern: "room:*", history: 5000 }],
      triggers: [
        { name: "fine", actions: ["MESSAGE"], channel: "room:*", stack: [] },
        { name: "bad steps", actions: ["MESSAGE"], channel: "room:*", stack: [{ log: "1" }, { set: "payload.x", value: "'a' &" }] },
        { name: "late stop", actions: ["MESSAGE"], channel: "room:*", timing: "AFTER", stack: [{ drop: true }] },
      ],
    };
    const path = file("server-refuses.json", refusedByServer);
    const dry = await cli(["apply", path, "--url", server.httpUrl, "--dry-run", "--exit-code"]);
    expect(dry).toMatchObject({ code: 1, stdout: "" });
    expect(dry.stderr.split("\n")).toEqual([
      `config: ${path} has 3 problems:`,
      "  channels[0].history: must be 0..1000",
      expect.stringMatching(/^ {2}triggers\[1\]\.stack\[1\]\.value: expression does not compile/),
      "  triggers[2].stack[0].drop: an AFTER trigger runs on the delivered event and cannot drop it",
      "",
    ]);
    expect((await cli(["export", "--url", server.httpUrl])).stdout).toBe(before);
  });

  it("applies all or nothing: three changes, the third invalid, change nothing", async () => {
    const server = await startServer(NO_DEMO_ROOM);
    await cli(["apply", file("base-all-or-nothing.json", SAMPLE), "--url", server.httpUrl]);
    const before = (await cli(["export", "--url", server.httpUrl])).stdout;
    const threeChanges: ConfigFile = {
      ...SAMPLE,
      channels: [{ ...SAMPLE.channels[0]!, history: 20 }, ...SAMPLE.channels.slice(1)],
      triggers: [
        { ...SAMPLE.triggers[0]!, order: 7 },
        SAMPLE.triggers[1]!,
        { ...SAMPLE.triggers[0]!, name: "third", stack: [{ set: "payload.x", value: "$undefinedFunction(" }] },
      ],
    };
    const path = file("three-changes.json", threeChanges);
    const failed = await cli(["apply", path, "--url", server.httpUrl]);
    expect((await cli(["export", "--url", server.httpUrl])).stdout).toBe(before);
    const revisions = (await admin(server.httpUrl, `{ triggers { name revision } }`)).data!.triggers;
    expect(revisions).toEqual(expect.arrayContaining([{ name: "shout", revision: 1 }]));
    expect(failed).toMatchObject({ code: 1, stdout: "" });
    expect(failed.stderr).toMatch(/has 1 problem, so nothing was applied:\n {2}triggers\[2\]\.stack\[0\]\.value: /);
  });

  it("refuses a file too deep or too large to send with a clear reason, before sending anything", async () => {
    const depth = 100_000;
    const deep = file(
      "deep.json",
      `{"version":1,"triggers":[{"name":"deep","actions":["MESSAGE"],"channel":"x","stack":[${"[".repeat(depth)}${"]".repeat(depth)}]}]}`,
    );
    // An unreachable URL: the command must stop before it would send anything.
    const unreachable = `http://127.0.0.1:${await freePort()}/graphql`;
    const tooDeep = await cli(["apply", deep, "--url", unreachable, "--dry-run"]);
    expect(tooDeep).toMatchObject({ code: 1, stdout: "" });
    expect(tooDeep.stderr).toBe(`config: ${deep} nests deeper than 100 levels (a trigger's stack may nest at most 64)\n`);
    const huge = join(work, "huge.json");
    writeFileSync(huge, "");
    truncateSync(huge, 17 * 1024 * 1024);
    const tooLarge = await cli(["apply", huge, "--url", unreachable]);
    expect(tooLarge).toMatchObject({ code: 1, stdout: "" });
    expect(tooLarge.stderr).toBe(`config: ${huge} is ${17 * 1024 * 1024} bytes; a configuration file may have at most 16777216 (16 MiB)\n`);
    // Larger than the server takes: its limit is named.
    const many = {
      version: 1,
      triggers: Array.from({ length: 40 }, (_, n) => ({ ...SAMPLE.triggers[0]!, name: `t${n}`, description: "d".repeat(2000) })),
    };
    const small = await startServer({ ...NO_DEMO_ROOM, MAX_HTTP_BODY_BYTES: "65536" });
    const refused = await cli(["apply", file("many.json", many), "--url", small.httpUrl]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(
      /refused the request as too large \(HTTP 413: Request body larger than 65536 bytes\); it has \d+ bytes: raise the server's MAX_HTTP_BODY_BYTES/,
    );
  });

  it("has --help, and refuses unknown options with exit code 1", async () => {
    const help = await cli(["apply", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--dry-run[\s\S]*--prune[\s\S]*--exit-code[\s\S]*--url/);
    expect((await cli(["apply", "x.json", "--bogus"])).code).toBe(1);
  });
});

describe("apply then export", () => {
  const word = fc.stringMatching(/^[a-z][a-z0-9]{0,7}$/);
  const channel = fc.record({
    pattern: word.map((w) => `${w}:*`),
    description: fc.option(fc.string({ maxLength: 20 }), { nil: null }),
    active: fc.boolean(),
    anonymousClients: fc.boolean(),
    messaging: fc.constantFrom("ANYONE" as const, "AUTHENTICATED" as const, "NOBODY" as const),
    presence: fc.boolean(),
    history: fc.integer({ min: 0, max: 1000 }),
    membersOnly: fc.boolean(),
  });
  const trigger = fc.record({
    name: word,
    description: fc.option(fc.string({ maxLength: 20 }), { nil: null }),
    active: fc.boolean(),
    tags: fc.uniqueArray(word, { maxLength: 3 }),
    actions: fc.subarray(["MESSAGE" as const, "JOIN" as const, "LEAVE" as const], { minLength: 1 }),
    channel: word,
    order: fc.integer({ min: -5, max: 5 }),
    onError: fc.constantFrom("REJECT" as const, "DROP" as const, "DELIVER" as const),
    timing: fc.constantFrom("BEFORE" as const, "AFTER" as const),
    stack: fc.array(fc.record({ set: fc.constant("payload.v"), value: fc.integer().map(String) }), { maxLength: 3 }),
  });
  const config = fc.record({
    version: fc.constant(1 as const),
    channels: fc.uniqueArray(channel, { selector: (c) => c.pattern, maxLength: 4 }),
    triggers: fc.uniqueArray(trigger, { selector: (t) => t.name, maxLength: 4 }),
  });

  it("gives back the file, whatever the server held before (applied with --prune)", async () => {
    const server = await startServer(NO_DEMO_ROOM);
    const run = async (args: string[]) => {
      let out = "";
      let err = "";
      const code = await configCommand({ out: (text) => (out += text), err: (text) => (err += text) }).run([
        ...args,
        "--url",
        server.httpUrl,
      ]);
      return { code, out, err };
    };
    process.env.ADMIN_TOKEN = ADMIN_TOKEN;
    await assertProperty(
      fc.asyncProperty(config, async (wanted) => {
        const path = file("property.json", wanted);
        expect(await run(["apply", path, "--prune"])).toMatchObject({ code: 0, err: "" });
        expect(JSON.parse((await run(["export"])).out)).toEqual(normalizeConfig(wanted));
        expect((await run(["apply", path, "--prune", "--dry-run", "--exit-code"])).code).toBe(0);
      }),
      { numRuns: 12 },
    );
  });
});
