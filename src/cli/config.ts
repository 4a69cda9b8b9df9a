/**
 * `npm run -s config -- export [--out FILE]` and `npm run -s config -- apply FILE [--dry-run]
 * [--prune] [--exit-code]`: channel configurations and triggers as code, through a running
 * server's GraphQL API. Exit codes: 0 done (or nothing to do), 1 error, 2 the plan has changes
 * (with `--dry-run --exit-code`).
 */
import { readFileSync, realpathSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, Option } from "commander";
import {
  type ConfigFile,
  formatConfig,
  MAX_CONFIG_DEPTH,
  MAX_CONFIG_FILE_BYTES,
  type PlanAction,
  planSummary,
  type ServerChannel,
  type ServerTrigger,
  TOO_DEEP,
} from "../management/config-file.js";
import { nestsDeeperThan } from "../validation.js";

/** Exit codes of the command. */
export const EXIT = { ok: 0, error: 1, planDiffers: 2 } as const;

const CHANNEL_FIELDS = "id pattern description active anonymousClients messaging presence history membersOnly";
const TRIGGER_FIELDS = "id revision name description active tags actions channel order onError timing stack";
const APPLY_CONFIG = `mutation ($config: JSON!, $prune: Boolean!, $dryRun: Boolean!) {
  applyConfig(config: $config, prune: $prune, dryRun: $dryRun) { applied unchanged changes { action summary } problems { path message } }
}`;

/** Where to reach the server, and as whom. */
interface Connection {
  readonly url: string;
  readonly token: string;
}

/** A problem the server found in a file, at its path in the file. */
interface Problem {
  readonly path: string;
  readonly message: string;
}

/** What applyConfig answers. */
interface ApplyResult {
  readonly applied: boolean;
  readonly unchanged: number;
  readonly changes: { readonly action: PlanAction; readonly summary: string }[];
  readonly problems: Problem[];
}

/** A failure to report without a stack trace, with the problems the server found in the file, if any. */
class CliError extends Error {
  constructor(
    message: string,
    readonly problems: readonly Problem[] = [],
  ) {
    super(message);
  }
}

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
  const body = JSON.stringify({ query, variables });
  let response: Response;
  try {
    response = await fetch(connection.url, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${connection.token}` },
      body,
    });
  } catch (error) {
    throw new CliError(
      `cannot reach ${connection.url}: ${(error as Error & { cause?: Error }).cause?.message ?? (error as Error).message}`,
    );
  }
  if (response.status === 401) throw new CliError(`${connection.url} refused the admin token (HTTP 401)`);
  if (response.status === 413) {
    const reason = await response.text().then(
      (text) => (JSON.parse(text) as { errors?: { message?: string }[] }).errors?.[0]?.message,
      () => undefined,
    );
    throw new CliError(
      `${connection.url} refused the request as too large (HTTP 413${reason ? `: ${reason}` : ""}); it has ${Buffer.byteLength(body)} bytes: raise the server's MAX_HTTP_BODY_BYTES`,
    );
  }
  let answer: { data?: T; errors?: { message: string; extensions?: { code?: string; problems?: Problem[] } }[] };
  try {
    answer = (await response.json()) as typeof answer;
  } catch {
    throw new CliError(`${connection.url} answered HTTP ${response.status} without a GraphQL response`);
  }
  const error = answer.errors?.[0];
  if (error) throw new CliError(`${error.extensions?.code ?? "ERROR"}: ${error.message}`, error.extensions?.problems ?? []);
  return answer.data as T;
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

/**
 * A file's JSON, read whole before anything is sent: at most {@link MAX_CONFIG_FILE_BYTES}, nesting
 * at most {@link MAX_CONFIG_DEPTH} levels (`JSON.parse` takes any depth; what sends it would not).
 * Its content is for the server to check.
 */
function readConfigFile(file: string): unknown {
  let text: string;
  try {
    const { size } = statSync(file);
    if (size > MAX_CONFIG_FILE_BYTES) {
      throw new CliError(`${file} is ${size} bytes; a configuration file may have at most ${MAX_CONFIG_FILE_BYTES} (16 MiB)`);
    }
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (error instanceof CliError) throw error;
    throw new CliError(`cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CliError(`${file} is not JSON: ${(error as Error).message}`);
  }
  if (nestsDeeperThan(json, MAX_CONFIG_DEPTH)) throw new CliError(`${file} ${TOO_DEEP}`);
  return json;
}

/** The plan as the command prints it: one line per change, then the summary. */
function planText(result: ApplyResult): string {
  const lines = result.changes.map((change) => change.summary);
  lines.push(
    planSummary(
      result.changes.map((change) => change.action),
      result.unchanged,
    ),
  );
  return `${lines.join("\n")}\n`;
}

/** The problems the server found, one per line under a heading. */
function problemText(file: string, problems: readonly Problem[], applied: string): string {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return [`${file} has ${count}${applied}:`, ...problems.map((problem) => `  ${problem.path || "(the file)"}: ${problem.message}`)].join(
    "\n",
  );
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
      .description(
        "Makes the server match FILE (channels by pattern, triggers by name) in one transaction, all or nothing, and prints the changes.",
      )
      .argument("<file>", "a file written by export (or by hand)")
      .option("--dry-run", "have the server check the file and print the plan, changing nothing")
      .option("--prune", "also delete channel configurations and triggers that FILE lacks")
      .option("--exit-code", "with --dry-run, exit 2 when the plan has changes"),
  ).action(async (file: string, options: { url: string; dataDir: string; dryRun?: boolean; prune?: boolean; exitCode?: boolean }) => {
    const config = readConfigFile(file);
    const connection = connect(options);
    const dryRun = options.dryRun === true;
    let result: ApplyResult;
    try {
      ({ applyConfig: result } = await request<{ applyConfig: ApplyResult }>(connection, APPLY_CONFIG, {
        config,
        prune: options.prune === true,
        dryRun,
      }));
    } catch (error) {
      if (error instanceof CliError && error.problems.length > 0) {
        throw new CliError(problemText(file, error.problems, ", so nothing was applied"));
      }
      throw error;
    }
    if (result.problems.length > 0) throw new CliError(problemText(file, result.problems, ""));
    io.out(planText(result));
    if (dryRun) {
      if (options.exitCode && result.changes.length > 0) exitCode = EXIT.planDiffers;
      return;
    }
    io.out(result.changes.length === 0 ? "Nothing to apply.\n" : `Applied ${result.changes.length} changes.\n`);
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
