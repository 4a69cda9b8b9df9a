import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { projectRoot } from "../../src/db.js";
import { ADMIN_TOKEN, freshDataDir } from "../helpers/server.js";

describe("npm run build", () => {
  it("compiles the server to JavaScript that node runs without tsx", { timeout: 120_000 }, async () => {
    await promisify(execFile)("npm", ["run", "build"], { cwd: projectRoot });
    const entry = join(projectRoot, "dist", "src", "main.js");
    expect(existsSync(entry)).toBe(true);

    // Plain node, no loader: the compiled server must not need TypeScript at run time.
    const child = spawn(process.execPath, [entry], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH, PORT: "0", HOST: "127.0.0.1", DATA_DIR: freshDataDir(), ADMIN_TOKEN, LOG_LEVEL: "info" },
    });
    let output = "";
    child.stderr.on("data", (chunk: Buffer) => (output += chunk));
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk;
          const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
          if (match) resolve(match[1]!);
        });
        void exited.then((code) => reject(new Error(`exited with ${code} before listening:\n${output}`)));
      });
      expect((await fetch(url.replace("/graphql", "/ready"))).status).toBe(200);
      const sent = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: `mutation { sendMessage(channel: "built", payload: 1) { delivered } }` }),
      });
      expect(await sent.json()).toEqual({ data: { sendMessage: { delivered: true } } });
      expect((await fetch(url.replace("/graphql", "/demo"))).status).toBe(200); // the pages are bundled at run time
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
  });
});
