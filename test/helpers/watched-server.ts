import { afterAll } from "vitest";
import { joinBySubscription, SEND_MESSAGE, type TestEvent } from "./channels.js";
import { connectWs, type GraphQLResponse, httpGraphQL, type Subscription } from "./graphql.js";
import { type ServerProcess, spawnServer } from "./process.js";
import { ADMIN_TOKEN } from "./server.js";

/** How long `/health` or a bystander's delivery may take before the check counts it as missing. */
const CHECK_TIMEOUT_MS = 5_000;

/**
 * A server process under attack and a bystander who should never notice: a graphql-ws client on a
 * channel of its own. {@link WatchedServer.check} says what went wrong since the last check.
 */
export interface WatchedServer {
  readonly server: ServerProcess;
  /** Problems after a case: the process exited, `/health` did not answer 200, the bystander did not receive. Empty when all is well. */
  check(): Promise<string[]>;
}

let current: { env: Record<string, string>; watched: WatchedServer } | null = null;

afterAll(async () => {
  await current?.watched.server.stop();
  current = null;
});

/** True while the process runs. */
export const alive = (server: ServerProcess) => server.child.exitCode === null && server.child.signalCode === null;

/** The last lines a process printed, for a failure message. */
export const lastWords = (server: ServerProcess) => server.output().split("\n").slice(-15).join("\n");

/**
 * The running watched server for `env`, started (again) when there is none or the last one died, so
 * one case that kills the server does not fail every case after it.
 */
export async function watchedServer(env: Record<string, string>, bystanderChannel = "watch:bystander"): Promise<WatchedServer> {
  if (current && current.env === env && alive(current.watched.server)) return current.watched;
  await current?.watched.server.stop("SIGKILL");
  const server = await spawnServer(env);
  const client = await connectWs(server.wsUrl);
  const { subscription } = await joinBySubscription(client, bystanderChannel);
  let serial = 0;
  const watched: WatchedServer = { server, check: () => checkServer(server, subscription, bystanderChannel, ++serial) };
  current = { env, watched };
  return watched;
}

async function checkServer(
  server: ServerProcess,
  bystander: Subscription<{ channel: TestEvent }>,
  channel: string,
  mark: number,
): Promise<string[]> {
  const exited = () => `the server process exited (${server.child.exitCode ?? server.child.signalCode}):\n${lastWords(server)}`;
  await new Promise((resolve) => setImmediate(resolve));
  if (!alive(server)) return [exited()];
  const problems: string[] = [];
  const health = await fetch(server.healthUrl, { signal: AbortSignal.timeout(CHECK_TIMEOUT_MS) }).then(
    (response) => response.status,
    (error: unknown) => `unreachable: ${String(error)}`,
  );
  if (health !== 200) problems.push(`GET /health answered ${health}`);
  const sent = await httpGraphQL(server.httpUrl, SEND_MESSAGE, { channel, payload: { mark } }, { token: ADMIN_TOKEN }).then(
    ({ body }) => body,
    (error: unknown): GraphQLResponse => ({ errors: [{ message: String(error) }] }),
  );
  if (sent.data?.sendMessage?.delivered !== true)
    problems.push(`the bystander's message was not sent: ${JSON.stringify(sent).slice(0, 300)}`);
  else {
    try {
      for (
        let event = await bystander.next(CHECK_TIMEOUT_MS);
        event.data?.channel.payload?.mark !== mark;
        event = await bystander.next(CHECK_TIMEOUT_MS)
      ) {
        if (event.errors) throw new Error(JSON.stringify(event.errors));
      }
    } catch (error) {
      problems.push(`the bystander did not receive a message sent after the case: ${(error as Error).message}`);
    }
  }
  if (!alive(server)) problems.push(exited());
  return problems;
}
