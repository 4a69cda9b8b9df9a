import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../../../test/helpers/server.js";

/**
 * Runs the "Use from your frontend" recipe of docs/client.md as written: the package installed into an app
 * folder the way `npm install <tarball>` would (its built `files` and package.json), the page's
 * codegen.ts, src/app.ts and tsconfig.json, GraphQL Code Generator with the client preset, then `tsc`
 * and esbuild. No registry: the app's other dependencies are links to this repository's.
 */

const root = fileURLToPath(new URL("../../../", import.meta.url));
const packageDir = join(root, "packages", "client");
const run = promisify(execFile);

/** Whatever the app's `npm install` would have put in node_modules besides the package itself. */
const APP_DEPENDENCIES = ["@graphql-codegen", "@graphql-typed-document-node", "graphql", "graphql-ws", "typescript"];

/** The fenced blocks of the docs' section whose first line names a file (`// codegen.ts`). */
function recipeFiles(): Map<string, string> {
  const page = readFileSync(join(root, "docs", "client.md"), "utf8");
  const section = page.split(/^## Use from your frontend$/m)[1]?.split(/^#{1,2} /m)[0];
  if (!section) throw new Error('docs/client.md has no "## Use from your frontend" section');
  const files = new Map<string, string>();
  for (const [, body] of section.matchAll(/^```\w*\n([\s\S]*?)^```$/gm)) {
    const named = /^\/\/ ([\w./-]+)\n/.exec(body!);
    if (named) files.set(named[1]!, body!);
  }
  return files;
}

/** Builds the package (as `npm pack` would ship it) into `<app>/node_modules/@realtime-channels/client`. */
async function installPackage(app: string): Promise<string> {
  const target = join(app, "node_modules", "@realtime-channels", "client");
  const manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { files: string[] };
  await run(join(root, "node_modules", ".bin", "tsc"), ["-p", join(packageDir, "tsconfig.build.json"), "--outDir", join(target, "dist")]);
  cpSync(join(packageDir, "package.json"), join(target, "package.json"));
  for (const file of manifest.files.filter((name) => name !== "dist"))
    cpSync(join(packageDir, file), join(target, file), { recursive: true });
  for (const dependency of APP_DEPENDENCIES)
    symlinkSync(join(root, "node_modules", dependency), join(app, "node_modules", dependency), "dir");
  return target;
}

/** An app folder with the package installed, the recipe's files written and `schema` in codegen.ts. */
async function createApp(schema?: string): Promise<string> {
  const app = mkdtempSync(join(tmpdir(), "frontend-recipe-"));
  try {
    await installPackage(app);
    for (const [path, body] of recipeFiles()) {
      mkdirSync(dirname(join(app, path)), { recursive: true });
      writeFileSync(
        join(app, path),
        schema && path === "codegen.ts" ? body.replace('schema: "schema.graphql"', `schema: ${JSON.stringify(schema)}`) : body,
      );
    }
    cpSync(join(root, "schema.graphql"), join(app, "schema.graphql"));
    return app;
  } catch (error) {
    rmSync(app, { recursive: true, force: true });
    throw error;
  }
}

const codegen = (app: string) => run(join(root, "node_modules", ".bin", "graphql-codegen"), [], { cwd: app });
const tsc = (app: string) => run(join(root, "node_modules", ".bin", "tsc"), ["-p", "tsconfig.json"], { cwd: app });

/** tsc's output when it fails, or null when the app type-checks. */
async function typeErrors(app: string): Promise<string | null> {
  try {
    await tsc(app);
    return null;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    return `${failed.stdout ?? ""}${failed.stderr ?? ""}`;
  }
}

describe("the README recipe: codegen with the client preset, then the package", () => {
  const apps: string[] = [];
  let app: string;
  beforeAll(async () => {
    app = await createApp();
    apps.push(app);
    await codegen(app);
  }, 120_000);
  afterAll(() => {
    for (const folder of apps) rmSync(folder, { recursive: true, force: true });
  });

  it("names the three files it asks for", () => {
    expect([...recipeFiles().keys()].sort()).toEqual(["codegen.ts", "src/app.ts", "tsconfig.json"]);
  });

  it("installs as its package.json says: every export points at a built file", () => {
    const target = join(app, "node_modules", "@realtime-channels", "client");
    const manifest = JSON.parse(readFileSync(join(target, "package.json"), "utf8")) as {
      exports: Record<string, Record<string, string> | string>;
    };
    const targets = Object.values(manifest.exports).flatMap((entry) => (typeof entry === "string" ? [entry] : Object.values(entry)));
    expect(targets).toContain("./dist/index.d.ts");
    for (const file of targets) expect(existsSync(join(target, file)), file).toBe(true);
  });

  it("generates typed documents from schema.graphql, and the app type-checks against the package", async () => {
    expect(readFileSync(join(app, "src", "gql", "graphql.ts"), "utf8")).toContain("RecentTextsQuery");
    expect(await typeErrors(app)).toBeNull();
  }, 120_000);

  it("refuses a wrong variable and a misread field at type-check time", async () => {
    writeFileSync(
      join(app, "src", "wrong.ts"),
      [
        'import { createRealtimeClient } from "@realtime-channels/client";',
        'import { graphql } from "./gql";',
        "const RecentTexts = graphql(`query RecentTextsWrong($channel: String!) { history(channel: $channel) { seq } }`);",
        'const realtime = createRealtimeClient({ url: "ws://localhost:4000/graphql" });',
        "export const wrongVariable = realtime.execute(RecentTexts, { channel: 42 });",
        'export const misreadField = realtime.execute(RecentTexts, { channel: "a" }).then((data) => data.history[0]?.payload);',
        "",
      ].join("\n"),
    );
    try {
      await codegen(app);
      const errors = await typeErrors(app);
      expect(errors).toMatch(/src\/wrong\.ts\(5,\d+\): error TS2322/); // channel: number is not a string
      expect(errors).toMatch(/src\/wrong\.ts\(6,\d+\): error TS2339/); // payload was not selected
      expect(errors).not.toMatch(/src\/app\.ts/);
    } finally {
      rmSync(join(app, "src", "wrong.ts"));
      await codegen(app);
    }
  }, 120_000);

  it("bundles with esbuild, with the operations as strings and no GraphQL parser", async () => {
    const esbuild = await import("esbuild");
    const result = await esbuild.build({
      absWorkingDir: app,
      entryPoints: ["src/app.ts"],
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    // What ends up in the bundle (graphql-ws's entry imports graphql for its server half, which is shaken off).
    const [output] = Object.values(result.metafile.outputs);
    const bundled = Object.entries(output!.inputs).flatMap(([input, { bytesInOutput }]) => (bytesInOutput > 0 ? [input] : []));
    expect(bundled.some((input) => input.includes("@realtime-channels/client/dist/realtime-client.js"))).toBe(true);
    expect(bundled.some((input) => input.includes("graphql-ws"))).toBe(true);
    expect(bundled.filter((input) => /node_modules\/graphql\//.test(input))).toEqual([]);
    expect(result.outputFiles[0]!.text).toContain("query RecentTexts");
  }, 120_000);

  describe("against a running server instead of schema.graphql", () => {
    let server: TestServer;
    beforeAll(async () => {
      server = await startServer();
    });
    afterAll(async () => {
      await server?.stop();
    });

    it("generates the same types by introspection", async () => {
      const live = await createApp(server.httpUrl);
      apps.push(live);
      await codegen(live);
      expect(readFileSync(join(live, "src", "gql", "graphql.ts"), "utf8")).toBe(
        readFileSync(join(app, "src", "gql", "graphql.ts"), "utf8"),
      );
      expect(await typeErrors(live)).toBeNull();
    }, 120_000);
  });
});
