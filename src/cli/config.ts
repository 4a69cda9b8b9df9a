/**
 * `npm run -s config -- export [--out FILE]` and `npm run -s config -- apply FILE [--dry-run]
 * [--prune] [--exit-code]`: channel configurations and triggers as code, through a running
 * server's GraphQL API. Exit codes: 0 done (or nothing to do), 1 error, 2 the plan has changes
 * (with `--dry-run --exit-code`).
 */
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, Option } from "commander";
import {
  type ChannelEntry,
  type ConfigFile,
  describePlan,
  formatConfig,
  type PlanStep,
  parseConfig,
  planChanges,
  type ServerChannel,
  type ServerTrigger,
  type TriggerEntry,
} from "./config-file.js";

/** Exit codes of the command. */
export const EXIT = { ok: 0, error: 1, planDiffers: 2 } as const;

const CHANNEL_FIELDS = "id pattern description active anonymousClients messaging presence history membersOnly";
const TRIGGER_FIELDS = "id revision name description active tags actions channel order onError timing stack";

/** Where to reach the server, and as whom. */
interface Connection {
  readonly url: string;
  readonly token: string;
}

/** A failure to report in one line, without a stack trace. */
class CliError extends Error {}

/** The admin token: `ADMIN_TOKEN`, else the token file the server generated in its data folder. */
function adminToken(dataDir: string): string {
  if (process.env.ADMIN_TOKEN) return process.env.ADMIN_TOKEN;
  const path = join(dataDir, "admin-token");
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    throw new CliError(`no admin token: set ADMIN_TOKEN, or run this where the server keeps ${path} (--data-dir)`);
  }
}

