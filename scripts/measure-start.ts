/**
 * Measures how long the server takes to start and how much memory it holds when idle, run from
 * source with tsx (`npm start`) and compiled (`npm run build`, then `npm run start:prod`). Builds
 * first. Prints a Markdown table; nothing is written.
 *
 *   npm run measure:start [-- --runs=5]
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { projectRoot } from "../src/db.js";

const runs = Number(/--runs=(\d+)/.exec(process.argv.join(" "))?.[1] ?? 5);
const IDLE_SETTLE_MS = 3000;

const ways = {
  "tsx (npm start)": [join(projectRoot, "node_modules", ".bin", "tsx"), "src/main.ts"],
  "node dist (npm run start:prod)": [process.execPath, "dist/src/main.js"],
} as const;

/** Starts the server once on a migrated data folder; returns ms until it listens and its idle RSS in MiB. */
async function measure(command: readonly string[], dataDir: string): Promise<{ startMs: number; rssMiB: number }> {
  const started = performance.now();
  const child = spawn(command[0]!, command.slice(1), {
    cwd: projectRoot,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      ADMIN_TOKEN: "measure-admin-token-0123456789",
      LOG_LEVEL: "info",
    },
  });
  let output = "";
  const listening = new Promise<number>((resolve, reject) => {
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk;
      if (output.includes('"msg":"listening on')) resolve(performance.now() - started);
    });
    child.once("exit", (code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
  const startMs = await listening;
  await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
  // tsx runs the server in a child node process: measure the process that listens, the deepest one.
  const pids = [child.pid!];
  for (;;) {
    const children = spawnSync("pgrep", ["-P", String(pids.at(-1))], { encoding: "utf8" })
      .stdout.trim()
      .split("\n")
      .filter(Boolean);
    if (children.length === 0) break;
    pids.push(Number(children[0]));
  }
  const rssKiB = pids.reduce((sum, pid) => sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0), 0);
  child.kill("SIGTERM");
  await new Promise((resolve) => child.once("exit", resolve));
  return { startMs, rssMiB: rssKiB / 1024 };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

const build = spawnSync("npm", ["run", "build"], { cwd: projectRoot, stdio: "inherit" });
if (build.status !== 0) process.exit(build.status ?? 1);

const dataDir = mkdtempSync(join(tmpdir(), "measure-start-"));
try {
  await measure(ways["node dist (npm run start:prod)"], dataDir); // migrates the data folder once
  console.log(`| how | start to listening, median of ${runs} (ms) | idle RSS, median (MiB) |`);
  console.log("| --- | ---: | ---: |");
  for (const [name, command] of Object.entries(ways)) {
    const results = [];
    for (let i = 0; i < runs; i++) results.push(await measure(command, dataDir));
    console.log(`| ${name} | ${median(results.map((r) => r.startMs)).toFixed(0)} | ${median(results.map((r) => r.rssMiB)).toFixed(1)} |`);
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
