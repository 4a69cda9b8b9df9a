import { afterAll } from "vitest";
import WebSocket from "ws";

/** The subprotocol of graphql-ws. */
export const PROTOCOL = "graphql-transport-ws";

/** A raw graphql-transport-ws socket that records everything it sees. */
export interface RawSocket {
  readonly ws: WebSocket;
  /** Resolves when the socket opens; rejects if it closes or errors first. */
  readonly opened: Promise<void>;
  /** Resolves with the close code, reason and time since the socket was created. */
  readonly closed: Promise<{ code: number; reason: string; afterMs: number }>;
  /** Errors the client saw (e.g. a handshake refused), and the HTTP status of a refused upgrade. */
  readonly errors: string[];
  /** Every message received so far, parsed, in order (whether or not `next` took it). */
  readonly received: Record<string, any>[];
  /** Waits up to `timeoutMs` for the next message, parsed. */
  next(timeoutMs?: number): Promise<Record<string, any>>;
  /** Sends a text frame. */
  send(frame: string | Buffer): void;
}

const sockets = new Set<WebSocket>();
afterAll(() => {
  for (const ws of sockets) ws.terminate();
});

/** Opens a raw socket; `protocols: null` offers no subprotocol at all. */
export function rawSocket(url: string, protocols: string | string[] | null = PROTOCOL, options: WebSocket.ClientOptions = {}): RawSocket {
  const createdAt = Date.now();
  const ws = protocols === null ? new WebSocket(url, options) : new WebSocket(url, protocols, options);
  sockets.add(ws);
  const queue: Record<string, any>[] = [];
  const received: Record<string, any>[] = [];
  const waiters: ((message: Record<string, any>) => void)[] = [];
  const errors: string[] = [];
  ws.on("message", (data) => {
    const message = JSON.parse(String(data)) as Record<string, any>;
    received.push(message);
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else queue.push(message);
  });
  ws.on("error", (error) => errors.push(error.message));
  ws.on("unexpected-response", (_request, response) => {
    errors.push(`HTTP ${response.statusCode}`);
    ws.terminate();
  });
  const closed = new Promise<{ code: number; reason: string; afterMs: number }>((resolve) =>
    ws.once("close", (code, reason) => {
      sockets.delete(ws);
      resolve({ code, reason: String(reason), afterMs: Date.now() - createdAt });
    }),
  );
  const opened = new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    void closed.then(({ code }) => reject(new Error(`closed with ${code} before opening: ${errors.join("; ")}`)));
  });
  opened.catch(() => {}); // observed by the tests that care
  return {
    ws,
    opened,
    closed,
    errors,
    received,
    send: (frame) => ws.send(frame),
    next: (timeoutMs = 5000) => {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const waiter = (message: Record<string, any>) => {
          clearTimeout(timer);
          resolve(message);
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no message within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
  };
}

/** Opens a raw socket, sends connection_init (with `payload` as connectionParams) and waits for connection_ack. */
export async function acknowledgedSocket(
  url: string,
  payload?: Record<string, unknown>,
  options: WebSocket.ClientOptions = {},
): Promise<RawSocket> {
  const socket = rawSocket(url, PROTOCOL, options);
  await socket.opened;
  socket.send(JSON.stringify(payload ? { type: "connection_init", payload } : { type: "connection_init" }));
  const ack = await socket.next();
  if (ack.type !== "connection_ack") throw new Error(`expected connection_ack, got ${JSON.stringify(ack)}`);
  return socket;
}
