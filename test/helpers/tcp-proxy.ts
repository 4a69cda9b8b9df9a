import { connect, createServer, type Server, type Socket } from "node:net";

/** The ports of the services a {@link TcpProxy.inFront} URL may name, when it names none. */
const DEFAULT_PORTS: Readonly<Record<string, number>> = { "postgres:": 5432, "postgresql:": 5432, "redis:": 6379 };

/** What a {@link TcpProxy} does with traffic. */
export type ProxyMode =
  /** Forwards both ways. */
  | "up"
  /** The service is gone: open connections are reset and new ones refused (the port is closed). */
  | "down"
  /**
   * A partition: connections stay open but nothing crosses (both sides are paused, so bytes wait in
   * buffers), and new connections are accepted and held. Healing lets the held bytes through, as
   * TCP retransmission would after a short partition.
   */
  | "partitioned";

/**
 * A TCP proxy on 127.0.0.1 in front of one service (PostgreSQL, Redis, a peer), under a test's
 * control: {@link TcpProxy.cut} it, {@link TcpProxy.partition} it, add latency, {@link TcpProxy.heal}
 * it. The service itself is never touched.
 */
export class TcpProxy {
  private mode: ProxyMode = "up";
  private latency = 0;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket }>();

  private constructor(
    private readonly server: Server,
    /** The port clients connect to. */
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on("connection", (client) => this.accept(client));
  }

  /** Starts a proxy to `target` on `port` (0: a free one). */
  static async start(target: { host: string; port: number }, port = 0): Promise<TcpProxy> {
    const server = createServer({ pauseOnConnect: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    return new TcpProxy(server, (server.address() as { port: number }).port, target);
  }

  /**
   * A proxy in front of the service a URL names (`postgres://…`, `redis://…`), with that URL
   * rewritten to reach it through the proxy.
   */
  static async inFront(serviceUrl: string): Promise<{ proxy: TcpProxy; url: string }> {
    const url = new URL(serviceUrl);
    const port = Number(url.port || DEFAULT_PORTS[url.protocol] || 0);
    const proxy = await TcpProxy.start({ host: url.hostname, port });
    url.hostname = "127.0.0.1";
    url.port = String(proxy.port);
    return { proxy, url: url.href };
  }

  /** The current mode. */
  get state(): ProxyMode {
    return this.mode;
  }

  /** Connections open through the proxy. */
  get connections(): number {
    return this.pairs.size;
  }

  /** Connections accepted so far, open or not. */
  connectionsMade = 0;

  /** Resets every open connection and refuses new ones (closing the port) until {@link TcpProxy.heal}. */
  cut(): void {
    this.mode = "down";
    for (const pair of this.pairs) {
      pair.client.resetAndDestroy();
      pair.upstream.resetAndDestroy();
    }
    this.pairs.clear();
    if (this.server.listening) this.server.close();
  }

  /** Lets nothing cross, without closing anything, until {@link TcpProxy.heal}. */
  partition(): void {
    this.mode = "partitioned";
    for (const pair of this.pairs) {
      pair.client.pause();
      pair.upstream.pause();
    }
  }

  /** Delays every chunk by `ms` each way (0 removes the delay). */
  setLatency(ms: number): void {
    this.latency = ms;
  }

  /** Forwards again, on the same port; held connections carry on. */
  heal(): void {
    if (!this.server.listening) this.server.listen(this.port, "127.0.0.1");
    this.mode = "up";
    this.latency = 0;
    for (const pair of this.pairs) {
      pair.client.resume();
      pair.upstream.resume();
    }
  }

  /** Stops listening and resets every connection. */
  async close(): Promise<void> {
    const closed = this.server.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    this.cut();
    await closed;
  }

  private accept(client: Socket): void {
    this.connectionsMade++;
    client.on("error", () => {});
    if (this.mode === "down") {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: this.target.host, port: this.target.port });
    upstream.on("error", () => {});
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = () => {
      if (!this.pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    client.once("close", end);
    upstream.once("close", end);
    this.pipe(client, upstream);
    this.pipe(upstream, client);
    if (this.mode === "up") client.resume();
    else upstream.pause();
  }

  /** Forwards `from` to `to`, chunk by chunk, in order, each after the latency set when it arrived. */
  private pipe(from: Socket, to: Socket): void {
    let pending = 0;
    let lastDue = 0;
    let ended = false;
    const write = (chunk: Buffer) => {
      if (!to.destroyed) to.write(chunk);
    };
    from.on("data", (chunk: Buffer) => {
      if (this.latency === 0 && pending === 0) return write(chunk);
      const due = Math.max(Date.now() + this.latency, lastDue);
      lastDue = due;
      pending++;
      setTimeout(() => {
        pending--;
        write(chunk);
        if (ended && pending === 0) to.end();
      }, due - Date.now());
    });
    from.on("end", () => {
      ended = true;
      if (pending === 0) to.end();
    });
  }
}
