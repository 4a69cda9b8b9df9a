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

/** Starts a server process on a free loopback port and waits for its "listening" log line. */
export async function spawnServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
    cwd: projectRoot,
    env: {
      ...process.env,
      PORT: "0",
      HOST: "127.0.0.1",
      DATA_DIR: freshDataDir(),
      ADMIN_TOKEN,
      LOG_LEVEL: "info",
      ...LOOPBACK_LIMITS,
      ...env,
    },
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
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
