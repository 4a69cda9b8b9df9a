import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { afterAll } from "vitest";
import { projectRoot } from "../../src/db.js";

export { freePort } from "../../dev/net.js";

import { ADMIN_TOKEN, freshDataDir, LOOPBACK_LIMITS } from "./server.js";

/** A server running as its own process (`node --import tsx src/main.ts`). */
export interface ServerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly httpUrl: string;
  readonly wsUrl: string;
  readonly healthUrl: string;
  /** Everything the process printed so far. */
  output(): string;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

const running = new Set<ServerProcess>();
afterAll(async () => {
  await Promise.all([...running].map((server) => server.stop("SIGKILL")));
});

/** How a server process is started: as the tests usually do, or as the README says (`npm start`). */
const LAUNCHERS = {
  node: [process.execPath, ["--import", "tsx", "src/main.ts"]],
  npm: ["npm", ["start", "--silent"]],
} as const;

/**
 * Starts a server process on a free loopback port and waits for its "listening" log line;
 * `onOutput` sees everything it prints from the start, before it listens too.
 */
export async function spawnServer(
  env: Record<string, string> = {},
  onOutput?: (output: string) => void,
  launcher: keyof typeof LAUNCHERS = "node",
): Promise<ServerProcess> {
  const [command, args] = LAUNCHERS[launcher];
  const child = spawn(command, args, {
    cwd: projectRoot,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      DATA_DIR: freshDataDir(),
      ADMIN_TOKEN,
      LOG_LEVEL: "info",
      LOG_FORMAT: "json",
      ...LOOPBACK_LIMITS,
      ...env,
    },
  });
  let output = "";
  const take = (chunk: Buffer) => {
    output += chunk;
    onOutput?.(output);
  };
  child.stdout.on("data", take);
  child.stderr.on("data", take);
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      // The message is the same in both log formats.
      const match = /listening on (http:\/\/[^\s"]+)/.exec(output);
      if (match) resolve(match[1]!);
    };
    child.stdout.on("data", check);
    void exited.then((code) => reject(new Error(`server exited with ${code} before listening:\n${output}`)));
  });
  const server: ServerProcess = {
    child,
    httpUrl: url,
    wsUrl: url.replace("http://", "ws://"),
    healthUrl: url.replace("/graphql", "/health"),
    output: () => output,
    stop: (signal = "SIGTERM") => {
      running.delete(server);
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  running.add(server);
  return server;
}
