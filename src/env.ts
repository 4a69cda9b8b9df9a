import { z } from "zod";

const booleanString = z
  .enum(["true", "false", "1", "0"])
  .transform((value) => value === "true" || value === "1");

/**
 * The server's settings, read from the environment once at start. Every variable is documented in
 * the README's configuration table; a bad value stops the server with a message naming it.
 */
const EnvSchema = z.object({
  /** TCP port to listen on. */
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  /** Interface to listen on. */
  HOST: z.string().min(1).default("0.0.0.0"),
  /** Folder for the SQLite file and the generated admin token. */
  DATA_DIR: z.string().min(1).default("./data"),
  /** `file:<path>` for SQLite (default `file:<DATA_DIR>/realtime.db`) or `postgres://...`. */
  DATABASE_URL: z
    .string()
    .regex(/^(file:|postgres(ql)?:\/\/)/, "must start with file: or postgres://")
    .optional(),
  /** Bearer token for management operations. Generated and stored in DATA_DIR when unset. */
  ADMIN_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  /** pino log level. */
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** `development` shows error details to clients; anything else masks them. */
  NODE_ENV: z.string().default("production"),
  /** Serve GraphiQL at GET /graphql. */
  GRAPHIQL: booleanString.default(true),
  /** Allow schema introspection. */
  INTROSPECTION: booleanString.default(true),
});

/** Parsed, validated server settings. */
export type Env = z.infer<typeof EnvSchema>;

/** Thrown when the environment holds a bad value; the message names every bad variable. */
export class EnvError extends Error {
  override readonly name = "EnvError";
}

/**
 * Parses settings from an environment object (`process.env` by default). Empty strings count as unset.
 * @throws EnvError naming each bad variable
 */
export function parseEnv(source: Record<string, string | undefined> = process.env): Env {
  const present = Object.fromEntries(
    Object.entries(source).filter(([, value]) => value !== undefined && value !== ""),
  );
  const result = EnvSchema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new EnvError(`Invalid configuration: ${problems.join("; ")}`);
  }
  return result.data;
}
