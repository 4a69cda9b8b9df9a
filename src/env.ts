import { z } from "zod";

const booleanString = z.enum(["true", "false", "1", "0"]).transform((value) => value === "true" || value === "1");

/**
 * The server's settings, read from the environment once at start. Every variable is documented in
 * docs/reference.md; a bad value stops the server with a message naming it.
 */
const EnvSchema = z
  .object({
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
    /** `pretty` (a line per entry, for people) or `json` (for log collectors); by default pretty when stdout is a terminal. */
    LOG_FORMAT: z.enum(["pretty", "json"]).default(() => (process.stdout.isTTY ? "pretty" : "json")),
    /** `development` shows error details to clients; anything else masks them. */
    NODE_ENV: z.string().default("production"),
    /** Serve GraphiQL at GET /graphql. */
    GRAPHIQL: booleanString.default(true),
    /** Allow schema introspection. */
    INTROSPECTION: booleanString.default(true),
    /** Wall-clock limit for one trigger's run, in milliseconds. */
    TRIGGER_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(1000),
    /** `redis://...`: share events, presence, sequence numbers and config changes between instances. */
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, "must start with redis:// or rediss://")
      .optional(),
    /** Prefix for every Redis key and pub/sub channel, so deployments can share one Redis. */
    REDIS_PREFIX: z.string().min(1).max(100).default("realtime:"),
    /** With Redis: how long a dead instance's presence entries last before they are ignored. */
    REDIS_PRESENCE_TTL_SECONDS: z.coerce.number().int().min(1).max(3600).default(15),
    /** On start, give the demo room (room:lobby) presence and history when no configuration applies to it. */
    SEED_DEMO_ROOM: booleanString.default(true),
    /** Refuse channels that no channel configuration matches. */
    REQUIRE_CHANNEL_CONFIG: booleanString.default(false),
    /** Default for unconfigured channels: anonymous clients may join and listen. */
    CHANNEL_ANONYMOUS_CLIENTS: booleanString.default(true),
    /** Default for unconfigured channels: who may send. */
    CHANNEL_MESSAGING: z.enum(["ANYONE", "AUTHENTICATED", "NOBODY"]).default("ANYONE"),
    /** Default for unconfigured channels: presence on or off. */
    CHANNEL_PRESENCE: booleanString.default(false),
    /** Default for unconfigured channels: messages kept as history, 0..1000. */
    CHANNEL_HISTORY: z.coerce.number().int().min(0).max(1000).default(0),
    /** Largest message payload (and, separately, options) in bytes of JSON; checked before triggers run. */
    MAX_PAYLOAD_BYTES: z.coerce
      .number()
      .int()
      .min(1)
      .default(64 * 1024),
    /** Largest HTTP request body in bytes. */
    MAX_HTTP_BODY_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(256 * 1024),
    /** Largest WebSocket message in bytes (larger ones close the socket with 1009). */
    MAX_WS_MESSAGE_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .default(256 * 1024),
    /** Bytes a WebSocket may leave unread in the server's send buffer before it is dropped as too slow. */
    MAX_WS_BUFFERED_BYTES: z.coerce
      .number()
      .int()
      .min(64 * 1024)
      .default(4 * 1024 * 1024),
    /** Events a subscription served per subscriber (SSE, or a root directive or fragment) may have waiting before its reader is cut off. */
    MAX_QUEUED_EVENTS: z.coerce.number().int().min(1).default(1000),
    /** Open channel subscriptions per WebSocket. */
    MAX_SUBSCRIPTIONS_PER_SOCKET: z.coerce.number().int().min(1).default(100),
    /** Channels one client may be a member of at once. */
    MAX_CHANNELS_PER_CLIENT: z.coerce.number().int().min(1).default(128),
    /** Messages one client may send per second. */
    MAX_MESSAGES_PER_SECOND: z.coerce.number().min(0.1).default(50),
    /** Joins (joinChannel or a channel subscription) one client may make per second. */
    MAX_JOINS_PER_SECOND: z.coerce.number().min(0.1).default(100),
    /** Messages anonymous clients may send per second from one address, all together. */
    MAX_ADDRESS_MESSAGES_PER_SECOND: z.coerce.number().min(0.1).default(100),
    /** Joins anonymous clients may make per second from one address, all together. */
    MAX_ADDRESS_JOINS_PER_SECOND: z.coerce.number().min(0.1).default(200),
    /** Open connections from one address: WebSockets, and (without TRUST_PROXY) every TCP connection from its first byte. */
    MAX_CONNECTIONS_PER_ADDRESS: z.coerce.number().int().min(1).default(1000),
    /** New WebSocket connections one address may open per second. */
    MAX_ADDRESS_CONNECTIONS_PER_SECOND: z.coerce.number().min(0.1).default(50),
    /** Proxies in front of the server whose `X-Forwarded-For` entries are believed (0: use the peer address). */
    TRUST_PROXY: z.coerce.number().int().min(0).max(10).default(0),
    /** How often each WebSocket is pinged; one that has not answered by the next ping is cut off. */
    WS_KEEPALIVE_MS: z.coerce.number().int().min(100).default(12_000),
    /** Time a connection has to send a request's headers, WebSocket upgrades included (then it is answered 408 and closed). */
    HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
    /** Time a connection has to send a whole request, body included (at least HTTP_HEADERS_TIMEOUT_MS). */
    HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
    /** Time a new WebSocket has to send connection_init (then it is closed with 4408). */
    WS_INIT_TIMEOUT_MS: z.coerce.number().int().min(100).default(3000),
    /** Time shutdown keeps serving with /ready at 503 before it stops accepting connections, so load balancers notice first. */
    SHUTDOWN_DELAY_MS: z.coerce.number().int().min(0).max(300_000).default(0),
    /** Time shutdown waits for in-flight sends before closing sockets. */
    SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
    /** GraphQL limits (GraphQL Armor): selection depth, aliases, directives, tokens and cost per operation. */
    GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(1).default(10),
    GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(0).default(15),
    GRAPHQL_MAX_DIRECTIVES: z.coerce.number().int().min(0).default(50),
    GRAPHQL_MAX_TOKENS: z.coerce.number().int().min(100).default(5000),
    GRAPHQL_MAX_COST: z.coerce.number().int().min(100).default(5000),
    /** Bearer token a Prometheus scrape of GET /metrics must send; unset leaves /metrics open. */
    METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
    /** Comma-separated origins allowed by CORS, or `*`. */
    CORS_ORIGINS: z.string().default("*"),
    /** Send `Access-Control-Allow-Credentials: true` (browsers then attach cookies); never with `CORS_ORIGINS=*`. */
    CORS_CREDENTIALS: booleanString.default(false),
    /** Signing secret for the requests of trigger `http` steps (Standard Webhooks, `whsec_...`); unset disables http steps. */
    WEBHOOK_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
    /** Comma-separated hosts (`host` or `host:port`) trigger `http` steps may reach although they are internal. */
    WEBHOOK_ALLOW_HOSTS: z.string().default(""),
    /** AFTER triggers: the wait after a run's first failed attempt, in milliseconds; it doubles with each further failure (with jitter). */
    TRIGGER_RETRY_BASE_MS: z.coerce.number().int().min(1).max(3_600_000).default(1000),
    /** AFTER triggers: the longest wait between attempts from doubling; a longer `Retry-After` answer still wins. */
    TRIGGER_RETRY_MAX_MS: z.coerce.number().int().min(1).max(86_400_000).default(60_000),
    /** AFTER triggers: attempts per run in all; when the last fails, the run is FAILED. */
    TRIGGER_RETRY_LIMIT: z.coerce.number().int().min(1).max(100).default(5),
    /**
     * AFTER triggers: the longest `Retry-After` a receiver's answer may ask for, in milliseconds; a longer
     * one is read as this. 0 ignores `Retry-After`.
     */
    TRIGGER_RETRY_AFTER_MAX_MS: z.coerce.number().int().min(0).max(86_400_000).default(300_000),
    /** AFTER triggers: pending runs at most (all instances together); sends whose runs would pass it are refused. */
    TRIGGER_QUEUE_MAX: z.coerce.number().int().min(1).max(100_000_000).default(100_000),
    /**
     * AFTER triggers: pending runs of one trigger at most (all instances together; at most
     * `TRIGGER_QUEUE_MAX`), so one trigger's backlog leaves room for the others; sends past it are refused.
     */
    TRIGGER_QUEUE_MAX_PER_TRIGGER: z.coerce.number().int().min(1).max(100_000_000).default(10_000),
    /** AFTER triggers: attempts of one trigger that one instance runs at once (of its 16). */
    TRIGGER_CONCURRENCY_PER_TRIGGER: z.coerce.number().int().min(1).max(16).default(8),
    /** Recorded runs kept per trigger. */
    TRIGGER_RUNS_KEPT: z.coerce.number().int().min(0).max(100_000).default(100),
    /**
     * Memory one trigger run may build, in MiB: the strings, arrays and objects its expressions produce
     * (estimated, on the high side). A run past it fails with `memory`.
     */
    TRIGGER_MEMORY_MB: z.coerce.number().int().min(1).max(256).default(32),
    /** Live keys of state one trigger may hold; a state step that would add one more fails. */
    TRIGGER_STATE_MAX_KEYS: z.coerce.number().int().min(1).max(10_000_000).default(100_000),
    /** Bytes of one trigger state value as JSON; a state step storing a larger one fails. */
    TRIGGER_STATE_MAX_VALUE_BYTES: z.coerce
      .number()
      .int()
      .min(16)
      .max(1024 * 1024)
      .default(16 * 1024),
    /** Shared secret for HS256 client tokens. Set this or a JWKS source, not both. */
    JWT_SECRET: z.string().min(32, "must be at least 32 characters").optional(),
    /** `http(s)://` URL of a JWKS with the public keys that sign client tokens (RS256, ES256, EdDSA...). */
    JWT_JWKS_URL: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
    /** Path of a JSON file `{ "keys": [...] }` with the public keys that sign client tokens; read once at start. */
    JWT_JWKS_FILE: z.string().min(1).optional(),
    /** Required `iss` of client tokens, when set. */
    JWT_ISSUER: z.string().min(1).optional(),
    /** Required `aud` of client tokens, when set. */
    JWT_AUDIENCE: z.string().min(1).optional(),
  })
  .superRefine((env, ctx) => {
    // One key source for client tokens: a secret and a JWKS together would leave it unclear which signs.
    if (env.JWT_SECRET && (env.JWT_JWKS_URL || env.JWT_JWKS_FILE)) {
      ctx.addIssue({
        code: "custom",
        path: ["JWT_SECRET"],
        message: "set either JWT_SECRET or a JWKS (JWT_JWKS_URL / JWT_JWKS_FILE), not both",
      });
    }
    // Credentials for every origin would let any web page make requests with the user's cookies.
    if (env.CORS_CREDENTIALS && corsOrigins(env.CORS_ORIGINS) === "*") {
      ctx.addIssue({
        code: "custom",
        path: ["CORS_CREDENTIALS"],
        message: "cannot be true while CORS_ORIGINS allows every origin (*): list the origins",
      });
    }
    // Node refuses a request timeout shorter than the headers timeout.
    if (env.HTTP_REQUEST_TIMEOUT_MS < env.HTTP_HEADERS_TIMEOUT_MS) {
      ctx.addIssue({
        code: "custom",
        path: ["HTTP_REQUEST_TIMEOUT_MS"],
        message: "must be at least HTTP_HEADERS_TIMEOUT_MS",
      });
    }
    if (env.JWT_JWKS_URL && env.JWT_JWKS_FILE) {
      ctx.addIssue({
        code: "custom",
        path: ["JWT_JWKS_URL"],
        message: "set either JWT_JWKS_URL or JWT_JWKS_FILE, not both",
      });
    }
  });

/** The origins `CORS_ORIGINS` allows: `*` for every origin (also when `*` is one of several), else the list. */
export function corsOrigins(setting: string): "*" | string[] {
  const origins = setting
    .split(",")
    .map((origin) => origin.trim())
    .filter(Boolean);
  return origins.length === 0 || origins.includes("*") ? "*" : origins;
}

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
  const present = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== undefined && value !== ""));
  const result = EnvSchema.safeParse(present);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new EnvError(`Invalid configuration: ${problems.join("; ")}`);
  }
  return result.data;
}
