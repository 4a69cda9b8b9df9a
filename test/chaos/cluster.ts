import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../../dev/net.js";
import { migrate, projectRoot } from "../../src/db.js";
import { TcpProxy } from "../helpers/tcp-proxy.js";

/** The services the cluster runs over; the suite never touches them, only its own database and key prefix. */
export const POSTGRES_URL = process.env.CHAOS_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
export const REDIS_URL = process.env.CHAOS_REDIS_URL ?? "redis://127.0.0.1:6379";

export const ADMIN_TOKEN = `chaos-admin-${randomBytes(8).toString("hex")}`;
/** Signs the subscribers' client tokens (their client id is the token's `sub`). */
export const JWT_SECRET = randomBytes(32).toString("hex");
const WEBHOOK_SECRET = `whsec_${randomBytes(24).toString("base64")}`;

/** One request the webhook receiver got. */
export interface Delivery {
  readonly webhookId: string;
  readonly body: Record<string, unknown>;
  readonly at: number;
}

/** The loopback webhook receiver AFTER triggers call: it records every request and answers 200. */
export class Receiver {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    readonly deliveries: readonly Delivery[],
  ) {}

  static async start(): Promise<Receiver> {
    const deliveries: Delivery[] = [];
    const server = createServer((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk));
      req.on("end", () => {
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(body) as Record<string, unknown>;
        } catch {}
        deliveries.push({ webhookId: String(req.headers["webhook-id"] ?? ""), body: parsed, at: Date.now() });
        res.writeHead(200, { "content-type": "application/json" }).end("{}");
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new Receiver(server, (server.address() as { port: number }).port, deliveries);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Why an instance process ended: killed by the nemesis (expected), or on its own (an invariant broken). */
export interface Exit {
  readonly instance: number;
  readonly at: number;
  readonly code: number | null;
  readonly signal: string | null;
  readonly expected: boolean;
}

/**
 * One server process, reaching PostgreSQL and Redis through proxies of its own. It keeps its port
 * across restarts, so clients reconnect to the same address.
 */
export class Instance {
  private child: ChildProcess | null = null;
  private expectingExit = false;
  private paused = false;
  private readonly log: WriteStream;

  constructor(
    readonly index: number,
    readonly port: number,
    readonly postgres: TcpProxy,
    readonly redis: TcpProxy,
    private readonly env: Record<string, string>,
    logDir: string,
    private readonly exits: Exit[],
  ) {
    this.log = createWriteStream(join(logDir, `instance-${index}.log`), { flags: "a" });
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}/graphql`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/graphql`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** Starts the process and resolves once it listens. */
  async start(): Promise<void> {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], {
      cwd: projectRoot,
      env: { ...process.env, ...this.env, PORT: String(this.port) },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.expectingExit = false;
    child.stdout!.pipe(this.log, { end: false });
    child.stderr!.pipe(this.log, { end: false });
    child.once("exit", (code, signal) => {
      this.exits.push({ instance: this.index, at: Date.now(), code, signal, expected: this.expectingExit });
      if (this.child === child) this.child = null;
    });
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk;
        if (output.includes('"msg":"listening on')) {
          child.stdout!.off("data", onData);
          resolve();
        }
      };
      child.stdout!.on("data", onData);
      child.once("exit", (code) => reject(new Error(`instance ${this.index} exited with ${code} before listening`)));
    });
  }

  /** SIGKILL: the process dies at once, mid-whatever. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expectingExit = true;
    if (this.paused) this.resume();
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  /** SIGSTOP: the process stops running, its sockets stay open. */
  pause(): void {
    if (!this.child || this.paused) return;
    this.child.kill("SIGSTOP");
    this.paused = true;
  }

  /** SIGCONT after {@link Instance.pause}. */
  resume(): void {
    if (!this.child || !this.paused) return;
    this.child.kill("SIGCONT");
    this.paused = false;
  }

  /** SIGTERM and wait for the graceful stop. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expectingExit = true;
    if (this.paused) this.resume();
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    await exited;
    clearTimeout(timer);
  }

  close(): void {
    this.log.end();
  }
}

/** Settings every instance runs with: short timers, so faults and recoveries fit in a short run. */
function instanceEnv(databaseUrl: string, redisUrl: string, prefix: string, receiverPort: number, dataDir: string): Record<string, string> {
  return {
    NODE_ENV: "production",
    LOG_LEVEL: "info",
    HOST: "127.0.0.1",
    DATA_DIR: dataDir,
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    REDIS_PRESENCE_TTL_SECONDS: "5",
    ADMIN_TOKEN,
    JWT_SECRET,
    WEBHOOK_SECRET,
    WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${receiverPort}`,
    TRIGGER_RETRY_BASE_MS: "200",
    TRIGGER_RETRY_MAX_MS: "2000",
    TRIGGER_RETRY_LIMIT: "100",
    // Every run is kept, so that the report can say why each failed one failed.
    TRIGGER_RUNS_KEPT: "100000",
    SEED_DEMO_ROOM: "false",
    SHUTDOWN_TIMEOUT_MS: "5000",
    MAX_ADDRESS_MESSAGES_PER_SECOND: "1000000",
    MAX_ADDRESS_JOINS_PER_SECOND: "1000000",
    MAX_CONNECTIONS_PER_ADDRESS: "1000000",
    MAX_ADDRESS_CONNECTIONS_PER_SECOND: "1000000",
    MAX_MESSAGES_PER_SECOND: "1000",
    MAX_JOINS_PER_SECOND: "1000",
    // The checker reads whole histories (`history(last: 1000)`).
    GRAPHQL_MAX_COST: "50000",
  };
}

/** Two or three instances over one PostgreSQL database and one Redis key prefix of the run's own. */
export class Cluster {
  private constructor(
    readonly instances: Instance[],
    readonly receiver: Receiver,
    /** Every instance exit so far, expected or not. */
    readonly exits: readonly Exit[],
    readonly redisPrefix: string,
    private readonly dropDatabase: () => Promise<void>,
  ) {}

  /** Creates the database (migrated), the proxies and the receiver, and starts `count` instances. */
  static async start(count: number, runDir: string): Promise<Cluster> {
    const suffix = randomBytes(5).toString("hex");
    const database = `chaos_${suffix}`;
    await withPostgres(POSTGRES_URL, (client) => client.query(`CREATE DATABASE "${database}"`));
    const base = new URL(POSTGRES_URL);
    const directUrl = new URL(POSTGRES_URL);
    directUrl.pathname = `/${database}`;
    await migrate(directUrl.href);
    const redisTarget = new URL(REDIS_URL);
    const receiver = await Receiver.start();
    const prefix = `chaos_${suffix}:`;
    const exits: Exit[] = [];
    const instances: Instance[] = [];
    for (let index = 0; index < count; index++) {
      const postgres = await TcpProxy.start({ host: base.hostname, port: Number(base.port || 5432) });
      const redis = await TcpProxy.start({ host: redisTarget.hostname, port: Number(redisTarget.port || 6379) });
      const viaProxy = new URL(directUrl.href);
      viaProxy.port = String(postgres.port);
      const dataDir = join(runDir, `data-${index}`);
      mkdirSync(dataDir, { recursive: true });
      const env = instanceEnv(viaProxy.href, `redis://127.0.0.1:${redis.port}`, prefix, receiver.port, dataDir);
      instances.push(new Instance(index, await freePort(), postgres, redis, env, runDir, exits));
    }
    const cluster = new Cluster(instances, receiver, exits, prefix, () =>
      withPostgres(POSTGRES_URL, (client) => client.query(`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`)).then(() => {}),
    );
    for (const instance of instances) await instance.start();
    return cluster;
  }

  /** Heals every link and starts or resumes every instance. */
  async healAll(): Promise<void> {
    for (const instance of this.instances) {
      instance.postgres.heal();
      instance.redis.heal();
      instance.resume();
      if (!instance.running) await instance.start();
    }
  }

  /** Stops everything, drops the database and the run's Redis keys. */
  async destroy(deleteRedisKeys: () => Promise<void>): Promise<void> {
    await Promise.all(this.instances.map((instance) => instance.stop()));
    for (const instance of this.instances) {
      instance.close();
      await instance.postgres.close();
      await instance.redis.close();
    }
    await this.receiver.close();
    await this.dropDatabase().catch(() => {});
    await deleteRedisKeys().catch(() => {});
  }
}

async function withPostgres<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