async function request<T>(connection: Connection, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  let response: Response;
  try {
    response = await fetch(connection.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${connection.token}` },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw new CliError(
      `cannot reach ${connection.url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`,
    );
  }
  if (response.status === 401) throw new CliError(`${connection.url} refused the admin token (HTTP 401)`);
  let body: { data?: T; errors?: { message: string; extensions?: { code?: string } }[] };
  try {
    body = (await response.json()) as typeof body;
  } catch {
    throw new CliError(`${connection.url} answered HTTP ${response.status} without a GraphQL response`);
  }
  const error = body.errors?.[0];
  if (error) throw new CliError(`${error.extensions?.code ?? "ERROR"}: ${error.message}`);
  return body.data as T;
}

async function readServer(connection: Connection): Promise<{ channels: ServerChannel[]; triggers: ServerTrigger[] }> {
  return request(connection, `{ channels { ${CHANNEL_FIELDS} } triggers { ${TRIGGER_FIELDS} } }`);
}

/** The file's form of what the server holds. */
function asFile(server: { channels: ServerChannel[]; triggers: ServerTrigger[] }): ConfigFile {
  return {
    version: 1,
    channels: server.channels.map(({ id: _id, ...channel }) => channel),
    triggers: server.triggers.map(({ id: _id, revision: _revision, ...trigger }) => trigger),
  };
}

const withoutPattern = ({ pattern: _pattern, ...rest }: ChannelEntry) => rest;

async function applyStep(connection: Connection, step: PlanStep): Promise<void> {
  const note = "config apply";
  switch (step.kind) {
    case "create-channel":
      await request(connection, `mutation ($input: CreateChannelInput!) { createChannel(input: $input) { id } }`, { input: step.channel });
      return;
    case "update-channel":
      await request(
        connection,
        `mutation ($pattern: String!, $input: UpdateChannelInput!) { updateChannel(pattern: $pattern, input: $input) { id } }`,
        {
          pattern: step.channel.pattern,
          input: withoutPattern(step.channel),
        },
      );
      return;
    case "delete-channel":
      await request(connection, `mutation ($pattern: String!) { deleteChannel(pattern: $pattern) }`, { pattern: step.pattern });
      return;
    case "create-trigger":
      await request(
        connection,
        `mutation ($input: CreateTriggerInput!, $note: String) { createTrigger(input: $input, note: $note) { id } }`,
        {
          input: step.trigger satisfies TriggerEntry,
          note,
        },
      );
      return;
    case "update-trigger":
      // expectedRevision: a trigger changed since the plan was made is not overwritten.
      await request(
        connection,
        `mutation ($id: ID!, $input: UpdateTriggerInput!, $revision: Int, $note: String) { updateTrigger(id: $id, input: $input, expectedRevision: $revision, note: $note) { id } }`,
        { id: step.id, input: step.trigger, revision: step.revision, note },
      );
      return;
    case "delete-trigger":
      await request(connection, `mutation ($id: ID!) { deleteTrigger(id: $id) }`, { id: step.id });
      return;
  }
}

interface Io {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/** Builds the command; `run` resolves to the exit code. */
export function configCommand(io: Io): { run(argv: readonly string[]): Promise<number> } {
  let exitCode: number = EXIT.ok;
  const program = new Command("config")
    .description("Channel configurations and triggers as code, through a running server's GraphQL API.")
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError();
  const shared = (command: Command) =>
    command
      .addOption(new Option("--url <url>", "the server's GraphQL endpoint").default(`http://127.0.0.1:${process.env.PORT ?? 4000}/graphql`))
      .addOption(
        new Option("--data-dir <dir>", "where to find the admin token file when ADMIN_TOKEN is unset").default(
          process.env.DATA_DIR ?? "./data",
        ),
      );
  const connect = (options: { url: string; dataDir: string }): Connection => ({ url: options.url, token: adminToken(options.dataDir) });

  shared(
    program
      .command("export")
      .description("Writes every channel configuration and trigger as JSON (stable order, no ids or timestamps) to stdout or --out.")
      .option("--out <file>", "write to this file instead of stdout"),
  ).action(async (options: { url: string; dataDir: string; out?: string }) => {
    const text = formatConfig(asFile(await readServer(connect(options))));
    if (options.out) writeFileSync(options.out, text);
    else io.out(text);
  });

  shared(
    program
      .command("apply")
      .description("Makes the server match FILE (channels by pattern, triggers by name), printing the plan first.")
      .argument("<file>", "a file written by export (or by hand)")
      .option("--dry-run", "print the plan and change nothing")
      .option("--prune", "also delete channel configurations and triggers that FILE lacks")
      .option("--exit-code", "with --dry-run, exit 2 when the plan has changes"),
  ).action(async (file: string, options: { url: string; dataDir: string; dryRun?: boolean; prune?: boolean; exitCode?: boolean }) => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
    const wanted = parseConfig(text, file);
    const connection = connect(options);
    const plan = planChanges(wanted, await readServer(connection), { prune: options.prune === true });
    io.out(describePlan(plan));
    if (options.dryRun) {
      if (options.exitCode && plan.steps.length > 0) exitCode = EXIT.planDiffers;
      return;
    }
    let done = 0;
    for (const step of plan.steps) {
      try {
        await applyStep(connection, step);
      } catch (error) {
        throw new CliError(
          `${(error as Error).message}\n  while applying: ${describePlan({ steps: [step], unchanged: 0 }).split("\n")[0]}\n  ${done} of ${plan.steps.length} changes were applied`,
        );
      }
      done++;
    }
    io.out(plan.steps.length === 0 ? "Nothing to apply.\n" : `Applied ${done} changes.\n`);
  });

  return {
    run: async (argv) => {
      try {
        await program.parseAsync([...argv], { from: "user" });
        return exitCode;
      } catch (error) {
        if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.error;
        io.err(`config: ${(error as Error).message}\n`);
        return EXIT.error;
      }
    },
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const command = configCommand({ out: (text) => process.stdout.write(text), err: (text) => process.stderr.write(text) });
  process.exitCode = await command.run(process.argv.slice(2));
}
