import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { projectRoot } from "../src/db.js";
import { ErrorCode } from "../src/errors.js";
import { httpGraphQL } from "./helpers/graphql.js";
import { ADMIN_TOKEN, startServer, type TestServer } from "./helpers/server.js";

const run = promisify(execFile);

/** README.md and every page of docs/, as paths from the repository root. */
const PAGES = ["README.md", ...readdirSync(join(projectRoot, "docs")).map((name) => `docs/${name}`)].filter((path) => path.endsWith(".md"));
const read = (path: string) => readFileSync(join(projectRoot, path), "utf8");

interface CodeBlock {
  readonly info: string;
  readonly code: string;
  readonly line: number;
}

/** The fenced code blocks of a page, with their info strings. */
function codeBlocks(text: string): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== "```"; i++) body.push(lines[i]!);
    blocks.push({ info: open[1]!.trim(), code: body.join("\n"), line: start + 1 });
  }
  return blocks;
}

/** The page's text outside code blocks (where links and headings are). */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```$/gm, "");
}

/** A heading's anchor as GitHub makes it. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*]/g, "")
    .replace(/[^\p{L}\p{N}_\- ]/gu, "")
    .replace(/ /g, "-");
}

function anchorsOf(path: string): Set<string> {
  return new Set([...prose(read(path)).matchAll(/^#{1,6} (.+)$/gm)].map((match) => anchorOf(match[1]!)));
}

describe("the docs", () => {
  it("link only to files and headings that exist", () => {
    const broken: string[] = [];
    for (const page of PAGES) {
      for (const [, target] of prose(read(page)).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:)/.test(target!)) continue;
        const [file, anchor] = target!.split("#") as [string, string | undefined];
        const path = file === "" ? page : relative(projectRoot, join(projectRoot, dirname(page), file));
        if (!existsSync(join(projectRoot, path))) broken.push(`${page}: ${target} (no file ${path})`);
        else if (anchor !== undefined && path.endsWith(".md") && !anchorsOf(path).has(anchor))
          broken.push(`${page}: ${target} (no heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("name every setting of the server in the configuration reference", () => {
    const settings = [...read("src/env.ts").matchAll(/^ {4}([A-Z][A-Z0-9_]+):/gm)].map((match) => match[1]!);
    expect(settings.length).toBeGreaterThan(50);
    const reference = read("docs/reference.md");
    expect(settings.filter((name) => !reference.includes(`\`${name}\``))).toEqual([]);
  });

  it("explain every error code, and whether to retry, in the reference", () => {
    const rows = new Set([...read("docs/reference.md").matchAll(/^\| `([A-Z_]+)` \| .+ \| .+ \|$/gm)].map((match) => match[1]!));
    expect(Object.values(ErrorCode).filter((code) => !rows.has(code))).toEqual([]);
  });
});

const servers: TestServer[] = [];
afterAll(async () => {
  for (const server of servers) await server.stop();
});

/**
 * Code blocks marked `runnable` run as written, in order, against a server of their page's own:
 * GraphQL with the admin token (as GraphiQL sends it from its Headers tab), shell commands with
 * ADMIN_TOKEN set and localhost:4000 pointed at the test server.
 */
describe.each(PAGES.filter((page) => codeBlocks(read(page)).some((block) => block.info.endsWith(" runnable"))))(
  "the runnable examples of %s",
  (page) => {
    it("run as written, without errors", { timeout: 60_000 }, async () => {
      const server = await startServer();
      servers.push(server);
      const origin = new URL(server.httpUrl).origin;
      for (const block of codeBlocks(read(page)).filter((candidate) => candidate.info.endsWith(" runnable"))) {
        const where = `${page}:${block.line}`;
        if (block.info === "graphql runnable") {
          const { body } = await httpGraphQL(server.httpUrl, block.code, {}, { token: ADMIN_TOKEN });
          expect({ where, errors: body.errors }).toEqual({ where, errors: undefined });
          expect(body.data, where).toBeTruthy();
        } else if (block.info === "sh runnable") {
          const script = `set -euo pipefail\n${block.code.replaceAll("http://localhost:4000", origin)}`;
          const { stdout } = await run("bash", ["-c", script], { cwd: server.dataDir, env: { ...process.env, ADMIN_TOKEN } });
          expect({ where, errors: JSON.parse(stdout).errors }).toEqual({ where, errors: undefined });
        } else {
          throw new Error(`${where}: no way to run a "${block.info}" block`);
        }
      }
    });
  },
);
